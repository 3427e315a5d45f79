/**
 * `deno task train`: trains a Residual Flow density model and writes, into `--out`:
 *
 * - `checkpoint.safetensors`: the latest checkpoint (every `--checkpoint-every` steps and at the end),
 *   resumable with `--resume` (same command, possibly a larger `--steps`);
 * - `summary.json`: the resolved configuration, the options, the final test bits/dim with its standard
 *   error (EMA weights, eval estimator), the training curve, evaluations and any rejected steps, and
 *   whether the run is complete.
 *
 * Both are written atomically. A progress bar shows the rate and the ETA. Expected failures (bad
 * options, missing data, a mismatched checkpoint) print one message and exit with status 1 (2 for
 * option errors).
 * @module
 */
import denoConfig from "../../deno.json" with { type: "json" };
import {
  type CliDeviceKind,
  DEVICE_HELP,
  openDevice,
  parseDeviceOption,
} from "../../lib/cli/device_option.ts";
import { Rng } from "../../lib/engine/random.ts";
import { DATASET_NAMES, isDatasetName, loadDataset } from "../../lib/data/mod.ts";
import { isDir } from "../../lib/data/errors.ts";
import type { Dataset } from "../../lib/data/dataset.ts";
import { type ActivationName, makeConfig, type ResidualFlowConfig } from "../../lib/flow/config.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { Trainer } from "../../lib/train/trainer.ts";
import { writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import { gitCommit } from "../../lib/artifacts/artifact.ts";
import { OptionError, type OptionSpec, type ParsedArgs, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { prepareOutputDir } from "../../lib/cli/output.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";
import { driveTraining } from "../../lib/train/driver.ts";

const COMMAND = "deno task train";
const SUMMARY = "Train a Residual Flow density model; checkpoints and a JSON summary go to --out.\n" +
  "The paper's models use --blocks 16-16-16 --hidden 512 --batch 64 (SPEC 1.1-1.2).";

/** File names inside the output folder. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";
/** The summary written at the end of a run. */
export const SUMMARY_FILE = "summary.json";

/** The options of `deno task train`. */
export const TRAIN_OPTIONS: Record<string, OptionSpec> = {
  dataset: { type: "string", default: "mnist", help: `Dataset: ${DATASET_NAMES.join(", ")}` },
  "data-dir": { type: "string", help: "Data folder (default: $RESFLOW_DATA_DIR, else ./data)" },
  device: {
    type: "string",
    default: "webgpu",
    help: `Compute device: ${DEVICE_HELP}`,
  },
  blocks: { type: "string", default: "4-4", help: "Residual blocks per scale, e.g. 16-16-16 (paper)" },
  hidden: { type: "string", default: "64", help: "Hidden channels of the residual branches (paper 512)" },
  act: { type: "string", default: "lipswish", help: "Activation: lipswish, elu, softplus, relu" },
  "fc-blocks": {
    type: "string",
    help: "Fully connected end blocks (default 4 for MNIST/CIFAR-10 as the paper, else 0)",
  },
  "fc-hidden": { type: "string", default: "128", help: "Hidden width of the FC end blocks" },
  coeff: { type: "string", default: "0.98", help: "Lipschitz coefficient of every layer" },
  "n-exact-terms": { type: "string", default: "2", help: "Always-computed log-det series terms" },
  "n-dist": { type: "string", default: "geometric", help: "Distribution of N: geometric (paper) or poisson" },
  "logit-alpha": {
    type: "string",
    help: "Logit transform alpha (default 1e-5 for MNIST as the paper, else 0.05)",
  },
  "squeeze-first": {
    type: "string",
    help: "true/false: squeeze before the model (default true for 64x64 data)",
  },
  "factor-out": {
    type: "string",
    help: "true/false: factor out half after each squeeze (default true for 64x64)",
  },
  batch: { type: "string", default: "64", help: "Images per step" },
  steps: { type: "string", default: "1000", help: "Total training steps (a resumed run continues to this)" },
  lr: { type: "string", default: "0.001", help: "Adam learning rate" },
  warmup: { type: "string", default: "1000", help: "Linear learning-rate warm-up iterations" },
  "weight-decay": { type: "string", default: "0", help: "Decoupled weight decay (paper 5e-4)" },
  "ema-decay": { type: "string", default: "0.999", help: "EMA decay of the evaluation weights" },
  "max-failures": {
    type: "string",
    default: "5",
    help: "End the run after this many non-finite steps in a row",
  },
  "train-limit": { type: "string", help: "Train on the first N training images only" },
  seed: { type: "string", default: "0", help: "Seed of the weights, data order, noise and estimators" },
  out: { type: "string", help: "Output folder (default runs/train-<dataset>)" },
  resume: { type: "boolean", help: "Continue from <out>/checkpoint.safetensors when it exists" },
  "eval-every": { type: "string", default: "0", help: "Evaluate every N steps (0: only at the end)" },
  "eval-limit": { type: "string", help: "Evaluate on the first N test images (default: all)" },
  "eval-batch": { type: "string", default: "200", help: "Evaluation batch size" },
  "checkpoint-every": {
    type: "string",
    default: "100",
    help: "Write a checkpoint every N steps (and at the end)",
  },
  "log-every": { type: "string", default: "10", help: "Read back estimator moments every N steps" },
};

/** Datasets whose paper models keep the FC end blocks and use flips. */
const PAPER_DENSITY = new Set(["mnist", "cifar10", "cifar10-exact"]);
const FLIPPED = new Set(["cifar10", "cifar10-exact", "celeba5bit"]);
const LARGE = new Set(["imagenet64", "celeba5bit"]);

export { OptionError };

function num(args: ParsedArgs, name: string, check: (v: number) => boolean, expected: string): number {
  const raw = args[name];
  const v = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(v) || !check(v)) {
    throw new OptionError(`Cannot use --${name} ${JSON.stringify(raw ?? null)}: expected ${expected}`);
  }
  return v;
}

/**
 * Upper bounds of the size options: far above the paper's settings (batch 64, width 512, 16 blocks per
 * scale), low enough that a typo cannot ask for more memory than any machine has.
 */
export const TRAIN_LIMITS: Readonly<Record<string, number>> = {
  hidden: 4096,
  "fc-hidden": 4096,
  "fc-blocks": 64,
  batch: 4096,
  "eval-batch": 4096,
  "n-exact-terms": 100,
};

function int(args: ParsedArgs, name: string, min: number): number {
  const max = TRAIN_LIMITS[name] ?? Number.MAX_SAFE_INTEGER;
  return num(
    args,
    name,
    (v) => Number.isSafeInteger(v) && v >= min && v <= max,
    max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
  );
}

function bool(args: ParsedArgs, name: string, fallback: boolean): boolean {
  const raw = args[name];
  if (raw === undefined) return fallback;
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new OptionError(`Cannot use --${name} ${JSON.stringify(raw)}: expected true or false`);
}

/** Everything a run needs, resolved from the options. */
export interface TrainSetup {
  /** Dataset name. */
  readonly dataset: string;
  /** Data folder, if given. */
  readonly dataDir?: string;
  /** "webgpu" or "cpu". */
  readonly device: CliDeviceKind;
  /** Model configuration without the data-dependent fields (input shape, nvals). */
  readonly model: Omit<Partial<ResidualFlowConfig>, "inputShape" | "nvals">;
  /** Trainer settings. */
  readonly train: {
    batch: number;
    steps: number;
    lr: number;
    warmup: number;
    weightDecay: number;
    emaDecay: number;
    maxFailures: number;
    trainLimit?: number;
    seed: number;
    flip: boolean;
  };
  /** Run settings. */
  readonly run: {
    out: string;
    resume: boolean;
    evalEvery: number;
    evalLimit?: number;
    evalBatch: number;
    checkpointEvery: number;
    logEvery: number;
  };
}

/** Resolves and checks the options; throws {@link OptionError} naming the option and what it expects. */
export function resolveSetup(args: ParsedArgs): TrainSetup {
  const dataset = String(args.dataset);
  if (!isDatasetName(dataset)) {
    throw new OptionError(
      `Cannot use --dataset ${JSON.stringify(dataset)}: expected one of ${DATASET_NAMES.join(", ")}`,
    );
  }
  const device = parseDeviceOption(args.device);
  const blocksText = String(args.blocks);
  const nBlocks = blocksText.split("-").map(Number);
  if (!/^\d+(-\d+)*$/.test(blocksText) || nBlocks.some((b) => b < 1 || b > 64) || nBlocks.length > 6) {
    throw new OptionError(
      `Cannot use --blocks ${
        JSON.stringify(blocksText)
      }: expected counts like 4-4 or 16-16-16 (1 to 64 blocks per scale, at most 6 scales)`,
    );
  }
  const act = String(args.act);
  if (!["lipswish", "elu", "softplus", "relu"].includes(act)) {
    throw new OptionError(
      `Cannot use --act ${JSON.stringify(act)}: expected lipswish, elu, softplus or relu`,
    );
  }
  const nDist = String(args["n-dist"]);
  if (nDist !== "geometric" && nDist !== "poisson") {
    throw new OptionError(`Cannot use --n-dist ${JSON.stringify(nDist)}: expected geometric or poisson`);
  }
  const fcBlocks = args["fc-blocks"] === undefined
    ? (PAPER_DENSITY.has(dataset) ? 4 : 0)
    : int(args, "fc-blocks", 0);
  const logitAlpha = args["logit-alpha"] === undefined
    ? (dataset === "mnist" ? 1e-5 : 0.05)
    : num(args, "logit-alpha", (v) => v > 0 && v < 0.5, "a number in (0, 0.5)");
  const large = LARGE.has(dataset);
  const model = {
    nBlocks,
    hiddenChannels: int(args, "hidden", 1),
    activation: act as ActivationName,
    coeff: num(args, "coeff", (v) => v > 0 && v < 1, "a number in (0, 1)"),
    fcEnd: fcBlocks > 0,
    fcBlocks: fcBlocks > 0 ? fcBlocks : 4,
    fcHidden: int(args, "fc-hidden", 1),
    logitAlpha,
    squeezeFirst: bool(args, "squeeze-first", large),
    factorOut: bool(args, "factor-out", large),
    estimator: {
      kind: "unbiased" as const,
      nTruncated: 5,
      nDist: nDist as "geometric" | "poisson",
      nDistParam: nDist === "geometric" ? 0.5 : 2,
      nExactTerms: int(args, "n-exact-terms", 0),
      evalExactTerms: 20,
      neumannGrad: true,
      backwardInForward: true,
    },
  };
  const seed = int(args, "seed", 0);
  return {
    dataset,
    dataDir: args["data-dir"] as string | undefined,
    device,
    model,
    train: {
      batch: int(args, "batch", 1),
      steps: int(args, "steps", 0),
      lr: num(args, "lr", (v) => v > 0, "a positive number"),
      warmup: int(args, "warmup", 0),
      weightDecay: num(args, "weight-decay", (v) => v >= 0, "a number >= 0"),
      emaDecay: num(args, "ema-decay", (v) => v >= 0 && v < 1, "a number in [0, 1)"),
      maxFailures: int(args, "max-failures", 1),
      trainLimit: args["train-limit"] === undefined ? undefined : int(args, "train-limit", 1),
      seed,
      flip: FLIPPED.has(dataset),
    },
    run: {
      out: args.out === undefined ? `runs/train-${dataset}` : String(args.out),
      resume: args.resume === true,
      evalEvery: int(args, "eval-every", 0),
      evalLimit: args["eval-limit"] === undefined ? undefined : int(args, "eval-limit", 1),
      evalBatch: int(args, "eval-batch", 1),
      checkpointEvery: int(args, "checkpoint-every", 0),
      logEvery: int(args, "log-every", 1),
    },
  };
}

/** A copy of `value` with NaN and ±Infinity replaced by their names (JSON cannot hold them). */
export function jsonSafe(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)),
  );
}

/** Runs the training described by `setup`; returns the exit status (0 complete, 3 incomplete). */
export async function train(setup: TrainSetup, options: ParsedArgs): Promise<number> {
  const t = setup.train;
  const r = setup.run;
  const ckPath = `${r.out}/${CHECKPOINT_FILE}`;
  const stale = await prepareOutputDir(r.out);
  if (stale.length) {
    console.log(`Removed ${stale.length} temporary file(s) of an interrupted run in ${r.out}`);
  }
  return await driveTraining({
    checkpointPath: ckPath,
    existing: r.resume ? "resume" : "refuse",
    refuseWhere: r.out,
    steps: t.steps,
    build: async () => {
      if (setup.dataDir !== undefined && !(await isDir(setup.dataDir))) {
        throw new OptionError(`Cannot use --data-dir ${JSON.stringify(setup.dataDir)}: no such folder`);
      }
      const trainData: Dataset = await loadDataset(setup.dataset, {
        dataDir: setup.dataDir,
        split: "train",
        limit: t.trainLimit,
      });
      const testData: Dataset = await loadDataset(setup.dataset, {
        dataDir: setup.dataDir,
        split: "test",
        limit: r.evalLimit,
      });
      if (t.batch > trainData.count) {
        throw new OptionError(
          `Cannot use --batch ${t.batch}: more than the ${trainData.count} training images of ${setup.dataset}` +
            `${t.trainLimit !== undefined ? ` (--train-limit ${t.trainLimit})` : ""}`,
        );
      }
      const config = makeConfig({ ...setup.model, inputShape: trainData.shape, nvals: trainData.nvals });
      const device = await openDevice(setup.device);
      const model = new ResidualFlow(config, { rng: new Rng(t.seed), device });
      const trainer = new Trainer({
        model,
        device,
        data: trainData,
        batchSize: t.batch,
        seed: t.seed,
        adam: { lr: t.lr, warmupIters: t.warmup, weightDecay: t.weightDecay },
        emaDecay: t.emaDecay,
        flip: t.flip,
        logEvery: r.logEvery,
        maxConsecutiveFailures: t.maxFailures,
        datasetName: setup.dataset,
      });
      console.log(`Data: ${trainData.description}`);
      console.log(`Test: ${testData.description}`);
      console.log(
        `Model: ${
          model.parameters().reduce((a, p) => a + p.value.size, 0)
        } parameters on ${device.backend.description}`,
      );
      return {
        trainer,
        trainData,
        testData,
        config,
        device,
        bar: null as ProgressBar | null,
        dispose: () => trainer.dispose(),
      };
    },
    run: (b, start) => {
      const trainer = b.trainer;
      if (start.resumed) console.log(`Resumed ${ckPath} at step ${start.resumedFrom} of ${t.steps}`);
      else if (r.resume) console.log(`No checkpoint ${ckPath} yet: starting at step 0`);
      const first = trainer.step;
      const bar = new ProgressBar({
        total: Math.max(0, t.steps - first),
        label: `train ${setup.dataset}${first ? ` from step ${first}` : ""}`,
        unit: "step",
      });
      b.bar = bar;
      let evalBar: ProgressBar | null = null;
      return {
        evalData: b.testData,
        evalEvery: r.evalEvery,
        evalBatchSize: r.evalBatch,
        checkpointEvery: r.checkpointEvery,
        checkpointInfo: { suiteVersion: denoConfig.version, extra: { options } },
        onStep: (s) => {
          const info = s.accepted
            ? `loss ${s.loss.toFixed(3)} bpd · |g| ${s.gradNorm.toFixed(2)} · lr ${s.lr.toExponential(1)}`
            : `step ${s.step} rejected (${s.failure?.quantity})`;
          bar.update(trainer.step - first, info);
          if (s.failure) console.error(s.failure.message);
        },
        onEvalProgress: (done, total) => {
          evalBar ??= new ProgressBar({ total, label: `eval at step ${trainer.step}`, unit: "img" });
          evalBar.update(done);
        },
        onEval: (e) => {
          (evalBar as ProgressBar | null)?.finish(
            `${e.bitsPerDim.toFixed(4)} ± ${e.standardError.toFixed(4)} bits/dim`,
          );
          evalBar = null;
        },
      };
    },
    finish: async (b, result) => {
      b.bar?.finish();
      const summary = {
        command: COMMAND,
        suiteVersion: denoConfig.version,
        gitCommit: await gitCommit(),
        date: new Date().toISOString(),
        denoVersion: Deno.version.deno,
        adapter: b.device.backend.description,
        device: b.device.name,
        dataset: { name: setup.dataset, train: b.trainData.description, test: b.testData.description },
        options,
        config: b.config,
        seed: t.seed,
        complete: result.complete,
        incompleteReason: result.incompleteReason,
        steps: result.steps,
        optimizerSteps: result.optimizerSteps,
        wallSeconds: result.wallSeconds,
        testBitsPerDim: result.finalEval,
        checkpoint: CHECKPOINT_FILE,
        evals: result.history.evals,
        logs: result.history.logs,
        failures: result.history.failures,
      };
      await writeJsonAtomic(`${r.out}/${SUMMARY_FILE}`, jsonSafe(summary));
      const fe = result.finalEval;
      console.log(
        `${result.complete ? "Done" : `Stopped early (${result.incompleteReason})`}: ${result.steps} steps${
          fe
            ? `, test ${fe.bitsPerDim.toFixed(4)} ± ${
              fe.standardError.toFixed(4)
            } bits/dim (EMA, ${fe.count} images)`
            : ""
        }. Wrote ${r.out}/${SUMMARY_FILE} and ${ckPath}`,
      );
      return result.complete ? 0 : 3;
    },
  });
}

/** Parses `argv`, trains, and returns the exit status; failures are thrown for {@link runMain}. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(COMMAND, SUMMARY, TRAIN_OPTIONS, argv);
  if (args === null) return 0;
  return await train(resolveSetup(args), args);
}

if (import.meta.main) await runMain(COMMAND, main);
