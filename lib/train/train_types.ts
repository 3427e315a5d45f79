/**
 * The types of the training loop: its options, the loss hook, fault-injection hooks, and what steps,
 * logs, evaluations, failure reports and runs return.
 * @module
 */
import type { Device, Tensor } from "../engine/tensor.ts";
import type { BatchSource } from "../data/batches.ts";
import type { ModelOutput, ResidualFlow } from "../flow/model.ts";
import type { Module, Parameter } from "../flow/module.ts";
import type { AdamOptions } from "./optimizer.ts";
import type { EvalResult } from "./evaluate.ts";

/** The batch as the loss hook sees it. */
export interface LossBatch {
  /** Images [B, C, H, W] in [0, 1). */
  readonly x: Tensor;
  /** Labels, or null for unlabelled data. */
  readonly labels: Int32Array | null;
  /** B. */
  readonly size: number;
}

/** A loss of the model output: a scalar tensor (hybrid models add a classification term). */
export type LossFn = (out: ModelOutput, batch: LossBatch, model: ResidualFlow) => Tensor;

/** Test hooks that inject faults. */
export interface TrainHooks {
  /** Called with the host batch before upload; may change it in place (e.g. write a NaN). */
  readonly batch?: (step: number, x: Float32Array) => void;
  /**
   * May replace gradients before clipping (e.g. a NaN gradient); tensors created here belong to the
   * step's scope and are freed with it.
   */
  readonly gradients?: (
    step: number,
    grads: (Tensor | null)[],
    params: readonly Parameter[],
  ) => (Tensor | null)[];
}

/** Options of a `Trainer`. */
export interface TrainerOptions {
  /** The flow. */
  readonly model: ResidualFlow;
  /** Device of the model. */
  readonly device: Device;
  /** Training images. */
  readonly data: BatchSource;
  /** Images per step. */
  readonly batchSize: number;
  /** Seed of the data order, augmentation, dequantisation and every step's N and probes. */
  readonly seed: number;
  /** Adam settings (default lr 1e-3, betas (0.9, 0.99), no warm-up, no decay). */
  readonly adam?: AdamOptions;
  /** Global gradient-norm clip (default 1). */
  readonly maxGradNorm?: number;
  /** EMA decay (default 0.999). */
  readonly emaDecay?: number;
  /** Random horizontal flips (CIFAR-10, CelebA). */
  readonly flip?: boolean;
  /** Reflect-pad random crops (hybrid SVHN/CIFAR-10); 0 = off. */
  readonly cropPad?: number;
  /** Loss of the model output (default {@link densityLoss}). */
  readonly loss?: LossFn;
  /** Skip the log-det in the forward pass (classification-only training). */
  readonly skipLogdet?: boolean;
  /** More trainable modules (a hybrid classifier head); their names must not clash with the model's. */
  readonly extra?: Module;
  /** Read back per-block estimator moments and emit a log record every this many steps (default 10). */
  readonly logEvery?: number;
  /** End the run after this many rejected steps in a row (default 5). */
  readonly maxConsecutiveFailures?: number;
  /** Name of the dataset, for checkpoints. */
  readonly datasetName?: string;
  /** Fault injection for tests. */
  readonly hooks?: TrainHooks;
}

/** Why a step was rejected. */
export interface FailureReport {
  /** The step index. */
  readonly step: number;
  /** "loss" when the loss is not finite, else "gradient". */
  readonly quantity: "loss" | "gradient";
  /** The loss read back (may be NaN or ±Infinity). */
  readonly loss: number;
  /** The global gradient norm read back. */
  readonly gradNorm: number;
  /** Parameters whose gradient holds a non-finite value. */
  readonly parameters: readonly string[];
  /** Residual blocks whose log-det estimate is not finite, in forward order (the first is the earliest). */
  readonly blocks: readonly string[];
  /** Non-finite values in the input batch. */
  readonly inputNonFinite: number;
  /** One readable sentence. */
  readonly message: string;
}

/** Outcome of one step. */
export interface StepResult {
  /** The step index. */
  readonly step: number;
  /** False when the step was rejected. */
  readonly accepted: boolean;
  /** Loss read back. */
  readonly loss: number;
  /** Gradient norm before clipping. */
  readonly gradNorm: number;
  /** Learning rate of the step. */
  readonly lr: number;
  /** Seconds the step took. */
  readonly seconds: number;
  /** The report of a rejected step. */
  readonly failure?: FailureReport;
}

/** Estimator moments of one residual block at a log step. */
export interface BlockMoments {
  /** The block's name, e.g. "block 2 (scale 0)". */
  readonly name: string;
  /** Batch mean of the log-det estimate. */
  readonly firmom: number;
  /** Batch mean of its square. */
  readonly secmom: number;
  /** The sampled N (NaN for the truncated estimator). */
  readonly n: number;
}

/** A log record, every `logEvery` steps. */
export interface LogRecord {
  /** Steps done (the record describes step `step − 1`). */
  readonly step: number;
  /** Loss of the last step. */
  readonly loss: number;
  /** Mean loss of the accepted steps since the previous record. */
  readonly lossMean: number;
  /** Gradient norm of the last step. */
  readonly gradNorm: number;
  /** Learning rate of the last step. */
  readonly lr: number;
  /** Training wall-clock seconds so far (over every process of the run). */
  readonly wallSeconds: number;
  /** Per-block estimator moments of the last step. */
  readonly blocks: readonly BlockMoments[];
}

/** An evaluation during or after training. */
export interface EvalRecord extends EvalResult {
  /** Steps done when it ran. */
  readonly step: number;
}

/** What a run keeps, and checkpoints carry. */
export interface History {
  /** Log records. */
  readonly logs: LogRecord[];
  /** Evaluations. */
  readonly evals: EvalRecord[];
  /** Rejected steps. */
  readonly failures: FailureReport[];
}

/** Options of `Trainer.run`. */
export interface RunOptions {
  /** Total steps of the run (it continues from the current step). */
  readonly steps: number;
  /** Test images for evaluation. */
  readonly evalData?: BatchSource;
  /** Evaluate every this many steps (0 or absent: only at the end). */
  readonly evalEvery?: number;
  /** Evaluation batch size (default 200). */
  readonly evalBatchSize?: number;
  /** Evaluate only the first this many test images. */
  readonly evalLimit?: number;
  /** Keep every test image's bits/dim in the evaluation records (for paired comparisons). */
  readonly evalPerImage?: boolean;
  /** Evaluate at the end (default true when `evalData` is given). */
  readonly finalEval?: boolean;
  /** Where checkpoints are written. */
  readonly checkpointPath?: string;
  /** Write a checkpoint every this many steps (and always at the end when a path is given). */
  readonly checkpointEvery?: number;
  /** Metadata of the checkpoints besides what the trainer knows. */
  readonly checkpointInfo?: { readonly suiteVersion?: string; readonly extra?: unknown };
  /** After every step. */
  readonly onStep?: (r: StepResult) => void;
  /** After every log record. */
  readonly onLog?: (r: LogRecord) => void;
  /** After every evaluation. */
  readonly onEval?: (r: EvalRecord) => void;
  /** Evaluation progress (images done, total). */
  readonly onEvalProgress?: (done: number, total: number) => void;
}

/** Outcome of a run. */
export interface RunResult {
  /**
   * False when the run ended early after repeated non-finite steps, or when every step this run took
   * was rejected (nothing was trained, even if fewer than the failure limit).
   */
  readonly complete: boolean;
  /** Why it is incomplete, or null. */
  readonly incompleteReason: string | null;
  /** Steps done (the current step index). */
  readonly steps: number;
  /** Optimizer updates applied. */
  readonly optimizerSteps: number;
  /** Logs, evaluations and failures of the whole run (including before a resume). */
  readonly history: History;
  /** The last evaluation, if any. */
  readonly finalEval: EvalRecord | null;
  /** Training wall-clock seconds over every process of the run. */
  readonly wallSeconds: number;
}
