/**
 * The WebGPU backend: float32 storages in pooled GPU buffers, WGSL kernels from `kernels/`, many
 * dispatches per submit. Every op method is synchronous and returns its storage at once; only
 * `read()` and `sync()` await.
 *
 * ```ts
 * const be = await createWebGpuBackend();
 * const y = be.unary("exp", be.fromArray([0, 1]));
 * console.log(await be.read(y));
 * ```
 * @module
 */
import type { Backend, BinaryOp, Conv2dGeometry, ReduceOp, Shape, Storage, UnaryOp } from "../backend.ts";
import {
  Dispatcher,
  type DispatcherOptions,
  type DispatchLimits,
  GpuStorage,
  type KernelTiming,
} from "./dispatcher.ts";
import type { PoolStats } from "./buffer_pool.ts";
import { binaryOp, fillInto, unaryOp, whereOp } from "./elementwise_ops.ts";
import { reduceOp } from "./reduce_ops.ts";
import { concatOp, padOp, permuteOp, sliceOp } from "./layout_ops.ts";
import { splitFlatOp } from "./flat_copy_ops.ts";
import { normalizeRowsConvergedOp, normalizeRowsOp, rowsConvergedOp } from "./row_ops.ts";
import { type MatmulDims, matmulDispatch } from "./matmul_ops.ts";
import { releaseFastGemmResources } from "./fast_gemm.ts";
import { type GemmKernel, type GemmKernelOption, selectGemmKernel } from "./gemm_select.ts";
import { conv2dDispatch, conv2dInputGradDispatch, conv2dWeightGradDispatch } from "./conv_ops.ts";

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuBackendOptions {
  /** Adapter power preference (irrelevant on llvmpipe). */
  readonly powerPreference?: GPUPowerPreference;
  /** Submit the recorded commands every this many dispatches (default 64). */
  readonly submitEvery?: number;
  /**
   * Time every dispatch on the GPU with timestamp queries (one compute pass per dispatch, so slower);
   * read the totals with {@link WebGpuBackend.kernelProfile}. Needs the "timestamp-query" feature.
   */
  readonly profile?: boolean;
  /**
   * Defer flat element-wise ops (unary, same-shape or single-value binary, `where` with same-shape or single-value operands) and run
   * each run of them as one fused kernel (default true). Results are bit-for-bit the same either way.
   */
  readonly fuse?: boolean;
  /**
   * Run large matmuls and convolutions (see fast_route.ts for the thresholds) on the texture GEMM of
   * fast_gemm.ts (default true); false keeps every product on the buffer kernels. Results differ only by
   * float rounding (summation order).
   */
  readonly fastGemm?: boolean;
  /**
   * Matrix-product kernels (gemm_select.ts): "auto" (default) picks "texture" on a software rasterizer
   * such as llvmpipe and "tiled" (workgroup-memory tiles) on any other adapter; "texture" or "tiled"
   * forces one (tests, A/B runs). Results differ only by float rounding (summation order).
   */
  readonly gemmKernel?: GemmKernelOption;
  /**
   * Cache bind groups of buffer kernels, with a dynamic uniform offset (default true); false creates one
   * per dispatch. Results are the same either way.
   */
  readonly bindGroupCache?: boolean;
  /**
   * Lower limits than the device's, for tests of the folding and binding checks (never raises them):
   * `maxComputeWorkgroupsPerDimension`, `maxStorageBufferBindingSize`.
   */
  readonly testLimits?: Partial<
    Pick<DispatchLimits, "maxComputeWorkgroupsPerDimension" | "maxStorageBufferBindingSize">
  >;
}

/** Counters of the WebGPU backend. */
export interface WebGpuStats extends PoolStats {
  /** Dispatches recorded. */
  readonly dispatches: number;
  /** Queue submits. */
  readonly submits: number;
  /** Distinct compiled pipelines. */
  readonly pipelines: number;
  /** Milliseconds spent inside `queue.submit` (on lavapipe: mostly waiting for the previous submission). */
  readonly submitMs: number;
  /** Readbacks (reads of a storage into host memory). */
  readonly readbacks: number;
  /** Bytes read back. */
  readonly readbackBytes: number;
  /** Bytes of temporary mappable buffers created for readbacks (device allocations besides the pool's). */
  readonly stagingBytes: number;
  /** Host-to-device uploads and their bytes. */
  readonly uploads: number;
  /** Bytes uploaded. */
  readonly uploadBytes: number;
  /** Bind groups created for the buffer kernels' dispatches. */
  readonly bindGroups: number;
  /** Dispatches that reused a cached bind group. */
  readonly bindGroupHits: number;
  /**
   * Milliseconds awaiting the device (readback mapping, `sync`). Wall time minus `submitMs` and `waitMs`
   * is host (JavaScript) time.
   */
  readonly waitMs: number;
  /** Element-wise ops deferred into fused kernels. */
  readonly fusedOps: number;
  /** Fused kernels dispatched (each counted in `dispatches` too). */
  readonly fusedKernels: number;
}

/** The WebGPU backend plus its device, limits and counters. */
export interface WebGpuBackend extends Backend {
  /** The device all storages live on. */
  readonly device: GPUDevice;
  /** The limits respected by dispatches. */
  readonly limits: DispatchLimits;
  /** Pool and dispatch counters. */
  stats(): WebGpuStats;
  /** The matrix-product kernels in use (see {@link WebGpuBackendOptions.gemmKernel}). */
  readonly gemmKernel: GemmKernel;
  /** Why those kernels were chosen (adapter or option), one line. */
  readonly gemmKernelReason: string;
  /** Turns bind-group reuse off or on at run time (for measuring its effect; results are the same). */
  setBindGroupReuse(on: boolean): void;
  /**
   * Starts counting dispatches per kernel key (`on`), or stops; returns the counts since the last call
   * (empty when counting was off). For profiling what a phase dispatches.
   */
  countDispatches(on: boolean): Map<string, number>;
  /**
   * GPU milliseconds per kind of dispatch since creation (or the last reset), largest first; empty
   * unless the backend was created with `profile: true`.
   */
  kernelProfile(reset?: boolean): Promise<KernelTiming[]>;
  /** Destroys the free buffers held by the pool; returns the bytes released. */
  trimPool(): number;
  /** Destroys the device; the backend must not be used afterwards. */
  destroy(): void;
}

/** Limits requested from the adapter (its maxima). */
const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** The message thrown when no adapter exists. */
export const NO_ADAPTER_MESSAGE: string =
  "Cannot create the WebGPU backend: no adapter (navigator.gpu is missing or " +
  "requestAdapter() returned null; install a Vulkan driver, e.g. on Debian `apt-get install " +
  "mesa-vulkan-drivers` for the llvmpipe software rasterizer, and run Deno with WebGPU available); " +
  "use the CPU backend instead";

function gpuOf(s: Storage, what: string): GpuStorage {
  if (!(s instanceof GpuStorage)) {
    throw new Error(`Cannot run ${what}: the storage does not belong to the WebGPU backend`);
  }
  return s;
}

class WebGpuBackendImpl implements WebGpuBackend {
  readonly name = "webgpu";
  readonly dtype = "float32" as const;
  readonly #d: Dispatcher;

  constructor(
    readonly device: GPUDevice,
    readonly description: string,
    limits: DispatchLimits,
    opts: DispatcherOptions,
    readonly gemmKernelReason: string,
  ) {
    this.#d = new Dispatcher(device, limits, opts);
  }

  get limits(): DispatchLimits {
    return this.#d.limits;
  }

  get gemmKernel(): GemmKernel {
    return this.#d.gemmKernel;
  }

  poolBytes(): number {
    return this.#d.pool.poolBytes();
  }

  stats(): WebGpuStats {
    return {
      ...this.#d.pool.stats(),
      dispatches: this.#d.dispatches,
      submits: this.#d.submits,
      pipelines: this.#d.pipelines.size,
      submitMs: this.#d.submitMs,
      readbacks: this.#d.readbacks,
      readbackBytes: this.#d.readbackBytes,
      stagingBytes: this.#d.stagingBytes,
      uploads: this.#d.uploads,
      uploadBytes: this.#d.uploadBytes,
      bindGroups: this.#d.bindGroups,
      bindGroupHits: this.#d.bindGroupHits,
      waitMs: this.#d.waitMs,
      fusedOps: this.#d.fuser?.deferred ?? 0,
      fusedKernels: this.#d.fuser?.kernels ?? 0,
    };
  }

  setBindGroupReuse(on: boolean): void {
    this.#d.reuseBindGroups = on;
  }

  countDispatches(on: boolean): Map<string, number> {
    const counts = this.#d.dispatchCounts ?? new Map<string, number>();
    this.#d.dispatchCounts = on ? new Map() : null;
    return counts;
  }

  kernelProfile(reset = false): Promise<KernelTiming[]> {
    return this.#d.kernelProfile(reset);
  }

  trimPool(): number {
    this.#d.clearBindGroups();
    return this.#d.pool.trim();
  }

  destroy(): void {
    this.#d.clearBindGroups();
    this.#d.pool.trim();
    releaseFastGemmResources(this.device);
    this.device.destroy();
  }

  fromArray(data: ArrayLike<number>): Storage {
    const s = this.#d.alloc(data.length, "fromArray");
    this.#d.upload(s, data instanceof Float32Array ? data : Float32Array.from(data));
    return s;
  }

  fill(size: number, value: number): Storage {
    if (!Number.isInteger(size) || size < 0) {
      throw new Error(`Cannot fill: size ${size} is not a non-negative integer`);
    }
    const s = this.#d.alloc(size, "fill");
    if (size > 0) fillInto(this.#d, s, value);
    return s;
  }

  read(s: Storage): Promise<Float32Array> {
    return this.#d.read(gpuOf(s, "read"));
  }

  free(s: Storage): void {
    this.#d.release(gpuOf(s, "free"));
  }

  flush(): void {
    this.#d.submit();
  }

  sync(): Promise<void> {
    return this.#d.sync();
  }

  unary(op: UnaryOp, x: Storage): Storage {
    return unaryOp(this.#d, op, gpuOf(x, `unary ${op}`));
  }

  binary(op: BinaryOp, a: Storage, aShape: Shape, b: Storage, bShape: Shape): Storage {
    const what = `binary ${op}`;
    return binaryOp(this.#d, op, gpuOf(a, what), aShape, gpuOf(b, what), bShape);
  }

  where(
    cond: Storage,
    cShape: Shape,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
  ): Storage {
    return whereOp(
      this.#d,
      gpuOf(cond, "where"),
      cShape,
      gpuOf(a, "where"),
      aShape,
      gpuOf(b, "where"),
      bShape,
      outShape,
    );
  }

  reduce(op: ReduceOp, x: Storage, shape: Shape, axes: readonly number[]): Storage {
    return reduceOp(this.#d, op, gpuOf(x, `reduce ${op}`), shape, axes);
  }

  matmul(a: Storage, b: Storage, dims: MatmulDims): Storage {
    return matmulDispatch(this.#d, gpuOf(a, "matmul"), gpuOf(b, "matmul"), dims);
  }

  conv2d(x: Storage, w: Storage, g: Conv2dGeometry): Storage {
    return conv2dDispatch(this.#d, gpuOf(x, "conv2d"), gpuOf(w, "conv2d"), g);
  }

  conv2dInputGrad(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    return conv2dInputGradDispatch(this.#d, gpuOf(dy, "conv2dInputGrad"), gpuOf(w, "conv2dInputGrad"), g);
  }

  conv2dWeightGrad(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    return conv2dWeightGradDispatch(this.#d, gpuOf(x, "conv2dWeightGrad"), gpuOf(dy, "conv2dWeightGrad"), g);
  }

  permute(x: Storage, shape: Shape, perm: readonly number[]): Storage {
    return permuteOp(this.#d, gpuOf(x, "permute"), shape, perm);
  }

  slice(x: Storage, shape: Shape, starts: readonly number[], sizes: readonly number[]): Storage {
    return sliceOp(this.#d, gpuOf(x, "slice"), shape, starts, sizes);
  }

  pad(x: Storage, shape: Shape, before: readonly number[], after: readonly number[], value: number): Storage {
    return padOp(this.#d, gpuOf(x, "pad"), shape, before, after, value);
  }

  concat(xs: readonly Storage[], shapes: readonly Shape[], axis: number): Storage {
    return concatOp(this.#d, xs.map((x) => gpuOf(x, "concat")), shapes, axis);
  }

  splitFlat(x: Storage, sizes: readonly number[]): Storage[] {
    return splitFlatOp(this.#d, gpuOf(x, "splitFlat"), sizes);
  }

  normalizeRows(x: Storage, rows: number, cols: number, eps: number): Storage {
    return normalizeRowsOp(this.#d, gpuOf(x, "normalizeRows"), rows, cols, eps);
  }

  rowsConverged(
    a: Storage,
    b: Storage,
    c: Storage,
    d: Storage,
    rows: number,
    colsA: number,
    colsC: number,
    atol: number,
    rtol: number,
  ): Storage {
    const g = (s: Storage) => gpuOf(s, "rowsConverged");
    return rowsConvergedOp(this.#d, g(a), g(b), g(c), g(d), rows, colsA, colsC, atol, rtol);
  }

  normalizeRowsConverged(
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
  ): [Storage, Storage] {
    const g = (s: Storage) => gpuOf(s, "normalizeRowsConverged");
    return normalizeRowsConvergedOp(this.#d, g(x), g(v), g(a), g(b), rows, cols, colsA, eps, atol, rtol);
  }
}

/** The adapter, or null when WebGPU or an adapter is unavailable. */
export async function requestWebGpuAdapter(powerPreference?: GPUPowerPreference): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  return await gpu.requestAdapter(powerPreference ? { powerPreference } : undefined);
}

/**
 * Creates the WebGPU backend on the first adapter, requesting the adapter's maximum storage and
 * workgroup limits. Throws a clear error when there is no adapter.
 */
export async function createWebGpuBackend(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const adapter = await requestWebGpuAdapter(opts.powerPreference);
  if (!adapter) throw new Error(NO_ADAPTER_MESSAGE);
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const profile = opts.profile ?? false;
  if (profile && !adapter.features.has("timestamp-query")) {
    throw new Error(
      `Cannot create a profiling WebGPU backend: the adapter lacks the "timestamp-query" feature`,
    );
  }
  const requiredFeatures: GPUFeatureName[] = profile ? ["timestamp-query"] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const cap = (name: keyof DispatchLimits, v: number) => Math.min(v, opts.testLimits?.[name as never] ?? v);
  const limits: DispatchLimits = {
    maxComputeWorkgroupsPerDimension: cap(
      "maxComputeWorkgroupsPerDimension",
      device.limits.maxComputeWorkgroupsPerDimension,
    ),
    maxStorageBufferBindingSize: cap(
      "maxStorageBufferBindingSize",
      device.limits.maxStorageBufferBindingSize,
    ),
    maxBufferSize: device.limits.maxBufferSize,
    minUniformBufferOffsetAlignment: device.limits.minUniformBufferOffsetAlignment,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
  };
  const info = adapter.info;
  const description = info.description ||
    [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "WebGPU adapter";
  const gemm = selectGemmKernel(info, opts.gemmKernel ?? "auto");
  return new WebGpuBackendImpl(device, description, limits, {
    submitEvery: opts.submitEvery ?? 64,
    profile,
    fuse: opts.fuse ?? true,
    fastGemm: opts.fastGemm ?? true,
    bindGroupCache: opts.bindGroupCache ?? true,
    gemmKernel: gemm.kernel,
  }, gemm.reason);
}
