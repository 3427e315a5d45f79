/**
 * Test helpers for experiments: a quiet {@link UnitContext} on a temporary folder, and the checks every
 * unit result must pass (its artifact validates against the schema, every measured value is finite,
 * every listed file exists and is a PNG).
 * @module
 */
import { buildArtifact, validateArtifact } from "../lib/artifacts/artifact.ts";
import { formatError } from "../lib/artifacts/validate.ts";
import { pngInfo } from "../lib/artifacts/png.ts";
import type { Preset } from "../lib/artifacts/schema.ts";
import { ProgressBar } from "../lib/cli/progress.ts";
import type { Device } from "../lib/engine/tensor.ts";
import { assertTrue } from "../lib/testing/asserts.ts";
import type { UnitContext, UnitResult } from "./framework/experiment.ts";

/** A unit context that prints nothing, with fresh temporary work and output folders. */
export async function testContext(preset: Preset, device: Device, seed = 1): Promise<UnitContext> {
  const root = await Deno.makeTempDir({ prefix: "resflow-experiment-test-" });
  const workDir = `${root}/work`;
  const outDir = `${root}/out`;
  await Deno.mkdir(workDir, { recursive: true });
  await Deno.mkdir(outDir, { recursive: true });
  return {
    preset,
    seed,
    dataDir: undefined,
    device,
    workDir,
    outDir,
    resume: false,
    log: () => {},
    progress: (label, total, unit) =>
      new ProgressBar({ label, total, unit, write: () => {}, isTerminal: false }),
  };
}

/** Removes the temporary folders of a {@link testContext}. */
export async function removeTestContext(ctx: UnitContext): Promise<void> {
  await Deno.remove(ctx.outDir.replace(/\/out$/, ""), { recursive: true });
}

/**
 * Asserts a unit result makes a valid artifact, that its values (and standard errors) are finite
 * numbers, and that every listed file exists in `outDir` as a PNG of non-zero size.
 */
export async function checkUnitResult(
  name: string,
  preset: Preset,
  r: UnitResult,
  outDir: string,
): Promise<void> {
  const artifact = await buildArtifact({
    suiteVersion: "0.0.0-test",
    experiment: name,
    adapter: r.adapter,
    backend: r.backend,
    preset,
    config: r.config,
    seeds: r.seeds,
    wallTimeSeconds: 0,
    complete: r.complete,
    incompleteReason: r.incompleteReason,
    figures: r.figures,
    files: r.files,
    series: r.series,
    notes: r.notes?.join("\n"),
    gitCommit: "test",
    date: "2000-01-01T00:00:00Z",
    denoVersion: "test",
  });
  const errors = validateArtifact(artifact);
  assertTrue(errors.length === 0, `${name}: ${errors.map(formatError).join("; ")}`);
  assertTrue(r.complete, `${name}: incomplete: ${r.incompleteReason}`);
  assertTrue(r.figures.length > 0, `${name}: no figures`);
  for (const f of r.figures) {
    const where = `${name}: ${f.table}/${f.row}/${f.column}`;
    assertTrue(typeof f.value === "number" && Number.isFinite(f.value), `${where}: value ${f.value}`);
    if (f.stderr !== undefined && f.stderr !== null) {
      assertTrue(Number.isFinite(f.stderr) && f.stderr >= 0, `${where}: stderr ${f.stderr}`);
    }
  }
  for (const s of r.series ?? []) {
    assertTrue(s.y.every(Number.isFinite), `${name}: series "${s.name}" has non-finite values`);
  }
  for (const file of r.files ?? []) {
    const bytes = await Deno.readFile(`${outDir}/${file}`);
    const info = await pngInfo(bytes);
    assertTrue(info.width > 0 && info.height > 0, `${name}: ${file} is not a readable PNG`);
  }
}
