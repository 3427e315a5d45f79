/**
 * Training pieces: Adam with the official betas (0.9, 0.99), linear warm-up and optional decoupled
 * weight decay; global gradient-norm clipping; and the exponential moving average of the weights
 * used for evaluation and sampling.
 * @module
 */
export { Adam, type AdamOptions, type AdamState, clipGradNorm } from "./optimizer.ts";
export { Ema } from "./ema.ts";
