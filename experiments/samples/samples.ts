/**
 * Experiment "samples": sample grids and reconstructions from the trained density models (the
 * density experiment's runs, read from the run cache: the same specs, so nothing is trained twice).
 * For MNIST and CIFAR-10: the model with its EMA weights and refreshed power iteration; a grid of
 * samples at temperature 1 (z ~ N(0, I) inverted by fixed-point iteration, SPEC 5); reconstructions
 * x → z → x̂ of test images with the largest and mean |x̂ − x|; and the fixed-point iteration counts
 * of the residual blocks in both directions, reported as figures.
 *
 * Units: "mnist", "cifar10".
 * @module
 */
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { makeFigure } from "../published.ts";
import { imageGridPng } from "../../lib/artifacts/png.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import { DatasetError, type DatasetName, loadDataset } from "../../lib/data/mod.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { drawSamples, loadTrainedModel, reconstruct } from "../framework/trained_model.ts";
import { FLOOR_RATIO, FLOOR_WINDOW } from "../../lib/flow/fixed_point.ts";
import { missingDataReason, trainRun } from "../framework/train_run.ts";
import { datasetLabel } from "../../lib/data/mod.ts";
import {
  checkpointEvery,
  columnDataset,
  type DensityColumn,
  densitySpec,
  measuredText,
  specScale,
} from "../density/density_presets.ts";
import { findFigure, hasValue } from "../framework/figures.ts";
import { pairsGrid } from "../framework/grids.ts";

/** The project's table of this experiment. */
export const SAMPLES_TABLE = "samples";
/** Rows of {@link SAMPLES_TABLE}. */
export const SAMPLES_ROWS = {
  reconMax: "reconstruction max |x - x'| (ppm of the [0, 1] pixel range)",
  reconMean: "reconstruction mean |x - x'| (ppm of the [0, 1] pixel range)",
  reconIters: "reconstruction: fixed-point iterations (largest block)",
  sampleIters: "sampling at T = 1: fixed-point iterations (largest block)",
  sampleItersMean: "sampling at T = 1: fixed-point iterations (mean over blocks)",
  unconverged: "fixed-point inverses that reached the iteration cap unconverged",
} as const;
/** Largest reconstruction error accepted by the invertibility claim (pixel values in [0, 1]). */
export const RECONSTRUCTION_TOLERANCE = 1e-3;
/** Reconstruction errors are reported in parts per million of the pixel range. */
export const PPM = 1e6;
/** Iteration cap of the fixed-point inverse (SPEC 5). */
export const INVERSE_CAP = 1000;

const COLUMNS: readonly DensityColumn[] = ["mnist", "cifar10"];

/** Images reconstructed and drawn at a preset. */
export function samplesPlan(preset: Preset): { reconstructions: number; samples: number } {
  return preset === "smoke" ? { reconstructions: 4, samples: 4 } : { reconstructions: 32, samples: 64 };
}

/** Tag of this experiment's sampling seed (distinct from the density experiment's grids). */
const SEED_TAG = 104729;

async function runSamplesUnit(column: DensityColumn, ctx: UnitContext): Promise<UnitResult> {
  const spec = densitySpec(column, "resflow-lipswish", ctx.preset, ctx.seed, ctx.dataDir);
  const plan = samplesPlan(ctx.preset);
  const base = {
    config: { column, dataset: spec.dataset, ...plan, spec },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
  };
  const fail = (reason: string): UnitResult => ({
    ...base,
    figures: [makeFigure({
      table: SAMPLES_TABLE,
      row: SAMPLES_ROWS.reconMax,
      column,
      value: null,
      stderr: null,
      unit: "ppm",
      scale: specScale(ctx.preset, spec, datasetLabel(spec.dataset)),
      n: 0,
      note: reason,
    })],
    complete: false,
    incompleteReason: reason,
    notes: [reason],
  });
  const outcome = await trainRun(spec, ctx, {
    checkpointEvery: checkpointEvery(ctx.preset),
    label: `${datasetLabel(spec.dataset)} Residual Flow`,
  });
  if (!outcome.ok) return fail(outcome.reason);
  const r = outcome.result;
  let test;
  try {
    test = await loadDataset(spec.dataset, {
      dataDir: ctx.dataDir,
      split: "test",
      limit: plan.reconstructions,
    });
  } catch (e) {
    if (e instanceof DatasetError) return fail(missingDataReason(spec.dataset, e, ctx.dataDir));
    throw e;
  }
  const scale = specScale(ctx.preset, spec, r.datasetName, r.finalEval) + measuredText(r);
  const model = await loadTrainedModel(outcome.dir, r, ctx.device);
  const [c, h, w] = spec.model.inputShape;
  const per = c * h * w;
  const upscale = h <= 28 ? 3 : 2;
  const files: string[] = [];
  const figures: Figure[] = [];
  const notes: string[] = [];
  try {
    const bar = ctx.progress(`samples ${r.datasetName}`, 2, "step");
    const rec = await reconstruct(model, test, { n: plan.reconstructions, seed: ctx.seed });
    bar.tick(1, `reconstruction max error ${rec.maxAbsError.toExponential(2)}`);
    const drawn = await drawSamples(model, {
      n: plan.samples,
      temperature: 1,
      seed: ctx.seed * SEED_TAG + 3,
    });
    bar.finish();
    const n = rec.shape[0];
    const recFile = `samples_${column}_reconstructions.png`;
    await writeFileAtomic(
      `${ctx.outDir}/${recFile}`,
      await imageGridPng(pairsGrid(rec.inputs, rec.outputs, n, per), [2 * n, c, h, w], {
        nrow: 8,
        scale: upscale,
      }),
    );
    const gridFile = `samples_${column}_T1.png`;
    await writeFileAtomic(
      `${ctx.outDir}/${gridFile}`,
      await imageGridPng(drawn.images, drawn.shape, { nrow: 8, scale: upscale }),
    );
    files.push(gridFile, recFile);
    const sampleMax = Math.max(...drawn.inverse.map((s) => s.max));
    const perBlockMeans = drawn.inverse.flatMap((s) => s.perBlock);
    const meanIt = perBlockMeans.reduce((a, b) => a + b, 0) / Math.max(1, perBlockMeans.length);
    const sdIt = Math.sqrt(
      perBlockMeans.reduce((a, b) => a + (b - meanIt) ** 2, 0) / Math.max(1, perBlockMeans.length - 1),
    );
    const fig = (
      row: string,
      value: number,
      unit: string,
      nn: number,
      note: string,
      stderr: number | null = null,
    ) => makeFigure({ table: SAMPLES_TABLE, row, column, value, stderr, unit, scale, n: nn, note });
    figures.push(
      fig(
        SAMPLES_ROWS.reconMax,
        rec.maxAbsError * PPM,
        "ppm",
        n,
        `largest |x - f^-1(f(x))| over ${n} dequantised test images, pixels in [0, 1] (${
          (rec.maxAbsError * 255).toExponential(2)
        } of one 8-bit level)`,
      ),
      fig(SAMPLES_ROWS.reconMean, rec.meanAbsError * PPM, "ppm", n, `mean over every pixel of ${n} images`),
      fig(
        SAMPLES_ROWS.reconIters,
        rec.inverse.max,
        "iterations",
        rec.inverse.perBlock.length,
        `per residual block: ${rec.inverse.perBlock.join(", ")}${
          rec.inverse.converged ? "" : " (NOT converged)"
        }`,
      ),
      fig(
        SAMPLES_ROWS.sampleIters,
        sampleMax,
        "iterations",
        perBlockMeans.length,
        `largest over ${drawn.inverse.length} batch(es) and ${
          drawn.inverse[0]?.perBlock.length ?? 0
        } residual blocks`,
      ),
      fig(
        SAMPLES_ROWS.sampleItersMean,
        meanIt,
        "iterations",
        perBlockMeans.length,
        "mean over batches and residual blocks; standard error over them",
        perBlockMeans.length > 1 ? sdIt / Math.sqrt(perBlockMeans.length) : null,
      ),
    );
    const inversions = [rec.inverse, ...drawn.inverse];
    figures.push(
      fig(
        SAMPLES_ROWS.unconverged,
        inversions.reduce((k, s) => k + s.unconverged, 0),
        "inverses",
        inversions.reduce((k, s) => k + s.perBlock.length, 0),
        `block inverses of the reconstruction and of ${drawn.inverse.length} sampling batch(es) that stopped at ${INVERSE_CAP} iterations without meeting the tolerance (they report instead of failing); ${
          inversions.reduce((k, s) => k + s.atFloor, 0)
        } stopped at the float32 rounding floor instead (no smaller change for ${FLOOR_WINDOW} iterations, within ${FLOOR_RATIO} tolerances: converged as far as the arithmetic allows)`,
      ),
    );
    notes.push(
      `${r.datasetName}: model of ${r.steps} steps (run ${r.hash.slice(0, 12)}${
        outcome.cached ? ", reused" : ""
      }); ` +
        `fixed-point inverse per block: stop when |x_new - x_old| <= 1e-6 + 1e-6 |y| everywhere, or at the float32 rounding floor (the largest change/tolerance ratio made no new minimum for ${FLOOR_WINDOW} iterations, within ${FLOOR_RATIO}), at most ${INVERSE_CAP} iterations.`,
      `The reconstruction grid alternates rows of 8 test images and their reconstructions.`,
    );
    if (!drawn.inverse.every((s) => s.converged) || !rec.inverse.converged) {
      notes.push("Some residual block did not converge within the iteration cap.");
    }
  } finally {
    model.dispose();
  }
  return {
    ...base,
    config: { ...base.config, runHash: r.hash, cached: outcome.cached },
    figures,
    files,
    complete: true,
    notes,
  };
}

/** The samples experiment (sample grids, reconstructions, fixed-point iteration counts). */
export const samplesExperiment: Experiment = {
  name: "samples",
  title: "Samples and reconstructions from the density models",
  claimsVersion: 1,
  units(preset: Preset): Unit[] {
    const p = samplesPlan(preset);
    return COLUMNS.map((column): Unit => ({
      name: column,
      budget:
        `${p.samples} samples at T = 1 and ${p.reconstructions} reconstructions from the density model of ${
          datasetLabel(columnDataset(column, undefined, preset))
        } (trained by the density experiment, reused from the run cache)`,
      run: (ctx: UnitContext) => runSamplesUnit(column, ctx),
    }));
  },
  datasets(preset: Preset, opts: { dataDir: string | undefined }): DatasetName[] {
    return COLUMNS.map((c) => columnDataset(c, opts.dataDir, preset));
  },
  claims(figures: readonly Figure[]): Claim[] {
    return samplesClaims(figures);
  },
};

/**
 * The invertibility claims: reconstructions exact to 1e-3, and every fixed-point inverse converges
 * within the cap (the inverses run to the cap and report instead of throwing, so this can fail).
 */
export function samplesClaims(figures: readonly Figure[]): Claim[] {
  const claims: Claim[] = [];
  for (const column of COLUMNS) {
    const get = (row: string) => findFigure(figures, SAMPLES_TABLE, row, column, hasValue);
    const rec = get(SAMPLES_ROWS.reconMax);
    const its = [get(SAMPLES_ROWS.reconIters), get(SAMPLES_ROWS.sampleIters)];
    const stuck = get(SAMPLES_ROWS.unconverged);
    if (!rec && !stuck && its.every((f) => !f)) continue;
    claims.push({
      table: SAMPLES_TABLE,
      statement:
        `the model is invertible in practice on ${column}: max reconstruction error <= ${RECONSTRUCTION_TOLERANCE}`,
      holds: rec ? rec.value! <= RECONSTRUCTION_TOLERANCE * PPM : null,
      detail: rec ? `max |x - x'| = ${(rec.value! / PPM).toExponential(2)}` : "not measured",
    });
    claims.push({
      table: SAMPLES_TABLE,
      statement: `every fixed-point inverse on ${column} converges within the ${INVERSE_CAP}-iteration cap`,
      holds: stuck ? stuck.value === 0 : null,
      detail: `${stuck ? `${stuck.value} of ${stuck.n} block inverses unconverged` : "not counted"}; ` +
        `largest iteration counts: reconstruction ${its[0]?.value ?? "missing"}, sampling ${
          its[1]?.value ?? "missing"
        }`,
    });
  }
  return claims;
}
