/**
 * The training loop of density models (SPEC 1.0 "Other training-loop facts"), with a hook for hybrid
 * losses. One step: draw the batch of this step (seeded shuffle, augmentation, dequantisation), run
 * the model in training mode with the step's generator, loss = mean bits/dim (or the loss hook's
 * value), gradients of every parameter, global-norm clipping at 1, an Adam step, the power iteration
 * on every normalised layer (`updateLipschitz`) and the EMA update (decay 0.999; the shadow is created
 * after the first step). Everything a step allocates is freed by `tidy`.
 *
 * Determinism: the batch, N and the probes of step `s` depend only on (seed, s); checkpoints hold
 * everything else, so a resumed run computes exactly what an uninterrupted one does.
 *
 * Non-finite steps: one readback per step of [loss, gradient norm]. When either is not finite, the
 * step is rejected before anything is updated (the forward's side effects, e.g. ActNorm's first-batch
 * initialisation, are rolled back), a {@link FailureReport} names the step, the quantity, the
 * parameters with non-finite gradients and the residual blocks with non-finite log-det estimates,
 * and training goes on with the next step from the last good state. After `maxConsecutiveFailures`
 * rejected steps in a row the run ends, marked incomplete.
 *
 * Evaluation (SPEC 1.0): swap in the EMA weights, refresh the power-iteration vectors for them,
 * evaluate in eval mode (20 exact terms plus roulette), swap the weights back. Unlike the official
 * code, the training weights' u, v are restored too, so evaluating never changes the training run.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import { mean } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { gradMaybe } from "../engine/autograd.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { Batcher, type BatchSource } from "../data/batches.ts";
import type { ModelOutput, ResidualFlow } from "../flow/model.ts";
import type { BufferState, Module, Parameter } from "../flow/module.ts";
import type { IResBlock } from "../flow/iresblock.ts";
import { Adam, type AdamOptions, clipGradNorm } from "./optimizer.ts";
import { Ema } from "./ema.ts";
import { type EvalResult, evaluateBitsPerDim } from "./evaluate.ts";
import { type CheckpointMeta, readCheckpoint, restoreCheckpoint, saveCheckpoint } from "./checkpoint.ts";

/** Tag of the training streams. */
export const TRAIN_RNG_TAG = 0x74726169; // "trai"

/** How the generator of a step is derived (stored in checkpoints). */
export const STEP_RNG_RULE = "step s uses new Rng(seed).fork(0x74726169).fork(s); batch s is " +
  "Batcher(seed).batch(floor(s / batchesPerEpoch), s % batchesPerEpoch)";

/** The generator of training step `step` (N draws and probes of every block). */
export function stepRng(seed: number, step: number): Rng {
  return new Rng(seed).fork(TRAIN_RNG_TAG).fork(step);
}

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

/** The density loss: mean bits/dim over the batch. */
export const densityLoss: LossFn = (out, _batch, model) => {
  if (!out.logpx) throw new Error("Cannot compute the density loss: the forward pass skipped the log-det");
  return mean(model.bitsPerDim(out.logpx));
};

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

/** Options of a {@link Trainer}. */
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

/** Options of {@link Trainer.run}. */
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
  /** False when the run ended early after repeated non-finite steps. */
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

function countNonFinite(xs: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) n++;
  return n;
}

interface Snapshot {
  readonly params: Tensor[];
  readonly buffers: (Tensor | null)[];
}

/** Trains a {@link ResidualFlow}; see the module documentation. */
export class Trainer {
  /** The model. */
  readonly model: ResidualFlow;
  /** Its device. */
  readonly device: Device;
  /** Parameters and buffers of the model and any extra module, as one module. */
  readonly module: Module;
  /** Every trained parameter. */
  readonly params: readonly Parameter[];
  /** The optimizer. */
  readonly optimizer: Adam;
  /** The parameter EMA. */
  readonly ema: Ema;
  /** The batch source. */
  readonly batcher: Batcher;
  /** Settings with defaults filled in. */
  readonly seed: number;
  readonly #opts: TrainerOptions;
  readonly #loss: LossFn;
  readonly #maxGradNorm: number;
  readonly #logEvery: number;
  readonly #maxFailures: number;
  readonly #blocks: { block: IResBlock; name: string }[];
  #step = 0;
  #consecutive = 0;
  #wallBefore = 0;
  #wallStart = performance.now();
  #window: number[] = [];
  #history: History = { logs: [], evals: [], failures: [] };

  /** Sets up the optimizer, the EMA and the batcher. */
  constructor(opts: TrainerOptions) {
    this.#opts = opts;
    this.model = opts.model;
    this.device = opts.device;
    this.seed = opts.seed;
    const extra = opts.extra;
    this.module = {
      parameters: () => [...opts.model.parameters(), ...(extra ? extra.parameters() : [])],
      buffers: () => [...opts.model.buffers(), ...(extra ? extra.buffers() : [])],
    };
    this.params = this.module.parameters();
    const seen = new Set<string>();
    for (const p of this.params) {
      if (seen.has(p.name)) throw new Error(`Cannot train: two parameters are named ${p.name}`);
      seen.add(p.name);
    }
    this.optimizer = new Adam(this.params, opts.adam);
    this.ema = new Ema(this.params, opts.emaDecay ?? 0.999);
    this.batcher = new Batcher(opts.data, {
      batchSize: opts.batchSize,
      seed: opts.seed,
      flip: opts.flip ?? false,
      cropPad: opts.cropPad ?? 0,
      dropLast: true,
    });
    if (this.batcher.batchesPerEpoch < 1) {
      throw new Error(
        `Cannot train: ${opts.data.count} training images are fewer than one batch of ${opts.batchSize}`,
      );
    }
    this.#loss = opts.loss ?? densityLoss;
    this.#maxGradNorm = opts.maxGradNorm ?? 1;
    this.#logEvery = Math.max(1, Math.floor(opts.logEvery ?? 10));
    this.#maxFailures = Math.max(1, Math.floor(opts.maxConsecutiveFailures ?? 5));
    this.#blocks = opts.model.stages.flatMap((s) => {
      if (s.kind !== "layer" || s.layer.kind !== "iResBlock") return [];
      const block = s.layer as IResBlock;
      const first = block.parameters()[0]?.name ?? "?";
      return [{ block, name: `block ${first.split(".")[0]} (scale ${s.scale})` }];
    });
  }

  /** Steps done: the index of the next step. */
  get step(): number {
    return this.#step;
  }

  /** Rejected steps in a row right now. */
  get consecutiveFailures(): number {
    return this.#consecutive;
  }

  /** Logs, evaluations and failures so far. */
  get history(): History {
    return this.#history;
  }

  /** Training wall-clock seconds over every process of the run. */
  get wallSeconds(): number {
    return this.#wallBefore + (performance.now() - this.#wallStart) / 1000;
  }

  /** The settings a resumed run must share (stored in checkpoints and compared on load). */
  trainSettings(): Record<string, unknown> {
    const a = this.optimizer.options;
    const b = this.batcher.opts;
    return {
      batchSize: b.batchSize,
      seed: this.seed,
      flip: b.flip,
      cropPad: b.cropPad,
      datasetCount: this.#opts.data.count,
      datasetShape: [...this.#opts.data.shape],
      lr: a.lr,
      betas: [...a.betas],
      eps: a.eps,
      weightDecay: a.weightDecay,
      warmupIters: a.warmupIters,
      maxGradNorm: this.#maxGradNorm,
      emaDecay: this.ema.decay,
      skipLogdet: this.#opts.skipLogdet ?? false,
    };
  }

  #snapshot(): Snapshot {
    return {
      params: this.params.map((p) => p.value.detach().keep()),
      buffers: this.module.buffers().map((b) => b.value ? b.value.detach().keep() : null),
    };
  }

  #restore(s: Snapshot): void {
    this.params.forEach((p, i) => p.set(s.params[i]));
    this.module.buffers().forEach((b, i) => b.set(s.buffers[i]));
  }

  #drop(s: Snapshot): void {
    s.params.forEach((t) => t.dispose());
    s.buffers.forEach((t) => t?.dispose());
  }

  /** Runs step {@link Trainer.step} and advances the step index, whether or not the step is accepted. */
  async trainStep(): Promise<StepResult> {
    const t0 = performance.now();
    const step = this.#step;
    const bpe = this.batcher.batchesPerEpoch;
    const batch = this.batcher.batch(Math.floor(step / bpe), step % bpe);
    const x = batch.x;
    this.#opts.hooks?.batch?.(step, x);
    const rng = stepRng(this.seed, step);
    const lr = this.optimizer.currentLr();
    const snap = this.#snapshot();
    const shape = this.#opts.data.shape;
    let res: { check: Tensor; raw: (Tensor | null)[]; clipped: (Tensor | null)[]; norm: Tensor };
    try {
      res = tidy(() => {
        const xt = tensor(x, [batch.size, ...shape], this.device);
        const out = this.model.forward(xt, { training: true, rng, skipLogdet: this.#opts.skipLogdet });
        const loss = this.#loss(out, { x: xt, labels: batch.labels, size: batch.size }, this.model);
        if (loss.size !== 1) {
          throw new Error(`Cannot train: the loss has shape [${loss.shape}], expected a scalar`);
        }
        let raw = gradMaybe(loss, this.params.map((p) => p.value), { allowUnused: true });
        const hook = this.#opts.hooks?.gradients;
        if (hook) raw = hook(step, raw, this.params);
        const present = raw.filter((g): g is Tensor => g !== null);
        if (present.length === 0) throw new Error("Cannot train: no parameter receives a gradient");
        const c = clipGradNorm(present, this.#maxGradNorm);
        let k = 0;
        const clipped = raw.map((g) => (g === null ? null : c.grads[k++]));
        const check = noGrad(() => concat([reshape(loss, [1]), reshape(c.norm, [1])], 0));
        return { check, raw, clipped, norm: c.norm };
      });
    } catch (e) {
      this.#restore(snap);
      throw e;
    }
    const host = await res.check.read();
    const [loss, gradNorm] = [host[0], host[1]];
    const free = () => {
      res.check.dispose();
      res.norm.dispose();
      res.raw.forEach((g) => g?.dispose());
      res.clipped.forEach((g) => g?.dispose());
    };
    if (Number.isFinite(loss) && Number.isFinite(gradNorm)) {
      this.#drop(snap);
      this.optimizer.step(res.clipped);
      free();
      await this.model.updateLipschitz();
      this.ema.update();
      this.#consecutive = 0;
      this.#step = step + 1;
      this.#window.push(loss);
      const r: StepResult = {
        step,
        accepted: true,
        loss,
        gradNorm,
        lr,
        seconds: (performance.now() - t0) / 1000,
      };
      return r;
    }
    let failure: FailureReport;
    try {
      failure = await this.#diagnose(step, loss, gradNorm, x, res.raw);
    } finally {
      free();
      this.#restore(snap);
    }
    this.#history.failures.push(failure);
    this.#consecutive++;
    this.#step = step + 1;
    return { step, accepted: false, loss, gradNorm, lr, seconds: (performance.now() - t0) / 1000, failure };
  }

  async #diagnose(
    step: number,
    loss: number,
    gradNorm: number,
    x: Float32Array,
    raw: readonly (Tensor | null)[],
  ): Promise<FailureReport> {
    const quantity = Number.isFinite(loss) ? "gradient" : "loss";
    const parameters: string[] = [];
    for (let i = 0; i < raw.length; i++) {
      const g = raw[i];
      if (g && countNonFinite(await g.read()) > 0) parameters.push(this.params[i].name);
    }
    const blocks: string[] = [];
    for (const { block, name } of this.#blocks) {
      const m = block.lastFirmom.value;
      if (m && !Number.isFinite(await m.item())) blocks.push(name);
    }
    const inputNonFinite = countNonFinite(x);
    const parts = [
      `Step ${step} rejected: the ${quantity === "loss" ? "loss" : "gradient norm"} is ${
        quantity === "loss" ? loss : gradNorm
      }`,
    ];
    if (inputNonFinite) parts.push(`the input batch holds ${inputNonFinite} non-finite values`);
    if (blocks.length) {
      parts.push(
        `non-finite log-det estimate first in ${blocks[0]}${
          blocks.length > 1 ? ` (and ${blocks.length - 1} later blocks)` : ""
        }`,
      );
    } else if (quantity === "loss") parts.push("every residual block's log-det estimate is finite");
    if (parameters.length) {
      const shown = parameters.slice(0, 8).join(", ");
      parts.push(
        `non-finite gradient of ${parameters.length} parameter${parameters.length > 1 ? "s" : ""} (${shown}${
          parameters.length > 8 ? ", ..." : ""
        })`,
      );
    }
    parts.push("parameters, optimizer and EMA left at the last good state");
    return { step, quantity, loss, gradNorm, parameters, blocks, inputNonFinite, message: parts.join("; ") };
  }

  /** Reads the per-block estimator moments of the last forward (one readback). */
  async blockMoments(): Promise<BlockMoments[]> {
    const live = this.#blocks.filter(({ block }) => block.lastFirmom.value && block.lastSecmom.value);
    if (!live.length) return [];
    const joined = noGrad(() =>
      tidy(() =>
        concat(
          live.flatMap(({ block }) => [
            reshape(block.lastFirmom.value!, [1]),
            reshape(block.lastSecmom.value!, [1]),
            block.lastNSamples.value
              ? reshape(block.lastNSamples.value, [1])
              : tensor([NaN], [1], this.device),
          ]),
          0,
        )
      )
    );
    const host = await joined.read();
    joined.dispose();
    return live.map(({ name }, i) => ({
      name,
      firmom: host[3 * i],
      secmom: host[3 * i + 1],
      n: host[3 * i + 2],
    }));
  }

  /**
   * Test bits/dim with the EMA weights (SPEC 1.0): swap them in, refresh the power iteration, evaluate
   * in eval mode, swap back and restore every buffer (u, v and the diagnostics) of the training weights.
   */
  async evaluate(
    data: BatchSource,
    opts: { batchSize?: number; limit?: number; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<EvalRecord> {
    const buffers = this.module.buffers();
    const saved = buffers.map((b: BufferState) => (b.value ? b.value.detach().keep() : null));
    try {
      const r = await this.ema.withShadow(async () => {
        await this.model.updateLipschitz();
        return await evaluateBitsPerDim(this.model, data, this.device, {
          seed: this.seed,
          batchSize: opts.batchSize,
          limit: opts.limit,
          onProgress: opts.onProgress,
        });
      });
      return { ...r, step: this.#step };
    } finally {
      buffers.forEach((b, i) => b.set(saved[i]));
    }
  }

  /** The metadata of a checkpoint of the current state. */
  checkpointMeta(info: { suiteVersion?: string; extra?: unknown } = {}): CheckpointMeta {
    const bpe = this.batcher.batchesPerEpoch;
    return {
      step: this.#step,
      optimizerStep: this.optimizer.stepCount,
      seed: this.seed,
      suiteVersion: info.suiteVersion ?? "unknown",
      config: this.model.config,
      rng: { rule: STEP_RNG_RULE, root: new Rng(this.seed).fork(TRAIN_RNG_TAG).state },
      data: {
        epoch: Math.floor(this.#step / bpe),
        index: this.#step % bpe,
        batchSize: this.batcher.opts.batchSize,
        count: this.#opts.data.count,
        ...(this.#opts.datasetName ? { dataset: this.#opts.datasetName } : {}),
      },
      train: this.trainSettings(),
      emaInitialized: this.ema.initialized,
      history: { ...this.#history, consecutiveFailures: this.#consecutive, window: this.#window },
      wallSeconds: this.wallSeconds,
      ...(info.extra !== undefined ? { extra: info.extra } : {}),
    };
  }

  /** Writes a checkpoint of the current state (atomically). */
  async saveCheckpoint(path: string, info: { suiteVersion?: string; extra?: unknown } = {}): Promise<void> {
    await saveCheckpoint(
      path,
      { module: this.module, optimizer: this.optimizer, ema: this.ema },
      this.checkpointMeta(info),
    );
  }

  /**
   * Restores a checkpoint written by {@link Trainer.saveCheckpoint}: every tensor, the step, the history
   * and the wall time. The configuration and the training settings must match (one error lists every
   * difference). Returns the checkpoint's metadata.
   */
  async loadCheckpoint(path: string): Promise<CheckpointMeta> {
    const ck = await readCheckpoint(path);
    restoreCheckpoint(ck, { module: this.module, optimizer: this.optimizer, ema: this.ema }, {
      device: this.device,
      config: JSON.parse(JSON.stringify(this.model.config)),
      train: this.trainSettings(),
    });
    const h = (ck.meta.history ?? {}) as Partial<History> & {
      consecutiveFailures?: number;
      window?: number[];
    };
    this.#history = { logs: h.logs ?? [], evals: h.evals ?? [], failures: h.failures ?? [] };
    this.#consecutive = h.consecutiveFailures ?? 0;
    this.#window = h.window ?? [];
    this.#step = ck.meta.step;
    this.#wallBefore = ck.meta.wallSeconds ?? 0;
    this.#wallStart = performance.now();
    return ck.meta;
  }

  /** Trains until `opts.steps` steps are done (or too many consecutive failures); see {@link RunOptions}. */
  async run(opts: RunOptions): Promise<RunResult> {
    let incompleteReason: string | null = null;
    const evalEvery = opts.evalEvery ?? 0;
    const ckEvery = opts.checkpointEvery ?? 0;
    const doEval = async () => {
      const r = await this.evaluate(opts.evalData!, {
        batchSize: opts.evalBatchSize,
        limit: opts.evalLimit,
        onProgress: opts.onEvalProgress,
      });
      this.#history.evals.push(r);
      opts.onEval?.(r);
    };
    const save = async () => {
      if (opts.checkpointPath) await this.saveCheckpoint(opts.checkpointPath, opts.checkpointInfo);
    };
    if (this.#consecutive >= this.#maxFailures) {
      incompleteReason = this.#incompleteReason();
    }
    while (incompleteReason === null && this.#step < opts.steps) {
      const r = await this.trainStep();
      opts.onStep?.(r);
      const done = this.#step;
      if (done % this.#logEvery === 0 || done === opts.steps) {
        const w = this.#window;
        const rec: LogRecord = {
          step: done,
          loss: r.loss,
          lossMean: w.length ? w.reduce((a, b) => a + b, 0) / w.length : NaN,
          gradNorm: r.gradNorm,
          lr: r.lr,
          wallSeconds: this.wallSeconds,
          blocks: await this.blockMoments(),
        };
        this.#window = [];
        if (Number.isFinite(rec.lossMean)) {
          this.#history.logs.push(rec);
          opts.onLog?.(rec);
        }
      }
      if (this.#consecutive >= this.#maxFailures) incompleteReason = this.#incompleteReason();
      if (incompleteReason === null && opts.evalData && evalEvery > 0 && done % evalEvery === 0) {
        await doEval();
      }
      if (ckEvery > 0 && done % ckEvery === 0 && done < opts.steps) await save();
    }
    const last = this.#history.evals[this.#history.evals.length - 1];
    if (
      opts.evalData && (opts.finalEval ?? true) && this.optimizer.stepCount > 0 &&
      (!last || last.step !== this.#step)
    ) await doEval();
    await save();
    const evals = this.#history.evals;
    return {
      complete: incompleteReason === null,
      incompleteReason,
      steps: this.#step,
      optimizerSteps: this.optimizer.stepCount,
      history: this.#history,
      finalEval: evals.length ? evals[evals.length - 1] : null,
      wallSeconds: this.wallSeconds,
    };
  }

  #incompleteReason(): string {
    const f = this.#history.failures[this.#history.failures.length - 1];
    return `${this.#consecutive} consecutive non-finite steps (the limit is ${this.#maxFailures}); last: ${
      f?.message ?? "unknown"
    }`;
  }

  /** Frees the optimizer moments and the EMA shadow. */
  dispose(): void {
    this.optimizer.dispose();
    this.ema.dispose();
  }
}
