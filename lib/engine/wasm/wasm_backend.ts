/**
 * The "wasm" backend: the float32 CPU reference backend (synchronous, no dispatch or readback) whose
 * storages are Float32Array views on blocks of one shared WebAssembly memory, so the SIMD kernels run on
 * them in place: matrix products and convolutions (kernels/wasm_gemm.wat, large ones split over a second
 * thread) and the common element-wise ops (kernels/wasm_elementwise.wat). Every other op is the CPU
 * reference's own code on the same views. Meant for machines whose only WebGPU adapter is a software
 * rasterizer (see results/bench/WASM.md).
 * @module
 */
import type { BinaryOp, Conv2dGeometry, Shape, Storage, UnaryOp } from "../backend.ts";
import { broadcastShapes, conv2dOutputShape, fmt, sizeOf } from "../backend.ts";
import { CpuBackend } from "../cpu/cpu_backend.ts";
import type { MatmulDims } from "../cpu/cpu_gemm.ts";
import { arrayOf, CpuStorage } from "../cpu/cpu_storage.ts";
import { WasmMemoryFull, WasmRuntime } from "./wasm_runtime.ts";
import { binaryKernelFits, binaryWasm, unaryKernelFits, unaryWasm } from "./wasm_elementwise.ts";
import { conv2dInputGradWasm, conv2dWasm, conv2dWeightGradWasm, matmulWasm } from "./wasm_products.ts";

/** Options of {@link createWasmBackend}. */
export interface WasmBackendOptions {
  /**
   * Pages of 64 KiB the WebAssembly memory may grow to (default and most: 65536, 4 GiB). Storages
   * beyond it stay on the JavaScript heap and run the CPU reference's code.
   */
  readonly maxPages?: number;
}

/** A storage of the wasm backend: a float32 view on a block of the WebAssembly memory at float index `offset`. */
export class WasmStorage extends CpuStorage {
  /** Wraps `data`, the view on the block at float index `offset`. */
  constructor(data: Float32Array, readonly offset: number) {
    super(data);
  }
}

/**
 * The CPU reference backend (float32) whose storages live in the WebAssembly memory, with matrix
 * products, convolutions and the common element-wise ops run in place by SIMD kernels.
 */
export class WasmBackend extends CpuBackend {
  /** Always "wasm". */
  override readonly name: string = "wasm";
  /** "WebAssembly SIMD (float32)". */
  override readonly description: string = "WebAssembly SIMD (float32)";
  readonly #rt: WasmRuntime;
  /** Views handed out by {@link alloc} and not yet wrapped, with their block's float index. */
  readonly #pending = new WeakMap<Float32Array, number>();

  /** Compiles the kernels; throws "Cannot create the wasm backend: ..." where WebAssembly SIMD is missing. */
  constructor(opts: WasmBackendOptions = {}) {
    super("float32");
    this.#rt = new WasmRuntime(opts.maxPages);
  }

  /**
   * Starts the second thread for matrix products (see wasm_threads.ts) and resolves when it takes jobs.
   * Rejects with "Cannot start ..." where workers are unavailable; the backend then stays single-threaded.
   */
  startThread(): Promise<void> {
    return this.#rt.startThread();
  }

  /** Products split over the second thread so far. */
  threadJobs(): number {
    return this.#rt.threadJobs;
  }

  /** Ends the second thread (storages stay usable; products run on one thread afterwards). */
  destroy(): Promise<void> {
    return this.#rt.stopThread();
  }

  /** Bytes of WebAssembly memory not held by live storages (free blocks and the scratch block). */
  override poolBytes(): number {
    return this.#rt.pooledBytes;
  }

  /** Bytes of the WebAssembly memory (grown on demand, never shrunk). */
  memoryBytes(): number {
    return this.#rt.bytes;
  }

  /**
   * A zero-filled view on a new block (the CPU reference's ops compute into it), or a plain
   * Float32Array once the WebAssembly memory is full.
   */
  protected override alloc(n: number): Float32Array {
    return (this.#allocRaw(n) ?? new Float32Array(n)).fill(0);
  }

  /** A view on a new block (contents undefined), or null when the memory is full. */
  #allocRaw(n: number): Float32Array | null {
    let at: number;
    try {
      at = this.#rt.alloc(n);
    } catch (e) {
      if (e instanceof WasmMemoryFull) return null;
      throw e;
    }
    const view = this.#rt.view(at, n);
    this.#pending.set(view, at);
    return view;
  }

  /**
   * Wraps a view from {@link alloc}, or copies any other array into a new block; when the memory is
   * full the array stays on the JavaScript heap as a plain CPU storage (the hot ops then take the CPU
   * reference's path or copy it, slower but correct).
   */
  protected override wrap(data: Float32Array | Float64Array): CpuStorage {
    let at = this.#pending.get(data as Float32Array);
    let view = data as Float32Array;
    if (at === undefined) {
      const copy = this.#allocRaw(data.length);
      if (copy === null) return super.wrap(data);
      at = this.#pending.get(copy)!;
      view = copy;
      view.set(data);
    }
    this.#pending.delete(view);
    super.wrap(view); // counts it as live
    return new WasmStorage(view, at);
  }

  /** Frees the storage and returns its block (if in the WebAssembly memory) to the free lists. */
  override free(s: Storage): void {
    super.free(s);
    if (s instanceof WasmStorage) this.#rt.release(s.offset);
  }

  /** out[i] = op(x[i]): a SIMD kernel for the common ops on large inputs, else the CPU reference. */
  override unary(op: UnaryOp, x: Storage): Storage {
    const xa = arrayOf(x, `apply ${op}`, "x", -1);
    if (!(x instanceof WasmStorage) || !unaryKernelFits(op, xa.length)) return super.unary(op, x);
    const out = this.#allocRaw(xa.length);
    if (out === null) return super.unary(op, x);
    const s = this.wrap(out) as WasmStorage;
    unaryWasm(this.#rt, op, x.offset, xa.length, s.offset);
    return s;
  }

  /** out = op(a, b) with broadcasting: a SIMD kernel for arithmetic, max and min on large outputs. */
  override binary(op: BinaryOp, a: Storage, aShape: Shape, b: Storage, bShape: Shape): Storage {
    const what = `apply ${op}`;
    arrayOf(a, what, `a ${fmt(aShape)}`, sizeOf(aShape));
    arrayOf(b, what, `b ${fmt(bShape)}`, sizeOf(bShape));
    const outShape = broadcastShapes(aShape, bShape);
    const n = sizeOf(outShape);
    const fits = a instanceof WasmStorage && b instanceof WasmStorage &&
      binaryKernelFits(op, aShape, bShape, outShape, n);
    const out = fits ? this.#allocRaw(n) : null;
    if (out === null) return super.binary(op, a, aShape, b, bShape);
    const s = this.wrap(out) as WasmStorage;
    try {
      // The kernel needs 8 floats of scratch for broadcast scalars.
      binaryWasm(
        this.#rt,
        op,
        (a as WasmStorage).offset,
        aShape,
        (b as WasmStorage).offset,
        bShape,
        outShape,
        s.offset,
      );
    } catch (e) {
      this.free(s);
      if (e instanceof WasmMemoryFull) return super.binary(op, a, aShape, b, bShape);
      throw e;
    }
    return s;
  }

  /** Runs a product into `out`, or the CPU reference's `fallback` when the scratch memory cannot grow. */
  #product(out: Float32Array, run: (out: Float32Array) => void, fallback: () => Storage): Storage {
    const s = this.wrap(out);
    try {
      run(s.data as Float32Array);
    } catch (e) {
      this.free(s);
      if (e instanceof WasmMemoryFull) return fallback();
      throw e;
    }
    return s;
  }

  /** Batched matrix product with optional transposes and size-1 batch broadcasting. */
  override matmul(a: Storage, b: Storage, dims: MatmulDims): Storage {
    const { batch, aBatch, bBatch, m, k, n } = dims;
    const aa = f32(arrayOf(a, "matmul", `a (batch ${aBatch}, ${m}x${k})`, aBatch * m * k));
    const ba = f32(arrayOf(b, "matmul", `b (batch ${bBatch}, ${k}x${n})`, bBatch * k * n));
    if ((aBatch !== batch && aBatch !== 1) || (bBatch !== batch && bBatch !== 1)) {
      throw new Error(`Cannot matmul: batches a ${aBatch} and b ${bBatch} must each be ${batch} or 1`);
    }
    return this.#product(
      this.alloc(batch * m * n),
      (out) => matmulWasm(this.#rt, aa, ba, dims, out),
      () => super.matmul(a, b, dims),
    );
  }

  /** y = conv2d(x, w). */
  override conv2d(x: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const xa = f32(arrayOf(x, "convolve", `x ${fmt(g.x)}`, sizeOf(g.x)));
    const wa = f32(arrayOf(w, "convolve", `w ${fmt(g.w)}`, sizeOf(g.w)));
    return this.#product(
      this.alloc(sizeOf(conv2dOutputShape(g))),
      (out) => conv2dWasm(this.#rt, xa, wa, g, out),
      () => super.conv2d(x, w, g),
    );
  }

  /** dx from dy: the adjoint of conv2d in x (shape g.x). */
  override conv2dInputGrad(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const what = "compute conv2d input gradient";
    const yShape = conv2dOutputShape(g);
    const dya = f32(arrayOf(dy, what, `dy ${fmt(yShape)}`, sizeOf(yShape)));
    const wa = f32(arrayOf(w, what, `w ${fmt(g.w)}`, sizeOf(g.w)));
    return this.#product(
      this.alloc(sizeOf(g.x)), // col2im adds into zeros
      (out) => conv2dInputGradWasm(this.#rt, dya, wa, g, out),
      () => super.conv2dInputGrad(dy, w, g),
    );
  }

  /** dw from x and dy: the adjoint of conv2d in w (shape g.w). */
  override conv2dWeightGrad(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const what = "compute conv2d weight gradient";
    const yShape = conv2dOutputShape(g);
    const xa = f32(arrayOf(x, what, `x ${fmt(g.x)}`, sizeOf(g.x)));
    const dya = f32(arrayOf(dy, what, `dy ${fmt(yShape)}`, sizeOf(yShape)));
    return this.#product(
      this.alloc(sizeOf(g.w)),
      (out) => conv2dWeightGradWasm(this.#rt, xa, dya, g, out),
      () => super.conv2dWeightGrad(x, dy, g),
    );
  }
}

/** Storages of a float32 backend are Float32Arrays; anything else is a bug upstream. */
function f32(a: Float32Array | Float64Array): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error("Cannot run a wasm kernel: storage is not float32");
  return a;
}

/**
 * Creates the wasm backend (throws "Cannot create the wasm backend: ..." where unsupported), on one
 * thread; call {@link WasmBackend.startThread} to split large products over a second one.
 */
export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(opts);
}
