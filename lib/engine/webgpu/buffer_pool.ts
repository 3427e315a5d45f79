/**
 * A pool of storage buffers keyed by rounded byte size, with counters.
 *
 * Sizes are rounded up to a size class (16-byte steps up to 256 bytes, then 4 classes per power of two,
 * so at most 25 % is wasted) to raise the hit rate. Freed buffers that may still be read or written by
 * commands not yet submitted are only *deferred*: they join the pool when the owner calls
 * {@link BufferPool.onSubmit}. Uploads use `queue.writeBuffer`, which runs on the queue timeline before
 * any unsubmitted encoder, so handing such a buffer to an upload would corrupt earlier commands.
 * @module
 */

/** Counters of a {@link BufferPool}. */
export interface PoolStats {
  /** Total bytes of all buffers ever created. */
  readonly bytesAllocatedTotal: number;
  /** Number of buffers ever created. */
  readonly buffersCreated: number;
  /** Number of acquisitions served from the pool. */
  readonly poolHits: number;
  /** Bytes currently held by the pool (free or deferred), not in use. */
  readonly poolBytes: number;
}

/** Usage of every pooled buffer: bound as storage, copied from (reads) and written to (uploads). */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** The size class of a request of `bytes` (at least 16, a multiple of 16). */
export function roundBufferBytes(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes));
  if (b <= 256) return Math.ceil(b / 16) * 16;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

/** Storage buffers by size class. */
export class BufferPool {
  readonly #device: GPUDevice;
  readonly #free = new Map<number, GPUBuffer[]>();
  #deferred: GPUBuffer[] = [];
  #poolBytes = 0;
  #bytesAllocatedTotal = 0;
  #buffersCreated = 0;
  #poolHits = 0;

  /** A pool creating buffers on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A buffer of at least `bytes` bytes (exactly `roundBufferBytes(bytes)`), from the pool if possible. */
  acquire(bytes: number): GPUBuffer {
    const size = roundBufferBytes(bytes);
    const list = this.#free.get(size);
    const hit = list?.pop();
    if (hit) {
      this.#poolHits++;
      this.#poolBytes -= size;
      return hit;
    }
    this.#buffersCreated++;
    this.#bytesAllocatedTotal += size;
    return this.#device.createBuffer({ size, usage: STORAGE_USAGE });
  }

  /** Returns a buffer that no unsubmitted command uses; it can be handed out at once. */
  release(buffer: GPUBuffer): void {
    let list = this.#free.get(buffer.size);
    if (!list) this.#free.set(buffer.size, list = []);
    list.push(buffer);
    this.#poolBytes += buffer.size;
  }

  /** Returns a buffer that unsubmitted commands may use; it joins the pool at the next {@link onSubmit}. */
  defer(buffer: GPUBuffer): void {
    this.#deferred.push(buffer);
    this.#poolBytes += buffer.size;
  }

  /** Call after every queue submit: deferred buffers become available. */
  onSubmit(): void {
    const d = this.#deferred;
    this.#deferred = [];
    for (const b of d) {
      this.#poolBytes -= b.size;
      this.release(b);
    }
  }

  /** Bytes held by the pool (free plus deferred). */
  poolBytes(): number {
    return this.#poolBytes;
  }

  /** The counters. */
  stats(): PoolStats {
    return {
      bytesAllocatedTotal: this.#bytesAllocatedTotal,
      buffersCreated: this.#buffersCreated,
      poolHits: this.#poolHits,
      poolBytes: this.#poolBytes,
    };
  }

  /** Destroys every free (not deferred) pooled buffer, returning the bytes released. */
  trim(): number {
    let freed = 0;
    for (const list of this.#free.values()) {
      for (const b of list) {
        freed += b.size;
        b.destroy();
      }
    }
    this.#free.clear();
    this.#poolBytes -= freed;
    return freed;
  }
}
