/**
 * The training loop of density models (SPEC 1.0 "Other training-loop facts"), with a hook for hybrid
 * losses. Before a fresh run's first step every spectral norm is iterated to tolerance (first use, as
 * the official code). One step: draw the batch of this step (seeded shuffle, augmentation, dequantisation), run
 * the model in training mode with the step's generator, loss = mean bits/dim (or the loss hook's
 * value), gradients of every parameter, global-norm clipping at 1, an Adam step, the power iteration
 * on every normalised layer (`updateLipschitz`) and the EMA update (decay 0.999; the shadow is created
 * after the first step). Everything a step allocates is freed by `tidy`.
 *
 * Determinism: the batch, N and the probes of step `s` depend only on (seed, s); checkpoints hold
 * everything else, so a resumed run computes exactly what an uninterrupted one does.
 *
 * Backward-in-forward's shared-upstream assumption: on non-CPU devices each block's relative upstream
 * spread joins the step's readback; a step that breaks it throws (state restored). CPU devices throw
 * inside the backward already.
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
import type { Module, Parameter } from "../flow/module.ts";
import type { IResBlock } from "../flow/iresblock.ts";
import { UPSTREAM_REL_TOL } from "../flow/estimators.ts";
import { Adam, clipGradNorm } from "./optimizer.ts";
import { Ema } from "./ema.ts";
import { evaluateBitsPerDim } from "./evaluate.ts";
import { type CheckpointMeta, readCheckpoint, restoreCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { diagnoseFailure } from "./nonfinite.ts";
import type {
  BlockMoments,
  EvalRecord,
  FailureReport,
  History,
  LogRecord,
  LossBatch,
  LossFn,
  RunOptions,
  RunResult,
  StepResult,
  TrainerOptions,
} from "./train_types.ts";

export type {
  BlockMoments,
  EvalRecord,
  FailureReport,
  History,
  LogRecord,
  LossBatch,
  LossFn,
  RunOptions,
  RunResult,
  StepResult,
  TrainerOptions,
  TrainHooks,
} from "./train_types.ts";

/** Tag of the training streams. */
export const TRAIN_RNG_TAG = 0x74726169; // "trai"

/** How the generator of a step is derived (stored in checkpoints). */
export const STEP_RNG_RULE: string = "step s uses new Rng(seed).fork(0x74726169).fork(s); batch s is " +
  "Batcher(seed).batch(floor(s / batchesPerEpoch), s % batchesPerEpoch)";

/** The generator of training step `step` (N draws and probes of every block). */
export function stepRng(seed: number, step: number): Rng {
  return new Rng(seed).fork(TRAIN_RNG_TAG).fork(step);
}

/**
 * The blocks whose relative upstream spread (see `IResBlock.lastUpstreamSpread`) breaks backward-in-
 * forward's assumption that every example's log-det gets the same upstream gradient, as "name: spread".
 * A NaN spread counts as broken.
 */
export function sharedUpstreamViolations(
  names: readonly string[],
  spreads: ArrayLike<number>,
  tol: number = UPSTREAM_REL_TOL,
): string[] {
  return names.flatMap((n, i) => (spreads[i] <= tol ? [] : [`${n}: ${Number(spreads[i]).toExponential(2)}`]));
}

/** The density loss: mean bits/dim over the batch. */
export function densityLoss(out: ModelOutput, _batch: LossBatch, model: ResidualFlow): Tensor {
  if (!out.logpx) throw new Error("Cannot compute the density loss: the forward pass skipped the log-det");
  return mean(model.bitsPerDim(out.logpx));
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
  /** The run's seed. */
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
  /** True until the first step of this trainer (or a checkpoint load) has settled the power iteration. */
  #lipschitzFresh = true;

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
    if (this.#lipschitzFresh) {
      // A fresh run: iterate every σ to tolerance before step 0 (first use, as the official code), so
      // Lip(g) <= coeff holds from the first step. A resumed run has its converged vectors already.
      this.#lipschitzFresh = false;
      if (this.#step === 0 && this.optimizer.stepCount === 0) await this.model.convergeLipschitz();
    }
    const step = this.#step;
    const bpe = this.batcher.batchesPerEpoch;
    const batch = this.batcher.batch(Math.floor(step / bpe), step % bpe);
    const x = batch.x;
    this.#opts.hooks?.batch?.(step, x);
    const rng = stepRng(this.seed, step);
    const lr = this.optimizer.currentLr();
    // Backward-in-forward's upstream spreads of this step only (non-CPU devices record them).
    for (const { block } of this.#blocks) {
      block.lastUpstreamSpread?.dispose();
      block.lastUpstreamSpread = null;
    }
    const snap = this.#snapshot();
    const shape = this.#opts.data.shape;
    let spreadNames: string[] = [];
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
        // The step's one readback: loss, gradient norm, and each block's upstream spread (when recorded).
        const spreads = this.#blocks.filter(({ block }) => block.lastUpstreamSpread !== null);
        spreadNames = spreads.map(({ name }) => name);
        const check = noGrad(() =>
          concat([
            reshape(loss, [1]),
            reshape(c.norm, [1]),
            ...spreads.map(({ block }) => reshape(block.lastUpstreamSpread!, [1])),
          ], 0)
        );
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
    const broken = sharedUpstreamViolations(spreadNames, host.subarray(2));
    if (broken.length && Number.isFinite(loss) && Number.isFinite(gradNorm)) {
      free();
      this.#restore(snap);
      throw new Error(
        `Cannot train step ${step}: backward-in-forward assumes every example's log-det gets the same ` +
          `upstream gradient (a loss that is a mean over examples), but its relative spread exceeds ` +
          `${UPSTREAM_REL_TOL} in ${
            broken.join(", ")
          }; use a mean-reduced loss or turn backwardInForward off`,
      );
    }
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
      failure = await diagnoseFailure({
        step,
        loss,
        gradNorm,
        x,
        grads: res.raw,
        paramNames: this.params.map((p) => p.name),
        blocks: this.#blocks,
      });
    } finally {
      free();
      this.#restore(snap);
    }
    this.#history.failures.push(failure);
    this.#consecutive++;
    this.#step = step + 1;
    return { step, accepted: false, loss, gradNorm, lr, seconds: (performance.now() - t0) / 1000, failure };
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
   * in eval mode, swap back and restore every parameter and buffer (u, v, ActNorm flags, diagnostics)
   * of the training state, so an evaluation never changes the run.
   */
  async evaluate(
    data: BatchSource,
    opts: {
      batchSize?: number;
      limit?: number;
      onProgress?: (done: number, total: number) => void;
      keepPerImage?: boolean;
    } = {},
  ): Promise<EvalRecord> {
    const saved = this.#snapshot();
    try {
      const r = await this.ema.withShadow(async () => {
        await this.model.updateLipschitz();
        return await evaluateBitsPerDim(this.model, data, this.device, {
          seed: this.seed,
          batchSize: opts.batchSize,
          limit: opts.limit,
          onProgress: opts.onProgress,
          keepPerImage: opts.keepPerImage,
        });
      });
      return { ...r, step: this.#step };
    } finally {
      this.#restore(saved);
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
    this.#lipschitzFresh = false;
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
        keepPerImage: opts.evalPerImage,
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
    let ran = 0;
    let accepted = 0;
    while (incompleteReason === null && this.#step < opts.steps) {
      const r = await this.trainStep();
      ran++;
      if (r.accepted) accepted++;
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
      const due = evalEvery > 0 && done % evalEvery === 0 && this.optimizer.stepCount > 0;
      if (incompleteReason === null && opts.evalData && due) {
        await doEval();
      }
      if (ckEvery > 0 && done % ckEvery === 0 && done < opts.steps) await save();
    }
    if (incompleteReason === null && ran > 0 && accepted === 0) {
      // Fewer steps than the failure limit, all rejected: nothing was trained, so the run is not complete.
      incompleteReason = `all ${ran} step${
        ran === 1 ? " of this run was" : "s of this run were"
      } rejected; last: ${this.#history.failures[this.#history.failures.length - 1]?.message ?? "unknown"}`;
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
