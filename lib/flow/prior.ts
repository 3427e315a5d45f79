/**
 * The standard normal prior and bits/dim (SPEC §4.6, official `train_img.py compute_loss`):
 * log p(z) = Σ_i (−½ log 2π − z_i²/2) per example; log p(x) = log p(z) + Σ log-dets for the continuous
 * (dequantised) x; the discrete bound subtracts D·log(nvals); bits/dim = −log p_discrete(x)/(D·ln 2),
 * with D = H·W·C of the image at data resolution.
 * @module
 */
import { mul, square, sub } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { reshape } from "../engine/ops/shape.ts";
import { randn, type Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";

/** ½ log 2π. */
export const HALF_LOG_2PI: number = 0.5 * Math.log(2 * Math.PI);

/**
 * Standard normal log-density per example: Σ over all non-batch axes of −½ log 2π − z²/2, shape [B].
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const z = randn([4, 1, 28, 28], new Rng(0), await createDevice("cpu"));
 * const logpz = standardNormalLogProb(z); // z [B, ...] -> [B]
 * ```
 */
export function standardNormalLogProb(z: Tensor): Tensor {
  if (z.rank < 1) throw new Error("Cannot take a per-example log-density of a scalar: expected [B, ...]");
  return tidy(() => {
    const flat = reshape(z, [z.shape[0], -1]);
    return sub(mul(sum(square(flat), 1), -0.5), HALF_LOG_2PI * flat.shape[1]);
  });
}

/** Settings of the bits/dim conversion. */
export interface BitsPerDimOptions {
  /** D: values per example at data resolution, H·W·(C + padding channels). */
  readonly dims: number;
  /** Quantisation levels: 256 for 8-bit data, 32 for 5-bit. */
  readonly nvals: number;
  /** Divisor of the bits/dim (H·W·C of the image, without padding channels); default `dims`. */
  readonly imageDims?: number;
}

function check(opts: BitsPerDimOptions): void {
  if (!(opts.dims > 0) || !(opts.nvals > 1) || (opts.imageDims !== undefined && !(opts.imageDims > 0))) {
    throw new Error(
      `Cannot convert to bits/dim with dims ${opts.dims}, nvals ${opts.nvals}, imageDims ${opts.imageDims}: expected positive sizes and nvals > 1`,
    );
  }
}

/** log p(x) − D·log(nvals): the uniform-dequantisation lower bound on the discrete log-likelihood. */
export function discreteLogLikelihood(logpx: Tensor, opts: BitsPerDimOptions): Tensor {
  check(opts);
  return sub(logpx, opts.dims * Math.log(opts.nvals));
}

/**
 * Bits/dim per example from the continuous log p(x): −(log p(x) − D·log nvals)/(imageDims·ln 2).
 *
 * @example
 * ```ts
 * import { add, createDevice, randn, Rng, zeros } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const z = randn([4, 1, 28, 28], new Rng(0), device);
 * const logdet = zeros([4], device); // per-example log-dets of the flow
 * const bpd = bitsPerDim(add(standardNormalLogProb(z), logdet), { dims: 784, nvals: 256 });
 * ```
 */
export function bitsPerDim(logpx: Tensor, opts: BitsPerDimOptions): Tensor {
  check(opts);
  return tidy(() => mul(discreteLogLikelihood(logpx, opts), -1 / ((opts.imageDims ?? opts.dims) * Math.LN2)));
}

/** The same conversion for host numbers. */
export function bitsPerDimHost(logpx: number, opts: BitsPerDimOptions): number {
  check(opts);
  return -(logpx - opts.dims * Math.log(opts.nvals)) / ((opts.imageDims ?? opts.dims) * Math.LN2);
}

/** z ~ N(0, T²·I) of the given shape: a prior sample at temperature T (default 1) for sampling. */
export function samplePrior(shape: readonly number[], rng: Rng, device: Device, temperature = 1): Tensor {
  if (!(temperature >= 0)) {
    throw new Error(`Cannot sample the prior at temperature ${temperature}: expected >= 0`);
  }
  if (temperature === 1) return randn(shape, rng, device);
  return tidy(() => mul(randn(shape, rng, device), temperature));
}
