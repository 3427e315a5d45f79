/**
 * Test bits/dim of a density model with the evaluation estimator (SPEC 1.0 and 2.3): eval mode (20
 * exact terms plus roulette in every residual block), no gradients, the mean over test examples with
 * its standard error. The dequantisation noise and the estimator's N and probes depend only on the
 * seed and the batch index, so two evaluations with the same seed use the same random numbers.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import type { Device } from "../engine/tensor.ts";
import { Batcher, type BatchSource } from "../data/batches.ts";
import type { ResidualFlow } from "../flow/model.ts";

/** Tag of the evaluation streams, so they never coincide with the training streams. */
export const EVAL_RNG_TAG = 0x6576616c; // "eval"

/** Options of {@link evaluateBitsPerDim}. */
export interface EvaluateOptions {
  /** Seed of the dequantisation noise and of the estimator's random numbers. */
  readonly seed: number;
  /** Images per forward pass (the official `--val-batchsize` is 200). */
  readonly batchSize?: number;
  /** Evaluate only the first `limit` images of the split (default: all). */
  readonly limit?: number;
  /** Called at the start (0 done) and after each batch with the images done and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Keep every image's bits/dim in the result (`perImage`), for paired comparisons of two models. */
  readonly keepPerImage?: boolean;
}

/** Result of an evaluation. */
export interface EvalResult {
  /** Mean bits/dim over the examples. */
  readonly bitsPerDim: number;
  /** Standard error of the mean over examples: sd / √n (sample sd; 0 for one example). */
  readonly standardError: number;
  /** Number of examples. */
  readonly count: number;
  /** Non-finite per-example values met (they are left out of the mean and reported here). */
  readonly nonFinite: number;
  /**
   * Bits/dim of each example in data order (non-finite ones included as they are), when asked for:
   * two evaluations with the same seed see the same images, noise and estimator draws, so their
   * per-example differences are paired.
   */
  readonly perImage?: readonly number[];
}

/** The generator of evaluation batch `index` for `seed`. */
export function evalRng(seed: number, index: number): Rng {
  return new Rng(seed).fork(EVAL_RNG_TAG).fork(index);
}

/** Mean and standard error of the finite values of `xs`. */
export function meanAndStandardError(xs: ArrayLike<number>): EvalResult {
  let n = 0;
  let s = 0;
  let bad = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(xs[i])) {
      n++;
      s += xs[i];
    } else bad++;
  }
  const m = n ? s / n : NaN;
  let ss = 0;
  for (let i = 0; i < xs.length; i++) if (Number.isFinite(xs[i])) ss += (xs[i] - m) ** 2;
  const se = n > 1 ? Math.sqrt(ss / (n - 1)) / Math.sqrt(n) : 0;
  return { bitsPerDim: m, standardError: se, count: n, nonFinite: bad };
}

/**
 * Bits/dim of `model` on `data` in eval mode, with whatever weights and power-iteration vectors the
 * model holds now (the caller swaps in the EMA and refreshes the vectors: see the trainer's `evaluate`).
 * One readback per batch.
 */
export async function evaluateBitsPerDim(
  model: ResidualFlow,
  data: BatchSource,
  device: Device,
  opts: EvaluateOptions,
): Promise<EvalResult> {
  const total = Math.min(data.count, opts.limit ?? data.count);
  if (!(total >= 1)) throw new Error(`Cannot evaluate on ${total} images: expected at least one`);
  const limited: BatchSource = total === data.count ? data : {
    ...data,
    count: total,
    images: data.images.subarray(0, total * data.shape[0] * data.shape[1] * data.shape[2]),
    labels: data.labels ? data.labels.subarray(0, total) : null,
  };
  const batcher = new Batcher(limited, {
    batchSize: opts.batchSize ?? 200,
    seed: opts.seed,
    shuffle: false,
  });
  const values = new Float64Array(total);
  let done = 0;
  opts.onProgress?.(0, total);
  for (let b = 0; b < batcher.batchesPerEpoch; b++) {
    const batch = batcher.batch(0, b);
    const bpd = noGrad(() =>
      tidy(() => {
        const x = tensor(batch.x, [batch.size, ...data.shape], device);
        const out = model.forward(x, { training: false, rng: evalRng(opts.seed, b) });
        return model.bitsPerDim(out.logpx!);
      })
    );
    const host = await bpd.read();
    bpd.dispose();
    values.set(host, done);
    done += batch.size;
    opts.onProgress?.(done, total);
  }
  const summary = meanAndStandardError(values);
  return opts.keepPerImage ? { ...summary, perImage: Array.from(values) } : summary;
}
