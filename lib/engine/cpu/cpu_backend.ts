/**
 * The CPU reference backend: plain TypeScript over typed arrays. It is the oracle every WebGPU
 * kernel is tested against and the fallback when no GPU adapter exists. In "float64" mode every
 * storage is a Float64Array and every result is computed and kept in float64 (for
 * finite-difference checks and golden float64 fixtures); in "float32" mode storages are
 * Float32Array and results are computed in doubles and rounded once when stored.
 * @module
 */
import type {
  Backend,
  BinaryOp,
  Conv2dGeometry,
  DType,
  ReduceOp,
  Shape,
  Storage,
  UnaryOp,
} from "../backend.ts";
import { broadcastShapes, conv2dOutputShape, fmt, sizeOf } from "../backend.ts";
import { allocArray, arrayOf, type CpuArray, CpuStorage } from "./cpu_storage.ts";
import { broadcastLayout } from "./cpu_broadcast.ts";
import { binaryInto, unaryInto, whereInto } from "./cpu_elementwise.ts";
import { reduceToF64 } from "./cpu_reduce.ts";
import { type MatmulDims, matmulInto } from "./cpu_gemm.ts";
import { conv2dInputGradInto, conv2dInto, conv2dWeightGradInto } from "./cpu_conv.ts";
import { concatInto, padInto, permuteInto, sliceInto } from "./cpu_layout.ts";

/** The CPU reference implementation of {@link Backend}. */
export class CpuBackend implements Backend {
  /** "cpu" (subclasses that replace hot ops name themselves). */
  readonly name: string = "cpu";
  /** "CPU reference (float32)" or "CPU reference (float64)". */
  readonly description: string;
  #live = 0;

  /** A backend whose storages hold `dtype` numbers. */
  constructor(readonly dtype: DType = "float32") {
    if (dtype !== "float32" && dtype !== "float64") {
      throw new Error(`Cannot create CPU backend: dtype "${dtype as string}" is not float32 or float64`);
    }
    this.description = `CPU reference (${dtype})`;
  }

  /** Always 0: there is no pool. */
  poolBytes(): number {
    return 0;
  }

  /** Number of storages created and not yet freed (bookkeeping for leak tests). */
  liveStorages(): number {
    return this.#live;
  }

  /** A zero-filled array of the backend's dtype (for subclasses that compute into it). */
  protected alloc(n: number): CpuArray {
    return allocArray(this.dtype, n);
  }

  /** Wraps `data` (ownership passes to the storage) and counts it as live. */
  protected wrap(data: CpuArray): CpuStorage {
    this.#live++;
    return new CpuStorage(data);
  }

  /** Copies host numbers into a new storage (rounded to float32 in float32 mode). */
  fromArray(data: ArrayLike<number>): Storage {
    const out = this.alloc(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i];
    return this.wrap(out);
  }

  /** A storage of `size` copies of `value`. */
  fill(size: number, value: number): Storage {
    if (!Number.isInteger(size) || size < 0) {
      throw new Error(`Cannot fill: size ${size} is not a non-negative integer`);
    }
    return this.wrap(this.alloc(size).fill(value));
  }

  /** A copy of the storage's numbers. */
  read(s: Storage): Promise<Float32Array | Float64Array> {
    try {
      return Promise.resolve(arrayOf(s, "read", "storage", -1).slice());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Marks the storage freed; any later use (or a second free) throws. */
  free(s: Storage): void {
    arrayOf(s, "free", "storage", -1);
    (s as CpuStorage).freed = true;
    this.#live--;
  }

  /** No-op: work is synchronous. */
  flush(): void {}

  /** Resolves at once: work is synchronous. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** out[i] = op(x[i]). */
  unary(op: UnaryOp, x: Storage): Storage {
    const xa = arrayOf(x, `apply ${op}`, "x", -1);
    const out = this.alloc(xa.length);
    unaryInto(op, xa, out);
    return this.wrap(out);
  }

  /** out = op(a, b) with broadcasting. */
  binary(op: BinaryOp, a: Storage, aShape: Shape, b: Storage, bShape: Shape): Storage {
    const what = `apply ${op}`;
    const aa = arrayOf(a, what, `a ${fmt(aShape)}`, sizeOf(aShape));
    const ba = arrayOf(b, what, `b ${fmt(bShape)}`, sizeOf(bShape));
    const outShape = broadcastShapes(aShape, bShape);
    const out = this.alloc(sizeOf(outShape));
    binaryInto(op, aa, ba, broadcastLayout(outShape, [aShape, bShape]), out);
    return this.wrap(out);
  }

  /** out = cond != 0 ? a : b with broadcasting to `outShape`. */
  where(
    cond: Storage,
    cShape: Shape,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
  ): Storage {
    const ca = arrayOf(cond, "select", `cond ${fmt(cShape)}`, sizeOf(cShape));
    const aa = arrayOf(a, "select", `a ${fmt(aShape)}`, sizeOf(aShape));
    const ba = arrayOf(b, "select", `b ${fmt(bShape)}`, sizeOf(bShape));
    const out = this.alloc(sizeOf(outShape));
    whereInto(ca, aa, ba, broadcastLayout(outShape, [cShape, aShape, bShape]), out);
    return this.wrap(out);
  }

  /** Sum or max over `axes`, which are removed from the result. */
  reduce(op: ReduceOp, x: Storage, shape: Shape, axes: readonly number[]): Storage {
    const xa = arrayOf(x, `reduce (${op})`, `x ${fmt(shape)}`, sizeOf(shape));
    const r = reduceToF64(op, xa, shape, axes);
    return this.wrap(this.dtype === "float64" ? r : Float32Array.from(r));
  }

  /** Batched matrix product with optional transposes and size-1 batch broadcasting. */
  matmul(a: Storage, b: Storage, dims: MatmulDims): Storage {
    const { batch, aBatch, bBatch, m, k, n } = dims;
    const aa = arrayOf(a, "matmul", `a (batch ${aBatch}, ${m}x${k})`, aBatch * m * k);
    const ba = arrayOf(b, "matmul", `b (batch ${bBatch}, ${k}x${n})`, bBatch * k * n);
    if ((aBatch !== batch && aBatch !== 1) || (bBatch !== batch && bBatch !== 1)) {
      throw new Error(`Cannot matmul: batches a ${aBatch} and b ${bBatch} must each be ${batch} or 1`);
    }
    const out = this.alloc(batch * m * n);
    matmulInto(aa, ba, dims, out);
    return this.wrap(out);
  }

  /** y = conv2d(x, w). */
  conv2d(x: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const xa = arrayOf(x, "convolve", `x ${fmt(g.x)}`, sizeOf(g.x));
    const wa = arrayOf(w, "convolve", `w ${fmt(g.w)}`, sizeOf(g.w));
    const out = this.alloc(sizeOf(conv2dOutputShape(g)));
    conv2dInto(xa, wa, g, out);
    return this.wrap(out);
  }

  /** dx from dy: the adjoint of conv2d in x (shape g.x). */
  conv2dInputGrad(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const yShape = conv2dOutputShape(g);
    const dya = arrayOf(dy, "compute conv2d input gradient", `dy ${fmt(yShape)}`, sizeOf(yShape));
    const wa = arrayOf(w, "compute conv2d input gradient", `w ${fmt(g.w)}`, sizeOf(g.w));
    const out = this.alloc(sizeOf(g.x));
    conv2dInputGradInto(dya, wa, g, out);
    return this.wrap(out);
  }

  /** dw from x and dy: the adjoint of conv2d in w (shape g.w). */
  conv2dWeightGrad(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const yShape = conv2dOutputShape(g);
    const xa = arrayOf(x, "compute conv2d weight gradient", `x ${fmt(g.x)}`, sizeOf(g.x));
    const dya = arrayOf(dy, "compute conv2d weight gradient", `dy ${fmt(yShape)}`, sizeOf(yShape));
    const out = this.alloc(sizeOf(g.w));
    conv2dWeightGradInto(xa, dya, g, out);
    return this.wrap(out);
  }

  /** Transposes axes by `perm`. */
  permute(x: Storage, shape: Shape, perm: readonly number[]): Storage {
    const xa = arrayOf(x, "permute", `x ${fmt(shape)}`, sizeOf(shape));
    if (perm.length !== shape.length) {
      throw new Error(`Cannot permute: perm ${fmt(perm)} does not match rank of ${fmt(shape)}`);
    }
    const out = this.alloc(xa.length);
    permuteInto(xa, shape, perm, out);
    return this.wrap(out);
  }

  /** Copies the box at `starts` of extent `sizes`. */
  slice(x: Storage, shape: Shape, starts: readonly number[], sizes: readonly number[]): Storage {
    const xa = arrayOf(x, "slice", `x ${fmt(shape)}`, sizeOf(shape));
    for (let d = 0; d < shape.length; d++) {
      if (!(starts[d] >= 0 && sizes[d] >= 0 && starts[d] + sizes[d] <= shape[d])) {
        throw new Error(
          `Cannot slice: box at ${fmt(starts)} of size ${fmt(sizes)} leaves ${fmt(shape)} on axis ${d}`,
        );
      }
    }
    const out = this.alloc(sizeOf(sizes));
    sliceInto(xa, shape, starts, sizes, out);
    return this.wrap(out);
  }

  /** Pads every axis with `before`/`after` copies of `value`. */
  pad(x: Storage, shape: Shape, before: readonly number[], after: readonly number[], value: number): Storage {
    const xa = arrayOf(x, "pad", `x ${fmt(shape)}`, sizeOf(shape));
    const out = this.alloc(sizeOf(shape.map((n, d) => n + before[d] + after[d])));
    padInto(xa, shape, before, after, value, out);
    return this.wrap(out);
  }

  /** Concatenates along `axis`. */
  concat(xs: readonly Storage[], shapes: readonly Shape[], axis: number): Storage {
    if (xs.length === 0 || xs.length !== shapes.length) {
      throw new Error(`Cannot concat: ${xs.length} storages with ${shapes.length} shapes`);
    }
    const arrays = xs.map((s, i) => arrayOf(s, "concat", `input ${i} ${fmt(shapes[i])}`, sizeOf(shapes[i])));
    const outShape = shapes[0].slice();
    outShape[axis] = 0;
    for (const s of shapes) {
      if (s.length !== outShape.length || s.some((n, d) => d !== axis && n !== shapes[0][d])) {
        throw new Error(`Cannot concat: shapes ${shapes.map(fmt).join(", ")} differ off axis ${axis}`);
      }
      outShape[axis] += s[axis];
    }
    const out = this.alloc(sizeOf(outShape));
    concatInto(arrays, shapes, axis, outShape, out);
    return this.wrap(out);
  }
}

/** Creates a CPU reference backend whose storages hold `dtype` numbers. */
export function createCpuBackend(dtype: DType = "float32"): CpuBackend {
  return new CpuBackend(dtype);
}
