/**
 * A second thread for the matrix-product kernel of the "wasm" backend: one worker instantiates the
 * kernel on the same shared memory and waits (Atomics.wait) for jobs the main thread writes into the
 * memory's header; the main thread computes its own half of the columns, then waits for the worker's
 * half. The worker is unref'd, so it never keeps the process alive, and {@link GemmWorker.stop} ends it.
 * @module
 */
import { Worker } from "node:worker_threads";
import { gemmBlocked, type GemmFn, KC, MC, MR } from "./wasm_runtime.ts";

/** Int32 slots of the control block at byte 0 of the memory (inside the runtime's reserved header). */
const SEQ = 0, DONE = 1, ARGS = 2;
/** A sequence number that tells the worker to leave its loop. */
const STOP = -1;

/** The worker's source: the same blocking driver as the main thread's, around the kernel. */
function workerSource(): string {
  return `"use strict";
const { parentPort } = require("node:worker_threads");
const MR = ${MR}, KC = ${KC}, MC = ${MC};
const gemmBlocked = ${gemmBlocked.toString()};
parentPort.once("message", ({ memory, module }) => {
  const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm;
  const ctl = new Int32Array(memory.buffer, 0, 16);
  let seq = 0;
  parentPort.postMessage("ready");
  for (;;) {
    Atomics.wait(ctl, ${SEQ}, seq);
    seq = Atomics.load(ctl, ${SEQ});
    if (seq === ${STOP}) break;
    const a = ctl.subarray(${ARGS}, ${ARGS} + 9);
    gemmBlocked(kernel, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
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

  /** Starts the worker on `memory` (shared) with the compiled kernel `module`. */
  constructor(memory: WebAssembly.Memory, module: WebAssembly.Module) {
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
    this.#worker.postMessage({ memory, module });
  }

  /** Whether jobs can be handed to the worker now. */
  get usable(): boolean {
    return this.#ready && !this.#stopped;
  }

  /**
   * Runs columns [j0, j2) of C += A B on two threads: the worker takes [j1, j2), this thread [j0, j1),
   * then waits for the worker (arguments as {@link gemmBlocked}).
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
    const ctl = this.#ctl;
    ctl.set([a, b, c, m, j1, j2, k, ldb, ldc], ARGS);
    const seq = this.#seq = (this.#seq % 0x3fffffff) + 1;
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    gemmBlocked(kernel, a, b, c, m, j0, j1, k, ldb, ldc);
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
