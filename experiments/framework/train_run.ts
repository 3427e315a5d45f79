/**
 * One shared "train a density model and evaluate it" routine for the density, ablation and samples
 * experiments. A run is described by a {@link TrainRunSpec} (dataset, full model configuration,
 * optimisation, evaluation and seed); its folder is `<outDir>/work/runs/<hash>/`, where the hash is
 * the SHA-256 of the spec's canonical JSON. The folder holds the trainer's checkpoint and, once the
 * run has finished, `result.json` (written atomically) with the final evaluation, the curves and the
 * checkpoint's name.
 *
 * - A second request of the identical spec in the same process (e.g. density's MNIST model and the
 *   ablation's LipSwish row on MNIST) reads `result.json` instead of training again; a later process
 *   does so only with `--resume` (its code may have changed since).
 * - With `--resume`, a killed run continues from its checkpoint (bit-equal to an uninterrupted run);
 *   without it, a stale checkpoint is discarded and the run starts afresh.
 * - A missing dataset is not an error: the call returns `{ ok: false, reason }` (e.g. "CIFAR-10 not
 *   found: pass --data-dir ..."), and the unit reports itself incomplete.
 *
 * Periodic evaluations (every `evalEvery` steps) use the first `evalSubset` test images, the same
 * images and noise each time; the final evaluation uses the first `evalLimit` test images (all when
 * null). Both use the EMA weights and the evaluation estimator (20 exact terms plus roulette), and
 * keep every image's bits/dim: runs of one seed share images, noise and probes, so their per-image
 * differences are paired.
 * @module
 */
import { writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import {
  type Dataset,
  DatasetError,
  datasetLabel,
  type DatasetName,
  isDatasetName,
  loadDataset,
  obtainHint,
} from "../../lib/data/mod.ts";
import { Rng } from "../../lib/engine/random.ts";
import type { ResidualFlowConfig } from "../../lib/flow/config.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import type { EvalRecord, FailureReport } from "../../lib/train/train_types.ts";
import { Trainer } from "../../lib/train/trainer.ts";
import { driveTraining } from "../../lib/train/driver.ts";
import type { ProgressBar } from "../../lib/cli/progress.ts";
import type { UnitContext } from "./experiment.ts";
import { upperMedian } from "./stats.ts";
import { pathExists } from "../../lib/artifacts/files.ts";

/**
 * Version of the run folder's layout and of `result.json`; part of the hash. 2: evaluations keep every
 * test image's bits/dim (`perImage`).
 */
export const TRAIN_RUN_FORMAT = 2;

/** Name of the checkpoint inside a run folder. */
export const RUN_CHECKPOINT = "checkpoint.safetensors";

/** Name of the finished run's result inside a run folder. */
export const RUN_RESULT = "result.json";

/** Identifies this process: results written by it are reused without `--resume`. */
export const RUN_SESSION: string = crypto.randomUUID();

/** Everything that determines a training run's numbers (hashed into its folder name). */
export interface TrainRunSpec {
  /** Dataset id of the registry ("mnist", "cifar10-exact", "cifar10", "imagenet32", "imagenet64"). */
  readonly dataset: DatasetName;
  /** The full model configuration (its input shape and nvals must match the dataset). */
  readonly model: ResidualFlowConfig;
  /** Images per step. */
  readonly batch: number;
  /** Training steps. */
  readonly steps: number;
  /** Adam learning rate. */
  readonly lr: number;
  /** Linear warm-up iterations. */
  readonly warmup: number;
  /** EMA decay of the evaluation weights. */
  readonly emaDecay: number;
  /** Decoupled weight decay (the official code applies none). */
  readonly weightDecay: number;
  /** Random horizontal flips of the training images. */
  readonly flip: boolean;
  /** Train on the first this many training images, or all (null). */
  readonly trainLimit: number | null;
  /** Final evaluation on the first this many test images, or all (null). */
  readonly evalLimit: number | null;
  /** Periodic evaluation every this many steps (0: none); a multiple of `logEvery`. */
  readonly evalEvery: number;
  /** Test images of the periodic evaluations (the first ones of the test split). */
  readonly evalSubset: number;
  /** Evaluation batch size. */
  readonly evalBatch: number;
  /** Training loss records every this many steps (the training curve's resolution). */
  readonly logEvery: number;
  /** Seed of the weights, the data order, the noise and the estimators. */
  readonly seed: number;
}

/** A point of the training curve: mean training loss of the `logEvery` steps ending at `step`. */
export interface CurvePoint {
  /** Steps done. */
  readonly step: number;
  /** Mean training bits/dim (the training estimator's value) over the window. */
  readonly loss: number;
  /** Training wall-clock seconds so far. */
  readonly wallSeconds: number;
}

/** What a finished run leaves in `result.json`. */
export interface TrainRunResult {
  /** {@link TRAIN_RUN_FORMAT}. */
  readonly format: number;
  /** The folder name: SHA-256 (hex) of the canonical spec. */
  readonly hash: string;
  /** The spec. */
  readonly spec: TrainRunSpec;
  /** The process that wrote it ({@link RUN_SESSION}). */
  readonly session: string;
  /** False when training ended early after repeated non-finite steps. */
  readonly complete: boolean;
  /** Why it is incomplete, or null. */
  readonly incompleteReason: string | null;
  /** Steps done. */
  readonly steps: number;
  /** Optimizer updates applied. */
  readonly optimizerSteps: number;
  /** The final evaluation (EMA weights, `evalLimit` test images), or null when nothing was trained. */
  readonly finalEval: EvalRecord | null;
  /** The periodic evaluations on the fixed test subset. */
  readonly evals: readonly EvalRecord[];
  /** The training curve. */
  readonly curve: readonly CurvePoint[];
  /** Rejected non-finite steps, in words. */
  readonly failures: readonly string[];
  /** Training wall-clock seconds (over every process of the run, evaluations included). */
  readonly trainSeconds: number;
  /** Seconds of the final evaluation. */
  readonly finalEvalSeconds: number;
  /** Median seconds of one training step in the last process. */
  readonly stepSecondsMedian: number;
  /** Steps the last process resumed from (0 when it started afresh). */
  readonly resumedFrom: number;
  /** The checkpoint's file name inside the run folder. */
  readonly checkpoint: string;
  /** The checkpoint's path when the result was written (the run folder may move; prefer `checkpoint`). */
  readonly checkpointPath: string;
  /** Display name of the dataset, e.g. "CIFAR-10 exact subset (4k train / 1k test)". */
  readonly datasetName: string;
  /** What was loaded for training. */
  readonly trainDescription: string;
  /** What was loaded for testing. */
  readonly testDescription: string;
  /** Trainable parameters. */
  readonly parameters: number;
  /** Backend name, e.g. "webgpu". */
  readonly backend: string;
  /** Adapter description. */
  readonly adapter: string;
}

/** The outcome of {@link trainRun}. */
export type TrainRunOutcome =
  | {
    readonly ok: true;
    /** The finished run. */
    readonly result: TrainRunResult;
    /** The run's folder. */
    readonly dir: string;
    /** True when `result.json` was read instead of training. */
    readonly cached: boolean;
  }
  | {
    readonly ok: false;
    /** Why the run could not be made, e.g. "CIFAR-10 not found: pass --data-dir ...". */
    readonly reason: string;
  };

/** Canonical JSON: object keys sorted at every level, so equal specs give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v as Record<string, unknown>).sort().map((
        k,
      ) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** The folder name of a spec: SHA-256 (hex) of the format version and the spec's canonical JSON. */
export async function specHash(spec: TrainRunSpec): Promise<string> {
  const text = canonicalJson({ format: TRAIN_RUN_FORMAT, spec });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The folder of a spec's run: `<outDir>/work/runs/<hash>`. */
export async function runDir(outDir: string, spec: TrainRunSpec): Promise<string> {
  return `${outDir.replace(/\/+$/, "")}/work/runs/${await specHash(spec)}`;
}

/** Checks a spec; throws "Cannot train ...: field ... is ..., expected ..." on the first problem. */
export function validateSpec(spec: TrainRunSpec): void {
  const bad = (field: string, value: unknown, expected: string) => {
    throw new Error(
      `Cannot train a density model: ${field} is ${JSON.stringify(value)}, expected ${expected}`,
    );
  };
  const posInt = (v: number) => Number.isInteger(v) && v >= 1;
  if (!posInt(spec.batch)) bad("batch", spec.batch, "a positive integer");
  if (!(Number.isInteger(spec.steps) && spec.steps >= 0)) bad("steps", spec.steps, "an integer >= 0");
  if (!(spec.lr > 0)) bad("lr", spec.lr, "a positive number");
  if (!(Number.isInteger(spec.warmup) && spec.warmup >= 0)) bad("warmup", spec.warmup, "an integer >= 0");
  if (!(spec.emaDecay >= 0 && spec.emaDecay < 1)) bad("emaDecay", spec.emaDecay, "a number in [0, 1)");
  if (!posInt(spec.logEvery)) bad("logEvery", spec.logEvery, "a positive integer");
  if (!(Number.isInteger(spec.evalEvery) && spec.evalEvery >= 0 && spec.evalEvery % spec.logEvery === 0)) {
    bad("evalEvery", spec.evalEvery, `0 or a multiple of logEvery (${spec.logEvery})`);
  }
  if (!posInt(spec.evalSubset)) bad("evalSubset", spec.evalSubset, "a positive integer");
  if (!posInt(spec.evalBatch)) bad("evalBatch", spec.evalBatch, "a positive integer");
  if (spec.evalLimit !== null && !posInt(spec.evalLimit)) bad("evalLimit", spec.evalLimit, "null or >= 1");
  if (spec.trainLimit !== null && !posInt(spec.trainLimit)) {
    bad("trainLimit", spec.trainLimit, "null or >= 1");
  }
}

/** The reason of a missing dataset, one line naming the command that fetches it (or where to get it). */
export function missingDataReason(id: string, err: DatasetError, dataDir: string | undefined): string {
  const first = err.message.split("\n")[0];
  const where = dataDir ? `the data folder ${dataDir} does not hold it` : "no --data-dir was given";
  const hint = isDatasetName(id) ? `${obtainHint(id, dataDir)}, or ` : "";
  return `${datasetLabel(id)} not found (${where}): ${hint}pass --data-dir <folder holding it> or set ` +
    `RESFLOW_DATA_DIR. ${first}`;
}

/**
 * The finished run's result, or null when none was written. Results are written atomically, so a file
 * that cannot be read or parsed is corrupt: an error naming it, not a silent retrain.
 */
async function readResult(path: string): Promise<TrainRunResult | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot read run result ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `Cannot read run result ${path}: not JSON (${(e as Error).message}); delete its folder to train again`,
    );
  }
  const r = value as Partial<TrainRunResult> | null;
  if (typeof r !== "object" || r === null || r.format !== TRAIN_RUN_FORMAT || typeof r.hash !== "string") {
    throw new Error(
      `Cannot read run result ${path}: expected an object with format ${TRAIN_RUN_FORMAT} and a spec hash; ` +
        `delete its folder to train again`,
    );
  }
  return r as TrainRunResult;
}

/** A copy of `value` with NaN and ±Infinity written as their names (JSON cannot hold them). */
function jsonSafe<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)),
  );
}

async function loadSplits(
  spec: TrainRunSpec,
  dataDir: string | undefined,
): Promise<{ train: Dataset; test: Dataset } | { reason: string }> {
  try {
    const train = await loadDataset(spec.dataset, {
      dataDir,
      split: "train",
      limit: spec.trainLimit ?? undefined,
    });
    const need = spec.evalLimit === null ? undefined : Math.max(spec.evalLimit, spec.evalSubset);
    const test = await loadDataset(spec.dataset, { dataDir, split: "test", limit: need });
    return { train, test };
  } catch (e) {
    if (e instanceof DatasetError) return { reason: missingDataReason(spec.dataset, e, dataDir) };
    throw e;
  }
}

/**
 * Trains (or resumes, or reads the finished result of) the run of `spec`; see the module
 * documentation. Progress goes to `ctx.progress` (rate and ETA) and `ctx.log`.
 */
export async function trainRun(
  spec: TrainRunSpec,
  ctx: UnitContext,
  opts: { readonly checkpointEvery?: number; readonly label?: string } = {},
): Promise<TrainRunOutcome> {
  validateSpec(spec);
  const hash = await specHash(spec);
  const dir = await runDir(ctx.outDir, spec);
  const label = opts.label ?? datasetLabel(spec.dataset);
  const resultPath = `${dir}/${RUN_RESULT}`;
  const ckPath = `${dir}/${RUN_CHECKPOINT}`;
  // Resuming reads what the earlier process left: a corrupt result is an error naming it. A fresh run
  // deletes the folder's result anyway, so there an unreadable one only means "not this session's".
  const previous = ctx.resume ? await readResult(resultPath) : await readResult(resultPath).catch(() => null);
  if (previous && previous.hash === hash && (ctx.resume || previous.session === RUN_SESSION)) {
    if (await pathExists(ckPath)) {
      ctx.log(`${label}: reusing the finished run ${hash.slice(0, 12)} (${previous.steps} steps)`);
      return { ok: true, result: previous, dir, cached: true };
    }
  }
  const data = await loadSplits(spec, ctx.dataDir);
  if ("reason" in data) return { ok: false, reason: data.reason };
  const { train, test } = data;
  const [c, h, w] = spec.model.inputShape;
  if (
    c !== train.shape[0] || h !== train.shape[1] || w !== train.shape[2] || spec.model.nvals !== train.nvals
  ) {
    throw new Error(
      `Cannot train on ${train.id}: the model expects [${spec.model.inputShape}] with ${spec.model.nvals} ` +
        `levels, the data is [${train.shape}] with ${train.nvals}`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  if (!ctx.resume) await Deno.remove(resultPath).catch(() => {});
  await writeJsonAtomic(`${dir}/spec.json`, spec);
  return await driveTraining({
    checkpointPath: ckPath,
    // Without --resume a stale checkpoint is discarded; a checkpoint that cannot be loaded (corrupt,
    // non-finite, another configuration) is an error naming the file, never a silent retrain that
    // would throw away (or hide) the earlier run.
    existing: ctx.resume ? "resume" : "restart",
    loadErrorHint: `(delete ${dir} to train this run again)`,
    steps: spec.steps,
    build: () => {
      const model = new ResidualFlow(spec.model, { rng: new Rng(spec.seed), device: ctx.device });
      const trainer = new Trainer({
        model,
        device: ctx.device,
        data: train,
        batchSize: spec.batch,
        seed: spec.seed,
        adam: { lr: spec.lr, warmupIters: spec.warmup, weightDecay: spec.weightDecay },
        emaDecay: spec.emaDecay,
        flip: spec.flip,
        logEvery: spec.logEvery,
        datasetName: spec.dataset,
      });
      const parameters = model.parameters().reduce((a, p) => a + p.value.size, 0);
      const stepSeconds: number[] = [];
      const dispose = () => {
        trainer.dispose();
        model.dispose();
      };
      return { model, trainer, parameters, stepSeconds, bar: null as ProgressBar | null, dispose };
    },
    run: (b, start) => {
      const trainer = b.trainer;
      if (start.resumed) ctx.log(`${label}: resumed ${ckPath} at step ${start.resumedFrom} of ${spec.steps}`);
      ctx.log(
        `${label}: ${train.description}; ${b.parameters} parameters; ${spec.steps} steps of batch ` +
          `${spec.batch} on ${ctx.device.backend.description}`,
      );
      let lastEval = "";
      const bar = ctx.progress(`train ${label}`, Math.max(0, spec.steps - trainer.step), "step");
      b.bar = bar;
      const first = trainer.step;
      return {
        evalData: spec.evalEvery > 0 ? test : undefined,
        evalEvery: spec.evalEvery,
        evalLimit: spec.evalSubset,
        evalBatchSize: spec.evalBatch,
        // Every image's bits/dim is kept, so two runs of one seed can be compared per image (paired).
        evalPerImage: true,
        finalEval: false,
        checkpointEvery: opts.checkpointEvery ?? 0,
        checkpointInfo: { extra: { spec, hash } },
        onStep: (s) => {
          if (s.accepted) b.stepSeconds.push(s.seconds);
          const info = s.accepted ? `loss ${s.loss.toFixed(3)} bpd${lastEval}` : `step ${s.step} rejected`;
          bar.update(trainer.step - first, info);
          if (s.failure) ctx.log(`${label}: ${s.failure.message}`);
        },
        onEval: (e) => {
          lastEval = ` · test@${e.step} ${e.bitsPerDim.toFixed(3)}`;
        },
      };
    },
    finish: async (b, run, start) => {
      b.bar?.finish(run.complete ? undefined : `stopped: ${run.incompleteReason}`);
      let finalEval: EvalRecord | null = null;
      const t0 = performance.now();
      if (run.optimizerSteps > 0 || spec.steps === 0) {
        const total = Math.min(test.count, spec.evalLimit ?? test.count);
        const evalBar = ctx.progress(`test ${label}`, total, "img");
        finalEval = await b.trainer.evaluate(test, {
          batchSize: spec.evalBatch,
          limit: total,
          keepPerImage: true,
          onProgress: (done) => evalBar.update(done),
        });
        evalBar.finish(`${finalEval.bitsPerDim.toFixed(4)} ± ${finalEval.standardError.toFixed(4)} bits/dim`);
      }
      const result: TrainRunResult = {
        format: TRAIN_RUN_FORMAT,
        hash,
        spec,
        session: RUN_SESSION,
        complete: run.complete,
        incompleteReason: run.incompleteReason,
        steps: run.steps,
        optimizerSteps: run.optimizerSteps,
        finalEval,
        evals: run.history.evals,
        curve: run.history.logs.map((l) => ({ step: l.step, loss: l.lossMean, wallSeconds: l.wallSeconds })),
        failures: run.history.failures.map((f: FailureReport) => f.message),
        trainSeconds: run.wallSeconds,
        finalEvalSeconds: (performance.now() - t0) / 1000,
        stepSecondsMedian: upperMedian(b.stepSeconds),
        resumedFrom: start.resumedFrom,
        checkpoint: RUN_CHECKPOINT,
        checkpointPath: ckPath,
        datasetName: train.name,
        trainDescription: train.description,
        testDescription: test.description,
        parameters: b.parameters,
        backend: ctx.device.name,
        adapter: ctx.device.backend.description,
      };
      const safe = jsonSafe(result);
      await writeJsonAtomic(resultPath, safe);
      return { ok: true, result: safe, dir, cached: false };
    },
  });
}
