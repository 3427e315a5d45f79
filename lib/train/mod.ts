/**
 * Training: Adam with the official betas (0.9, 0.99), linear warm-up and optional decoupled weight
 * decay; global gradient-norm clipping; the exponential moving average of the weights used for
 * evaluation and sampling; the training loop (non-finite steps rejected and reported), evaluation with
 * the unbiased estimator, and safetensors checkpoints that resume bit-exactly.
 * @module
 */
export { Adam, type AdamOptions, type AdamState, clipGradNorm } from "./optimizer.ts";
export { Ema } from "./ema.ts";
export * from "./trainer.ts";
export {
  type CheckpointMeta,
  type CheckpointParts,
  type LoadedCheckpoint,
  readCheckpoint,
  restoreCheckpoint,
  type RestoreOptions,
  saveCheckpoint,
} from "./checkpoint.ts";
export {
  type EvalResult,
  evalRng,
  evaluateBitsPerDim,
  type EvaluateOptions,
  meanAndStandardError,
} from "./evaluate.ts";
