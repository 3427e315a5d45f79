/**
 * Experiment "pretrained": the authors' own released models evaluated in this implementation. Every
 * authors' checkpoint in `<data-dir>/pretrained/` (recognised by its pickled `args.data`, whatever its
 * file name) is loaded with its EMA weights and evaluated under the paper's protocol (deno task
 * evaluate's) on its test set: a preset-sized subset at the CPU presets, the full test set at `paper`.
 * Its bits/dim sits beside the paper's Table 1 cell and, when the density experiment has run at this
 * preset, beside our own trained model's cell. A reconstruction check (x → z → x̂ of test images) and a
 * sample grid at T = 1 come from the same weights. Without checkpoints the section says where to get
 * them (the authors' README "Pretrained Models", their releases page) and where to put them.
 *
 * One unit, "checkpoints", which handles every file found.
 * @module
 */
import { readArtifact } from "../../lib/artifacts/artifact.ts";
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { imageGridPng } from "../../lib/artifacts/png.ts";
import { makeFigure, publishedValue } from "../published.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import { DatasetError, loadDataset } from "../../lib/data/mod.ts";
import { resolveDataDir } from "../../lib/data/registry.ts";
import { buildOfficialModel } from "../../lib/official/load.ts";
import { readOfficialCheckpoint } from "../../lib/official/model_file.ts";
import { evaluatePerImage } from "../../lib/train/evaluate_images.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { unitArtifactName } from "../framework/runner.ts";
import { drawSamples, reconstruct } from "../framework/trained_model.ts";
import { missingDataReason } from "../framework/train_run.ts";
import { datasetLabel } from "../../lib/data/mod.ts";
import { DENSITY_ROW, DENSITY_TABLE } from "../density/density.ts";
import { findFigure, hasValue } from "../framework/figures.ts";
import { pairsGrid } from "../framework/grids.ts";

/** The project's table of this experiment. */
export const PRETRAINED_TABLE = "pretrained";
/** Rows of {@link PRETRAINED_TABLE}. */
export const PRETRAINED_ROWS = {
  found: "authors' checkpoints found in <data-dir>/pretrained",
  bpd: "authors' released weights (EMA), evaluated here: test bits/dim",
  ours: "this suite's model trained at this preset (density experiment): test bits/dim",
  reconMax: "reconstruction max |x - x'| (ppm of the [0, 1] pixel range)",
} as const;
/** The folder under the data folder where the authors' checkpoints go. */
export const PRETRAINED_SUBDIR = "pretrained";
/** Where the authors publish their checkpoints. */
export const PRETRAINED_RELEASES_URL = "https://github.com/rtqichen/residual-flows/releases/latest";
/** The authors' README section listing them. */
export const PRETRAINED_README_URL = "https://github.com/rtqichen/residual-flows#pretrained-models";
/** Largest reconstruction error accepted by the invertibility claim (pixel values in [0, 1]). */
export const PRETRAINED_RECONSTRUCTION_TOLERANCE = 1e-3;
/** Reconstruction errors are reported in parts per million of the pixel range. */
const PPM = 1e6;
/** Tag of this experiment's seeds. */
const SEED_TAG = 7919;
/** The only unit. */
const UNIT = "checkpoints";

/** Test images (null: all), repeats, reconstructions and samples at a preset. */
export function pretrainedPlan(
  preset: Preset,
): { images: number | null; repeats: number; reconstructions: number; samples: number } {
  switch (preset) {
    case "smoke":
      return { images: 2, repeats: 1, reconstructions: 2, samples: 4 };
    case "quick":
      return { images: 100, repeats: 1, reconstructions: 8, samples: 16 };
    case "long":
      return { images: 1000, repeats: 1, reconstructions: 16, samples: 64 };
    case "paper":
      return { images: null, repeats: 1, reconstructions: 32, samples: 64 };
  }
}

/** The text telling a user where to get the checkpoints and where to put them. */
export function whereToGetCheckpoints(folder: string): string {
  return `No authors' checkpoint found in ${folder}. Download the paper's models (MNIST, CIFAR-10, ` +
    `ImageNet 32 and 64, CelebA) from the authors' releases page ${PRETRAINED_RELEASES_URL} (listed in ` +
    `their README under "Pretrained Models", ${PRETRAINED_README_URL}) and put the .pth files in ${folder} ` +
    `(any file names: each is recognised by the options pickled inside). The test sets they need are ` +
    `read from the same data folder.`;
}

/** Files directly inside `folder` (none when it does not exist). */
async function listFiles(folder: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(folder)) if (e.isFile && !e.name.startsWith(".")) out.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return out.sort();
}

/** Table 1's column for our dataset name, or null when the paper has none. */
function tableColumn(dataset: string): string | null {
  return ["mnist", "cifar10", "imagenet32", "imagenet64"].includes(dataset) ? dataset : null;
}

/** Our own trained cell for `column`, from the density experiment's artifact at this preset, if any. */
async function ownCell(outDir: string, column: string): Promise<Figure | null> {
  try {
    const a = await readArtifact(`${outDir}/${unitArtifactName("density", column)}.json`);
    return findFigure(a.figures, DENSITY_TABLE, DENSITY_ROW, column, hasValue) ?? null;
  } catch {
    return null;
  }
}

/** Evaluates one checkpoint file; returns its figures, files and notes. */
async function runCheckpoint(
  file: string,
  path: string,
  column: string,
  ctx: UnitContext,
): Promise<{ figures: Figure[]; files: string[]; notes: string[]; complete: boolean }> {
  const plan = pretrainedPlan(ctx.preset);
  const { checkpoint, format } = await readOfficialCheckpoint(path);
  const { model, spec } = buildOfficialModel(checkpoint, { device: ctx.device, weights: "ema" });
  const figures: Figure[] = [];
  const files: string[] = [];
  const notes: string[] = [];
  const label = datasetLabel(spec.dataset);
  const paperColumn = tableColumn(spec.dataset);
  const published = paperColumn ? publishedValue(DENSITY_TABLE, DENSITY_ROW, paperColumn) : null;
  try {
    await model.updateLipschitz();
    let test;
    try {
      test = await loadDataset(spec.dataset, {
        dataDir: ctx.dataDir,
        split: "test",
        limit: plan.images ?? undefined,
      });
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
      const reason = `${file}: ${missingDataReason(spec.dataset, e, ctx.dataDir)}`;
      figures.push(makeFigure({
        table: PRETRAINED_TABLE,
        row: PRETRAINED_ROWS.bpd,
        column,
        value: null,
        stderr: null,
        unit: "bits/dim",
        published,
        scale: `${ctx.preset}: the authors' ${label} model`,
        n: 0,
        note: reason,
      }));
      return { figures, files, notes: [reason], complete: false };
    }
    const scale = `${ctx.preset}: the authors' ${label} model (${
      (spec.args.nblocks as string) ?? "?"
    } blocks, width ${spec.config.hiddenChannels}), ${test.count} test images × ${plan.repeats}`;
    const bar = ctx.progress(`evaluate ${file}`, test.count * plan.repeats, "img");
    const r = await evaluatePerImage(model, test, ctx.device, {
      seed: ctx.seed,
      repeats: plan.repeats,
      batchSize: 100,
      onProgress: (done) => bar.update(done),
    });
    bar.finish();
    figures.push(makeFigure({
      table: PRETRAINED_TABLE,
      row: PRETRAINED_ROWS.bpd,
      column,
      value: r.bitsPerDim,
      stderr: r.standardError,
      unit: "bits/dim",
      published,
      scale,
      n: r.count,
      note: `${file} (${format} format; the file's own test_bpd: ${
        checkpoint.testBpd === null ? "none" : checkpoint.testBpd.toFixed(4)
      }); published: the paper's Table 1 Residual Flow cell${paperColumn ? "" : " (none for this dataset)"}${
        r.nonFinite ? `; ${r.nonFinite} non-finite values left out` : ""
      }`,
    }));
    if (paperColumn) {
      const own = await ownCell(ctx.outDir, paperColumn);
      if (own) {
        figures.push(makeFigure({
          ...own,
          table: PRETRAINED_TABLE,
          row: PRETRAINED_ROWS.ours,
          column,
          published,
          note: `from the density experiment's artifact at this preset (${own.scale})`,
        }));
      } else {notes.push(
          `${label}: the density experiment has not run at this preset, so no own cell to compare.`,
        );}
    }
    const rec = await reconstruct(model, test, { n: plan.reconstructions, seed: ctx.seed });
    figures.push(makeFigure({
      table: PRETRAINED_TABLE,
      row: PRETRAINED_ROWS.reconMax,
      column,
      value: rec.maxAbsError * PPM,
      stderr: null,
      unit: "ppm",
      scale,
      n: rec.shape[0],
      note: `largest |x - f^-1(f(x))| over ${rec.shape[0]} dequantised test images; fixed-point iterations ` +
        `per block ${rec.inverse.perBlock.join(", ")}${rec.inverse.converged ? "" : " (NOT converged)"}`,
    }));
    const drawn = await drawSamples(model, {
      n: plan.samples,
      temperature: 1,
      seed: ctx.seed * SEED_TAG + 1,
      batch: 16,
    });
    const [c, h, w] = spec.config.inputShape;
    const per = c * h * w;
    const upscale = h <= 28 ? 3 : 2;
    const gridFile = `pretrained_${column}_T1.png`;
    await writeFileAtomic(
      `${ctx.outDir}/${gridFile}`,
      await imageGridPng(drawn.images, drawn.shape, { nrow: 8, scale: upscale }),
    );
    const recFile = `pretrained_${column}_reconstructions.png`;
    const n = rec.shape[0];
    await writeFileAtomic(
      `${ctx.outDir}/${recFile}`,
      await imageGridPng(pairsGrid(rec.inputs, rec.outputs, n, per), [2 * n, c, h, w], {
        nrow: 8,
        scale: upscale,
      }),
    );
    files.push(gridFile, recFile);
    notes.push(
      `${label}: ${file}, EMA weights, power iteration refreshed for them; ${plan.samples} samples at T = 1 ` +
        `in ${gridFile}; test images and reconstructions alternate by rows of 8 in ${recFile}.`,
    );
    if (spec.unknownArgs.length) {
      notes.push(`${file}: options not known to this suite, ignored: ${spec.unknownArgs}`);
    }
    return { figures, files, notes, complete: true };
  } finally {
    model.dispose();
  }
}

async function runPretrained(ctx: UnitContext): Promise<UnitResult> {
  const folder = `${resolveDataDir(ctx.dataDir)}/${PRETRAINED_SUBDIR}`;
  const plan = pretrainedPlan(ctx.preset);
  const base = {
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
  };
  const figures: Figure[] = [];
  const files: string[] = [];
  const notes: string[] = [];
  const found: { file: string; dataset: string }[] = [];
  const incomplete: string[] = [];
  const used = new Map<string, number>();
  for (const file of await listFiles(folder)) {
    const path = `${folder}/${file}`;
    let dataset: string;
    try {
      const { checkpoint } = await readOfficialCheckpoint(path);
      dataset = String(checkpoint.args.data ?? "");
    } catch (e) {
      notes.push(`${file}: skipped, not an authors' checkpoint (${(e as Error).message})`);
      continue;
    }
    const ours = dataset === "celeba_5bit" ? "celeba5bit" : dataset;
    const k = (used.get(ours) ?? 0) + 1;
    used.set(ours, k);
    const column = k === 1 ? ours : `${ours}-${k}`;
    found.push({ file, dataset: ours });
    ctx.log(`${file}: the authors' ${datasetLabel(ours)} model`);
    try {
      const r = await runCheckpoint(file, path, column, ctx);
      figures.push(...r.figures);
      files.push(...r.files);
      notes.push(...r.notes);
      if (!r.complete) incomplete.push(r.notes[0]);
    } catch (e) {
      const msg = `${file}: ${(e as Error).message}`;
      notes.push(msg);
      incomplete.push(msg);
    }
  }
  const config = { folder, plan, checkpoints: found };
  const instructions = whereToGetCheckpoints(folder);
  const count = makeFigure({
    table: PRETRAINED_TABLE,
    row: PRETRAINED_ROWS.found,
    column: "all",
    value: found.length,
    stderr: null,
    unit: "files",
    scale: `${ctx.preset}: files in ${folder}`,
    n: found.length,
    note: found.length ? found.map((f) => `${f.file}: ${datasetLabel(f.dataset)}`).join("; ") : instructions,
  });
  if (!found.length) {
    // Nothing to measure is not a failure: the section says where to get the checkpoints.
    return { ...base, config, figures: [count], complete: true, notes: [instructions, ...notes] };
  }
  return {
    ...base,
    config,
    figures: [count, ...figures],
    files,
    complete: incomplete.length === 0,
    incompleteReason: incomplete.length ? incomplete.join("; ") : undefined,
    notes,
  };
}

/** The pretrained experiment (the authors' released models evaluated here). */
export const pretrainedExperiment: Experiment = {
  name: "pretrained",
  title: "The authors' released models, evaluated in this implementation",
  claimsVersion: 1,
  units(preset: Preset): Unit[] {
    const p = pretrainedPlan(preset);
    return [{
      name: UNIT,
      budget: `every authors' checkpoint in <data-dir>/${PRETRAINED_SUBDIR}: test bits/dim on ${
        p.images === null ? "the full test set" : `${p.images} test images`
      } × ${p.repeats}, ${p.reconstructions} reconstructions, ${p.samples} samples`,
      run: runPretrained,
    }];
  },
  claims(figures: readonly Figure[]): Claim[] {
    return pretrainedClaims(figures);
  },
};

/** The authors' models reconstruct their inputs (to 1e-3 of the pixel range) in this implementation. */
export function pretrainedClaims(figures: readonly Figure[]): Claim[] {
  const recs = figures.filter((f) =>
    f.table === PRETRAINED_TABLE && f.row === PRETRAINED_ROWS.reconMax && f.value !== null
  );
  return recs.map((f) => ({
    table: PRETRAINED_TABLE,
    statement: `the authors' ${f.column} model is invertible here: reconstructions within ${
      PRETRAINED_RECONSTRUCTION_TOLERANCE * PPM
    } ppm`,
    holds: f.value! <= PRETRAINED_RECONSTRUCTION_TOLERANCE * PPM,
    detail: `max |x - x'| = ${f.value!.toFixed(1)} ppm over ${f.n} images`,
  }));
}
