/**
 * A minimal MATLAB level-5 MAT-file reader (the format of `save -v7` and earlier, as written by
 * MATLAB and scipy.io.savemat): numeric arrays only, including zlib-compressed (`miCOMPRESSED`)
 * elements, either byte order. Cells, structs, chars, sparse and objects are listed as skipped.
 * Data stays column-major, as MATLAB stores it. v7.3 files (HDF5) are rejected with a clear message.
 * @module
 */
import { deflateSync } from "node:zlib";
import { DatasetError, fmtBytes } from "./errors.ts";
import { inflateBounded, inflatePrefix, MAX_INFLATED_BYTES } from "./inflate.ts";

/** MATLAB numeric array classes by their mxCLASS code. */
const CLASSES: Readonly<Record<number, string>> = {
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
};

/** Non-numeric classes, named in the "skipped" list. */
const OTHER_CLASSES: Readonly<Record<number, string>> = {
  1: "cell",
  2: "struct",
  3: "object",
  4: "char",
  5: "sparse",
  16: "function",
  17: "opaque",
};

/** Data element types (miINT8 = 1 …), with their byte widths. */
const MI: Readonly<Record<number, { name: string; bytes: number }>> = {
  1: { name: "int8", bytes: 1 },
  2: { name: "uint8", bytes: 1 },
  3: { name: "int16", bytes: 2 },
  4: { name: "uint16", bytes: 2 },
  5: { name: "int32", bytes: 4 },
  6: { name: "uint32", bytes: 4 },
  7: { name: "single", bytes: 4 },
  9: { name: "double", bytes: 8 },
  12: { name: "int64", bytes: 8 },
  13: { name: "uint64", bytes: 8 },
};

const MI_MATRIX = 14;
const MI_COMPRESSED = 15;

/** Typed arrays a MAT numeric array is returned in (int64/uint64 become Float64Array). */
export type MatData =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

/** One numeric variable of a MAT-file. */
export interface MatArray {
  /** Variable name. */
  readonly name: string;
  /** MATLAB class, e.g. "uint8", "double". */
  readonly className: string;
  /** Dimensions, MATLAB order (rows first). */
  readonly dims: readonly number[];
  /** Real part, column-major, in the class's element type. */
  readonly data: MatData;
  /** Imaginary part of complex arrays. */
  readonly imag?: MatData;
}

/** The numeric variables of a MAT-file, plus what was skipped. */
export interface MatFile {
  /** The header text ("MATLAB 5.0 MAT-file, …"). */
  readonly header: string;
  /** Numeric variables by name. */
  readonly vars: ReadonlyMap<string, MatArray>;
  /** "name (class)" of each variable that is not a numeric array. */
  readonly skipped: readonly string[];
}

interface Ctx {
  readonly file: string;
  readonly le: boolean;
  readonly maxBytes: number;
}

/**
 * Parses a level-5 MAT-file held in memory; `file` names it in errors. Each compressed element is
 * inflated only up to the size its inner tag declares, at most `maxBytes`.
 */
export function parseMat5(bytes: Uint8Array, file = "MAT-file", maxBytes = MAX_INFLATED_BYTES): MatFile {
  if (bytes.length < 128) {
    throw new DatasetError(
      `Cannot read ${file}: ${
        fmtBytes(bytes.length)
      }, expected a MATLAB 5 MAT-file (a 128-byte header, then data).`,
      file,
    );
  }
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, 116)).replace(/[\0 ]+$/, "");
  if (text.startsWith("MATLAB 7.3")) {
    throw new DatasetError(
      `Cannot read ${file}: it is a MATLAB 7.3 (HDF5) file; expected a level-5 MAT-file (MATLAB ≤ 7.2, ` +
        `"save -v7", or scipy.io.savemat).`,
      file,
    );
  }
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (!text.startsWith("MATLAB 5.0 MAT-file") || (endian !== "IM" && endian !== "MI")) {
    throw new DatasetError(
      `Cannot read ${file}: header starts ${JSON.stringify(text.slice(0, 24))} with endian mark ` +
        `${JSON.stringify(endian)}; expected a MATLAB 5 MAT-file (header text "MATLAB 5.0 MAT-file", ` +
        `endian mark "IM" or "MI" at byte 126).`,
      file,
    );
  }
  const le = endian === "IM";
  const version = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(124, le);
  if (version !== 0x0100) {
    throw new DatasetError(
      `Cannot read ${file}: MAT-file version 0x${
        version.toString(16).padStart(4, "0")
      } at byte 124, expected 0x0100 ` +
        `(a level-5 MAT-file); the file is damaged or of another MATLAB version.`,
      file,
    );
  }
  const ctx: Ctx = { file, le, maxBytes };
  const vars = new Map<string, MatArray>();
  const skipped: string[] = [];
  readElements(ctx, bytes, 128, bytes.length, vars, skipped, false);
  return { header: text, vars, skipped };
}

function readElements(
  ctx: Ctx,
  bytes: Uint8Array,
  start: number,
  end: number,
  vars: Map<string, MatArray>,
  skipped: string[],
  inner: boolean,
): void {
  let off = start;
  while (off < end) {
    if (end - off < 8) {
      if (bytes.subarray(off, end).every((b) => b === 0)) return; // trailing padding
      throw truncated(ctx, off, 8, inner);
    }
    const tag = readTag(ctx, bytes, off, end, inner);
    if (tag.type === MI_COMPRESSED) {
      const raw = inflateElement(ctx, bytes.subarray(tag.dataOff, tag.dataOff + tag.nbytes), off);
      readElements(ctx, raw, 0, raw.length, vars, skipped, true);
      off = tag.dataOff + tag.nbytes;
    } else {
      if (tag.type === MI_MATRIX) {
        readMatrix(ctx, bytes, tag.dataOff, tag.dataOff + tag.nbytes, vars, skipped);
      }
      off = tag.next;
    }
  }
}

/**
 * Inflates a compressed element, bounded by the size its first inner tag declares (8 bytes of tag,
 * then the element's data padded to 8 bytes).
 */
function inflateElement(ctx: Ctx, data: Uint8Array, off: number): Uint8Array {
  const where = `${ctx.file} (compressed element at byte ${off})`;
  const head = inflatePrefix(data, "zlib", where, ctx.file);
  if (head.length < 8) return inflateBounded(data, "zlib", head.length, where, ctx.file, "its inner tag");
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const w0 = v.getUint32(0, ctx.le);
  const declared = w0 >>> 16 !== 0 ? 8 : 8 + Math.ceil(v.getUint32(4, ctx.le) / 8) * 8;
  return inflateBounded(data, "zlib", declared, where, ctx.file, "its inner tag", ctx.maxBytes);
}

interface Tag {
  type: number;
  nbytes: number;
  dataOff: number;
  next: number;
}

function readTag(ctx: Ctx, bytes: Uint8Array, off: number, end: number, inner: boolean): Tag {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const w0 = v.getUint32(off, ctx.le);
  const small = w0 >>> 16;
  if (small !== 0) {
    if (small > 4) {
      throw new DatasetError(
        `Cannot read ${ctx.file}: small data element at byte ${off} claims ${small} bytes (at most 4); ` +
          `the file is damaged.`,
        ctx.file,
      );
    }
    return { type: w0 & 0xffff, nbytes: small, dataOff: off + 4, next: off + 8 };
  }
  const nbytes = v.getUint32(off + 4, ctx.le);
  if (off + 8 + nbytes > end) throw truncated(ctx, off, 8 + nbytes, inner);
  const padded = w0 === MI_COMPRESSED ? nbytes : Math.ceil(nbytes / 8) * 8;
  return { type: w0, nbytes, dataOff: off + 8, next: Math.min(end, off + 8 + padded) };
}

function truncated(ctx: Ctx, off: number, need: number, inner: boolean): DatasetError {
  return new DatasetError(
    `Cannot read ${ctx.file}: ${
      inner ? "a compressed element's contents end" : "the file ends"
    } inside the data ` +
      `element at byte ${off}, which needs ${fmtBytes(need)}; the file is truncated or damaged.`,
    ctx.file,
  );
}

function readMatrix(
  ctx: Ctx,
  bytes: Uint8Array,
  start: number,
  end: number,
  vars: Map<string, MatArray>,
  skipped: string[],
): void {
  if (end === start) return; // empty matrix element
  const flagsTag = readTag(ctx, bytes, start, end, true);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (flagsTag.type !== 6 || flagsTag.nbytes !== 8) {
    throw new DatasetError(
      `Cannot read ${ctx.file}: array at byte ${start} has no array-flags subelement (type ${flagsTag.type}, ` +
        `${flagsTag.nbytes} bytes; expected miUINT32, 8 bytes).`,
      ctx.file,
    );
  }
  const flags = v.getUint32(flagsTag.dataOff, ctx.le);
  const cls = flags & 0xff;
  const complex = (flags & 0x800) !== 0;
  const dimsTag = readTag(ctx, bytes, flagsTag.next, end, true);
  const dims: number[] = [];
  for (let i = 0; i < dimsTag.nbytes / 4; i++) dims.push(v.getInt32(dimsTag.dataOff + 4 * i, ctx.le));
  const nameTag = readTag(ctx, bytes, dimsTag.next, end, true);
  const name = new TextDecoder().decode(bytes.subarray(nameTag.dataOff, nameTag.dataOff + nameTag.nbytes));
  const className = CLASSES[cls];
  if (!className) {
    skipped.push(`${name} (${OTHER_CLASSES[cls] ?? `class ${cls}`})`);
    return;
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const realTag = readTag(ctx, bytes, nameTag.next, end, true);
  const data = convert(ctx, bytes, realTag, className, count, name);
  let imag: MatData | undefined;
  if (complex) {
    imag = convert(ctx, bytes, readTag(ctx, bytes, realTag.next, end, true), className, count, name);
  }
  vars.set(name, { name, className, dims, data, imag });
}

function convert(
  ctx: Ctx,
  bytes: Uint8Array,
  tag: Tag,
  className: string,
  count: number,
  name: string,
): MatData {
  const mi = MI[tag.type];
  if (!mi) {
    throw new DatasetError(
      `Cannot read ${ctx.file}: variable ${name} stores data of unknown type ${tag.type}.`,
      ctx.file,
    );
  }
  if (tag.nbytes !== count * mi.bytes) {
    throw new DatasetError(
      `Cannot read ${ctx.file}: variable ${name} holds ${fmtBytes(tag.nbytes)} of ${mi.name}, expected ` +
        `${fmtBytes(count * mi.bytes)} for ${count} values; the file is damaged.`,
      ctx.file,
    );
  }
  const out = allocate(className, count);
  if (mi.name === className && ctx.le && (className === "uint8" || className === "int8")) {
    out.set(
      new (out.constructor as Uint8ArrayConstructor)(bytes.buffer, bytes.byteOffset + tag.dataOff, count),
    );
    return out;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + tag.dataOff, tag.nbytes);
  const le = ctx.le;
  const get: (i: number) => number = {
    int8: (i: number) => v.getInt8(i),
    uint8: (i: number) => v.getUint8(i),
    int16: (i: number) => v.getInt16(2 * i, le),
    uint16: (i: number) => v.getUint16(2 * i, le),
    int32: (i: number) => v.getInt32(4 * i, le),
    uint32: (i: number) => v.getUint32(4 * i, le),
    single: (i: number) => v.getFloat32(4 * i, le),
    double: (i: number) => v.getFloat64(8 * i, le),
    int64: (i: number) => Number(v.getBigInt64(8 * i, le)),
    uint64: (i: number) => Number(v.getBigUint64(8 * i, le)),
  }[mi.name]!;
  for (let i = 0; i < count; i++) out[i] = get(i);
  return out;
}

function allocate(className: string, n: number): MatData {
  switch (className) {
    case "single":
      return new Float32Array(n);
    case "int8":
      return new Int8Array(n);
    case "uint8":
      return new Uint8Array(n);
    case "int16":
      return new Int16Array(n);
    case "uint16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "uint32":
      return new Uint32Array(n);
    default:
      return new Float64Array(n); // double, int64, uint64
  }
}

/** A variable to write with {@link encodeMat5}. */
export interface MatWriteVar {
  readonly name: string;
  /** "double" or "uint8" (enough for fixtures; data is written as that class's own type). */
  readonly className: "double" | "uint8";
  readonly dims: readonly number[];
  /** Column-major values. */
  readonly data: ArrayLike<number>;
}

/**
 * Writes a level-5 MAT-file (the layout of scipy.io.savemat), each variable as an miMATRIX element,
 * compressed (miCOMPRESSED) when `compress` is true, little-endian unless `littleEndian` is false.
 * Used to write test fixtures.
 */
export function encodeMat5(vars: readonly MatWriteVar[], compress = false, littleEndian = true): Uint8Array {
  const le = littleEndian;
  const parts: Uint8Array[] = [];
  const header = new Uint8Array(128).fill(0x20);
  header.set(new TextEncoder().encode("MATLAB 5.0 MAT-file, written by resflow-webgpu fixtures"));
  header.fill(0, 116, 124);
  // Version 0x0100 and the endian mark "IM", both written in the file's byte order.
  header.set(le ? [0x00, 0x01, 0x49, 0x4d] : [0x01, 0x00, 0x4d, 0x49], 124);
  parts.push(header);
  for (const mv of vars) {
    const el = matrixElement(mv, le);
    if (compress) {
      const z = new Uint8Array(deflateSync(el));
      parts.push(tag(MI_COMPRESSED, z.length, le), z);
    } else {
      parts.push(el);
    }
  }
  return concat(parts);
}

function matrixElement(mv: MatWriteVar, le: boolean): Uint8Array {
  const cls = mv.className === "double" ? 6 : 9;
  const flags = new Uint8Array(8);
  new DataView(flags.buffer).setUint32(0, cls, le);
  const dims = new Uint8Array(4 * mv.dims.length);
  mv.dims.forEach((d, i) => new DataView(dims.buffer).setInt32(4 * i, d, le));
  const name = new TextEncoder().encode(mv.name);
  let data: Uint8Array;
  if (mv.className === "double") {
    data = new Uint8Array(8 * mv.data.length);
    const dv = new DataView(data.buffer);
    for (let i = 0; i < mv.data.length; i++) dv.setFloat64(8 * i, mv.data[i], le);
  } else {
    data = Uint8Array.from(mv.data);
  }
  const body = concat([
    sub(6, flags, le),
    sub(5, dims, le),
    name.length <= 4 ? smallSub(1, name, le) : sub(1, name, le),
    sub(mv.className === "double" ? 9 : 2, data, le),
  ]);
  return concat([tag(MI_MATRIX, body.length, le), body]);
}

function tag(type: number, nbytes: number, le: boolean): Uint8Array {
  const t = new Uint8Array(8);
  const v = new DataView(t.buffer);
  v.setUint32(0, type, le);
  v.setUint32(4, nbytes, le);
  return t;
}

function sub(type: number, data: Uint8Array, le: boolean): Uint8Array {
  const padded = new Uint8Array(Math.ceil(data.length / 8) * 8);
  padded.set(data);
  return concat([tag(type, data.length, le), padded]);
}

function smallSub(type: number, data: Uint8Array, le: boolean): Uint8Array {
  const t = new Uint8Array(8);
  new DataView(t.buffer).setUint32(0, (data.length << 16) | type, le);
  t.set(data, 4);
  return t;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
