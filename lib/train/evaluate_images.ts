/**
 * Per-image test bits/dim under the paper's protocol (the authors' `validate`): eval mode (every
 * residual block: 20 exact terms, then the roulette), no gradients, uniform dequantisation of the
 * stored pixel levels, the images in file order. Each image is evaluated `repeats` times with
 * independent noise and estimator draws, and its bits/dim is the mean of those. Every random number
 * depends only on (seed, repeat, batch), so a run is reproducible and its parts can be rerun alone.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, tidy } from "../engine/tensor.ts";
import type { BatchSource } from "../data/batches.ts";
import { dequantize } from "../data/batches.ts";
import { Rng as DataRng } from "../data/rng.ts";
import type { ResidualFlow } from "../flow/model.ts";
import { EVAL_RNG_TAG, type EvalResult, meanAndStandardError } from "./evaluate.ts";

/** Tag of the dequantisation noise streams (kept apart from the estimator's). */
export const DEQUANT_RNG_TAG = 0x6e6f6973; // "nois"

/** Options of {@link evaluatePerImage}. */
export interface PerImageOptions {
  /** Seed of the noise and the estimator's random numbers. */
  readonly seed: number;
  /** Independent evaluations of every image, averaged (default 1). */
  readonly repeats?: number;
  /** Images per forward pass (the authors' `--val-batchsize` is 200). */
  readonly batchSize?: number;
  /** Evaluate only the first `limit` images (default: all). */
  readonly limit?: number;
  /** Called after each batch with the image evaluations done and their total (images × repeats). */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Per-image bits/dim and their summary. */
export interface PerImageResult extends Omit<EvalResult, "perImage"> {
  /** Bits/dim of image i (file order), the mean over the repeats. */
  readonly perImage: Float64Array;
  /** Repeats per image. */
  readonly repeats: number;
}

/**
 * Evaluates `model` (with whatever weights and power-iteration vectors it holds: swap in the EMA and
 * call `updateLipschitz()` first) on the first images of `data`. One readback per batch.
 */
export async function evaluatePerImage(
  model: ResidualFlow,
  data: BatchSource,
  device: Device,
  opts: PerImageOptions,
): Promise<PerImageResult> {
  const n = Math.min(data.count, opts.limit ?? data.count);
  const repeats = opts.repeats ?? 1;
  const batchSize = opts.batchSize ?? 200;
  if (!(n >= 1)) throw new Error(`Cannot evaluate on ${n} images: expected at least one`);
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new Error(`Cannot evaluate with ${repeats} repeats: expected a positive integer`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`Cannot evaluate with batch size ${batchSize}: expected a positive integer`);
  }
  const [c, h, w] = data.shape;
  const per = c * h * w;
  const sums = new Float64Array(n);
  const total = n * repeats;
  let done = 0;
  opts.onProgress?.(0, total);
  for (let r = 0; r < repeats; r++) {
    for (let b = 0, start = 0; start < n; b++, start += batchSize) {
      const k = Math.min(batchSize, n - start);
      const x01 = new Float32Array(k * per);
      dequantize(
        data.images.subarray(start * per, (start + k) * per),
        data.nvals,
        new DataRng(opts.seed, DEQUANT_RNG_TAG, r, b),
        x01,
      );
      const rng = new Rng(opts.seed).fork(EVAL_RNG_TAG).fork(r).fork(b);
      const bpd = noGrad(() =>
        tidy(() => {
          const x = tensor(x01, [k, c, h, w], device);
          const out = model.forward(x, { training: false, rng });
          return model.bitsPerDim(out.logpx!);
        })
      );
      const host = await bpd.read();
      bpd.dispose();
      for (let i = 0; i < k; i++) sums[start + i] += host[i];
      done += k;
      opts.onProgress?.(done, total);
    }
  }
  const perImage = sums.map((s) => s / repeats);
  return { ...meanAndStandardError(perImage), perImage, repeats };
}
