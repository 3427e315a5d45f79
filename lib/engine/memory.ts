/**
 * Byte accounting for one device: bytes live in tensors, the peak since the last reset, and the
 * number of allocations. The tensor layer updates it on every storage allocation and release, so
 * every backend (CPU, WebGPU, meta) reports the same figures for the same computation.
 * @module
 */

/** A snapshot of a device's memory figures. */
export interface MemoryStats {
  /** Bytes held by live tensor storages now. */
  readonly bytesLive: number;
  /** Highest `bytesLive` since the last {@link MemoryAccount.resetPeak}. */
  readonly peakBytes: number;
  /** Bytes held by the backend's buffer pool (freed storages kept for reuse; not counted as live). */
  readonly poolBytes: number;
  /** Storages currently allocated. */
  readonly storagesLive: number;
}

/** Mutable counters owned by a device. */
export class MemoryAccount {
  #live = 0;
  #peak = 0;
  #count = 0;

  /** Records an allocation of `bytes`. */
  alloc(bytes: number): void {
    this.#live += bytes;
    this.#count++;
    if (this.#live > this.#peak) this.#peak = this.#live;
  }

  /** Records a release of `bytes`. */
  release(bytes: number): void {
    this.#live -= bytes;
    this.#count--;
  }

  /** Sets the peak to the current live bytes. */
  resetPeak(): void {
    this.#peak = this.#live;
  }

  /** Current figures; `poolBytes` comes from the backend. */
  stats(poolBytes: number): MemoryStats {
    return { bytesLive: this.#live, peakBytes: this.#peak, poolBytes, storagesLive: this.#count };
  }
}
