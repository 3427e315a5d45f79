/**
 * Test helpers for experiments: a quiet {@link UnitContext} on a temporary folder, and the checks every
 * unit result must pass (its artifact validates against the schema, every measured value is finite,
 * every listed file exists and is a PNG).
 * @module
 */
import { buildArtifact, validateArtifact } from "../../lib/artifacts/artifact.ts";
import { formatError } from "../../lib/artifacts/validate.ts";
import { pngInfo } from "../../lib/artifacts/png.ts";
import type { Preset } from "./presets.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";
import type { Device } from "../../lib/engine/tensor.ts";
import { assertTrue } from "../../lib/testing/asserts.ts";
import type { UnitContext, UnitResult } from "./experiment.ts";
import { isFile } from "../../lib/artifacts/files.ts";

/** Where the real CIFAR-10 exact subset sits beside a checkout (absent in a user's clone). */
const SHARED_DATA = new URL("../../../shared/data/", import.meta.url);

let smokeData: Promise<string> | null = null;

/**
 * A data folder holding `cifar10-exact/` for the smoke tests: the real subset in `../shared/data` when
 * it is there, else (a user's clone) a synthetic one in the official record layout written once to a
 * temporary folder (labels i mod 10, seeded pixels), so the CIFAR-10 units run everywhere. Smoke
 * numbers say nothing about the data either way.
 */
export function smokeDataDir(): Promise<string> {
  smokeData ??= (async () => {
    if (await isFile(new URL("cifar10-exact/train_exact_4000.bin", SHARED_DATA).pathname)) {
      return SHARED_DATA.pathname.replace(/\/$/, "");
    }
    const root = await Deno.makeTempDir({ prefix: "resflow-smoke-data-" });
    await Deno.mkdir(`${root}/cifar10-exact`);
    let state = 12345;
    for (
      const [file, records] of [["train_exact_4000.bin", 4000], ["test_exact_1000.bin", 1000]] as const
    ) {
      const bytes = new Uint8Array(records * 3073);
      for (let i = 0; i < records; i++) {
        bytes[i * 3073] = i % 10;
        for (let j = 1; j < 3073; j++) {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          bytes[i * 3073 + j] = state >>> 24;
        }
      }
      await Deno.writeFile(`${root}/cifar10-exact/${file}`, bytes);
    }
    return root;
  })();
  return smokeData;
}

/**
 * Writes placeholder official CIFAR-10 batches (`data_batch_1.bin`, `test_batch.bin` of `bytes` zero
 * bytes each) into `<dir>/cifar-10-batches-bin`: enough for the presence checks that choose the set a
 * preset trains on; a size that is no whole number of records makes them damaged for the loaders.
 */
export async function writeCifarBatchStubs(dir: string, bytes = 3073): Promise<void> {
  await Deno.mkdir(`${dir}/cifar-10-batches-bin`, { recursive: true });
  for (const f of ["data_batch_1.bin", "test_batch.bin"]) {
    await Deno.writeFile(`${dir}/cifar-10-batches-bin/${f}`, new Uint8Array(bytes));
  }
}

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
    dataDir: await smokeDataDir(),
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
