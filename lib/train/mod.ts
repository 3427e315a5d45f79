/**
 * Training: Adam with the official betas (0.9, 0.99), linear warm-up and optional decoupled weight
 * decay; global gradient-norm clipping; the exponential moving average of the weights used for
 * evaluation and sampling; the training loop (non-finite steps rejected and reported), evaluation with
 * the unbiased estimator, safetensors checkpoints that resume bit-exactly, and `saveModel` /
 * `loadModel` for a model's weights with its configuration.
 * @module
 */
export { Adam, type AdamOptions, type AdamState, clipGradNorm } from "./optimizer.ts";
export { Ema } from "./ema.ts";
export * from "./trainer.ts";
export {
  type DrivenBuild,
  type DrivenStart,
  type DriveOptions,
  driveTraining,
  type ExistingCheckpoint,
} from "./driver.ts";
export {
  type CheckpointMeta,
  type CheckpointParts,
  type LoadedCheckpoint,
  readCheckpoint,
  restoreCheckpoint,
  type RestoreOptions,
  saveCheckpoint,
} from "./checkpoint.ts";
export { loadModel, type LoadModelOptions, saveModel, type SaveModelOptions } from "./model_io.ts";
export {
  type EvalResult,
  evalRng,
  evaluateBitsPerDim,
  type EvaluateOptions,
  meanAndStandardError,
} from "./evaluate.ts";
