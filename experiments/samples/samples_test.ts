/**
 * The samples experiment at `smoke`: both units reuse the density experiment's runs, write a sample
 * grid and a reconstruction grid, and report reconstruction errors and fixed-point iteration counts;
 * the claims give the expected verdicts on cells with a known answer.
 */
import type { Figure } from "../../lib/artifacts/schema.ts";
import { decodePng } from "../../lib/artifacts/png.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import { densityExperiment } from "../density/density.ts";
import {
  PPM,
  RECONSTRUCTION_TOLERANCE,
  SAMPLES_ROWS,
  SAMPLES_TABLE,
  samplesClaims,
  samplesExperiment,
  samplesPlan,
} from "./samples.ts";
import { unitNamed } from "../framework/experiment.ts";

Deno.test("samples experiment, smoke preset", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  try {
    const units = samplesExperiment.units("smoke", { dataDir: undefined }).map((u) => u.name);
    assertEquals(units, ["mnist", "cifar10"]);
    for (const unit of units) {
      await t.step(`unit ${unit}: reuses the density run, grids, errors and iteration counts`, async () => {
        const d = await unitNamed(densityExperiment, "smoke", unit).run(ctx);
        const r = await unitNamed(samplesExperiment, "smoke", unit).run(ctx);
        await checkUnitResult(`samples/${unit}`, "smoke", r, ctx.outDir);
        assertEquals(r.config.cached, true, "the density run is read from the cache");
        assertEquals(r.config.runHash, d.config.runHash);
        assertEquals(r.files, [`samples_${unit}_T1.png`, `samples_${unit}_reconstructions.png`]);
        const grid = await decodePng(
          await Deno.readFile(`${ctx.outDir}/samples_${unit}_reconstructions.png`),
        );
        const plan = samplesPlan("smoke");
        assertTrue(grid.width > 0 && grid.height > 0 && plan.reconstructions > 0);
        const rec = r.figures.find((f) => f.row === SAMPLES_ROWS.reconMax)!;
        assertTrue(
          rec.value! >= 0 && rec.value! < RECONSTRUCTION_TOLERANCE * PPM,
          `max error ${rec.value} ppm`,
        );
        for (const row of [SAMPLES_ROWS.reconIters, SAMPLES_ROWS.sampleIters]) {
          const it = r.figures.find((f) => f.row === row)!;
          assertTrue(Number.isInteger(it.value) && it.value! >= 1, `${row}: ${it.value}`);
        }
        assertEquals(r.figures.find((f) => f.row === SAMPLES_ROWS.unconverged)?.value, 0);
        const claims = samplesExperiment.claims(r.figures);
        assertEquals(claims.map((c) => c.holds), [true, true]);
      });
    }
  } finally {
    await removeTestContext(ctx);
  }
});

Deno.test("samples claims: verdicts on cells with a known answer", () => {
  const cell = (row: string, value: number): Figure => ({
    table: SAMPLES_TABLE,
    row,
    column: "mnist",
    value,
    stderr: null,
    unit: "x",
    published: null,
    scale: "quick: x",
    n: 1,
  });
  const bad = samplesClaims([
    cell(SAMPLES_ROWS.reconMax, 5000),
    cell(SAMPLES_ROWS.reconIters, 12),
    cell(SAMPLES_ROWS.sampleIters, 1000),
    cell(SAMPLES_ROWS.unconverged, 2),
  ]);
  assertEquals(bad.map((c) => c.holds), [false, false]);
  const good = samplesClaims([
    cell(SAMPLES_ROWS.reconMax, 3),
    cell(SAMPLES_ROWS.reconIters, 12),
    cell(SAMPLES_ROWS.sampleIters, 40),
    cell(SAMPLES_ROWS.unconverged, 0),
  ]);
  assertEquals(good.map((c) => c.holds), [true, true]);
  assertEquals(samplesClaims([]).length, 0, "no cells, no claims");
});
