/**
 * The contract every compute backend implements (CPU reference, WebGPU, meta).
 *
 * A backend only moves numbers: it knows nothing of autograd, ownership or scopes. Every
 * method takes storages plus explicit shapes, and returns a *new* storage holding a dense,
 * row-major (C-order) result. Storages are immutable once returned. The tensor layer
 * (`tensor.ts`) owns storages, counts bytes and calls {@link Backend.free}.
 *
 * Semantics are defined once here and implemented three times; the CPU backend is the oracle.
 * @module
 */

/** A shape: the size of each axis, outermost first. `[]` is a scalar (one element). */
export type Shape = readonly number[];

/** Element type of a backend's storages. WebGPU and meta are float32; the CPU reference can run either. */
export type DType = "float32" | "float64";

/** Opaque handle to a backend's memory for one dense array. `size` is its element count. */
export interface Storage {
  /** Number of elements. */
  readonly size: number;
}

/** Element-wise functions of one argument. Conventions: `sign(0) = 0`; `elu` has alpha 1; `softplus(x) = log(1 + e^x)` computed stably; `step(x) = x > 0 ? 1 : 0`; `recip(x) = 1/x`. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "log1p"
  | "sqrt"
  | "abs"
  | "sign"
  | "sigmoid"
  | "softplus"
  | "tanh"
  | "elu"
  | "relu"
  | "step"
  | "recip"
  | "square";

/** Element-wise functions of two broadcast arguments. Comparisons return 1 or 0. `pow(a, b) = a^b`. */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "max"
  | "min"
  | "gt"
  | "ge"
  | "lt"
  | "le"
  | "eq"
  | "ne";

/** Reductions over a set of axes. */
export type ReduceOp = "sum" | "max";

/** 2-D convolution geometry (NCHW input, OIHW weight, cross-correlation like PyTorch). */
export interface Conv2dGeometry {
  /** Input shape [N, C, H, W]. */
  readonly x: Shape;
  /** Weight shape [O, C, KH, KW]. */
  readonly w: Shape;
  /** Stride, same in both spatial axes (1 or 2 in this project). */
  readonly stride: number;
  /** Zero padding added on every side. */
  readonly pad: number;
}

/** Output shape [N, O, HO, WO] of a convolution, HO = floor((H + 2 pad - KH) / stride) + 1. */
export function conv2dOutputShape(g: Conv2dGeometry): number[] {
  const [n, c, h, w] = g.x;
  const [o, ci, kh, kw] = g.w;
  if (c !== ci) {
    throw new Error(
      `Cannot convolve: input has ${c} channels but weight expects ${ci} (x ${fmt(g.x)}, w ${fmt(g.w)})`,
    );
  }
  const ho = Math.floor((h + 2 * g.pad - kh) / g.stride) + 1;
  const wo = Math.floor((w + 2 * g.pad - kw) / g.stride) + 1;
  if (ho < 1 || wo < 1) {
    throw new Error(`Cannot convolve: kernel ${kh}x${kw} does not fit input ${h}x${w} with padding ${g.pad}`);
  }
  return [n, o, ho, wo];
}

/** Formats a shape for error messages, e.g. `[2, 3]`. */
export function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** Number of elements of a shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Broadcast two shapes NumPy-style (align right, 1 stretches). Throws naming both shapes on mismatch. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = new Array(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`Cannot broadcast shapes ${fmt(a)} and ${fmt(b)}: axis ${i} has ${da} vs ${db}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * A compute backend. Every method allocates and returns a new storage; inputs are never modified.
 * Shapes passed in are trusted (the tensor layer validates them).
 */
export interface Backend {
  /** Short name: "cpu", "webgpu" or "meta". */
  readonly name: string;
  /** Human description, e.g. the adapter ("llvmpipe (LLVM 15.0.6, 256 bits)") or "CPU reference (float64)". */
  readonly description: string;
  /** Element type of storages. */
  readonly dtype: DType;
  /** Bytes currently held by an internal buffer pool (0 where there is none). */
  poolBytes(): number;

  /** Uploads host numbers (converted to the backend dtype). */
  fromArray(data: ArrayLike<number>): Storage;
  /** A storage of `size` elements all equal to `value`. */
  fill(size: number, value: number): Storage;
  /** Downloads a storage. Float64Array for float64 backends, Float32Array otherwise. Meta throws. */
  read(s: Storage): Promise<Float32Array | Float64Array>;
  /** Releases a storage's memory (possibly into a pool). The storage must not be used afterwards. */
  free(s: Storage): void;
  /** Submits any recorded work (no wait). A no-op for synchronous backends. */
  flush(): void;
  /** Resolves when all submitted work has finished. */
  sync(): Promise<void>;

  /** out[i] = op(x[i]) over `x.size` elements. */
  unary(op: UnaryOp, x: Storage): Storage;
  /** out = op(a, b) with NumPy broadcasting; `out` is `broadcastShapes(aShape, bShape)`. */
  binary(op: BinaryOp, a: Storage, aShape: Shape, b: Storage, bShape: Shape): Storage;
  /** out = cond != 0 ? a : b, all three broadcast to `outShape`. */
  where(
    cond: Storage,
    cShape: Shape,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
  ): Storage;
  /** Reduces `axes` (sorted, unique, non-empty) of `shape`; the result has those axes removed (size = product of the rest). */
  reduce(op: ReduceOp, x: Storage, shape: Shape, axes: readonly number[]): Storage;
  /**
   * Batched matrix product. a is [batch, m, k] (or [batch, k, m] if transA), b is [batch, k, n]
   * (or [batch, n, k] if transB); out is [batch, m, n]. A batch of size 1 in a or b is broadcast
   * (`aBatch`/`bBatch` are each either `batch` or 1).
   */
  matmul(
    a: Storage,
    b: Storage,
    dims: {
      batch: number;
      aBatch: number;
      bBatch: number;
      m: number;
      k: number;
      n: number;
      transA: boolean;
      transB: boolean;
    },
  ): Storage;
  /** y = conv2d(x, w) without bias; y has `conv2dOutputShape(g)`. */
  conv2d(x: Storage, w: Storage, g: Conv2dGeometry): Storage;
  /** The adjoint of conv2d in x (transposed convolution): given dy of the output shape, returns dx of shape g.x. */
  conv2dInputGrad(dy: Storage, w: Storage, g: Conv2dGeometry): Storage;
  /** The adjoint of conv2d in w: given x and dy, returns dw of shape g.w (dw = sum over batch and positions of x * dy). */
  conv2dWeightGrad(x: Storage, dy: Storage, g: Conv2dGeometry): Storage;
  /** Transposes axes: out has shape `perm.map(i => shape[i])`, out[idx] = x[idx permuted back]. */
  permute(x: Storage, shape: Shape, perm: readonly number[]): Storage;
  /** Copies the box starting at `starts` with extent `sizes` out of x (same rank). */
  slice(x: Storage, shape: Shape, starts: readonly number[], sizes: readonly number[]): Storage;
  /** Pads with `value`: out shape is shape[i] + before[i] + after[i]; inside values are copied from x. */
  pad(x: Storage, shape: Shape, before: readonly number[], after: readonly number[], value: number): Storage;
  /** Concatenates along `axis`; all shapes agree except on that axis. */
  concat(xs: readonly Storage[], shapes: readonly Shape[], axis: number): Storage;
  /**
   * Optional: consecutive pieces of the flat storage x with the given sizes (summing to x's size), in
   * fewer dispatches than one slice per piece. Callers fall back to {@link Backend.slice} without it.
   */
  splitFlat?(x: Storage, sizes: readonly number[]): Storage[];
  /**
   * Optional: x [rows, cols] with each row divided by max(its l2 norm, eps), in one pass. Callers compose
   * it from other ops without it (`ops/rows.ts`); the composition is the reference.
   */
  normalizeRows?(x: Storage, rows: number, cols: number, eps: number): Storage;
  /**
   * Optional: the power iteration's stopping test per row ([rows] of 1 or 0): a, b are [rows, colsA] and
   * c, d [rows, colsC]; row r gives 1 when rms(a_r − b_r) < atol + rtol·max(a_r) and
   * rms(c_r − d_r) < atol + rtol·max(c_r). Callers compose it from other ops without it (`ops/rows.ts`).
   */
  rowsConverged?(
    a: Storage,
    b: Storage,
    c: Storage,
    d: Storage,
    rows: number,
    colsA: number,
    colsC: number,
    atol: number,
    rtol: number,
  ): Storage;
  /**
   * Optional: {@link Backend.normalizeRows} of x [rows, cols] (giving y) and {@link Backend.rowsConverged}
   * of the pairs (y, v) and (a, b) (v [rows, cols], a and b [rows, colsA]) in one pass: [y, flags].
   */
  normalizeRowsConverged?(
    x: Storage,
    v: Storage,
    a: Storage,
    b: Storage,
    rows: number,
    cols: number,
    colsA: number,
    eps: number,
    atol: number,
    rtol: number,
  ): [Storage, Storage];
}
