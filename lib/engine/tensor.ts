/**
 * Tensors, devices, ownership and scopes.
 *
 * Ownership model (explicit, like jax-js / tfjs):
 * - Every tensor has a reference count. Its creator holds one reference (the *handle*); graph nodes
 *   that saved it for backward hold others. `dispose()` drops the handle; when the count reaches
 *   zero the storage is released (storages are shared by views such as `reshape` and counted too).
 * - `tidy(fn)` disposes every tensor created inside `fn` except those it returns (and those marked
 *   with `keep`). Returned tensors move to the enclosing scope.
 * - A tensor with a gradient node keeps that node alive; a node keeps its parents and saved tensors
 *   alive until it is released (after backward, or when no tensor refers to it any more).
 * @module
 */
import type { Backend, Shape, Storage } from "./backend.ts";
import { fmt, sizeOf } from "./backend.ts";
import { MemoryAccount, type MemoryStats } from "./memory.ts";
import type { Node } from "./graph.ts";

/** A backend together with its memory account and cached constants. */
export class Device {
  /** The compute backend. */
  readonly backend: Backend;
  /** Byte accounting of tensors on this device. */
  readonly memory: MemoryAccount = new MemoryAccount();
  readonly #bytesPerElement: number;

  /** Wraps a backend. */
  constructor(backend: Backend) {
    this.backend = backend;
    this.#bytesPerElement = backend.dtype === "float64" ? 8 : 4;
  }

  /** Backend name ("cpu", "webgpu", "meta"). */
  get name(): string {
    return this.backend.name;
  }

  /** Bytes per element of this device's storages. */
  get bytesPerElement(): number {
    return this.#bytesPerElement;
  }

  /** Memory figures: live and peak tensor bytes, pool bytes. */
  memoryStats(): MemoryStats {
    return this.memory.stats(this.backend.poolBytes());
  }

  /** Restarts peak tracking from the current live bytes. */
  resetPeak(): void {
    this.memory.resetPeak();
  }
}

/** A reference-counted storage shared by a tensor and its views. */
export class Buffer {
  /** Backend storage. */
  readonly storage: Storage;
  /** Owning device. */
  readonly device: Device;
  /** Accounted size in bytes. */
  readonly bytes: number;
  #refs = 1;

  /** Takes ownership of a freshly allocated storage. */
  constructor(device: Device, storage: Storage) {
    this.device = device;
    this.storage = storage;
    this.bytes = storage.size * device.bytesPerElement;
    device.memory.alloc(this.bytes);
  }

  /** Adds a reference. */
  retain(): void {
    this.#refs++;
  }

  /** Drops a reference and frees the storage at zero. */
  release(): void {
    if (--this.#refs === 0) {
      this.device.memory.release(this.bytes);
      this.device.backend.free(this.storage);
    }
  }
}

let nextId = 1;
const scopes: Set<Tensor>[] = [];
let gradEnabled = true;

/** A dense float tensor on a device. */
export class Tensor {
  /** Unique id (for debugging and graph bookkeeping). */
  readonly id: number = nextId++;
  /** Axis sizes. */
  readonly shape: readonly number[];
  /** Shared storage. */
  readonly buffer: Buffer;
  /** Gradient node (op node or leaf accumulator), or null when no gradient flows. */
  node: Node | null = null;
  #refs = 1;
  #handleDisposed = false;
  #kept = false;

  /** Wraps a buffer (taking one of its references) as a tensor of `shape`. Prefer the factory functions. */
  constructor(buffer: Buffer, shape: Shape) {
    this.buffer = buffer;
    this.shape = [...shape];
    if (scopes.length > 0) scopes[scopes.length - 1].add(this);
  }

  /** The device holding the data. */
  get device(): Device {
    return this.buffer.device;
  }

  /** Element count. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of axes. */
  get rank(): number {
    return this.shape.length;
  }

  /** True when gradients flow to this tensor. */
  get requiresGrad(): boolean {
    return this.node !== null;
  }

  /** True once the data has been released (the handle and every graph reference are gone). */
  get isFreed(): boolean {
    return this.#refs === 0;
  }

  /** True once `dispose()` was called on the handle. */
  get isDisposed(): boolean {
    return this.#handleDisposed;
  }

  /** Adds a reference (used by graph nodes that save this tensor). */
  retain(): this {
    if (this.#refs === 0) {
      throw new Error(`Cannot retain tensor #${this.id} ${fmt(this.shape)}: it was already freed`);
    }
    this.#refs++;
    return this;
  }

  /** Drops a reference; frees the storage and releases the node at zero. */
  release(): void {
    if (this.#refs === 0) return;
    if (--this.#refs === 0) {
      this.buffer.release();
      const node = this.node;
      this.node = null;
      node?.release();
    }
  }

  /** Drops the creator's handle. Idempotent. Data saved by a graph stays until that graph is released. */
  dispose(): void {
    if (this.#handleDisposed) return;
    this.#handleDisposed = true;
    this.release();
  }

  /** Marks this tensor so no enclosing `tidy` disposes it (parameters, optimizer state). */
  keep(): this {
    this.#kept = true;
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** True if marked with {@link Tensor.keep}. */
  get isKept(): boolean {
    return this.#kept;
  }

  /** Throws if the data is gone. */
  assertAlive(action: string): void {
    if (this.#refs === 0) {
      throw new Error(`Cannot ${action}: tensor #${this.id} ${fmt(this.shape)} was disposed`);
    }
  }

  /** Downloads the data (Float32Array, or Float64Array on a float64 CPU device). */
  async read(): Promise<Float32Array | Float64Array> {
    this.assertAlive("read a tensor");
    return await this.device.backend.read(this.buffer.storage);
  }

  /** Downloads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(`Cannot take item() of tensor ${fmt(this.shape)}: it has ${this.size} elements`);
    }
    return (await this.read())[0];
  }

  /** A tensor sharing this data with no gradient history. */
  detach(): Tensor {
    this.assertAlive("detach");
    this.buffer.retain();
    return new Tensor(this.buffer, this.shape);
  }

  /** Readable summary. */
  toString(): string {
    return `Tensor#${this.id}${fmt(this.shape)}@${this.device.name}`;
  }
}

/** Wraps a new storage from `device.backend` as a tensor. */
export function wrap(device: Device, storage: Storage, shape: Shape): Tensor {
  if (storage.size !== sizeOf(shape)) {
    throw new Error(
      `Cannot wrap storage of ${storage.size} elements as shape ${fmt(shape)} (${sizeOf(shape)} elements)`,
    );
  }
  return new Tensor(new Buffer(device, storage), shape);
}

/** A view of `t`'s data with another shape of the same size (no copy, no gradient link). */
export function viewAs(t: Tensor, shape: Shape): Tensor {
  t.assertAlive("reshape");
  if (sizeOf(shape) !== t.size) {
    throw new Error(
      `Cannot reshape ${fmt(t.shape)} (${t.size} elements) to ${fmt(shape)} (${sizeOf(shape)} elements)`,
    );
  }
  t.buffer.retain();
  return new Tensor(t.buffer, shape);
}

/** Is gradient recording on? */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` with gradient recording off (no graph is built). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` with gradient recording set to `enabled`. */
export function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Any structure of tensors (returned from `tidy`). */
export type TensorContainer = Tensor | TensorContainer[] | { [k: string]: TensorContainer } | unknown;

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those in its return value (arrays, maps
 * and plain objects are searched) and kept ones. Returned tensors belong to the enclosing scope.
 *
 * @example
 * ```ts
 * import { add, createDevice, mul, tensor } from "./mod.ts";
 *
 * const device = await createDevice("cpu");
 * const x = tensor([1, 2, 3], [3], device);
 * const y = tidy(() => add(mul(x, x), 1)); // the temporary x*x is freed
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error("Cannot tidy an async function: tidy takes a synchronous function (use scopeAsync)");
  }
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  for (const t of scope) if (!keepSet.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) { for (const t of keepSet) if (scope.has(t)) parent.add(t); }
  return result;
}

/** The async form of {@link tidy}: tensors created while `fn` runs (including after awaits) are tracked. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } finally {
    const i = scopes.lastIndexOf(scope);
    if (i >= 0) scopes.splice(i, 1);
  }
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  for (const t of scope) if (!keepSet.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) { for (const t of keepSet) if (scope.has(t)) parent.add(t); }
  return result;
}

/** Disposes every tensor in a structure. */
export function dispose(value: unknown): void {
  const s = new Set<Tensor>();
  collect(value, s);
  for (const t of s) t.dispose();
}
