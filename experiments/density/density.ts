/**
 * Experiment "density": test bits/dim of Residual Flows (paper Table 1, row "Residual Flow") on MNIST
 * and CIFAR-10 (under `smoke` and `quick` the project's exact subset of 4k train / 1k test images; under
 * `long` the full set when the data folder holds it, else the subset; under `paper` the full set; see
 * `columnDataset`), and ImageNet 32/64 under `paper` when their data is present. Each unit trains one
 * model through the shared run cache (experiments/framework/train_run.ts), reports the final test
 * bits/dim with its standard error over the test images (EMA weights, 20 exact terms plus roulette),
 * the first and last periodic evaluations, the training curve as PNG and sample grids at temperature
 * 1 and 0.7 (EMA weights, power iteration refreshed, fixed-point inverse).
 *
 * Units: "mnist", "cifar10", and under `paper` "imagenet32" / "imagenet64" when the data is found.
 * @module
 */
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { makeFigure } from "../published.ts";
import { linePlotPng } from "../../lib/artifacts/plot.ts";
import { imageGridPng } from "../../lib/artifacts/png.ts";
import type { Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import { type DatasetName, resolveDataDir } from "../../lib/data/mod.ts";
import { failOnNonFinite } from "../framework/claim_guards.ts";
import { gated } from "../framework/claim_gates.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { drawSamples, loadTrainedModel } from "../framework/trained_model.ts";
import { trainRun, type TrainRunResult } from "../framework/train_run.ts";
import { datasetLabel } from "../../lib/data/mod.ts";
import {
  checkpointEvery,
  columnDataset,
  type DensityColumn,
  densitySpec,
  hasImagenet,
  measuredText,
  presetOfScale,
  QUICK_NOTE,
  specScale,
} from "./density_presets.ts";
import { findFigure } from "../framework/figures.ts";

/** The published table. */
export const DENSITY_TABLE = "density_bpd";
/** The row of this project's model in the published table. */
export const DENSITY_ROW = "Residual Flow";
/** The project's table of the periodic evaluations (fixed test subset). */
export const DENSITY_TRAINING_TABLE = "density_training";
/** The project's table of measured costs. */
export const DENSITY_COST_TABLE = "density_cost";
/** Rows of {@link DENSITY_TRAINING_TABLE}. */
export const FIRST_EVAL_ROW = "first periodic eval";
/** Last periodic evaluation. */
export const LAST_EVAL_ROW = "last periodic eval";
/** Largest |ours − paper| accepted at the paper preset (bits/dim). */
export const PAPER_TOLERANCE_BPD = 0.02;
/** Sample temperatures of the grids. */
export const SAMPLE_TEMPERATURES: readonly number[] = [1, 0.7];

const COLUMNS: readonly DensityColumn[] = ["mnist", "cifar10", "imagenet32", "imagenet64"];

/** Samples per grid at a preset. */
export function sampleCount(preset: Preset): number {
  return preset === "smoke" ? 4 : 64;
}

/** Tag of the sampling seeds (derived from the run's seed). */
const SAMPLE_SEED_TAG = 7919;

/** A training curve (train loss and periodic test evaluations) as series and a PNG. */
export async function writeCurvePng(
  path: string,
  title: string,
  r: TrainRunResult,
): Promise<Series[]> {
  const train: Series = {
    name: `train bits/dim (training estimator, mean of ${r.spec.logEvery} steps)`,
    x: r.curve.map((p) => p.step),
    y: r.curve.map((p) => p.loss),
    xLabel: "step",
    yLabel: "bits/dim",
  };
  const test: Series = {
    name: `test bits/dim on ${r.spec.evalSubset} fixed test images (EMA, eval estimator)`,
    x: r.evals.map((e) => e.step),
    y: r.evals.map((e) => e.bitsPerDim),
    yErr: r.evals.map((e) => e.standardError),
    xLabel: "step",
    yLabel: "bits/dim",
  };
  const series = [train, test];
  const fe = r.finalEval;
  const lines = [
    { name: train.name, x: train.x, y: train.y },
    { name: `${test.name} ± SE`, x: test.x, y: test.y, band: test.yErr, markers: true },
  ];
  if (fe) {
    lines.push({
      name: `final test bits/dim, ${fe.count} images: ${fe.bitsPerDim.toFixed(3)} ± ${
        fe.standardError.toFixed(3)
      }`,
      x: [fe.step],
      y: [fe.bitsPerDim],
      band: [fe.standardError],
      markers: true,
    });
  }
  const png = await linePlotPng({ title, xLabel: "training step", yLabel: "bits/dim", series: lines });
  await writeFileAtomic(path, png);
  return series;
}

async function writeSampleGrids(
  ctx: UnitContext,
  dir: string,
  r: TrainRunResult,
  prefix: string,
): Promise<{ files: string[]; notes: string[]; iterations: number[] }> {
  const model = await loadTrainedModel(dir, r, ctx.device);
  const files: string[] = [];
  const notes: string[] = [];
  const iterations: number[] = [];
  try {
    const n = sampleCount(ctx.preset);
    const [, h] = r.spec.model.inputShape;
    for (const t of SAMPLE_TEMPERATURES) {
      const drawn = await drawSamples(model, { n, temperature: t, seed: r.spec.seed * SAMPLE_SEED_TAG + 1 });
      const png = await imageGridPng(drawn.images, drawn.shape, { nrow: 8, scale: h <= 28 ? 3 : 2 });
      const file = `${prefix}_samples_T${t}.png`;
      await writeFileAtomic(`${ctx.outDir}/${file}`, png);
      files.push(file);
      const maxIt = Math.max(...drawn.inverse.map((s) => s.max));
      iterations.push(maxIt);
      notes.push(
        `${
          datasetLabel(r.spec.dataset)
        }: ${n} samples at T = ${t} (EMA weights): fixed-point iterations per residual block, largest ${maxIt}, ` +
          `mean ${(drawn.inverse.reduce((a, s) => a + s.mean, 0) / drawn.inverse.length).toFixed(1)}` +
          `${drawn.inverse.every((s) => s.converged) ? "" : " (some block did NOT converge)"}`,
      );
    }
  } finally {
    model.dispose();
  }
  return { files, notes, iterations };
}

function notPlannedNote(preset: Preset, dataDir: string | undefined): string {
  if (preset !== "paper") {
    return `ImageNet 32x32 and 64x64 are run only under the paper preset (with their data); not planned at ${preset}.`;
  }
  const missing = ([32, 64] as const).filter((s) => !hasImagenet(dataDir, s));
  return missing.length
    ? `ImageNet ${missing.map((s) => `${s}x${s}`).join(" and ")} not planned: no val_data.npz under ` +
      `${resolveDataDir(dataDir)}/imagenet<size>/ (pass --data-dir with the downsampled ImageNet files).`
    : "";
}

async function runColumn(column: DensityColumn, ctx: UnitContext): Promise<UnitResult> {
  const spec = densitySpec(column, "resflow-lipswish", ctx.preset, ctx.seed, ctx.dataDir);
  const base = {
    config: { column, dataset: spec.dataset, spec },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
  };
  const extraNotes = column === "mnist" ? [notPlannedNote(ctx.preset, ctx.dataDir)].filter((s) => s) : [];
  const outcome = await trainRun(spec, ctx, {
    checkpointEvery: checkpointEvery(ctx.preset),
    label: `${datasetLabel(spec.dataset)} Residual Flow`,
  });
  if (!outcome.ok) {
    return {
      ...base,
      figures: [
        makeFigure({
          table: DENSITY_TABLE,
          row: DENSITY_ROW,
          column,
          value: null,
          stderr: null,
          unit: "bits/dim",
          scale: specScale(ctx.preset, spec, datasetLabel(spec.dataset)),
          n: 0,
          note: outcome.reason,
        }),
      ],
      complete: false,
      incompleteReason: outcome.reason,
      notes: [outcome.reason, ...extraNotes],
    };
  }
  const r = outcome.result;
  const scale = specScale(ctx.preset, spec, r.datasetName, r.finalEval) + measuredText(r);
  const figures: Figure[] = [];
  const fe = r.finalEval;
  figures.push(makeFigure({
    table: DENSITY_TABLE,
    row: DENSITY_ROW,
    column,
    value: fe ? fe.bitsPerDim : null,
    stderr: fe ? fe.standardError : null,
    unit: "bits/dim",
    scale,
    n: fe ? fe.count : 0,
    nonFinite: fe ? fe.nonFinite : 0,
    note: `${r.datasetName}; EMA weights, eval estimator (20 exact terms + roulette); standard error over ` +
      `${fe?.count ?? 0} test images${
        fe && fe.nonFinite ? `; ${fe.nonFinite} non-finite values left out` : ""
      }`,
  }));
  const first = r.evals[0];
  const last = r.evals.length > 1 ? r.evals[r.evals.length - 1] : undefined;
  for (const [row, e] of [[FIRST_EVAL_ROW, first], [LAST_EVAL_ROW, last]] as const) {
    if (!e) continue;
    figures.push(makeFigure({
      table: DENSITY_TRAINING_TABLE,
      row,
      column,
      value: e.bitsPerDim,
      stderr: e.standardError,
      unit: "bits/dim",
      scale,
      n: e.count,
      nonFinite: e.nonFinite ?? 0,
      note:
        `at step ${e.step} of ${r.steps}, on the first ${e.count} test images (the same images and noise each time)`,
    }));
  }
  const cost = (row: string, value: number, unit: string, note: string) =>
    makeFigure({ table: DENSITY_COST_TABLE, row, column, value, stderr: null, unit, scale, n: 1, note });
  figures.push(
    cost("seconds per training step (median)", r.stepSecondsMedian, "s", `batch ${spec.batch}, ${r.backend}`),
    cost("training minutes (with periodic evals)", r.trainSeconds / 60, "min", `${r.steps} steps`),
    cost("final evaluation minutes", r.finalEvalSeconds / 60, "min", `${fe?.count ?? 0} test images`),
  );
  const prefix = `density_${column}`;
  const curveFile = `${prefix}_curve.png`;
  const series = await writeCurvePng(
    `${ctx.outDir}/${curveFile}`,
    `Residual Flow on ${datasetLabel(spec.dataset)}: training curve (${ctx.preset})`,
    r,
  );
  const grids = await writeSampleGrids(ctx, outcome.dir, r, prefix);
  return {
    ...base,
    config: { ...base.config, runHash: r.hash, parameters: r.parameters, cached: outcome.cached },
    figures,
    series: series.map((s) => ({ ...s, name: `${column}: ${s.name}` })),
    files: [curveFile, ...grids.files],
    complete: r.complete,
    incompleteReason: r.complete ? undefined : r.incompleteReason ?? "training stopped early",
    notes: [
      `${r.datasetName}: ${r.parameters} parameters, ${r.steps} steps in ${
        (r.trainSeconds / 60).toFixed(1)
      } min ` +
      `(median ${r.stepSecondsMedian.toFixed(2)} s/step on ${r.adapter}), final evaluation ` +
      `${(r.finalEvalSeconds / 60).toFixed(1)} min${outcome.cached ? " (run reused from the cache)" : ""}.`,
      ...grids.notes,
      ...(r.failures.length ? [`${r.failures.length} rejected non-finite steps: ${r.failures[0]}`] : []),
      ...extraNotes,
      ...(ctx.preset === "quick" ? [`The quick budget was ${QUICK_NOTE}.`] : []),
    ],
  };
}

/**
 * The unit of one density column at a preset (the ImageNet columns are planned only when their data is
 * there; a test runs one anyway to see the missing-data report).
 */
export function densityUnit(column: DensityColumn, preset: Preset): Unit {
  const spec = densitySpec(column, "resflow-lipswish", preset, 0, undefined);
  return {
    name: column,
    budget: `${
      specScale(preset, spec, datasetLabel(columnDataset(column, undefined, preset)))
    }; evaluation every ${spec.evalEvery} steps on ${spec.evalSubset} test images; ${
      sampleCount(preset)
    } samples at T = ${SAMPLE_TEMPERATURES.join(" and ")}`,
    run: (ctx: UnitContext) => runColumn(column, ctx),
  };
}

/** The columns planned at a preset: MNIST, CIFAR-10 and, under `paper`, the ImageNet ones with data. */
function plannedColumns(preset: Preset, dataDir: string | undefined): DensityColumn[] {
  const columns: DensityColumn[] = ["mnist", "cifar10"];
  if (preset === "paper") {
    if (hasImagenet(dataDir, 32)) columns.push("imagenet32");
    if (hasImagenet(dataDir, 64)) columns.push("imagenet64");
  }
  return columns;
}

/** The density experiment (paper Table 1, row "Residual Flow"). */
export const densityExperiment: Experiment = {
  name: "density",
  title: "Density estimation: test bits/dim (Table 1)",
  claimsVersion: 2,
  units(preset: Preset, opts: { dataDir: string | undefined }): Unit[] {
    return plannedColumns(preset, opts.dataDir).map((c) => densityUnit(c, preset));
  },
  datasets(preset: Preset, opts: { dataDir: string | undefined }): DatasetName[] {
    return plannedColumns(preset, opts.dataDir).map((c) => columnDataset(c, opts.dataDir, preset));
  },
  claims(figures: readonly Figure[]): Claim[] {
    return densityClaims(figures);
  },
};

const fmt = (f: Figure) => `${f.value!.toFixed(3)} ± ${(f.stderr ?? 0).toFixed(3)}`;

/** The density claims: the test bits/dim falls with training; under `paper`, ours within 0.02 of the paper. */
export function densityClaims(figures: readonly Figure[]): Claim[] {
  const claims: Claim[] = [];
  for (const column of COLUMNS) {
    const main = findFigure(figures, DENSITY_TABLE, DENSITY_ROW, column);
    if (!main) continue;
    const first = findFigure(figures, DENSITY_TRAINING_TABLE, FIRST_EVAL_ROW, column);
    const last = findFigure(figures, DENSITY_TRAINING_TABLE, LAST_EVAL_ROW, column);
    const known = first?.value != null && last?.value != null;
    claims.push(failOnNonFinite({
      table: DENSITY_TABLE,
      statement:
        `Residual Flow test bits/dim decreases with training on ${column} (first vs last periodic evaluation)`,
      holds: known ? last!.value! < first!.value! : null,
      detail: known
        ? `first ${fmt(first!)} (${first!.note?.split(",")[0]}), last ${fmt(last!)} (${
          last!.note?.split(",")[0]
        })`
        : "fewer than two periodic evaluations",
    }, [first, last]));
    const preset = presetOfScale(main.scale);
    const paper = typeof main.published === "number" ? main.published : null;
    const atPaper = {
      statement: "the run is the paper's model and budget (preset paper)",
      passed: preset === "paper",
      detail: `preset ${preset ?? "unknown"}`,
    };
    const close = failOnNonFinite({
      table: DENSITY_TABLE,
      statement: `Residual Flow on ${column} within ${PAPER_TOLERANCE_BPD} bits/dim of the paper's ${
        paper ?? "?"
      }`,
      holds: preset !== "paper" || main.value === null || paper === null
        ? null
        : Math.abs(main.value - paper) <= PAPER_TOLERANCE_BPD,
      detail: main.value === null
        ? `not measured: ${main.note ?? "no value"}`
        : preset !== "paper"
        ? `checked only at the paper preset; at ${preset ?? "this scale"} ours is ${
          fmt(main)
        } with a far smaller model and budget`
        : `ours ${fmt(main)}, paper ${paper}`,
    }, [main]);
    claims.push(atPaper.passed ? close : gated(close, atPaper));
  }
  return claims;
}
