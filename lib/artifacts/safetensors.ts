/**
 * The safetensors format (readable by PyTorch, NumPy and the `safetensors` library): an 8-byte
 * little-endian header length N, N bytes of JSON header
 * `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`
 * padded with spaces to a multiple of 8, then the tensors' raw little-endian bytes, row-major, with
 * offsets relative to the end of the header. Writing follows the reference implementation's layout
 * (tensors ordered by descending dtype alignment, then name; compact JSON; `__metadata__` first);
 * reading checks everything the reference checks: header bounds, UTF-8/JSON, known dtypes, sizes that
 * match shapes, and offsets that tile the data section exactly (no gap, no overlap, nothing after).
 * @module
 */
import { writeFileAtomic } from "./atomic.ts";

/** The element types of the format, in the reference's order of increasing alignment. */
export const DTYPES = [
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "F64",
  "I64",
  "U64",
] as const;

/** A safetensors element type. */
export type Dtype = typeof DTYPES[number];

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The typed arrays tensors are held in. F16/BF16 are kept as raw bits (Uint16Array); F8 and BOOL as bytes. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor: element type, shape (outermost first, `[]` for a scalar) and row-major data. */
export interface SafeTensor {
  /** Element type. */
  readonly dtype: Dtype;
  /** Sizes of each axis, outermost first (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** Row-major elements. */
  readonly data: TensorData;
}

/** A tensor to save; the dtype defaults to the one its typed array implies (Float32Array: F32, ...). */
export interface SafeTensorInput {
  /** Element type (default: implied by the typed array). */
  readonly dtype?: Dtype;
  /** Sizes of each axis, outermost first (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** Row-major elements. */
  readonly data: TensorData;
}

/** The contents of a safetensors file. */
export interface SafeTensorsFile {
  /** Tensors by name, in file order. */
  readonly tensors: Map<string, SafeTensor>;
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Record<string, string>;
}

/** The reference implementation's limit on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function defaultDtype(data: TensorData): Dtype {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Float64Array) return "F64";
  if (data instanceof Int32Array) return "I32";
  if (data instanceof Uint32Array) return "U32";
  if (data instanceof Int16Array) return "I16";
  if (data instanceof Uint16Array) return "U16";
  if (data instanceof Int8Array) return "I8";
  if (data instanceof BigInt64Array) return "I64";
  if (data instanceof BigUint64Array) return "U64";
  return "U8";
}

/** The typed array class that holds `dtype` (F16/BF16 as raw bits, F8 and BOOL as bytes). */
function viewFor(dtype: Dtype, buffer: ArrayBuffer, byteOffset: number, length: number): TensorData {
  switch (dtype) {
    case "F32":
      return new Float32Array(buffer, byteOffset, length);
    case "F64":
      return new Float64Array(buffer, byteOffset, length);
    case "I32":
      return new Int32Array(buffer, byteOffset, length);
    case "U32":
      return new Uint32Array(buffer, byteOffset, length);
    case "I16":
      return new Int16Array(buffer, byteOffset, length);
    case "U16":
    case "F16":
    case "BF16":
      return new Uint16Array(buffer, byteOffset, length);
    case "I8":
      return new Int8Array(buffer, byteOffset, length);
    case "I64":
      return new BigInt64Array(buffer, byteOffset, length);
    case "U64":
      return new BigUint64Array(buffer, byteOffset, length);
    default:
      return new Uint8Array(buffer, byteOffset, length);
  }
}

function isReadonlyMap<V>(
  x: Readonly<Record<string, V>> | ReadonlyMap<string, V>,
): x is ReadonlyMap<string, V> {
  return x instanceof Map;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isShape(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0);
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes, laid out as the reference
 * implementation does. Throws "Cannot save tensor <name>: ..." when a shape and data disagree.
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, SafeTensorInput>> | ReadonlyMap<string, SafeTensorInput>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  if (!IS_LITTLE_ENDIAN) throw new Error("Cannot save safetensors: this machine is big-endian");
  const entries: [string, SafeTensorInput][] = isReadonlyMap(tensors)
    ? [...tensors.entries()]
    : Object.entries(tensors);
  const prepared = entries.map(([name, t]) => {
    if (name === "__metadata__") throw new Error(`Cannot save tensor __metadata__: the name is reserved`);
    const dtype = t.dtype ?? defaultDtype(t.data);
    if (!(DTYPES as readonly string[]).includes(dtype)) {
      throw new Error(`Cannot save tensor ${name}: unknown dtype ${dtype}`);
    }
    if (!isShape(t.shape)) {
      throw new Error(`Cannot save tensor ${name}: shape ${JSON.stringify(t.shape)} is not a list of sizes`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const expected = elementCount(t.shape) * DTYPE_SIZE[dtype];
    if (bytes.length !== expected) {
      throw new Error(
        `Cannot save tensor ${name}: shape [${t.shape.join(", ")}] of ${dtype} needs ${expected} bytes, ` +
          `the data has ${bytes.length}`,
      );
    }
    return { name, dtype, shape: [...t.shape], bytes };
  });
  prepared.sort((a, b) =>
    DTYPES.indexOf(b.dtype) - DTYPES.indexOf(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new Error(`Cannot save metadata ${k}: value is ${typeof v}, expected a string`);
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const p of prepared) {
    header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [offset, offset + p.bytes.length] };
    offset += p.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const p of prepared) {
    out.set(p.bytes, at);
    at += p.bytes.length;
  }
  return out;
}

/**
 * Parses safetensors bytes. `source` names the file in errors, which read
 * "Cannot load checkpoint <source>: ..." and say what was found and what was expected.
 * Tensor data is copied into fresh, aligned typed arrays.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "<memory>"): SafeTensorsFile {
  const fail = (what: string): never => {
    throw new Error(`Cannot load checkpoint ${source}: ${what}`);
  };
  if (!IS_LITTLE_ENDIAN) fail("this machine is big-endian");
  if (bytes.length < 8) fail(`the file has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  }
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes; truncated?)`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail("the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    fail(`the header does not start with "{" (found ${JSON.stringify(text.slice(0, 12))})`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("the header is not a JSON object");
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail("__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is ${JSON.stringify(v)}, expected a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const bad = (what: string): never => fail(`tensor ${name} ${what}`);
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      bad("has no {dtype, shape, data_offsets} entry");
    }
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (typeof dtype !== "string" || !(DTYPES as readonly string[]).includes(dtype)) {
      bad(`has dtype ${JSON.stringify(dtype)}, expected one of ${DTYPES.join(", ")}`);
    }
    if (!isShape(info.shape)) bad(`has shape ${JSON.stringify(info.shape)}, expected a list of sizes`);
    const off = info.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      off[0] > off[1]
    ) {
      bad(`has data_offsets ${JSON.stringify(off)}, expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = off as number[];
    const shape = info.shape as number[];
    const need = elementCount(shape) * DTYPE_SIZE[dtype as Dtype];
    if (end - begin !== need) {
      bad(
        `has ${end - begin} bytes (data_offsets [${begin}, ${end}]) but shape [${
          shape.join(", ")
        }] of ${dtype} needs ${need}`,
      );
    }
    if (end > dataLen) {
      bad(`ends at byte ${end} of the data section, which has only ${dataLen} bytes (truncated file?)`);
    }
    infos.push({ name, dtype: dtype as Dtype, shape, begin, end });
  }
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedStart = 0;
  for (const t of infos) {
    if (t.begin < expectedStart) {
      fail(
        `tensor ${t.name} (bytes ${t.begin}-${t.end}) overlaps the tensor before it (which ends at ${expectedStart})`,
      );
    }
    if (t.begin > expectedStart) {
      fail(`tensor ${t.name} starts at byte ${t.begin}, leaving a gap after byte ${expectedStart}`);
    }
    expectedStart = t.end;
  }
  if (expectedStart !== dataLen) {
    fail(`the tensors cover ${expectedStart} bytes but the data section has ${dataLen} (trailing bytes)`);
  }
  const tensors = new Map<string, SafeTensor>();
  for (const t of infos) {
    const copy = bytes.slice(dataStart + t.begin, dataStart + t.end);
    const data = viewFor(t.dtype, copy.buffer, 0, elementCount(t.shape));
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata };
}

/** Writes a safetensors file atomically (temporary file, then rename). */
export async function saveSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafeTensorInput>> | ReadonlyMap<string, SafeTensorInput>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads and checks a safetensors file; errors read "Cannot load checkpoint <path>: ...". */
export async function loadSafetensors(path: string): Promise<SafeTensorsFile> {
  let bytes: Uint8Array;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) throw new Error("it is a folder, expected a safetensors file");
    // A device (/dev/zero), FIFO or socket would be read forever.
    if (!st.isFile) throw new Error("it is not a regular file (a device, FIFO or socket)");
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`Cannot load checkpoint ${path}: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}
