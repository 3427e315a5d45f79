/**
 * Tensor element types and the copy of a view (storage offset, sizes, strides) out of a storage's raw
 * little-endian bytes into a contiguous row-major typed array.
 * @module
 */
import { TorchFileError } from "./errors.ts";
import type { GlobalRef, TensorData, TorchDtype, TorchTensor } from "./values.ts";

/** Bytes per element of each dtype. */
export const ELEMENT_SIZE: Readonly<Record<TorchDtype, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** The dtype of each typed storage class (`torch.FloatStorage`, also under `torch.cuda`). */
const STORAGE_DTYPES: Readonly<Record<string, TorchDtype>> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  UntypedStorage: "uint8",
};

/** The dtype of each `torch.<name>` dtype object (as `_rebuild_tensor_v3` names them). */
const DTYPE_NAMES: Readonly<Record<string, TorchDtype>> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
};

/**
 * The element type of a storage class named by a checkpoint (`torch.FloatStorage`,
 * `torch.cuda.HalfStorage`, `torch.UntypedStorage`), or undefined when this reader does not support it
 * (complex and quantized storages).
 */
export function storageDtype(ref: GlobalRef): TorchDtype | undefined {
  if (ref.module !== "torch" && ref.module !== "torch.cuda") return undefined;
  return Object.hasOwn(STORAGE_DTYPES, ref.name) ? STORAGE_DTYPES[ref.name] : undefined;
}

/** The element type of a `torch.<dtype>` reference (`torch.float32`, `torch.bfloat16`), or undefined. */
export function dtypeOf(ref: GlobalRef): TorchDtype | undefined {
  if (ref.module !== "torch") return undefined;
  return Object.hasOwn(DTYPE_NAMES, ref.name) ? DTYPE_NAMES[ref.name] : undefined;
}

/** Row-major strides of `shape`, in elements. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Where a view lies in its storage. */
export interface ViewSpec {
  /** Element type read from the bytes. */
  readonly dtype: TorchDtype;
  /** Offset of the first element, in elements. */
  readonly offset: number;
  /** Sizes. */
  readonly shape: readonly number[];
  /** Strides, in elements. */
  readonly strides: readonly number[];
}

/**
 * Checks a view against a storage of `storageBytes` bytes and returns its element count. `limitBytes`
 * caps what may be materialised (a view may repeat elements with stride 0). `what` names the tensor in
 * errors.
 */
export function checkView(view: ViewSpec, storageBytes: number, limitBytes: number, what: string): number {
  const { shape, strides, offset, dtype } = view;
  const es = ELEMENT_SIZE[dtype];
  if (shape.length !== strides.length) {
    throw new TorchFileError(
      `Cannot read ${what}: ${shape.length} sizes [${shape.join(", ")}] but ${strides.length} strides [${
        strides.join(", ")
      }]; expected one stride per dimension.`,
    );
  }
  const bad = (x: number) => !Number.isSafeInteger(x) || x < 0;
  if (shape.some(bad) || strides.some(bad) || bad(offset)) {
    throw new TorchFileError(
      `Cannot read ${what}: sizes [${shape.join(", ")}], strides [${
        strides.join(", ")
      }], offset ${offset}; ` +
        `expected non-negative integers.`,
    );
  }
  let numel = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    numel *= shape[i];
    last += (shape[i] - 1) * strides[i];
  }
  if (numel === 0) return 0;
  const storageNumel = Math.floor(storageBytes / es);
  if (last >= storageNumel) {
    const where = `offset ${offset}, sizes [${shape.join(", ")}], strides [${strides.join(", ")}]`;
    throw new TorchFileError(
      `Cannot read ${what}: its view (${where}) reaches element ${last} but its ${dtype} storage holds ` +
        `${storageNumel} elements; the file is damaged.`,
    );
  }
  if (numel * es > limitBytes) {
    throw new TorchFileError(
      `Cannot read ${what}: sizes [${shape.join(", ")}] make ${numel} ${dtype} elements (${
        numel * es
      } bytes), more than the ${limitBytes} bytes a tensor of this file may take; the file is damaged.`,
    );
  }
  return numel;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies the elements of `view` out of `storage` (raw little-endian bytes) into a new contiguous typed
 * array (float16 and bfloat16 converted to float32). Call {@link checkView} first.
 */
export function materialise(storage: Uint8Array, view: ViewSpec, numel: number): TensorData {
  if (!LITTLE_ENDIAN_HOST) throw new Error("Cannot read tensors: this reader needs a little-endian machine.");
  const { dtype, offset, shape, strides } = view;
  const es = ELEMENT_SIZE[dtype];
  if (numel === 0) return emptyOf(dtype);
  // The span of storage elements the view touches, copied to an aligned buffer.
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
  const span = storage.slice(offset * es, (last + 1) * es);
  const src = typedView(dtype, span.buffer);
  const contiguous = isContiguous(shape, strides);
  let out: TensorData;
  if (contiguous) out = src;
  else {
    out = allocate(src, numel);
    gather(src, out, shape, strides);
  }
  if (dtype === "float16") return halfToFloat32(out as unknown as Uint16Array);
  if (dtype === "bfloat16") return bfloat16ToFloat32(out as unknown as Uint16Array);
  return out;
}

function emptyOf(dtype: TorchDtype): TensorData {
  return dtype === "float16" || dtype === "bfloat16"
    ? new Float32Array(0)
    : typedView(dtype, new ArrayBuffer(0));
}

/** The raw typed view (16-bit floats as Uint16Array, converted later). */
function typedView(dtype: TorchDtype, buf: ArrayBuffer): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(buf);
    case "float64":
      return new Float64Array(buf);
    case "float16":
    case "bfloat16":
      return new Uint16Array(buf) as unknown as TensorData;
    case "int64":
      return new BigInt64Array(buf);
    case "int32":
      return new Int32Array(buf);
    case "int16":
      return new Int16Array(buf);
    case "int8":
      return new Int8Array(buf);
    case "uint8":
    case "bool":
      return new Uint8Array(buf);
  }
}

function allocate(like: TensorData, n: number): TensorData {
  const C = like.constructor as new (n: number) => TensorData;
  return new C(n);
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i];
  }
  return true;
}

/** out[i] = src[Σ idx_d · stride_d] in row-major order of `shape` (src starts at the view's offset). */
function gather(
  src: TensorData,
  out: TensorData,
  shape: readonly number[],
  strides: readonly number[],
): void {
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const s = src as unknown as ArrayLike<number> & { [i: number]: number };
  const o = out as unknown as { [i: number]: number };
  const n = out.length;
  let p = 0;
  for (let i = 0; i < n; i++) {
    o[i] = s[p];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      p += strides[d];
      if (idx[d] < shape[d]) break;
      p -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** IEEE half-precision bits to float32 (exact: every half is a float32). */
export function halfToFloat32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    const sign = x & 0x8000 ? -1 : 1;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** bfloat16 bits to float32 (exact: bfloat16 is the top half of a float32). */
export function bfloat16ToFloat32(h: Uint16Array): Float32Array {
  const bits = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  return new Float32Array(bits.buffer);
}

/** A tensor's elements as float32 (int64 must be exactly representable as a number; bool as 0/1). */
export function tensorToFloat32(t: TorchTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data.slice();
  return Float32Array.from(numbersOf(t));
}

/** A tensor's elements as float64 (int64 must be a safe integer; float32 values widened exactly). */
export function tensorToFloat64(t: TorchTensor): Float64Array {
  if (t.data instanceof Float64Array) return t.data.slice();
  return Float64Array.from(numbersOf(t));
}

function numbersOf(t: TorchTensor): ArrayLike<number> {
  if (!(t.data instanceof BigInt64Array)) return t.data as ArrayLike<number>;
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i];
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new TorchFileError(
        `Cannot convert an int64 tensor of shape [${
          t.shape.join(", ")
        }] (storage ${t.storageKey}) to numbers: ` +
          `element ${i} is ${v}, beyond ±2^53.`,
      );
    }
    out[i] = Number(v);
  }
  return out;
}
