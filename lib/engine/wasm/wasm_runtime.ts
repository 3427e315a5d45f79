/**
 * The WebAssembly side of the "wasm" backend: one shared linear memory holding the backend's storages
 * (a heap of size-classed blocks with free lists) and a scratch block, the SIMD kernels of
 * kernels/wasm_gemm.wat and kernels/wasm_elementwise.wat instantiated on it, the cache-blocking driver
 * of the matrix-product kernel and its packing helpers, and the optional second thread.
 * @module
 */
import { WASM_GEMM_BYTES } from "../../../kernels/wasm_gemm.ts";
import { WASM_ELEMENTWISE_BYTES } from "../../../kernels/wasm_elementwise.ts";
import { GemmWorker } from "./wasm_threads.ts";
import type { BinaryOp, UnaryOp } from "../backend.ts";

/** The kernel's signature: C[m, n] += A[m, k] B[k, n] (see kernels/wasm_gemm.wat). */
export type GemmFn = (
  a: number,
  b: number,
  c: number,
  m: number,
  n: number,
  k: number,
  aps: number,
  ldb: number,
  ldc: number,
) => void;

/** A binary element-wise kernel: o[i] = a[i sa] op b[i sb] for i < n rounded up to 4 (byte addresses; strides 16 or 0). */
export type BinaryKernel = (a: number, sa: number, b: number, sb: number, o: number, n: number) => void;
/** A unary element-wise kernel: o[i] = op(x[i]) for i < n rounded up to 4 (byte addresses). */
export type UnaryKernel = (x: number, o: number, n: number) => void;

/** Rows of C per kernel tile (A is packed in panels of this many rows). */
export const MR = 6;
/** Columns of C per kernel tile (B and C rows are padded to a multiple of this). */
export const NR = 8;
/** Multiply-adds (m n k) from which a product is split over the second thread (about 0.1 ms of work). */
export const THREAD_MIN_WORK = 1 << 21;
/** Elements from which an element-wise kernel is split over the second thread (tens of microseconds). */
export const THREAD_MIN_ELEMENTS = 1 << 16;
/** The unary kernels kernels/wasm_elementwise.wat exports (their order indexes them for the worker). */
export const UNARY_KERNELS: readonly UnaryOp[] = [
  "neg",
  "abs",
  "sqrt",
  "square",
  "recip",
  "relu",
  "step",
  "sigmoid",
];
/** The binary kernels kernels/wasm_elementwise.wat exports. */
export const BINARY_KERNELS: readonly BinaryOp[] = ["add", "sub", "mul", "div", "max", "min"];

/** Depth of one k block: a KC x NR panel of B (8 KiB) stays in L1 across a block of A's rows. */
export const KC = 256;
/** Rows of one block of A (a multiple of MR): MC x KC floats (120 KiB) stay in L2 while every column panel passes. */
export const MC = 120;
/** Bytes at the start of the memory kept for control words (the worker handshake). */
export const HEADER_BYTES = 256;
const PAGE = 65536;
/** Pages the memory may grow to (4 GiB, all a 32-bit memory addresses); shared memories reserve their maximum up front. */
export const MAX_PAGES = 65536;

/** Thrown by {@link WasmRuntime.alloc} when the memory cannot grow enough (callers fall back to the JS heap). */
export class WasmMemoryFull extends Error {}

/** `x` rounded up to a multiple of `q`. */
export function roundUp(x: number, q: number): number {
  return Math.ceil(x / q) * q;
}

/** Why this runtime cannot run here, or null when WebAssembly SIMD and shared memory are available. */
export function wasmUnavailableReason(): string | null {
  if (typeof WebAssembly !== "object") return "WebAssembly is not available";
  if (typeof SharedArrayBuffer !== "function") return "SharedArrayBuffer is not available";
  if (
    !WebAssembly.validate(WASM_GEMM_BYTES as BufferSource) ||
    !WebAssembly.validate(WASM_ELEMENTWISE_BYTES as BufferSource)
  ) {
    return "this WebAssembly engine rejects the SIMD kernel modules (SIMD, relaxed SIMD, threads)";
  }
  return null;
}

/**
 * Size class of a block of `n` floats: at least n rounded up to 4 (the kernels work in groups of 4) and
 * 16, then rounded up to a quarter octave (2^e, 1.25 2^e, 1.5 2^e, 1.75 2^e), so reuse wastes < 25 %.
 */
export function sizeClass(n: number): number {
  const m = Math.max(16, roundUp(n, 4));
  const e = Math.floor(Math.log2(m)) - 2;
  const step = 2 ** Math.max(e, 2);
  return roundUp(m, step);
}

/**
 * The shared memory, the compiled kernel modules and their instances on this thread, and a heap of
 * float blocks in the memory: storages of the backend, plus one scratch block the products and
 * element-wise ops pack their operands into. Freed blocks go to per-size-class free lists; the memory
 * grows on demand and never shrinks.
 */
export class WasmRuntime {
  /** The shared linear memory every instance (main thread and worker) uses. */
  readonly memory: WebAssembly.Memory;
  /** The compiled matrix-product module (instantiated again by workers). */
  readonly module: WebAssembly.Module;
  readonly #gemm: GemmFn;
  readonly #elementwise: WebAssembly.Exports;
  readonly #elementwiseModule: WebAssembly.Module;
  #view: Float32Array;
  /** Next unallocated float index. */
  #top = HEADER_BYTES / 4;
  readonly #free = new Map<number, number[]>();
  readonly #capOf = new Map<number, number>();
  #freeFloats = 0;
  #scratchAt = -1;
  #scratchCap = 0;
  #worker: GemmWorker | null = null;
  readonly #maxBytes: number;

  /**
   * Compiles the kernels and creates a shared memory of one page that may grow to `maxPages` pages of
   * 64 KiB. Throws "Cannot create ..." if unsupported.
   */
  constructor(maxPages: number = MAX_PAGES) {
    const why = wasmUnavailableReason();
    if (why) throw new Error(`Cannot create the wasm backend: ${why}`);
    this.#maxBytes = maxPages * PAGE;
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: maxPages, shared: true });
    this.module = new WebAssembly.Module(WASM_GEMM_BYTES as BufferSource);
    const inst = new WebAssembly.Instance(this.module, { env: { memory: this.memory } });
    this.#gemm = inst.exports.gemm as GemmFn;
    this.#elementwiseModule = new WebAssembly.Module(WASM_ELEMENTWISE_BYTES as BufferSource);
    const ew = new WebAssembly.Instance(this.#elementwiseModule, { env: { memory: this.memory } });
    this.#elementwise = ew.exports;
    this.#view = new Float32Array(this.memory.buffer);
  }

  /**
   * o[i] = op(x[i]) for i < n on float indices, split over the second thread when large; `op` one of
   * {@link UNARY_KERNELS}.
   */
  unary(op: UnaryOp, x: number, o: number, n: number): void {
    const fn = this.#elementwise[op] as UnaryKernel;
    const w = this.#worker;
    if (w !== null && w.usable && n >= THREAD_MIN_ELEMENTS) {
      w.splitUnary(fn, UNARY_KERNELS.indexOf(op), 4 * x, 4 * o, roundUp(Math.floor(n / 2), 4), n);
    } else fn(4 * x, 4 * o, n);
  }

  /**
   * o[i] = a[i sa] op b[i sb] for i < n on float indices, sa and sb 1 (an array) or 0 (a scalar stored
   * 4 times), split over the second thread when large; `op` one of {@link BINARY_KERNELS}.
   */
  binary(op: BinaryOp, a: number, sa: number, b: number, sb: number, o: number, n: number): void {
    const fn = this.#elementwise[op] as BinaryKernel;
    const w = this.#worker;
    const [ba, bb] = [16 * sa, 16 * sb];
    if (w !== null && w.usable && n >= THREAD_MIN_ELEMENTS) {
      w.splitBinary(
        fn,
        BINARY_KERNELS.indexOf(op),
        4 * a,
        ba,
        4 * b,
        bb,
        4 * o,
        roundUp(Math.floor(n / 2), 4),
        n,
      );
    } else fn(4 * a, ba, 4 * b, bb, 4 * o, n);
  }

  /** Bytes the memory holds now. */
  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Bytes held in free lists and the scratch block (memory kept for reuse, not by live storages). */
  get pooledBytes(): number {
    return 4 * (this.#freeFloats + this.#scratchCap);
  }

  /** A float view of the whole memory as it is now (replaced after the memory grows). */
  get f32(): Float32Array {
    if (this.#view.length * 4 !== this.memory.buffer.byteLength) {
      this.#view = new Float32Array(this.memory.buffer);
    }
    return this.#view;
  }

  /**
   * Allocates a block of at least `n` + 4 floats (contents undefined); returns its float index. The 4
   * floats of slack let the kernels read and write whole groups of 4 past a row's end.
   */
  alloc(n: number): number {
    const cap = sizeClass(n + 4);
    const list = this.#free.get(cap);
    if (list && list.length > 0) {
      this.#freeFloats -= cap;
      const at = list.pop()!;
      this.#capOf.set(at, cap);
      return at;
    }
    const at = this.#top;
    const need = (at + cap) * 4;
    const full = () =>
      new WasmMemoryFull(
        `Cannot allocate ${n} floats in wasm memory: ${need} bytes would exceed its ${this.#maxBytes}-byte maximum`,
      );
    if (need > this.#maxBytes) throw full();
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      try {
        this.memory.grow(Math.ceil((need - have) / PAGE));
      } catch {
        throw full(); // the system refused the pages
      }
    }
    this.#top = at + cap;
    this.#capOf.set(at, cap);
    return at;
  }

  /** Returns the block at float index `at` to its free list. Throws on a block not allocated. */
  release(at: number): void {
    const cap = this.#capOf.get(at);
    if (cap === undefined) throw new Error(`Cannot release wasm block at ${at}: it is not allocated`);
    this.#capOf.delete(at);
    let list = this.#free.get(cap);
    if (!list) this.#free.set(cap, list = []);
    list.push(at);
    this.#freeFloats += cap;
  }

  /** A Float32Array of `n` floats on the block at float index `at` (valid across memory growth). */
  view(at: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, at * 4, n);
  }

  /**
   * Makes the scratch block hold at least `floats` floats and returns its float index. Use
   * {@link f32} afterwards (growing may replace the view); nothing else may allocate while it is used.
   */
  reserve(floats: number): number {
    if (floats > this.#scratchCap) {
      if (this.#scratchAt >= 0) this.release(this.#scratchAt);
      this.#scratchAt = -1;
      this.#scratchCap = 0;
      this.#scratchAt = this.alloc(floats);
      this.#scratchCap = sizeClass(floats + 4);
    }
    return this.#scratchAt;
  }

  /**
   * C[m, n] += A[m, k] B[k, n] on float indices of the memory: A packed in panels of {@link MR} rows
   * (panel stride `k` MR floats, see {@link packA}), B row-major with stride `ldb`, C row-major with
   * stride `ldc`; m a multiple of MR, n (and ldb, ldc) of NR.
   */
  gemm(a: number, b: number, c: number, m: number, n: number, k: number, ldb: number, ldc: number): void {
    const w = this.#worker;
    if (w !== null && w.usable && m * n * k >= THREAD_MIN_WORK && n >= 2 * NR) {
      w.split(this.#gemm, a, b, c, m, 0, roundUp(n / 2, NR), n, k, ldb, ldc);
    } else {
      gemmBlocked(this.#gemm, a, b, c, m, 0, n, k, ldb, ldc);
    }
  }

  /**
   * Starts the second thread (once) and resolves when it takes jobs; until then products run on this
   * thread only. Rejects with "Cannot start ..." where workers or shared memory are unavailable.
   */
  startThread(): Promise<void> {
    if (this.#worker === null) {
      this.#worker = new GemmWorker(this.memory, this.module, this.#elementwiseModule);
    }
    return this.#worker.ready;
  }

  /** Jobs (products and element-wise ops) the second thread has shared (0 without one). */
  get threadJobs(): number {
    return this.#worker?.jobs ?? 0;
  }

  /** Ends the second thread, if any; products run on this thread afterwards. */
  async stopThread(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    await w?.stop();
  }
}

/** Runs the kernel over columns [j0, j1) of C in cache blocks (float indices; see {@link WasmRuntime.gemm}). */
export function gemmBlocked(
  kernel: GemmFn,
  a: number,
  b: number,
  c: number,
  m: number,
  j0: number,
  j1: number,
  k: number,
  ldb: number,
  ldc: number,
): void {
  const aps = k * MR;
  for (let p0 = 0; p0 < k; p0 += KC) {
    const kb = Math.min(KC, k - p0);
    for (let i0 = 0; i0 < m; i0 += MC) {
      const mb = Math.min(MC, m - i0);
      kernel(
        4 * (a + (i0 / MR) * aps + MR * p0),
        4 * (b + p0 * ldb + j0),
        4 * (c + i0 * ldc + j0),
        mb,
        j1 - j0,
        kb,
        aps,
        ldb,
        ldc,
      );
    }
  }
}

/**
 * Packs the m x k matrix A(i, p) = src[off + i rs + p cs] into `dst` at float index `at` in panels of
 * {@link MR} rows: A(i, p) goes to at + floor(i / MR) k MR + p MR + i % MR; rows past m are zero.
 */
export function packA(
  src: Float32Array | Float64Array,
  off: number,
  rs: number,
  cs: number,
  m: number,
  k: number,
  dst: Float32Array,
  at: number,
): void {
  const panels = roundUp(m, MR) / MR;
  for (let q = 0; q < panels; q++) {
    const base = at + q * k * MR;
    for (let r = 0; r < MR; r++) {
      const i = q * MR + r;
      if (i >= m) {
        for (let p = 0; p < k; p++) dst[base + p * MR + r] = 0;
        continue;
      }
      const s = off + i * rs;
      for (let p = 0; p < k; p++) dst[base + p * MR + r] = src[s + p * cs];
    }
  }
}

/**
 * Copies the k x n matrix B(p, j) = src[off + p rs + j cs] into `dst` at float index `at`, row-major
 * with row stride `ldb` >= n; columns [n, ldb) are zeroed.
 */
export function packB(
  src: Float32Array | Float64Array,
  off: number,
  rs: number,
  cs: number,
  k: number,
  n: number,
  dst: Float32Array,
  at: number,
  ldb: number,
): void {
  for (let p = 0; p < k; p++) {
    const d = at + p * ldb;
    const s = off + p * rs;
    if (cs === 1 && src instanceof Float32Array) dst.set(src.subarray(s, s + n), d);
    else for (let j = 0; j < n; j++) dst[d + j] = src[s + j * cs];
    if (ldb > n) dst.fill(0, d + n, d + ldb);
  }
}
