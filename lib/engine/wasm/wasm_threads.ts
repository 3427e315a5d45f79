/**
 * A second thread for the kernels of the "wasm" backend: one worker instantiates the kernels on the
 * same shared memory and waits (Atomics.wait) for jobs the main thread writes into the memory's header
 * (the second half of a product's columns or of an element-wise op's elements); the main thread
 * computes its own half, then waits for the worker's. The worker is unref'd, so it never keeps the process alive, and {@link GemmWorker.stop} ends it.
 * @module
 */
import { Worker } from "node:worker_threads";
import {
  BINARY_KERNELS,
  type BinaryKernel,
  gemmBlocked,
  type GemmFn,
  KC,
  MC,
  MR,
  UNARY_KERNELS,
  type UnaryKernel,
} from "./wasm_runtime.ts";

/** Int32 slots of the control block at byte 0 of the memory (inside the runtime's reserved header). */
const SEQ = 0, DONE = 1, ARGS = 2, KIND = 11;
/** Job kinds: a matrix product's columns, a unary kernel's tail, a binary kernel's tail. */
const GEMM = 0, UNARY = 1, BINARY = 2;
/** A sequence number that tells the worker to leave its loop. */
const STOP = -1;

/** The worker's source: the same blocking driver as the main thread's, around the kernel. */
function workerSource(): string {
  return `"use strict";
const { parentPort } = require("node:worker_threads");
const MR = ${MR}, KC = ${KC}, MC = ${MC};
const gemmBlocked = ${gemmBlocked.toString()};
parentPort.once("message", ({ memory, module, elementwise, unaryNames, binaryNames }) => {
  const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm;
  const ew = new WebAssembly.Instance(elementwise, { env: { memory } }).exports;
  const unary = unaryNames.map((name) => ew[name]), binary = binaryNames.map((name) => ew[name]);
  const ctl = new Int32Array(memory.buffer, 0, 16);
  let seq = 0;
  parentPort.postMessage("ready");
  for (;;) {
    Atomics.wait(ctl, ${SEQ}, seq);
    seq = Atomics.load(ctl, ${SEQ});
    if (seq === ${STOP}) break;
    const a = ctl.subarray(${ARGS}, ${ARGS} + 9);
    const kind = ctl[${KIND}];
    if (kind === ${GEMM}) gemmBlocked(kernel, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    else if (kind === ${UNARY}) unary[a[0]](a[1], a[2], a[3]);
    else binary[a[0]](a[1], a[2], a[3], a[4], a[5], a[6]);
    Atomics.store(ctl, ${DONE}, seq);
    Atomics.notify(ctl, ${DONE});
  }
});
`;
}

/** The worker thread and its handshake; `ready` resolves once it waits for jobs. */
export class GemmWorker {
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  #ready = false;
  #stopped = false;
  #seq = 0;
  /** Resolves when the worker has instantiated the kernel (rejects if it fails to start). */
  readonly ready: Promise<void>;
  /** Jobs the worker has run (for tests and benchmarks). */
  jobs = 0;

  /** Starts the worker on `memory` (shared) with the compiled matrix-product and element-wise modules. */
  constructor(memory: WebAssembly.Memory, module: WebAssembly.Module, elementwise: WebAssembly.Module) {
    this.#ctl = new Int32Array(memory.buffer, 0, 16);
    this.#worker = new Worker(workerSource(), { eval: true });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#worker.once("message", () => {
        this.#ready = true;
        this.#worker.unref();
        resolve();
      });
      this.#worker.once("error", (e: Error) => {
        this.#stopped = true;
        reject(new Error(`Cannot start the wasm matrix-product worker: ${e.message}`));
      });
    });
    this.#worker.postMessage({
      memory,
      module,
      elementwise,
      unaryNames: [...UNARY_KERNELS],
      binaryNames: [...BINARY_KERNELS],
    });
  }

  /** Whether jobs can be handed to the worker now. */
  get usable(): boolean {
    return this.#ready && !this.#stopped;
  }

  /**
   * Runs columns [j0, j2) of C += A B on two threads: the worker takes [j1, j2), this thread [j0, j1),
   * then waits for the worker (arguments as {@link gemmBlocked}). Every job of the worker, whatever its
   * kind, is counted in {@link jobs}.
   */
  split(
    kernel: GemmFn,
    a: number,
    b: number,
    c: number,
    m: number,
    j0: number,
    j1: number,
    j2: number,
    k: number,
    ldb: number,
    ldc: number,
  ): void {
    this.#run(
      GEMM,
      [a, b, c, m, j1, j2, k, ldb, ldc],
      () => gemmBlocked(kernel, a, b, c, m, j0, j1, k, ldb, ldc),
    );
  }

  /**
   * o = op(x) on two threads: this thread the first `h` floats, the worker the rest (byte addresses; `h`
   * a multiple of 4). `op` is an index into the runtime's unary kernel names, `fn` that kernel.
   */
  splitUnary(fn: UnaryKernel, op: number, x: number, o: number, h: number, n: number): void {
    this.#run(UNARY, [op, x + 4 * h, o + 4 * h, n - h], () => fn(x, o, h));
  }

  /**
   * o = a op b on two threads, split like {@link splitUnary}; strides sa, sb are 16 (an array) or 0 (a
   * splatted scalar, the same address for both halves).
   */
  splitBinary(
    fn: BinaryKernel,
    op: number,
    a: number,
    sa: number,
    b: number,
    sb: number,
    o: number,
    h: number,
    n: number,
  ): void {
    const a2 = sa === 0 ? a : a + 4 * h, b2 = sb === 0 ? b : b + 4 * h;
    this.#run(BINARY, [op, a2, sa, b2, sb, o + 4 * h, n - h], () => fn(a, sa, b, sb, o, h));
  }

  /** Hands the worker a job, runs `mine` here meanwhile, then waits for the worker's half. */
  #run(kind: number, args: number[], mine: () => void): void {
    const ctl = this.#ctl;
    ctl.set(args, ARGS);
    ctl[KIND] = kind;
    const seq = this.#seq = (this.#seq % 0x3fffffff) + 1;
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    mine();
    for (let done = Atomics.load(ctl, DONE); done !== seq; done = Atomics.load(ctl, DONE)) {
      Atomics.wait(ctl, DONE, done);
    }
    this.jobs++;
  }

  /** Ends the worker (it leaves its wait loop, then is terminated). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    Atomics.store(this.#ctl, SEQ, STOP);
    Atomics.notify(this.#ctl, SEQ);
    await this.#worker.terminate();
  }
}
