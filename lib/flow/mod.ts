/**
 * The Residual Flow library: Lipschitz-constrained layers (spectrally normalised convolutions and
 * linear layers, induced mixed norms, LipSwish and the other activations), invertible residual blocks
 * with the unbiased Russian-roulette log-det estimator, Neumann gradients and backward-in-forward,
 * the exact and truncated estimators, fixed-point inverses, ActNorm, squeeze, logit, dequantisation,
 * the standard normal prior and bits/dim, the coupling and 1×1-convolution baselines, the hybrid
 * classifier head, and the multiscale {@link ResidualFlow} model built from a
 * {@link ResidualFlowConfig}.
 *
 * @example
 * ```ts
 * import { createDevice, mean, rand, Rng } from "../engine/mod.ts";
 * import { makeConfig, ResidualFlow } from "./mod.ts";
 *
 * const device = await createDevice("cpu");
 * const config = makeConfig({ inputShape: [1, 28, 28], nBlocks: [2, 2], hiddenChannels: 32, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * const x = rand([4, 1, 28, 28], new Rng(1), device); // dequantised images in [0, 1)
 * const out = model.forward(x, { training: true, rng: new Rng(2) });
 * const loss = mean(model.bitsPerDim(out.logpx!)); // differentiate this; then model.updateLipschitz()
 * ```
 * @module
 */
export * from "./activations.ts";
export * from "./lipswish_ops.ts";
export * from "./actnorm.ts";
export * from "./classifier.ts";
export * from "./config.ts";
export * from "./coupling.ts";
export * from "./dequantize.ts";
export * from "./estimators.ts";
export {
  exactLogdet,
  invertMatrix,
  jacobian,
  logAbsDet as hostLogAbsDet,
  logdetOfIdentityPlus,
  perExample,
  traceOfPowers,
} from "./exact_logdet.ts";
export * from "./fixed_point.ts";
export * from "./invconv.ts";
export * from "./iresblock.ts";
export * from "./linear.ts";
export * from "./logit.ts";
export * from "./mixed_norm.ts";
export * from "./model.ts";
export * from "./model_memory.ts";
export * from "./module.ts";
export * from "./named.ts";
export * from "./normalize.ts";
export * from "./prior.ts";
export * from "./resblock_nets.ts";
export * from "./roulette.ts";
export * from "./spectral_norm.ts";
export type { InducedNormOptions } from "./spectral_norm.ts";
export * from "./squeeze.ts";
