/**
 * One hybrid training run and its evaluation (SPEC §6): a flow (residual or coupling blocks, no FC end
 * blocks) with the multiscale classifier head, trained on λ·log p(x) + log p(y|x) as the official code
 * implements it:
 *
 * - λ = 0: loss = cross-entropy (nats); the flow runs without any log-det (`skipLogdet`);
 * - λ = 1/D: loss = bits/dim + CE / ln 2;
 * - λ = 1: loss = bits/dim · D + CE / ln 2.
 *
 * Evaluation uses the EMA weights (power iteration refreshed for them) in eval mode: test accuracy
 * (argmax of the head's logits; binomial standard error and a Wilson 95 % interval) and, for λ > 0,
 * test bits/dim with its standard error over images (residual blocks: the evaluation estimator with 20
 * exact terms plus roulette; coupling blocks and 1×1 convolutions: exact log-dets). A λ > 0 run also
 * evaluates test bits/dim periodically (`HybridPlan.bpdEvals`, the same images, noise and probes as the
 * final evaluation, which is the last of them), keeping every image's value, so that the claims can
 * tell whether bits/dim stopped improving and pair two rows' curves image by image.
 *
 * Checkpoints go to the unit's work folder; with `resume` a killed run continues from its checkpoint.
 * @module
 */
import { Batcher, type BatchSource, type Dataset, loadDataset } from "../../lib/data/mod.ts";
import { add, mul } from "../../lib/engine/ops/elementwise.ts";
import { crossEntropy } from "../../lib/engine/ops/nn.ts";
import { tensor } from "../../lib/engine/ops/creation.ts";
import { Rng } from "../../lib/engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../../lib/engine/tensor.ts";
import { ClassifierHead } from "../../lib/flow/classifier.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { type EvalResult, evalRng, evaluateBitsPerDim } from "../../lib/train/evaluate.ts";
import { densityLoss, type LossFn, type StepResult, Trainer } from "../../lib/train/trainer.ts";
import type { EvalRecord, History } from "../../lib/train/train_types.ts";
import type { UnitContext } from "../framework/experiment.ts";
import { driveTraining } from "../../lib/train/driver.ts";
import type { ProgressBar } from "../../lib/cli/progress.ts";
import {
  bpdEvalEvery,
  type HybridLambda,
  hybridModelConfig,
  type HybridPlan,
  planSteps,
  type TrainingUnit,
} from "./hybrid_plan.ts";
import { median } from "../framework/stats.ts";

/** z of a two-sided 95 % normal interval. */
export const Z95 = 1.959963984540054;

/** Test accuracy with its uncertainty. */
export interface Accuracy {
  /** Correctly classified images. */
  readonly correct: number;
  /** Images classified. */
  readonly count: number;
  /** correct / count. */
  readonly value: number;
  /** Binomial standard error √(p(1−p)/n). */
  readonly stderr: number;
  /** Wilson score 95 % interval. */
  readonly ci: readonly [number, number];
  /**
   * 1 where image i (test-file order) was classified correctly, else 0 (from {@link evaluateAccuracy}):
   * models evaluated with one seed see the same images and noise, so these pair per image.
   */
  readonly perImage?: readonly number[];
}

/** The accuracy of `correct` out of `count`, its binomial standard error and Wilson 95 % interval. */
export function accuracyOf(correct: number, count: number): Accuracy {
  if (
    !(Number.isInteger(correct) && Number.isInteger(count) && count >= 1 && correct >= 0 && correct <= count)
  ) {
    throw new Error(
      `Cannot compute an accuracy of ${correct} out of ${count}: expected 0 <= correct <= count, count >= 1`,
    );
  }
  const p = correct / count;
  const z2 = Z95 * Z95;
  const denom = 1 + z2 / count;
  const center = (p + z2 / (2 * count)) / denom;
  const half = (Z95 / denom) * Math.sqrt(p * (1 - p) / count + z2 / (4 * count * count));
  return {
    correct,
    count,
    value: p,
    stderr: Math.sqrt(p * (1 - p) / count),
    ci: [Math.max(0, center - half), Math.min(1, center + half)],
  };
}

/** The training loss of a λ (see the module documentation); `head` reads the model's features. */
export function hybridLoss(lambda: HybridLambda["key"], head: ClassifierHead): LossFn {
  return (out, batch, model) => {
    if (!batch.labels) throw new Error("Cannot train a hybrid model: the training batch has no labels");
    const ce = crossEntropy(head.apply(out.features), batch.labels);
    if (lambda === "l0") return ce;
    const bits = mul(ce, 1 / Math.LN2);
    const bpd = densityLoss(out, batch, model);
    return add(lambda === "l1d" ? bpd : mul(bpd, model.dims), bits);
  };
}

/** Everything a training unit reports. */
export interface HybridRunResult {
  /** Test accuracy. */
  readonly accuracy: Accuracy;
  /** Test bits/dim (λ > 0 only). */
  readonly bpd: EvalResult | null;
  /**
   * The periodic test bits/dim evaluations, with per-image values, the last at the final step (λ > 0
   * only; empty otherwise).
   */
  readonly bpdEvals: readonly EvalRecord[];
  /** Steps done. */
  readonly steps: number;
  /** Whether training finished without too many rejected steps. */
  readonly complete: boolean;
  /** Why not. */
  readonly incompleteReason: string | null;
  /** Logs and failures of the run. */
  readonly history: History;
  /** Median seconds per training step of this process (after its first two steps; NaN if none). */
  readonly secondsPerStep: number;
  /** Training wall seconds over every process of the run. */
  readonly trainSeconds: number;
  /** Evaluation wall seconds. */
  readonly evalSeconds: number;
  /** Parameters of the flow and of the head. */
  readonly parameters: { readonly flow: number; readonly head: number };
  /** The step the run resumed from (0 for a fresh run). */
  readonly resumedFrom: number;
}

const datasets = new Map<string, Promise<Dataset>>();

/** Loads (once per process) a split of a dataset, keeping the first `limit` images. */
export function cachedDataset(
  key: string,
  split: "train" | "test",
  dataDir: string | undefined,
  limit?: number,
): Promise<Dataset> {
  const id = JSON.stringify([key, split, dataDir ?? null, limit ?? null]);
  let p = datasets.get(id);
  if (!p) {
    p = loadDataset(key, { split, dataDir, limit });
    p.catch(() => datasets.delete(id));
    datasets.set(id, p);
  }
  return p;
}

function limited(data: BatchSource, limit: number | null): BatchSource {
  const n = Math.min(data.count, limit ?? data.count);
  if (n === data.count) return data;
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  return {
    ...data,
    count: n,
    images: data.images.subarray(0, n * per),
    labels: data.labels ? data.labels.subarray(0, n) : null,
  };
}

/**
 * Test accuracy of `model` + `head` with whatever weights they hold (eval mode, no log-det). The
 * dequantisation noise of batch b comes from `seed` as in {@link evaluateBitsPerDim}.
 */
export async function evaluateAccuracy(
  model: ResidualFlow,
  head: ClassifierHead,
  data: BatchSource,
  device: Device,
  opts: { seed: number; batchSize: number; limit: number | null },
): Promise<Accuracy> {
  const src = limited(data, opts.limit);
  if (!src.labels) throw new Error("Cannot evaluate the accuracy: the test set has no labels");
  const batcher = new Batcher(src, { batchSize: opts.batchSize, seed: opts.seed, shuffle: false });
  let correct = 0;
  let count = 0;
  const perImage: number[] = [];
  for (let b = 0; b < batcher.batchesPerEpoch; b++) {
    const batch = batcher.batch(0, b);
    const logits: Tensor = noGrad(() =>
      tidy(() => {
        const x = tensor(batch.x, [batch.size, ...src.shape], device);
        const out = model.forward(x, { training: false, rng: evalRng(opts.seed, b), skipLogdet: true });
        return head.apply(out.features);
      })
    );
    const host = await logits.read();
    const k = logits.shape[1];
    logits.dispose();
    for (let i = 0; i < batch.size; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (host[i * k + j] > host[i * k + best]) best = j;
      const hit = best === batch.labels![i] ? 1 : 0;
      correct += hit;
      perImage.push(hit);
      count++;
    }
  }
  return { ...accuracyOf(correct, count), perImage };
}

interface Built {
  readonly model: ResidualFlow;
  readonly head: ClassifierHead;
  readonly trainer: Trainer;
  /** Seconds of every training step of this process. */
  readonly stepSeconds: number[];
  /** The training progress bar, once the run starts. */
  bar: ProgressBar | null;
  /** Frees the model, the head and the trainer. */
  dispose(): void;
}

function freeAll(b: Built): void {
  b.trainer.dispose();
  b.model.dispose();
  for (const p of b.head.parameters()) p.value.dispose();
  for (const s of b.head.buffers()) s.value?.dispose();
}

/** The checkpoint of a unit in its work folder. */
export function checkpointPath(workDir: string): string {
  return `${workDir}/checkpoint.safetensors`;
}

/** Trains and evaluates one hybrid model; see the module documentation. */
export async function runHybridTraining(
  unit: TrainingUnit,
  plan: HybridPlan,
  ctx: UnitContext,
): Promise<HybridRunResult> {
  const train = await cachedDataset(unit.dataset.key, "train", ctx.dataDir);
  const test = await cachedDataset(unit.dataset.key, "test", ctx.dataDir);
  const device = ctx.device;
  const config = hybridModelConfig(unit.dataset, unit.row, plan);
  const steps = planSteps(plan, train.count);
  const ckpt = checkpointPath(ctx.workDir);
  return await driveTraining({
    checkpointPath: ckpt,
    // A checkpoint that cannot be loaded is an error naming it, never a silent retrain.
    existing: ctx.resume ? "resume" : "restart",
    loadErrorHint: "(delete it to train this unit again)",
    steps,
    build: () => {
      const model = new ResidualFlow(config, { rng: new Rng(ctx.seed).fork(1), device });
      const head = new ClassifierHead({
        scaleChannels: model.scaleShapes.map((s) => s.end[0]),
        hidden: plan.headWidth,
        classes: 10,
        rng: new Rng(ctx.seed).fork(2),
        device,
      });
      const trainer = new Trainer({
        model,
        device,
        data: train,
        batchSize: plan.batch,
        seed: ctx.seed,
        adam: { lr: plan.lr, warmupIters: plan.warmup },
        emaDecay: plan.emaDecay,
        cropPad: unit.dataset.cropPad,
        loss: hybridLoss(unit.lambda.key, head),
        skipLogdet: unit.lambda.key === "l0",
        extra: head,
        logEvery: Math.max(1, Math.floor(steps / 60)),
        datasetName: unit.dataset.key,
      });
      const built: Built = {
        model,
        head,
        trainer,
        stepSeconds: [],
        bar: null,
        dispose: () => freeAll(built),
      };
      return built;
    },
    run: (b, start) => {
      if (start.resumed) ctx.log(`resumed from its checkpoint at step ${start.resumedFrom}`);
      // The bar counts the steps left (as the density runs' bars do), so its rate and ETA after a
      // resume measure this process's steps only.
      const bar = ctx.progress(
        `train ${unit.row.row}, ${unit.lambda.label}`,
        Math.max(0, steps - b.trainer.step),
        "steps",
      );
      b.bar = bar;
      const every = unit.lambda.key === "l0" ? 0 : bpdEvalEvery(plan, steps);
      // Periodic bits/dim on the final evaluation's images, noise and probes (the trainer evaluates
      // with its seed, the run's); it also evaluates at the final step, which `finish` reuses.
      const periodic = every > 0
        ? {
          evalData: test,
          evalEvery: every,
          evalBatchSize: plan.evalBatch,
          evalLimit: plan.bpdImages ?? undefined,
          evalPerImage: true,
          onEval: (r: EvalRecord) => ctx.log(`test bits/dim at step ${r.step}: ${r.bitsPerDim.toFixed(4)}`),
        }
        : {};
      return {
        ...periodic,
        checkpointEvery: plan.checkpointEvery,
        onStep: (r: StepResult) => {
          b.stepSeconds.push(r.seconds);
          bar.tick(1, r.accepted ? `loss ${r.loss.toPrecision(4)}` : "step rejected (non-finite)");
        },
      };
    },
    finish: async (b, run, start) => {
      b.bar?.finish();
      const { model, head, trainer } = b;
      const t0 = performance.now();
      const evalBar = ctx.progress("evaluate", 1 + (unit.lambda.key === "l0" ? 0 : 1), "passes");
      const evaluated = await trainer.ema.withShadow(async () => {
        await model.updateLipschitz();
        const accuracy = await evaluateAccuracy(model, head, test, device, {
          seed: ctx.seed,
          batchSize: plan.evalBatch,
          limit: plan.accImages,
        });
        evalBar.tick(1, `accuracy ${accuracy.value.toFixed(4)}`);
        const last = run.history.evals.at(-1);
        const bpd = unit.lambda.key === "l0"
          ? null
          : last?.step === run.steps
          ? last
          : await evaluateBitsPerDim(model, test, device, {
            seed: ctx.seed,
            batchSize: plan.evalBatch,
            limit: plan.bpdImages ?? undefined,
            keepPerImage: true,
          });
        if (bpd) evalBar.tick(1, `bits/dim ${bpd.bitsPerDim.toFixed(3)}`);
        return { accuracy, bpd };
      });
      evalBar.finish();
      const count = (ps: { value: Tensor }[]) => ps.reduce((n, p) => n + p.value.size, 0);
      return {
        ...evaluated,
        bpdEvals: unit.lambda.key === "l0" ? [] : run.history.evals,
        steps: run.steps,
        complete: run.complete,
        incompleteReason: run.incompleteReason,
        history: run.history,
        secondsPerStep: median(b.stepSeconds.slice(2)),
        trainSeconds: run.wallSeconds,
        evalSeconds: (performance.now() - t0) / 1000,
        parameters: { flow: count(model.parameters()), head: count(head.parameters()) },
        resumedFrom: start.resumedFrom,
      };
    },
  });
}
