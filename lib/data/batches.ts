/**
 * Minibatches for training and evaluation: a seeded shuffle per epoch, the paper's augmentations
 * (random horizontal flip; 4-pixel reflect padding and a random crop back to size) and uniform
 * dequantization `x = (k + u) / nvals`, `u ~ U[0, 1)` (SPEC 4.6), into `Float32Array` `[B, C, H, W]`.
 *
 * Everything is a pure function of (seed, epoch, batch index): the order of epoch `e` comes from
 * `Rng(seed, 1, e)`, and the randomness of batch `b` of epoch `e` from `Rng(seed, 2, e, b)`, drawn per
 * image in a fixed order (crop row and column offsets, flip bit, then the noise of every value in
 * `[C, H, W]` order). A run resumed at any step therefore sees exactly the batches it would have seen.
 *
 * Dequantization noise has `F = 24 − log2(nvals)` random bits (16 for 8-bit data, 19 for 5-bit), so
 * `k + u` and `x` are exact in float32: `x < 1` and `floor(x · nvals) = k` hold exactly.
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { Rng, shuffleInPlace } from "./rng.ts";

/** Options of a {@link Batcher}. */
export interface BatchOptions {
  /** Images per batch. */
  readonly batchSize: number;
  /** Seed of the whole pipeline. */
  readonly seed: number;
  /** Shuffle each epoch (default true; false keeps the dataset order, as for evaluation). */
  readonly shuffle?: boolean;
  /** Random horizontal flip with probability ½ (CIFAR-10 and CelebA training). */
  readonly flip?: boolean;
  /** Reflect-pad by this many pixels and crop back to size at a uniform offset (4 for SVHN/CIFAR hybrid; 0 = off). */
  readonly cropPad?: number;
  /** Add uniform noise (default true): `(k + u) / nvals`; false gives `k / nvals`. */
  readonly dequantize?: boolean;
  /** Drop a last, incomplete batch (default false). */
  readonly dropLast?: boolean;
}

/** One minibatch. */
export interface Batch {
  /** Images `[B, C, H, W]` in [0, 1). */
  readonly x: Float32Array;
  /** Labels of the images, or null for unlabelled data. */
  readonly labels: Int32Array | null;
  /** Dataset indices of the images. */
  readonly indices: Int32Array;
  /** Number of images B. */
  readonly size: number;
  /** The epoch it belongs to. */
  readonly epoch: number;
  /** Its index within the epoch. */
  readonly index: number;
}

/** What a batcher needs of a dataset. */
export type BatchSource = Pick<Dataset, "images" | "labels" | "shape" | "count" | "nvals">;

/** Makes deterministic minibatches of a dataset. */
export class Batcher {
  /** The data batched. */
  readonly source: BatchSource;
  /** The options, defaults filled in. */
  readonly opts: Required<BatchOptions>;
  #orderEpoch = -1;
  #order: Int32Array = new Int32Array(0);

  /** Checks the options against the dataset. */
  constructor(source: BatchSource, opts: BatchOptions) {
    const pad = opts.cropPad ?? 0;
    const [, h, w] = source.shape;
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
      throw new RangeError(`Cannot batch: batchSize ${opts.batchSize}, expected a positive integer`);
    }
    if (!(Number.isInteger(pad) && pad >= 0 && pad < h && pad < w)) {
      throw new RangeError(
        `Cannot batch: cropPad ${pad}, expected an integer in [0, ${Math.min(h, w) - 1}] (reflect padding)`,
      );
    }
    this.source = source;
    this.opts = {
      batchSize: opts.batchSize,
      seed: opts.seed,
      shuffle: opts.shuffle ?? true,
      flip: opts.flip ?? false,
      cropPad: pad,
      dequantize: opts.dequantize ?? true,
      dropLast: opts.dropLast ?? false,
    };
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    const { count } = this.source;
    const b = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(count / b) : Math.ceil(count / b);
  }

  /** The image order of `epoch` (a permutation of 0…N−1, or the identity without shuffling). */
  order(epoch: number): Int32Array {
    if (epoch !== this.#orderEpoch) {
      const a = new Int32Array(this.source.count);
      for (let i = 0; i < a.length; i++) a[i] = i;
      if (this.opts.shuffle) shuffleInPlace(a, new Rng(this.opts.seed, 1, epoch));
      this.#order = a;
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /** Batch `index` of `epoch`. */
  batch(epoch: number, index: number): Batch {
    if (!(index >= 0 && index < this.batchesPerEpoch)) {
      throw new RangeError(`Cannot make batch ${index}: an epoch has ${this.batchesPerEpoch} batches`);
    }
    const { batchSize } = this.opts;
    const order = this.order(epoch);
    const indices = order.slice(index * batchSize, Math.min(order.length, (index + 1) * batchSize));
    const [c, h, w] = this.source.shape;
    const per = c * h * w;
    const x = new Float32Array(indices.length * per);
    const rng = new Rng(this.opts.seed, 2, epoch, index);
    const work = new Uint8Array(per);
    const tmp = new Uint8Array(per);
    const pad = this.opts.cropPad;
    for (let i = 0; i < indices.length; i++) {
      let img = this.source.images.subarray(indices[i] * per, (indices[i] + 1) * per);
      if (pad > 0) {
        reflectPadCrop(img, work, c, h, w, pad, rng.int(2 * pad + 1), rng.int(2 * pad + 1));
        img = work;
      }
      if (this.opts.flip && (rng.nextU32() & 1) === 1) {
        flipHorizontal(img, tmp, c, h, w);
        work.set(tmp);
        img = work;
      }
      const out = x.subarray(i * per, (i + 1) * per);
      if (this.opts.dequantize) dequantize(img, this.source.nvals, rng, out);
      else for (let j = 0; j < per; j++) out[j] = img[j] / this.source.nvals;
    }
    let labels: Int32Array | null = null;
    if (this.source.labels) {
      labels = new Int32Array(indices.length);
      for (let i = 0; i < indices.length; i++) labels[i] = this.source.labels[indices[i]];
    }
    return { x, labels, indices, size: indices.length, epoch, index };
  }

  /** All batches of `epoch`, in order. */
  *epoch(epoch: number): Generator<Batch> {
    for (let b = 0; b < this.batchesPerEpoch; b++) yield this.batch(epoch, b);
  }
}

/** Mirrors each row of a `[C, H, W]` image: `dst[c, y, x] = src[c, y, W−1−x]`. */
export function flipHorizontal(src: Uint8Array, dst: Uint8Array, c: number, h: number, w: number): void {
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const row = (ch * h + y) * w;
      for (let x = 0; x < w; x++) dst[row + x] = src[row + w - 1 - x];
    }
  }
}

/**
 * Reflect-pads a `[C, H, W]` image by `pad` on every side (edge not repeated, as torchvision's
 * `padding_mode="reflect"`) and crops `H×W` at offset (`dy`, `dx`) ∈ [0, 2·pad]²; (pad, pad) is the identity.
 */
export function reflectPadCrop(
  src: Uint8Array,
  dst: Uint8Array,
  c: number,
  h: number,
  w: number,
  pad: number,
  dy: number,
  dx: number,
): void {
  const refl = (p: number, n: number) => (p < 0 ? -p : p >= n ? 2 * (n - 1) - p : p);
  for (let ch = 0; ch < c; ch++) {
    const plane = ch * h * w;
    for (let y = 0; y < h; y++) {
      const sy = refl(y + dy - pad, h);
      for (let x = 0; x < w; x++) dst[plane + y * w + x] = src[plane + sy * w + refl(x + dx - pad, w)];
    }
  }
}

/**
 * Uniform dequantization into `out`: `out[j] = (k_j + u_j) / nvals` with `u_j` drawn from `rng` with
 * `24 − log2(nvals)` bits, exact in float32. `nvals` must be a power of two (256 or 32).
 */
export function dequantize(k: Uint8Array, nvals: number, rng: Rng, out: Float32Array): void {
  const bits = Math.log2(nvals);
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new RangeError(`Cannot dequantize: nvals ${nvals}, expected a power of two from 2 to 256`);
  }
  const f = 24 - bits;
  const scale = 1 / (nvals * 2 ** f);
  const unit = 2 ** f;
  for (let j = 0; j < k.length; j++) out[j] = (k[j] * unit + (rng.nextU32() >>> (32 - f))) * scale;
}
