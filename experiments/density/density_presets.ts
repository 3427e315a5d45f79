/**
 * The training runs of the density, ablation and samples experiments at every preset: one function
 * from (column, model variant, preset, seed, data folder) to a {@link TrainRunSpec}. The same code
 * runs at every scale; only these numbers change. Density's "Residual Flow" on MNIST and CIFAR-10 is
 * the ablation's "Residual Flow + LipSwish" on the same column (the identical spec, so it is trained
 * once), and the samples experiment reads the same runs.
 *
 * - `smoke`: one scale of one block of width 8, a few steps, 16 test images (pipeline tests).
 * - `quick`: small models (3 scales of 1 block, width 32, one FC block of width 64), batch 32, 500
 *   test images. MNIST trains 1000 steps at lr 2e-3 with an evaluation every 100 steps on 300 fixed
 *   test images, so the ablation's LipSwish vs ELU comparison runs past its crossover (about 600
 *   steps, issue 15) and the plateau gate has its last 300 steps to look at; CIFAR-10 keeps 120 steps
 *   (its claims are not testable at this scale). Sized from measured step times (QUICK_NOTE).
 * - `long`: 3 scales of 2 blocks of width 64, 2 FC blocks of width 128, batch 32, 2000 test images;
 *   MNIST 2000 steps (10 evaluations on 500 images; the ablation trains two seeds), CIFAR-10
 *   450 steps. Measured on a quiet 2-core machine: 1.9 s/step on MNIST and 2.9 s/step on CIFAR-10,
 *   13 and 9 test images/s in evaluation: about 65 min per MNIST run (6 for the ablation's two seeds:
 *   6.5 h) and 25 min per CIFAR-10 run (6: 2.5 h), about 9 hours for density and ablation.
 * - `paper`: SPEC 1.1-1.4 and 1.9 exactly (PAPER_CONFIGS, batch 64, Adam 1e-3 with 1000 warm-up
 *   iterations, EMA 0.999, 350 epochs, 20 exact evaluation terms, the full test sets).
 * @module
 */
import type { Preset } from "../framework/presets.ts";
import type { DatasetName } from "../../lib/data/mod.ts";
import { resolveDataDir } from "../../lib/data/mod.ts";
import {
  type ActivationName,
  makeConfig,
  PAPER_CONFIGS,
  type ResidualFlowConfig,
} from "../../lib/flow/config.ts";
import type { TrainRunResult, TrainRunSpec } from "../framework/train_run.ts";
import type { EvalResult } from "../../lib/train/evaluate.ts";
import { isFileSync } from "../../lib/artifacts/files.ts";
import { TRAIN_COUNTS } from "../framework/train_counts.ts";

/** A column of the density or ablation table. */
export type DensityColumn = "mnist" | "cifar10" | "cifar10_small" | "imagenet32" | "imagenet64";

/** The model variants of the ablation (SPEC 1.9); density uses "resflow-lipswish". */
export type ModelVariant = "resflow-lipswish" | "resflow-elu" | "iresnet-elu";

/** The ablation table's row of each variant. */
export const VARIANT_ROWS: Readonly<Record<ModelVariant, string>> = {
  "iresnet-elu": "i-ResNet + ELU",
  "resflow-elu": "Residual Flow + ELU",
  "resflow-lipswish": "Residual Flow + LipSwish",
};

/** Terms of the i-ResNet's biased truncated series (SPEC 1.9: 5, as the i-ResNet density scripts). */
export const IRESNET_TERMS = 5;
/** The i-ResNet's per-layer Lipschitz coefficient. */
export const IRESNET_COEFF = 0.9;
/** The Residual Flow's per-layer Lipschitz coefficient. */
export const RESFLOW_COEFF = 0.98;

/** Epochs of the paper preset (SPEC 1.1/1.2: MNIST and CIFAR-10 converge in about 300-350 epochs). */
export const PAPER_EPOCHS = 350;
/** ImageNet epochs of the paper preset: not stated in the paper (SPEC 1.3/1.4). */
export const PAPER_IMAGENET_EPOCHS = 20;

/** The numbers a preset chooses for the small (non-paper) models. */
export interface ScaledBudget {
  /** Blocks per scale. */
  readonly nBlocks: readonly number[];
  /** Hidden channels of the conv branches. */
  readonly hidden: number;
  /** FC end blocks (0: none). */
  readonly fcBlocks: number;
  /** Hidden width of the FC end blocks. */
  readonly fcHidden: number;
  /** Images per step. */
  readonly batch: number;
  /** Training steps. */
  readonly steps: number;
  /** Warm-up iterations. */
  readonly warmup: number;
  /** Learning rate. */
  readonly lr: number;
  /** EMA decay (shortened with the run: the average must forget the first steps). */
  readonly emaDecay: number;
  /** Final-evaluation test images (null: all). */
  readonly evalLimit: number | null;
  /** Test images of the periodic evaluations. */
  readonly evalSubset: number;
  /** Periodic evaluations per run. */
  readonly evals: number;
  /** Steps per training-curve point. */
  readonly logEvery: number;
  /** Per-column changes of the optimisation and evaluation budget (the model stays the preset's). */
  readonly columns?: Readonly<Partial<Record<DensityColumn, ColumnBudget>>>;
}

/** What a column may change of its preset's budget. */
export type ColumnBudget = Partial<
  Pick<ScaledBudget, "steps" | "warmup" | "lr" | "emaDecay" | "evalLimit" | "evalSubset" | "evals">
>;

/** The budget of a column at a scaled preset: the preset's, with the column's changes. */
export function columnBudget(preset: Exclude<Preset, "paper">, column: DensityColumn): ScaledBudget {
  const b = SCALED_BUDGETS[preset];
  return { ...b, ...(b.columns?.[column] ?? {}) };
}

/** Budgets of the scaled presets (per dataset family: MNIST-like 28x28 or CIFAR-like 32x32). */
export const SCALED_BUDGETS: Readonly<Record<Exclude<Preset, "paper">, ScaledBudget>> = {
  smoke: {
    nBlocks: [1],
    hidden: 8,
    fcBlocks: 0,
    fcHidden: 8,
    batch: 8,
    steps: 3,
    warmup: 0,
    lr: 1e-3,
    emaDecay: 0.5,
    evalLimit: 16,
    evalSubset: 8,
    evals: 3,
    logEvery: 1,
  },
  quick: {
    nBlocks: [1, 1, 1],
    hidden: 32,
    fcBlocks: 1,
    fcHidden: 64,
    batch: 32,
    steps: 120,
    warmup: 10,
    lr: 5e-3,
    emaDecay: 0.95,
    evalLimit: 500,
    evalSubset: 100,
    evals: 4,
    logEvery: 10,
    // Measured on the wasm backend on a quiet 2-core machine (the quick run at ae98e25, 27 min in
    // all): MNIST 1000 steps 7.5 min (LipSwish) and 8.8 min (ELU) with 10 evaluations of 300 images;
    // CIFAR-10 (exact subset) 120 steps 2.1 min; 500 MNIST test images evaluated in 12-14 s. The
    // hour: the three MNIST ablation runs (LipSwish is density's MNIST run) about 26 min, density's
    // CIFAR-10 run 2.5 min, hybrid about 10 min (150 steps), memory 1, estimators 0.5, samples 1,
    // pretrained 0.5 min: about 45 min, with room for contention. (The earlier WebGPU/llvmpipe sizing
    // measured 0.8-1.4 s per step quiet and 2.0-2.4 s under load 4-9: 68.5 min for the quick run.)
    columns: { mnist: { steps: 1000, lr: 2e-3, evals: 10, evalSubset: 300 } },
  },
  long: {
    nBlocks: [2, 2, 2],
    hidden: 64,
    fcBlocks: 2,
    fcHidden: 128,
    batch: 32,
    steps: 450,
    warmup: 50,
    lr: 2e-3,
    emaDecay: 0.99,
    evalLimit: 2000,
    evalSubset: 300,
    evals: 5,
    logEvery: 15,
    // The ablation's MNIST comparison needs its crossover well behind it and a plateau: 2000 steps
    // (issue 15 asks 2000-3000), 10 evaluations on 500 images (every 195 steps: a multiple of logEvery).
    columns: { mnist: { steps: 2000, evals: 10, evalSubset: 500 } },
  },
};

/** Where the quick budget comes from (copied into every figure's scale text). */
export const QUICK_NOTE = "sized from times measured on the wasm backend on a quiet 2-core machine " +
  "(the quick run at ae98e25: 27 min in all): MNIST runs of 1000 steps of batch 32 took 7.5-8.8 min " +
  "with their 10 periodic evaluations (0.45-0.53 s per step), CIFAR-10 (exact subset) 1.0 s per step; " +
  "MNIST runs 1000 steps so that the ablation's LipSwish vs ELU comparison passes its crossover (about " +
  "550 steps), the i-ResNet row adds about 9 min, the hybrid runs 150 steps (about 10 min); the " +
  "CIFAR-10 ablation columns (3 runs of at least 1000 steps at 1.0 s per step) do not fit the hour " +
  "and run at the long preset";

/** Presets that always train CIFAR-10 columns on the exact subset, whatever the data folder holds. */
export const EXACT_SUBSET_PRESETS: ReadonlySet<Preset> = new Set(["smoke", "quick"]);

/**
 * The registry dataset of a column. CIFAR-10 columns: under `smoke` and `quick` always the exact subset
 * (4k train / 1k test; derived from the official batches when absent), so a user's run trains on the
 * same images as the committed results even after the full set was downloaded; under `long` the full
 * set when the data folder holds it, else the exact subset; under `paper` always the full set (nothing
 * shrunk: without it the unit reports the data missing).
 */
export function columnDataset(
  column: DensityColumn,
  dataDir: string | undefined,
  preset: Preset,
): DatasetName {
  if (column === "mnist") return "mnist";
  if (column === "imagenet32" || column === "imagenet64") return column;
  if (EXACT_SUBSET_PRESETS.has(preset)) return "cifar10-exact";
  return preset === "paper" || hasFullCifar10(dataDir) ? "cifar10" : "cifar10-exact";
}

/** True when the data folder holds the official CIFAR-10 binary batches. */
export function hasFullCifar10(dataDir: string | undefined): boolean {
  const dir = resolveDataDir(dataDir);
  return [`${dir}/cifar-10-batches-bin`, dir].some((d) =>
    isFileSync(`${d}/data_batch_1.bin`) && isFileSync(`${d}/test_batch.bin`)
  );
}

/** True when the data folder holds downsampled ImageNet at `size` (its `val_data.npz`). */
export function hasImagenet(dataDir: string | undefined, size: 32 | 64): boolean {
  const root = `${resolveDataDir(dataDir)}/imagenet${size}`;
  if (isFileSync(`${root}/val_data.npz`)) return true;
  try {
    for (const e of Deno.readDirSync(root)) {
      if (e.isDirectory && isFileSync(`${root}/${e.name}/val_data.npz`)) return true;
    }
  } catch {
    return false;
  }
  return false;
}

function variantOverrides(variant: ModelVariant): Partial<ResidualFlowConfig> {
  if (variant === "resflow-lipswish") return { activation: "lipswish", coeff: RESFLOW_COEFF };
  const activation: ActivationName = "elu";
  if (variant === "resflow-elu") return { activation, coeff: RESFLOW_COEFF };
  return { activation, coeff: IRESNET_COEFF };
}

function withVariant(base: ResidualFlowConfig, variant: ModelVariant): ResidualFlowConfig {
  const estimator = variant === "iresnet-elu"
    ? { ...base.estimator, kind: "truncated" as const, nTruncated: IRESNET_TERMS }
    : { ...base.estimator, kind: "unbiased" as const };
  return makeConfig({ ...base, ...variantOverrides(variant), estimator });
}

/** The input shape, logit alpha and extras of a column at data resolution. */
function columnShape(column: DensityColumn): Pick<
  ResidualFlowConfig,
  "inputShape" | "logitAlpha" | "squeezeFirst" | "factorOut"
> {
  if (column === "mnist") {
    return { inputShape: [1, 28, 28], logitAlpha: 1e-5, squeezeFirst: false, factorOut: false };
  }
  if (column === "imagenet64") {
    return { inputShape: [3, 64, 64], logitAlpha: 0.05, squeezeFirst: true, factorOut: true };
  }
  return {
    inputShape: [3, 32, 32],
    logitAlpha: 0.05,
    squeezeFirst: column === "cifar10_small",
    factorOut: false,
  };
}

/** The model of a column and variant at a preset. */
export function columnModel(
  column: DensityColumn,
  variant: ModelVariant,
  preset: Preset,
): ResidualFlowConfig {
  if (preset === "paper") return withVariant(PAPER_CONFIGS[column], variant);
  const b = SCALED_BUDGETS[preset];
  const imagenet = column === "imagenet32" || column === "imagenet64";
  return withVariant(
    makeConfig({
      ...columnShape(column),
      nBlocks: b.nBlocks,
      hiddenChannels: b.hidden,
      fcEnd: b.fcBlocks > 0 && !imagenet,
      fcBlocks: Math.max(1, b.fcBlocks),
      fcHidden: b.fcHidden,
    }),
    variant,
  );
}

/** The full training spec of a column and variant at a preset. */
export function densitySpec(
  column: DensityColumn,
  variant: ModelVariant,
  preset: Preset,
  seed: number,
  dataDir: string | undefined,
): TrainRunSpec {
  const dataset = columnDataset(column, dataDir, preset);
  const model = columnModel(column, variant, preset);
  const flip = dataset === "cifar10" || dataset === "cifar10-exact";
  if (preset === "paper") {
    const imagenet = column === "imagenet32" || column === "imagenet64";
    const perEpoch = Math.floor(TRAIN_COUNTS[dataset] / 64);
    const epochs = imagenet ? PAPER_IMAGENET_EPOCHS : PAPER_EPOCHS;
    const evalEvery = 10 * perEpoch - ((10 * perEpoch) % 50);
    return {
      dataset,
      model,
      batch: 64,
      steps: epochs * perEpoch,
      lr: 1e-3,
      warmup: 1000,
      emaDecay: 0.999,
      weightDecay: 0,
      flip,
      trainLimit: null,
      evalLimit: null,
      evalEvery,
      evalSubset: 1000,
      evalBatch: 200,
      logEvery: 50,
      seed,
    };
  }
  const b = columnBudget(preset, column);
  const evalEvery = Math.max(b.logEvery, Math.floor(b.steps / b.evals / b.logEvery) * b.logEvery);
  return {
    dataset,
    model,
    batch: b.batch,
    steps: b.steps,
    lr: b.lr,
    warmup: b.warmup,
    emaDecay: b.emaDecay,
    weightDecay: 0,
    flip,
    trainLimit: null,
    evalLimit: b.evalLimit,
    evalEvery,
    evalSubset: b.evalSubset,
    evalBatch: preset === "smoke" ? 8 : 100,
    logEvery: b.logEvery,
    seed,
  };
}

/**
 * The scale of a spec in a few words, starting with the preset, e.g. "quick: MNIST; blocks 1-1-1 x
 * width 32 + 1 FC (64); 120 steps x batch 32; 500 test images". `finalEval`, the run's final
 * evaluation, gives the number of test images it used (its finite and non-finite values together);
 * that number replaces the preset's limit when the test set was smaller (the CIFAR-10 exact subset
 * has 1000 test images where `long` asks for 2000).
 */
export function specScale(
  preset: Preset,
  spec: TrainRunSpec,
  datasetName: string,
  finalEval?: Pick<EvalResult, "count" | "nonFinite"> | null,
): string {
  const m = spec.model;
  const fc = m.fcEnd ? ` + ${m.fcBlocks} FC (${m.fcHidden})` : "";
  const evaluated = finalEval ? finalEval.count + finalEval.nonFinite : undefined;
  const test = spec.evalLimit === null
    ? "full test set"
    : evaluated !== undefined && evaluated < spec.evalLimit
    ? `${evaluated} test images (the whole test set; the preset's limit is ${spec.evalLimit})`
    : `${spec.evalLimit} test images`;
  const paper = preset === "paper" ? " (the paper's model)" : "";
  return `${preset}: ${datasetName}; blocks ${
    m.nBlocks.join("-")
  } x width ${m.hiddenChannels}${fc}${paper}; ` +
    `${spec.steps} steps x batch ${spec.batch}; ${test}`;
}

/** The measured cost of a finished run, for a figure's scale text ("; 1.21 s/step, 2.4 min training"). */
export function measuredText(r: TrainRunResult): string {
  return `; ${r.stepSecondsMedian.toFixed(2)} s/step, ${
    (r.trainSeconds / 60).toFixed(1)
  } min training on ${r.backend}`;
}

/** The preset a scale text starts with, or null. */
export function presetOfScale(scale: string): Preset | null {
  const m = /^(smoke|quick|long|paper):/.exec(scale);
  return m ? (m[1] as Preset) : null;
}

/** Checkpoint interval of a preset (steps). */
export function checkpointEvery(preset: Preset): number {
  return preset === "paper" ? 1000 : preset === "long" ? 250 : preset === "quick" ? 50 : 0;
}
