/**
 * Experiment "hybrid": the paper's hybrid-modelling table (SPEC §6). Coupling blocks, coupling blocks
 * with an invertible 1×1 convolution before each, and residual blocks, each with the multiscale
 * classifier head, trained on λ·log p(x) + log p(y|x) for λ = 0, 1/D and 1 on MNIST (and on SVHN when
 * its files are in the data folder): test accuracy (binomial standard error, Wilson 95 % interval) and,
 * for λ > 0, test bits/dim ± standard error. Every row and λ gets the same budget.
 *
 * Units: one per (dataset, row, λ), e.g. "mnist-residual-l1d", in table order; then "summary", which
 * reads the training units' artifacts from the results folder, draws the PNGs (accuracy vs bits/dim,
 * test error beside the paper's) and adds the accuracy falls from λ = 0 to λ = 1. It is complete only
 * when every training unit is; after a sharded run, `--resume` reruns it with all points.
 * @module
 */
import { makeFigure } from "../published.ts";
import { readArtifactIfPresent } from "../../lib/artifacts/artifact.ts";
import type { Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { unitArtifactName } from "../framework/runner.ts";
import { ACCURACY_DROP_TABLE, accuracyDrop, hybridClaims, publishedDrop } from "./hybrid_claims.ts";
import type { EvalRecord } from "../../lib/train/train_types.ts";
import {
  accuracyDropColumn,
  bpdCurveSeriesName,
  HYBRID_ROWS,
  HYBRID_TABLE,
  hybridColumn,
  hybridModelConfig,
  hybridPlan,
  perImageAtStepSeriesName,
  perImageSeriesName,
  plannedDatasets,
  plannedTrainingUnits,
  scaleWords,
  SUMMARY_UNIT,
  svhnAvailability,
  trainingBudget,
  type TrainingUnit,
  trainingUnitName,
} from "./hybrid_plan.ts";
import { writeHybridPlots } from "./hybrid_plots.ts";
import { runHybridTraining } from "./hybrid_train.ts";

/** The experiment's name (artifact and `--only`). */
export const HYBRID_EXPERIMENT = "hybrid";

async function runTrainingUnit(u: TrainingUnit, ctx: UnitContext): Promise<UnitResult> {
  const plan = hybridPlan(ctx.preset);
  const r = await runHybridTraining(u, plan, ctx);
  const scale = scaleWords(ctx.preset, u.dataset);
  const base = { table: HYBRID_TABLE, row: u.row.row, scale } as const;
  const figures: Figure[] = [];
  const coupling = u.row.block === "coupling";
  const timing = `; trained ${r.steps} steps in ${r.trainSeconds.toFixed(0)} s (median ${
    r.secondsPerStep.toFixed(2)
  } s/step) and evaluated in ${r.evalSeconds.toFixed(0)} s on ${ctx.device.name}`;
  if (r.bpd) {
    figures.push(makeFigure({
      ...base,
      column: hybridColumn(u.dataset.key, u.lambda.key, "bpd"),
      value: r.bpd.bitsPerDim,
      stderr: r.bpd.standardError,
      unit: "bits/dim",
      n: r.bpd.count,
      nonFinite: r.bpd.nonFinite,
      note: `${
        coupling ? "exact log-det" : "evaluation estimator (20 exact terms + roulette)"
      }, EMA weights; ± standard error over test images${
        r.bpd.nonFinite ? `; ${r.bpd.nonFinite} non-finite values left out` : ""
      }${timing}`,
    }));
  }
  figures.push(makeFigure({
    ...base,
    column: hybridColumn(u.dataset.key, u.lambda.key, "acc"),
    value: r.accuracy.value,
    stderr: r.accuracy.stderr,
    ci: r.accuracy.ci,
    unit: "accuracy",
    n: r.accuracy.count,
    note:
      `${r.accuracy.correct}/${r.accuracy.count} correct, EMA weights; binomial standard error, Wilson 95 % interval [${
        r.accuracy.ci[0].toFixed(4)
      }, ${r.accuracy.ci[1].toFixed(4)}]${timing}`,
  }));
  const name = `${u.dataset.label} ${u.row.row}, ${u.lambda.label}`;
  const logs = r.history.logs;
  const series: Series[] = logs.length
    ? [{
      name: `${name}: training loss (${u.lambda.loss})`,
      x: logs.map((l) => l.step),
      y: logs.map((l) => l.lossMean),
      xLabel: "step",
      yLabel: "training loss",
    }]
    : [];
  // Per-image values, so that the claims pair rows on the same test images (same seed: same noise).
  const perImage = (column: string, y: readonly number[] | undefined) => {
    if (!y) return;
    const clean = y.map((v) => (Number.isFinite(v) ? v : 0));
    if (clean.some((v, i) => v !== y[i])) return; // the schema holds finite numbers only
    series.push({
      name: perImageSeriesName(column, u.row.row),
      x: clean.map((_, i) => i),
      y: clean,
      xLabel: "test image",
      yLabel: column.endsWith("acc") ? "correct (1) or not (0)" : "bits/dim",
    });
  };
  perImage(hybridColumn(u.dataset.key, u.lambda.key, "acc"), r.accuracy.perImage);
  if (r.bpd) perImage(hybridColumn(u.dataset.key, u.lambda.key, "bpd"), r.bpd.perImage);
  series.push(...bpdEvalSeries(hybridColumn(u.dataset.key, u.lambda.key, "bpd"), u.row.row, r.bpdEvals));
  const config = hybridModelConfig(u.dataset, u.row, plan);
  const notes = [
    `${name}: ${r.steps} steps, median ${
      r.secondsPerStep.toFixed(3)
    } s per step on ${ctx.device.name} (training ${r.trainSeconds.toFixed(0)} s, evaluation ${
      r.evalSeconds.toFixed(0)
    } s); ${r.parameters.flow} flow and ${r.parameters.head} head parameters.`,
  ];
  if (r.resumedFrom > 0) notes.push(`Resumed from a checkpoint at step ${r.resumedFrom}.`);
  if (r.history.failures.length) {
    notes.push(`${r.history.failures.length} training steps were rejected as non-finite and rolled back.`);
  }
  return {
    figures,
    series,
    config: {
      dataset: u.dataset.key,
      row: u.row.row,
      lambda: u.lambda.label,
      loss: u.lambda.loss,
      model: {
        block: config.block,
        quadratic: config.quadratic,
        nBlocks: config.nBlocks,
        hiddenChannels: config.hiddenChannels,
        fcEnd: config.fcEnd,
        logitAlpha: config.logitAlpha,
        activation: config.activation,
        estimator: config.block === "resblock" ? config.estimator : "exact (coupling)",
      },
      headWidth: plan.headWidth,
      batch: plan.batch,
      steps: r.steps,
      lr: plan.lr,
      warmup: plan.warmup,
      emaDecay: plan.emaDecay,
      cropPad: u.dataset.cropPad,
      accImages: r.accuracy.count,
      bpdImages: r.bpd?.count ?? null,
      secondsPerStep: r.secondsPerStep,
      trainSeconds: r.trainSeconds,
      evalSeconds: r.evalSeconds,
      parameters: r.parameters,
    },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
    complete: r.complete,
    ...(r.complete ? {} : { incompleteReason: r.incompleteReason ?? "training ended early" }),
    notes,
  };
}

/**
 * The series of a run's periodic test bits/dim in `column`: its curve (value ± standard error per step)
 * and, per evaluation, every image's value (left out where an image's value is not finite, which the
 * schema cannot hold: that evaluation then has no paired point). Empty without evaluations.
 */
export function bpdEvalSeries(column: string, row: string, evals: readonly EvalRecord[]): Series[] {
  if (!evals.length) return [];
  const out: Series[] = [{
    name: bpdCurveSeriesName(column, row),
    x: evals.map((e) => e.step),
    y: evals.map((e) => e.bitsPerDim),
    yErr: evals.map((e) => e.standardError),
    xLabel: "step",
    yLabel: "test bits/dim",
  }];
  for (const e of evals) {
    const y = e.perImage;
    if (!y || !y.every(Number.isFinite)) continue;
    out.push({
      name: perImageAtStepSeriesName(column, row, e.step),
      x: y.map((_, i) => i),
      y: [...y],
      xLabel: "test image",
      yLabel: "bits/dim",
    });
  }
  return out;
}

async function runSummary(ctx: UnitContext): Promise<UnitResult> {
  const datasets = plannedDatasets(ctx.dataDir);
  const figures: Figure[] = [];
  const missing: string[] = [];
  const stepTimes: string[] = [];
  for (const u of datasets.flatMap((d) => plannedTrainingUnits(d, ctx.preset))) {
    const unit = trainingUnitName(u);
    const path = `${ctx.outDir}/${unitArtifactName(HYBRID_EXPERIMENT, unit)}.json`;
    // A missing artifact is a unit not run yet; a corrupt or invalid one is an error naming the file.
    const a = await readArtifactIfPresent(path);
    if (!a) {
      missing.push(`${unit} (no artifact yet)`);
      continue;
    }
    if (!a.complete) missing.push(`${unit} (incomplete: ${a.incompleteReason})`);
    figures.push(...a.figures.filter((f) => f.table === HYBRID_TABLE));
    const s = a.config.secondsPerStep;
    if (typeof s === "number") stepTimes.push(`${unit} ${s.toFixed(2)}`);
  }
  const out: Figure[] = [];
  const files: string[] = [];
  for (const ds of datasets) {
    const scale = scaleWords(ctx.preset, ds);
    for (const r of HYBRID_ROWS) {
      const d = accuracyDrop(figures, ds.key, r.row);
      if (!d) continue;
      out.push(makeFigure({
        table: ACCURACY_DROP_TABLE,
        row: r.row,
        column: accuracyDropColumn(ds.key),
        value: d.value,
        stderr: d.stderr,
        unit: "accuracy",
        published: publishedDrop(ds.key, r.row),
        scale,
        n: 2,
        note:
          "test accuracy at λ = 0 minus at λ = 1 (two independent runs); the paper's value is the same difference of its table",
      }));
    }
    files.push(...await writeHybridPlots(ctx.outDir, figures, ds, `${ctx.preset} preset`));
  }
  const svhn = svhnAvailability(ctx.dataDir);
  const notes = [
    svhn.present ? "SVHN columns were run (its files are in the data folder)." : svhn.reason + ".",
    "Summary of the training units: plots and accuracy falls drawn from their artifacts.",
  ];
  if (stepTimes.length) notes.push(`Median seconds per training step: ${stepTimes.join(", ")}.`);
  return {
    figures: out,
    files,
    config: { reads: datasets.flatMap((d) => plannedTrainingUnits(d, ctx.preset)).map(trainingUnitName) },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
    complete: missing.length === 0,
    ...(missing.length
      ? { incompleteReason: `training units missing or incomplete: ${missing.join(", ")}` }
      : {}),
    notes,
  };
}

/** The hybrid-modelling experiment (SPEC §6; the paper's hybrid table). */
export const hybridExperiment: Experiment = {
  name: HYBRID_EXPERIMENT,
  title: "Hybrid modelling: accuracy and bits/dim of coupling vs residual blocks (hybrid table)",
  claimsVersion: 3,
  units(preset: Preset, opts: { dataDir: string | undefined }): Unit[] {
    const training = plannedDatasets(opts.dataDir).flatMap((d) => plannedTrainingUnits(d, preset)).map((
      u,
    ): Unit => ({
      name: trainingUnitName(u),
      budget: trainingBudget(u, preset),
      run: (ctx: UnitContext) => runTrainingUnit(u, ctx),
    }));
    const summary: Unit = {
      name: SUMMARY_UNIT,
      budget: "no training: plots and accuracy falls from the training units' artifacts",
      run: runSummary,
    };
    return [...training, summary];
  },
  claims(figures: readonly Figure[], series: readonly Series[] = []): Claim[] {
    return hybridClaims(figures, series);
  },
};
