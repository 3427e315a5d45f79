/**
 * Records kernel dispatches for the WebGPU backend: many dispatches per command encoder in one open
 * compute pass, submitted every `submitEvery` dispatches and on flush/read/sync. Op calls never await.
 *
 * Uniform parameters of every dispatch in a batch are packed into one host staging area at aligned
 * offsets and written to a single uniform buffer with `queue.writeBuffer` just before the batch is
 * submitted (the queue runs that write after all earlier submits, so reusing the buffer each batch is
 * safe). Storages remember the last batch that used them, so freeing one still used by unsubmitted
 * commands defers its return to the pool (see buffer_pool.ts).
 * @module
 */
import type { Storage } from "../backend.ts";
import type { KernelSource, ParamField } from "../../../kernels/common.ts";
import { WG1 } from "../../../kernels/common.ts";
import { BufferPool } from "./buffer_pool.ts";
import { type CachedPipeline, PipelineCache } from "./pipeline_cache.ts";
import { ElementwiseFuser, MAX_FUSED_BINDINGS } from "./fusion.ts";
import type { GemmKernel } from "./gemm_select.ts";

/** A WebGPU storage: a (pooled) buffer holding `size` float32 values. */
export class GpuStorage implements Storage {
  /** Last batch whose commands bind this storage (-1: none). */
  lastUse: number = -1;
  /** Set by free(); a freed storage must not be used. */
  freed: boolean = false;
  /** Wraps `buffer` holding `size` values. */
  constructor(readonly size: number, readonly buffer: GPUBuffer) {}
}

/** The limits the dispatcher respects (the device's, possibly lowered for tests). */
export interface DispatchLimits {
  /** Workgroups per grid dimension (65535 by default). */
  readonly maxComputeWorkgroupsPerDimension: number;
  /** Bytes one storage binding may span. */
  readonly maxStorageBufferBindingSize: number;
  /** Bytes one buffer may hold. */
  readonly maxBufferSize: number;
  /** Alignment of uniform binding offsets. */
  readonly minUniformBufferOffsetAlignment: number;
  /** Storage buffers one kernel may bind. */
  readonly maxStorageBuffersPerShaderStage: number;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** Submit every this many dispatches (a positive integer). */
  readonly submitEvery: number;
  /**
   * Give every dispatch its own compute pass with timestamp queries (the device must have the
   * "timestamp-query" feature); {@link Dispatcher.kernelProfile} sums the GPU time per kind of dispatch.
   */
  readonly profile?: boolean;
  /** Defer flat element-wise ops and fuse runs of them into one kernel (default true; see fusion.ts). */
  readonly fuse?: boolean;
  /**
   * Reuse bind groups: kernels whose bindings are all buffers get an explicit layout with a dynamic
   * uniform offset, and their bind groups are cached by kernel and storage buffers (default true).
   */
  readonly bindGroupCache?: boolean;
  /**
   * Let large matmuls and convolutions use the texture GEMM of fast_gemm.ts through
   * {@link Dispatcher.recordExternal} (default true; read by matmul_ops.ts and conv_ops.ts).
   */
  readonly fastGemm?: boolean;
  /**
   * Matrix-product kernels: "texture" (default; register-blocked buffer kernels plus the texture GEMM,
   * for software rasterizers) or "tiled" (the workgroup-memory tiled kernel, for GPUs); see gemm_select.ts.
   */
  readonly gemmKernel?: GemmKernel;
}

/** A kernel ready to dispatch: pipeline plus the order of its uniform fields. */
export interface Kernel extends CachedPipeline {
  /** Uniform fields, in struct order. */
  readonly fields: readonly ParamField[];
  /** Cache key, used as label in messages. */
  readonly label: string;
}

/** Grid of workgroups (x, y, z). */
export type Grid = readonly [number, number, number];

/** GPU time of one kind of dispatch, summed over a profiling run (see {@link Dispatcher.kernelProfile}). */
export interface KernelTiming {
  /** Kernel key plus the output size and grid, e.g. `unary:exp n=25088 [98,1,1]`. */
  readonly key: string;
  /** Number of dispatches. */
  readonly count: number;
  /** Summed GPU time in milliseconds (timestamp queries around each dispatch). */
  readonly ms: number;
}

/** Timestamp queries per query set (two per dispatch). */
const PROFILE_QUERIES = 2048;

const UNIFORM_CAPACITY = 1 << 16;

/** Cached bind groups kept at most (the cache is emptied when full; a training step uses a few thousand). */
const MAX_CACHED_BIND_GROUPS = 50_000;

/** Bytes bound for a storage: whole vec4s, at least one. */
export function bindBytes(size: number): number {
  return Math.max(16, Math.ceil(size / 4) * 16);
}

/** Records and submits dispatches on one device. */
export class Dispatcher {
  /** The buffer pool storages come from. */
  readonly pool: BufferPool;
  /** Compiled pipelines by source. */
  readonly pipelines: PipelineCache;
  /** The element-wise fuser, or null when fusion is off. */
  readonly fuser: ElementwiseFuser | null;
  /** Whether large products may use the texture GEMM (see {@link DispatcherOptions.fastGemm}). */
  readonly fastGemm: boolean;
  /** The matrix-product kernels in use (see {@link DispatcherOptions.gemmKernel}). */
  readonly gemmKernel: GemmKernel;
  /** Whether bind groups are cached (see {@link DispatcherOptions.bindGroupCache}). */
  readonly bindGroupCache: boolean;
  readonly #groups = new Map<string, GPUBindGroup>();
  readonly #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 0;
  readonly #device: GPUDevice;
  readonly #limits: DispatchLimits;
  readonly #submitEvery: number;
  readonly #kernels = new Map<string, Kernel>();
  readonly #derived = new Map<GpuStorage, Map<string, GpuStorage>>();
  readonly #uniform: GPUBuffer;
  readonly #staging = new ArrayBuffer(UNIFORM_CAPACITY);
  readonly #u32 = new Uint32Array(this.#staging);
  readonly #i32 = new Int32Array(this.#staging);
  readonly #f32 = new Float32Array(this.#staging);
  #uniformUsed = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #batch = 0;
  #deviceError: string | null = null;
  readonly #querySet: GPUQuerySet | null = null;
  #queryKeys: string[] = [];
  readonly #timings = new Map<string, { count: number; ms: number }>();
  readonly #profileReads = new Set<Promise<void>>();
  /** Dispatches recorded since creation. */
  dispatches = 0;
  /** Queue submits since creation. */
  submits = 0;
  /**
   * Milliseconds spent inside `queue.submit` since creation. On lavapipe a submit blocks until the
   * previous submission has finished executing, so this is mostly time waiting for the GPU.
   */
  submitMs = 0;
  /** Readbacks ({@link Dispatcher.read} calls) since creation. */
  readbacks = 0;
  /** Bytes read back since creation. */
  readbackBytes = 0;
  /** Bytes of the temporary mappable buffers created for readbacks since creation. */
  stagingBytes = 0;
  /** Host-to-device uploads ({@link Dispatcher.upload} calls with data) since creation. */
  uploads = 0;
  /** Bytes uploaded since creation. */
  uploadBytes = 0;
  /** Bind groups created for dispatches since creation (the texture GEMM's own not counted). */
  bindGroups = 0;
  /** Dispatches that reused a cached bind group since creation. */
  bindGroupHits = 0;
  /**
   * Live switch of the bind-group cache for measuring its effect: when false, kernels compiled for it get a
   * fresh bind group per dispatch (the same results).
   */
  reuseBindGroups = true;
  /**
   * Milliseconds spent awaiting the device since creation: mapping readback buffers and waiting for
   * `onSubmittedWorkDone` in {@link Dispatcher.sync}. With {@link submitMs}, the device side of the wall
   * time; the rest is host (JavaScript) time.
   */
  waitMs = 0;
  /**
   * Dispatches per kernel key since it was set (null: not counted, the default). For finding what a
   * phase of a step dispatches; costs one Map update per dispatch while set.
   */
  dispatchCounts: Map<string, number> | null = null;

  /** A dispatcher on `device` (see {@link DispatcherOptions}). */
  constructor(device: GPUDevice, limits: DispatchLimits, opts: DispatcherOptions) {
    const { submitEvery, profile = false, fuse = true, fastGemm = true, bindGroupCache = true } = opts;
    this.bindGroupCache = bindGroupCache;
    this.gemmKernel = opts.gemmKernel ?? "texture";
    if (!Number.isInteger(submitEvery) || submitEvery < 1) {
      throw new Error(
        `Cannot create the WebGPU dispatcher: submitEvery ${submitEvery} is not a positive integer`,
      );
    }
    this.#device = device;
    this.fastGemm = fastGemm;
    this.#limits = limits;
    this.#submitEvery = submitEvery;
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device);
    this.fuser = fuse
      ? new ElementwiseFuser(this, Math.min(MAX_FUSED_BINDINGS, limits.maxStorageBuffersPerShaderStage))
      : null;
    this.#uniform = device.createBuffer({
      size: UNIFORM_CAPACITY,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    if (profile) {
      if (!device.features.has("timestamp-query")) {
        throw new Error(
          'Cannot profile WebGPU dispatches: the device lacks the "timestamp-query" feature',
        );
      }
      this.#querySet = device.createQuerySet({ type: "timestamp", count: PROFILE_QUERIES });
    }
    device.addEventListener("uncapturederror", (e) => {
      this.#deviceError ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    device.lost.then((info) => {
      this.#deviceError ??= `device lost (${info.reason}): ${info.message}`;
    });
  }

  /** The device commands are recorded for. */
  get device(): GPUDevice {
    return this.#device;
  }

  /** The limits in use. */
  get limits(): DispatchLimits {
    return this.#limits;
  }

  /** The kernel registered under `key`, generating and compiling it on first use. */
  kernel(key: string, generate: () => KernelSource): Kernel {
    const hit = this.#kernels.get(key);
    if (hit) return hit;
    const src = generate();
    const compiled = this.bindGroupCache
      ? this.pipelines.getDynamic(src.code, key)
      : this.pipelines.get(src.code, key);
    const k = { ...compiled, fields: src.fields, label: key };
    this.#kernels.set(key, k);
    return k;
  }

  /** A new storage of `size` values (contents undefined) from the pool. */
  alloc(size: number, what: string): GpuStorage {
    const bytes = bindBytes(size);
    if (bytes > this.#limits.maxBufferSize) {
      throw new Error(
        `Cannot allocate ${bytes} bytes for ${what}: the adapter's maxBufferSize is ${this.#limits.maxBufferSize}`,
      );
    }
    return new GpuStorage(size, this.pool.acquire(bytes));
  }

  /**
   * Releases a storage into the pool: deferred while unsubmitted (or pending fused) commands may use it,
   * at once when it is the result of a pending fused op (which then is not written).
   */
  release(s: GpuStorage): void {
    if (s.freed) throw new Error(`Cannot free a WebGPU storage of ${s.size} values: it was already freed`);
    s.freed = true;
    if (this.fuser?.release(s)) this.pool.release(s.buffer);
    else if (s.lastUse === this.#batch) this.pool.defer(s.buffer);
    else this.pool.release(s.buffer);
    const derived = this.#derived.get(s);
    if (derived) {
      this.#derived.delete(s);
      for (const v of derived.values()) this.release(v);
    }
  }

  /**
   * A storage computed from `s` alone (e.g. a repacked weight), made by `make` on first request and
   * cached under `key` until `s` is freed (storages never change, so the cached value stays valid).
   * The caller must not free it.
   */
  derived(s: GpuStorage, key: string, make: () => GpuStorage): GpuStorage {
    let m = this.#derived.get(s);
    if (!m) this.#derived.set(s, m = new Map());
    let v = m.get(key);
    if (!v) m.set(key, v = make());
    return v;
  }

  /** Marks `s` as read by work of the current batch that is not recorded yet (a pending fused op). */
  markPendingUse(s: GpuStorage): void {
    s.lastUse = this.#batch;
  }

  /** Writes host values into a storage not used by unsubmitted commands (a fresh allocation). */
  upload(s: GpuStorage, data: Float32Array): void {
    if (data.length === 0) return;
    const plain = data.buffer instanceof ArrayBuffer
      ? data as Float32Array<ArrayBuffer>
      : new Float32Array(data);
    this.#device.queue.writeBuffer(s.buffer, 0, plain);
    this.uploads++;
    this.uploadBytes += plain.byteLength;
  }

  /** A 1-D grid of `count` invocations (workgroups of WG1), folded into (x, y) beyond the limit. */
  grid1d(count: number, what: string, wg = WG1): Grid {
    const [x, y] = this.fold(Math.ceil(count / wg), what);
    return [x, y, 1];
  }

  /** Folds `groups` workgroups into an (x, y) pair with x·y >= groups, both within the limit. */
  fold(groups: number, what: string): [number, number] {
    const max = this.#limits.maxComputeWorkgroupsPerDimension;
    if (groups === 0) return [0, 1];
    const x = Math.min(groups, max);
    const y = Math.ceil(groups / x);
    if (y > max) {
      throw new Error(
        `Cannot dispatch ${what}: ${groups} workgroups exceed ${max}² (maxComputeWorkgroupsPerDimension)`,
      );
    }
    return [x, y];
  }

  /** Throws unless `s` is alive and fits one storage binding. */
  checkBinding(s: GpuStorage, what: string): void {
    if (s.freed) throw new Error(`Cannot use a storage of ${s.size} values in ${what}: it was freed`);
    const bytes = bindBytes(s.size);
    const limit = this.#limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `Cannot bind ${bytes} bytes (${s.size} float32 values) in ${what}: ` +
          `the adapter's maxStorageBufferBindingSize is ${limit} bytes`,
      );
    }
  }

  #writeParams(k: Kernel, values: Readonly<Record<string, number>>): [number, number] {
    const align = Math.max(16, this.#limits.minUniformBufferOffsetAlignment);
    const size = Math.ceil((k.fields.length * 4) / 16) * 16;
    let offset = Math.ceil(this.#uniformUsed / align) * align;
    if (offset + size > UNIFORM_CAPACITY) {
      this.submit();
      offset = 0;
    }
    const base = offset / 4;
    k.fields.forEach(([name, type], j) => {
      const v = values[name];
      if (v === undefined) throw new Error(`Cannot dispatch ${k.label}: parameter "${name}" is missing`);
      if (type === "f32") this.#f32[base + j] = v;
      else if (type === "i32") this.#i32[base + j] = v;
      else this.#u32[base + j] = v;
    });
    this.#uniformUsed = offset + size;
    return [offset, size];
  }

  /**
   * Records one dispatch of `k` with uniform `values`, writing `out` (binding 1) and reading `inputs`
   * (bindings 2..). Submits when `submitEvery` dispatches are pending.
   */
  dispatch(
    k: Kernel,
    values: Readonly<Record<string, number>>,
    out: GpuStorage,
    inputs: readonly GpuStorage[],
    grid: Grid,
  ): void {
    this.checkBinding(out, k.label);
    for (const s of inputs) this.checkBinding(s, k.label);
    this.dispatchBindings(k, values, [out, ...inputs], grid);
  }

  /**
   * Records one dispatch of `k` binding `storages` at 1, 2, ... (checked when their ops were recorded:
   * the fuser's inputs may have been freed since, their buffers being deferred). Dispatches any pending
   * fused ops first, so recorded order is program order.
   */
  dispatchBindings(
    k: Kernel,
    values: Readonly<Record<string, number>>,
    storages: readonly GpuStorage[],
    grid: Grid,
  ): void {
    this.fuser?.flush();
    const max = this.#limits.maxComputeWorkgroupsPerDimension;
    if (grid.some((g) => g > max)) {
      throw new Error(`Cannot dispatch ${k.label}: grid [${grid.join(", ")}] exceeds ${max} per dimension`);
    }
    if (grid.some((g) => g === 0)) return;
    if (this.#querySet && 2 * (this.#queryKeys.length + 1) > PROFILE_QUERIES) this.submit();
    const [offset, size] = this.#writeParams(k, values);
    let bindGroup: GPUBindGroup;
    if (k.dynamicUniform) {
      let key = k.label;
      for (const s of storages) key += `|${this.#bufferId(s.buffer)}:${s.size}`;
      const hit = this.reuseBindGroups ? this.#groups.get(key) : undefined;
      if (hit) {
        bindGroup = hit;
        this.bindGroupHits++;
      } else {
        bindGroup = this.#createBindGroup(k, 0, size, storages);
        if (this.#groups.size >= MAX_CACHED_BIND_GROUPS) this.#groups.clear();
        this.#groups.set(key, bindGroup);
      }
    } else bindGroup = this.#createBindGroup(k, offset, size, storages);
    const pass = this.#querySet
      ? this.#openProfiledPass(`${k.label} n=${storages[0].size} [${grid.join(",")}]`)
      : this.#openPass();
    pass.setPipeline(k.pipeline);
    if (k.dynamicUniform) pass.setBindGroup(0, bindGroup, [offset]);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    if (this.#querySet) {
      pass.end();
      this.#pass = null;
    }
    for (const s of storages) s.lastUse = this.#batch;
    this.dispatches++;
    if (this.dispatchCounts) this.dispatchCounts.set(k.label, (this.dispatchCounts.get(k.label) ?? 0) + 1);
    if (++this.#pending >= this.#submitEvery) this.submit();
  }

  #bufferId(b: GPUBuffer): number {
    let id = this.#bufferIds.get(b);
    if (id === undefined) this.#bufferIds.set(b, id = this.#nextBufferId++);
    return id;
  }

  #createBindGroup(k: Kernel, offset: number, size: number, storages: readonly GpuStorage[]): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.#uniform, offset, size } }];
    storages.forEach((s, j) => {
      entries.push({ binding: 1 + j, resource: { buffer: s.buffer, offset: 0, size: bindBytes(s.size) } });
    });
    this.bindGroups++;
    return this.#device.createBindGroup({ layout: k.layout, entries });
  }

  /** Forgets every cached bind group (call before destroying pooled buffers). */
  clearBindGroups(): void {
    this.#groups.clear();
  }

  /**
   * Lets `record` append its own dispatches (pipelines, bind groups, uniform buffers of its own) to the
   * open compute pass, in program order: pending fused ops are dispatched first, and when `record`
   * returns true every storage in `storages` (what it reads and writes) is marked as used by the current
   * batch, so freeing one defers its buffer until this batch is submitted. `record` must record nothing
   * when it returns false (the caller then uses its own kernel). Counts as `dispatches` dispatches
   * towards `submitEvery`. Throws when a storage was freed or exceeds a binding.
   */
  recordExternal(
    label: string,
    storages: readonly GpuStorage[],
    dispatches: number,
    record: (pass: GPUComputePassEncoder) => boolean,
  ): boolean {
    for (const s of storages) this.checkBinding(s, label);
    this.fuser?.flush();
    if (this.#querySet && 2 * (this.#queryKeys.length + 1) > PROFILE_QUERIES) this.submit();
    const pass = this.#querySet
      ? this.#openProfiledPass(`${label} n=${storages[0]?.size ?? 0}`)
      : this.#openPass();
    const done = record(pass);
    if (this.#querySet) {
      // An empty timed pass when declined; its entry is named so.
      if (!done) this.#queryKeys[this.#queryKeys.length - 1] += " (declined)";
      pass.end();
      this.#pass = null;
    }
    if (!done) return false;
    for (const s of storages) s.lastUse = this.#batch;
    this.dispatches += dispatches;
    if (this.dispatchCounts) {
      this.dispatchCounts.set(label, (this.dispatchCounts.get(label) ?? 0) + dispatches);
    }
    this.#pending += dispatches;
    if (this.#pending >= this.#submitEvery) this.submit();
    return true;
  }

  /** A new pass of one dispatch whose start and end are timestamped (profiling only). */
  #openProfiledPass(key: string): GPUComputePassEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    this.#encoder ??= this.#device.createCommandEncoder();
    const j = this.#queryKeys.length;
    this.#queryKeys.push(key);
    return this.#encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#querySet!,
        beginningOfPassWriteIndex: 2 * j,
        endOfPassWriteIndex: 2 * j + 1,
      },
    });
  }

  /** Resolves this batch's timestamps into a mappable buffer; returns the read-back step to run after submit. */
  #resolveProfile(enc: GPUCommandEncoder): (() => void) | null {
    const keys = this.#queryKeys;
    if (keys.length === 0) return null;
    this.#queryKeys = [];
    const bytes = keys.length * 16;
    const resolve = this.#device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.#device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    enc.resolveQuerySet(this.#querySet!, 0, 2 * keys.length, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
    return () => {
      const done = staging.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(staging.getMappedRange());
        keys.forEach((key, j) => {
          const ms = Number(t[2 * j + 1] - t[2 * j]) / 1e6;
          const e = this.#timings.get(key);
          if (e) {
            e.count++;
            e.ms += ms;
          } else this.#timings.set(key, { count: 1, ms });
        });
        staging.unmap();
      }).finally(() => {
        staging.destroy();
        resolve.destroy();
        this.#profileReads.delete(done);
      });
      this.#profileReads.add(done);
    };
  }

  /**
   * GPU time per kind of dispatch (kernel key, output size and grid) recorded so far, largest first;
   * empty unless created with `profile`. Submits and waits for outstanding timestamps. `reset` clears the
   * totals afterwards.
   */
  async kernelProfile(reset = false): Promise<KernelTiming[]> {
    this.submit();
    while (this.#profileReads.size > 0) await Promise.all([...this.#profileReads]);
    const out = [...this.#timings].map(([key, e]) => ({ key, count: e.count, ms: e.ms }));
    if (reset) this.#timings.clear();
    return out.sort((a, b) => b.ms - a.ms);
  }

  #openPass(): GPUComputePassEncoder {
    if (this.#pass) return this.#pass;
    this.#encoder ??= this.#device.createCommandEncoder();
    this.#pass = this.#encoder.beginComputePass();
    return this.#pass;
  }

  /** Submits the open batch (if any), with optional extra commands recorded after its compute pass. */
  submit(extra?: (enc: GPUCommandEncoder) => void): void {
    this.fuser?.flush();
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (extra) {
      this.#encoder ??= this.#device.createCommandEncoder();
      extra(this.#encoder);
    }
    if (!this.#encoder) return;
    if (this.#uniformUsed > 0) {
      this.#device.queue.writeBuffer(this.#uniform, 0, this.#staging, 0, this.#uniformUsed);
    }
    const readProfile = this.#querySet ? this.#resolveProfile(this.#encoder) : null;
    const t0 = performance.now();
    this.#device.queue.submit([this.#encoder.finish()]);
    this.submitMs += performance.now() - t0;
    readProfile?.();
    this.#encoder = null;
    this.#uniformUsed = 0;
    this.#pending = 0;
    this.#batch++;
    this.submits++;
    this.pool.onSubmit();
  }

  /** Throws the first device or compile error seen so far, naming `action`. */
  async checkErrors(action: string): Promise<void> {
    try {
      await this.pipelines.checkErrors();
    } catch (e) {
      throw new Error(`Cannot ${action}: ${(e as Error).message}`);
    }
    if (this.#deviceError !== null) {
      throw new Error(`Cannot ${action}: a previous WebGPU command failed: ${this.#deviceError.trim()}`);
    }
  }

  /** Submits everything and waits until the queue is idle; throws recorded errors. */
  async sync(): Promise<void> {
    this.submit();
    const t0 = performance.now();
    await this.#device.queue.onSubmittedWorkDone();
    this.waitMs += performance.now() - t0;
    await this.checkErrors("sync the WebGPU backend");
  }

  /** Submits everything plus a copy of `s` to a mappable buffer, and resolves with its values. */
  async read(s: GpuStorage): Promise<Float32Array> {
    if (s.freed) throw new Error(`Cannot read a storage of ${s.size} values: it was freed`);
    if (s.size === 0) {
      this.submit();
      return new Float32Array(0);
    }
    const bytes = s.size * 4;
    const staging = this.#device.createBuffer({
      size: Math.ceil(bytes / 4) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.readbacks++;
    this.readbackBytes += bytes;
    this.stagingBytes += staging.size;
    try {
      this.submit((enc) => enc.copyBufferToBuffer(s.buffer, 0, staging, 0, bytes));
      const t0 = performance.now();
      try {
        await staging.mapAsync(GPUMapMode.READ);
        this.waitMs += performance.now() - t0;
      } catch (e) {
        await this.checkErrors(`read a storage of ${s.size} values`);
        throw e;
      }
      const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      await this.checkErrors(`read a storage of ${s.size} values`);
      return out;
    } finally {
      staging.destroy();
    }
  }
}
