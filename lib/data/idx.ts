/**
 * IDX files (the format of MNIST, http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
 * `0x00 0x00 <type> <ndims>`, `ndims` big-endian uint32 dimension sizes, then the data, big-endian,
 * row-major. Gzipped files (`.gz`, magic 0x1f 0x8b) are decompressed first.
 * @module
 */
import { DatasetError, fmtBytes } from "./errors.ts";
import { inflateBounded, inflatePrefix, MAX_INFLATED_BYTES } from "./inflate.ts";

/** IDX element types by their type byte. */
export const IDX_TYPES: Readonly<Record<number, { name: string; bytes: number }>> = {
  0x08: { name: "uint8", bytes: 1 },
  0x09: { name: "int8", bytes: 1 },
  0x0b: { name: "int16", bytes: 2 },
  0x0c: { name: "int32", bytes: 4 },
  0x0d: { name: "float32", bytes: 4 },
  0x0e: { name: "float64", bytes: 8 },
};

/** A parsed IDX array: dims outermost first, data in native typed-array form (row-major). */
export interface IdxArray {
  /** Element type name, e.g. "uint8". */
  readonly type: string;
  /** Dimension sizes, outermost first. */
  readonly dims: readonly number[];
  /** The values, row-major. */
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** What a caller expects of an IDX file; any mismatch is a {@link DatasetError}. */
export interface IdxExpect {
  /** Expected type name, e.g. `"uint8"`. */
  readonly type?: string;
  /** Expected dims; `-1` accepts any size on that axis. */
  readonly dims?: readonly number[];
  /** Most bytes a gzipped file may inflate to (default {@link MAX_INFLATED_BYTES}). */
  readonly maxBytes?: number;
}

/** True when the bytes start with the gzip magic number 0x1f 0x8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an IDX file held in memory. `file` names it in error messages. Checks the magic number,
 * the type byte, the dims and that the size is exactly header + data. A gzipped file is inflated
 * only up to the size its IDX header declares (at most `expect.maxBytes`), so a bomb is refused early.
 */
export function parseIdx(bytes: Uint8Array, file = "IDX file", expect: IdxExpect = {}): IdxArray {
  if (isGzip(bytes)) bytes = gunzipIdx(bytes, file, expect.maxBytes ?? MAX_INFLATED_BYTES);
  if (bytes.length < 4) {
    throw new DatasetError(
      `Cannot read ${file}: ${
        fmtBytes(bytes.length)
      }, expected an IDX file (at least a 4-byte magic number).`,
      file,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const typeByte = bytes[2];
  const ndims = bytes[3];
  const t = IDX_TYPES[typeByte];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !t || ndims === 0) {
    throw new DatasetError(
      `Cannot read ${file}: magic number 0x${hex8(magic)} is not an IDX magic number ` +
        `(expected 0x0000TTDD: two zero bytes, a type byte 08/09/0B/0C/0D/0E, a dimension count ≥ 1${
          expect.type && expect.dims
            ? `; for this file 0x0000${hex2(typeCode(expect.type))}${hex2(expect.dims.length)}`
            : ""
        }).`,
      file,
    );
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) {
    throw new DatasetError(
      `Cannot read ${file}: ${
        fmtBytes(bytes.length)
      } is shorter than its IDX header (${header} bytes for ${ndims} dims); the file is truncated.`,
      file,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  if (expect.type && expect.type !== t.name) {
    throw new DatasetError(
      `Cannot read ${file}: IDX element type ${t.name} (magic 0x${hex8(magic)}), expected ${expect.type}.`,
      file,
    );
  }
  if (expect.dims) {
    const ok = expect.dims.length === dims.length && expect.dims.every((d, i) => d === -1 || d === dims[i]);
    if (!ok) {
      throw new DatasetError(
        `Cannot read ${file}: IDX dims [${dims.join(", ")}], expected [${
          expect.dims.map((d) => (d === -1 ? "any" : String(d))).join(", ")
        }].`,
        file,
      );
    }
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const want = header + count * t.bytes;
  if (bytes.length !== want) {
    throw new DatasetError(
      `Cannot read ${file}: ${fmtBytes(bytes.length)}, expected ${
        fmtBytes(want)
      } (a ${header}-byte header + ${dims.join("×")} ${t.name} values); the file is ${
        bytes.length < want ? "truncated" : "longer than its header says"
      }.`,
      file,
    );
  }
  return { type: t.name, dims, data: decode(bytes, header, count, typeByte) };
}

/** Inflates a gzipped IDX file, bounded by the size its header (read from the first bytes) declares. */
function gunzipIdx(gz: Uint8Array, file: string, cap: number): Uint8Array {
  const head = inflatePrefix(gz, "gzip", file, file);
  const header = head.length >= 4 ? 4 + 4 * head[3] : Infinity;
  const t = IDX_TYPES[head[2]];
  // Not an IDX header, or too short to tell: the checks below name what is wrong with these bytes.
  if (head.length < header || !t || head[0] !== 0 || head[1] !== 0) return head;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let i = 0; i < head[3]; i++) count *= v.getUint32(4 + 4 * i);
  return inflateBounded(gz, "gzip", header + count * t.bytes, file, file, "its IDX header", cap);
}

/** Encodes an array as an IDX file (big-endian). The inverse of {@link parseIdx}; used to write fixtures. */
export function encodeIdx(type: string, dims: readonly number[], values: ArrayLike<number>): Uint8Array {
  const code = typeCode(type);
  const t = IDX_TYPES[code];
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new RangeError(
      `Cannot encode IDX: ${values.length} values for dims [${dims.join(", ")}] (${count})`,
    );
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * t.bytes);
  const v = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  for (let i = 0; i < count; i++) {
    const o = header + i * t.bytes;
    switch (code) {
      case 0x08:
        v.setUint8(o, values[i]);
        break;
      case 0x09:
        v.setInt8(o, values[i]);
        break;
      case 0x0b:
        v.setInt16(o, values[i]);
        break;
      case 0x0c:
        v.setInt32(o, values[i]);
        break;
      case 0x0d:
        v.setFloat32(o, values[i]);
        break;
      default:
        v.setFloat64(o, values[i]);
    }
  }
  return out;
}

function typeCode(name: string): number {
  for (const [k, v] of Object.entries(IDX_TYPES)) if (v.name === name) return Number(k);
  throw new RangeError(
    `Cannot use IDX type ${name}: expected one of uint8, int8, int16, int32, float32, float64`,
  );
}

function decode(bytes: Uint8Array, off: number, count: number, code: number): IdxArray["data"] {
  if (code === 0x08) return bytes.slice(off, off + count);
  if (code === 0x09) return new Int8Array(bytes.slice(off, off + count).buffer);
  const v = new DataView(bytes.buffer, bytes.byteOffset + off);
  switch (code) {
    case 0x0b: {
      const a = new Int16Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getInt16(2 * i);
      return a;
    }
    case 0x0c: {
      const a = new Int32Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getInt32(4 * i);
      return a;
    }
    case 0x0d: {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getFloat32(4 * i);
      return a;
    }
    default: {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getFloat64(8 * i);
      return a;
    }
  }
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0").toUpperCase();
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0").toUpperCase();
}
