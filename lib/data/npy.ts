/**
 * NumPy `.npy` arrays (format versions 1.0, 2.0 and 3.0): the magic `\x93NUMPY`, a version, a header
 * length (uint16 for v1, uint32 for v2/v3), a Python-literal header dict (`descr`, `fortran_order`,
 * `shape`), then the raw data. Numeric and boolean dtypes of either byte order are read; object arrays
 * (which would need unpickling) and structured or string dtypes are refused. Arrays are returned in
 * C (row-major) order whatever their `fortran_order`.
 * @module
 */
import { DatasetError, fmtBytes } from "./errors.ts";

/** Typed arrays an `.npy` array is returned in. */
export type NpyData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** A decoded `.npy` array. */
export interface NpyArray {
  /** NumPy dtype name: "uint8", "int64", "float32", "bool", … */
  readonly dtype: string;
  /** Dimension sizes, outermost first. */
  readonly shape: readonly number[];
  /** Whether the file stored the array in Fortran order (the data here is always C order). */
  readonly fortranOrder: boolean;
  /** Values in C order. */
  readonly data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const KINDS: Readonly<Record<string, string>> = {
  b1: "bool",
  u1: "uint8",
  i1: "int8",
  u2: "uint16",
  i2: "int16",
  u4: "uint32",
  i4: "int32",
  u8: "uint64",
  i8: "int64",
  f4: "float32",
  f8: "float64",
};

/** True when the bytes start with the `.npy` magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && MAGIC.every((b, i) => bytes[i] === b);
}

/** Parses an `.npy` file held in memory; `file` names it in errors. */
export function parseNpy(bytes: Uint8Array, file = ".npy file"): NpyArray {
  if (!isNpy(bytes)) {
    const got = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new DatasetError(
      `Cannot read ${file}: starts with bytes [${got}], expected the .npy magic string \\x93NUMPY (93 4e 55 4d 50 59).`,
      file,
    );
  }
  if (bytes.length < 10) throw short(file, bytes.length, 10, "the .npy preamble");
  const major = bytes[6];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = v.getUint16(8, true);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw short(file, bytes.length, 12, "the .npy preamble");
    hlen = v.getUint32(8, true);
    hstart = 12;
  } else {
    throw new DatasetError(
      `Cannot read ${file}: .npy format version ${major}.${bytes[7]}, expected 1.0, 2.0 or 3.0.`,
      file,
    );
  }
  if (bytes.length < hstart + hlen) throw short(file, bytes.length, hstart + hlen, "the .npy header");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(hstart, hstart + hlen),
  );
  const { descr, fortranOrder, shape } = parseHeader(header, file);
  const { dtype, bytesPer, little } = parseDescr(descr, file);
  const count = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  const want = count * bytesPer;
  if (bytes.length - off !== want) {
    throw new DatasetError(
      `Cannot read ${file}: ${fmtBytes(bytes.length - off)} of data after the header, expected ${
        fmtBytes(want)
      } ` +
        `(shape (${shape.join(", ")}) of ${dtype}); the file is ${
          bytes.length - off < want ? "truncated" : "longer than its header says"
        }.`,
      file,
    );
  }
  let data = decode(bytes.subarray(off, off + want), dtype, count, little);
  if (fortranOrder && shape.length > 1) data = fortranToC(data, shape);
  return { dtype, shape, fortranOrder, data };
}

function short(file: string, have: number, need: number, what: string): DatasetError {
  return new DatasetError(
    `Cannot read ${file}: ${fmtBytes(have)}, expected at least ${
      fmtBytes(need)
    } for ${what}; the file is truncated.`,
    file,
  );
}

function parseHeader(h: string, file: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (what: string) =>
    new DatasetError(`Cannot read ${file}: .npy header ${JSON.stringify(h.trim())} ${what}.`, file);
  if (/['"]descr['"]\s*:\s*\[/.test(h)) {
    throw bad(
      "describes a structured dtype (a list of fields), expected a plain numeric dtype such as '|u1' or '<f4'",
    );
  }
  const d = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(h);
  const f = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(h);
  const s = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(h);
  if (!d || !f || !s) throw bad("lacks 'descr', 'fortran_order' or 'shape'");
  const shape = s[1].split(",").map((t) => t.trim()).filter((t) => t !== "").map((t) => {
    const n = Number(t.replace(/L$/, ""));
    if (!Number.isInteger(n) || n < 0) {
      throw bad(`has shape entry ${JSON.stringify(t)}, expected a non-negative integer`);
    }
    return n;
  });
  return { descr: d[1], fortranOrder: f[1] === "True", shape };
}

function parseDescr(descr: string, file: string): { dtype: string; bytesPer: number; little: boolean } {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (m && m[2] === "O") {
    throw new DatasetError(
      `Cannot read ${file}: dtype '${descr}' is an object array, stored as Python pickles; pickles are never ` +
        `executed here. Expected a numeric array (e.g. '|u1', '<f4', '<i8').`,
      file,
    );
  }
  const dtype = m ? KINDS[m[2] + m[3]] : undefined;
  if (!m || !dtype) {
    throw new DatasetError(
      `Cannot read ${file}: dtype '${descr}' is not supported, expected one of bool, uint8, int8, (u)int16, ` +
        `(u)int32, (u)int64, float32, float64 (descr like '|u1', '<i8', '<f4').`,
      file,
    );
  }
  return { dtype, bytesPer: Number(m[3]), little: m[1] !== ">" };
}

function decode(raw: Uint8Array, dtype: string, count: number, little: boolean): NpyData {
  if (dtype === "uint8" || dtype === "bool") return raw.slice();
  if (dtype === "int8") return new Int8Array(raw.slice().buffer);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case "uint16":
      return fill(new Uint16Array(count), (i) => v.getUint16(2 * i, little));
    case "int16":
      return fill(new Int16Array(count), (i) => v.getInt16(2 * i, little));
    case "uint32":
      return fill(new Uint32Array(count), (i) => v.getUint32(4 * i, little));
    case "int32":
      return fill(new Int32Array(count), (i) => v.getInt32(4 * i, little));
    case "float32":
      return fill(new Float32Array(count), (i) => v.getFloat32(4 * i, little));
    case "float64":
      return fill(new Float64Array(count), (i) => v.getFloat64(8 * i, little));
    case "uint64": {
      const a = new BigUint64Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getBigUint64(8 * i, little);
      return a;
    }
    default: {
      const a = new BigInt64Array(count);
      for (let i = 0; i < count; i++) a[i] = v.getBigInt64(8 * i, little);
      return a;
    }
  }
}

function fill<T extends { [i: number]: number; length: number }>(a: T, get: (i: number) => number): T {
  for (let i = 0; i < a.length; i++) a[i] = get(i);
  return a;
}

function fortranToC(data: NpyData, shape: readonly number[]): NpyData {
  const out = new (data.constructor as new (n: number) => NpyData)(data.length);
  const nd = shape.length;
  const fstride: number[] = [];
  let s = 1;
  for (let k = 0; k < nd; k++) {
    fstride.push(s);
    s *= shape[k];
  }
  const idx = new Array(nd).fill(0);
  let f = 0;
  for (let c = 0; c < data.length; c++) {
    (out as unknown as unknown[])[c] = (data as unknown as unknown[])[f];
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      f += fstride[k];
      if (idx[k] < shape[k]) break;
      f -= fstride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

/** Converts integer npy data (including 64-bit) to plain numbers, checking each is a safe integer. */
export function npyToNumbers(arr: NpyArray, file = ".npy file"): Float64Array {
  const out = new Float64Array(arr.data.length);
  for (let i = 0; i < out.length; i++) {
    const x = arr.data[i];
    const n = typeof x === "bigint" ? Number(x) : x;
    if (typeof x === "bigint" && BigInt(n) !== x) {
      throw new DatasetError(
        `Cannot read ${file}: value ${x} at index ${i} is beyond the safe integer range.`,
        file,
      );
    }
    out[i] = n;
  }
  return out;
}

/**
 * Encodes a `.npy` file (format 1.0, or 2.0 when the header needs it; header padded to 64 bytes like
 * NumPy). `descr` is e.g. `"|u1"`, `"<f4"`, `">f8"`, `"<i8"`. Used to write fixtures.
 */
export function encodeNpy(
  descr: string,
  shape: readonly number[],
  values: ArrayLike<number> | ArrayLike<bigint>,
  fortranOrder = false,
  version: 1 | 2 | 3 = 1,
): Uint8Array {
  const m = /^([<>|])([a-z])(\d+)$/.exec(descr);
  if (!m || !KINDS[m[2] + m[3]]) throw new RangeError(`Cannot encode .npy: unsupported descr ${descr}`);
  const bytesPer = Number(m[3]);
  const little = m[1] !== ">";
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': ${
    fortranOrder ? "True" : "False"
  }, 'shape': ${shapeStr}, }`;
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(total + count * bytesPer);
  out.set(MAGIC);
  out[6] = version;
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, dict.length, true);
  else v.setUint32(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), pre);
  const kind = m[2] + m[3];
  for (let i = 0; i < count; i++) {
    const o = total + i * bytesPer;
    const x = values[i];
    switch (kind) {
      case "u1":
      case "b1":
        v.setUint8(o, Number(x));
        break;
      case "i1":
        v.setInt8(o, Number(x));
        break;
      case "u2":
        v.setUint16(o, Number(x), little);
        break;
      case "i2":
        v.setInt16(o, Number(x), little);
        break;
      case "u4":
        v.setUint32(o, Number(x), little);
        break;
      case "i4":
        v.setInt32(o, Number(x), little);
        break;
      case "u8":
        v.setBigUint64(o, BigInt(x), little);
        break;
      case "i8":
        v.setBigInt64(o, BigInt(x), little);
        break;
      case "f4":
        v.setFloat32(o, Number(x), little);
        break;
      default:
        v.setFloat64(o, Number(x), little);
    }
  }
  return out;
}
