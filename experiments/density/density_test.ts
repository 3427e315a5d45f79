/**
 * The density experiment at `smoke`: both units make valid artifacts with finite figures (and
 * standard errors) and readable PNGs; a second request of the identical run is read from the cache,
 * and a finished run resumes from its checkpoint; a unit whose dataset is missing reports itself
 * incomplete with the reason; the claims give the expected verdicts on cells with a known answer.
 */
import { claimOutcome } from "../../lib/artifacts/schema.ts";
import { buildArtifact, validateArtifact } from "../../lib/artifacts/artifact.ts";
import { formatError } from "../../lib/artifacts/validate.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import {
  checkUnitResult,
  removeTestContext,
  testContext,
  writeCifarBatchStubs,
} from "../framework/test_util.ts";
import {
  DENSITY_ROW,
  DENSITY_TABLE,
  DENSITY_TRAINING_TABLE,
  densityClaims,
  densityExperiment,
  densityUnit,
  FIRST_EVAL_ROW,
  LAST_EVAL_ROW,
} from "./density.ts";
import { columnDataset, densitySpec, specScale } from "./density_presets.ts";
import { RUN_RESULT, specHash, trainRun } from "../framework/train_run.ts";
import { unitNamed } from "../framework/experiment.ts";

Deno.test("density experiment, smoke preset", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  try {
    const units = densityExperiment.units("smoke", { dataDir: undefined }).map((u) => u.name);
    assertEquals(units, ["mnist", "cifar10"]);
    for (const unit of units) {
      await t.step(`unit ${unit}: a valid artifact, finite figures with standard errors, PNGs`, async () => {
        assertTrue(unitNamed(densityExperiment, "smoke", unit).budget.startsWith("smoke:"));
        const r = await unitNamed(densityExperiment, "smoke", unit).run(ctx);
        await checkUnitResult(`density/${unit}`, "smoke", r, ctx.outDir);
        const main = r.figures.find((f) => f.table === DENSITY_TABLE && f.column === unit)!;
        assertEquals(main.row, DENSITY_ROW);
        assertTrue(typeof main.stderr === "number" && main.stderr > 0, `stderr ${main.stderr}`);
        assertTrue(typeof main.published === "number", "published value beside the cell");
        for (const f of r.figures.filter((x) => x.unit === "bits/dim")) {
          assertEquals(f.nonFinite, 0, `${f.row}: the count of non-finite test images is in every cell`);
        }
        assertEquals(r.files?.length, 3);
        const claims = densityExperiment.claims(r.figures);
        assertEquals(claims.length, 2);
        assertTrue(typeof claims[0].holds === "boolean", claims[0].detail);
        assertEquals(claims[1].holds, null, "the paper tolerance is checked only at the paper preset");
        assertEquals(claimOutcome(claims[1]), "not testable", claims[1].detail);
        assertTrue(
          claims[1].detail.startsWith("gate: the run is the paper's model"),
        );
      });
    }

    await t.step("the identical spec is read from the cache, not trained again", async () => {
      const spec = densitySpec("mnist", "resflow-lipswish", "smoke", ctx.seed, undefined);
      const again = await trainRun(spec, ctx);
      assertTrue(again.ok && again.cached, "second request served from the cache");
      if (!again.ok) return;
      assertEquals(again.dir.endsWith(await specHash(spec)), true);
      // The ablation's LipSwish row on MNIST is the same run.
      const ablation = densitySpec("mnist", "resflow-lipswish", "smoke", ctx.seed, undefined);
      assertEquals(await specHash(ablation), await specHash(spec));
      const elu = densitySpec("mnist", "resflow-elu", "smoke", ctx.seed, undefined);
      assertTrue((await specHash(elu)) !== (await specHash(spec)), "another variant, another run");
    });

    await t.step("with --resume a run whose result is lost continues from its checkpoint", async () => {
      const spec = densitySpec("mnist", "resflow-lipswish", "smoke", ctx.seed, undefined);
      const first = await trainRun(spec, ctx);
      assertTrue(first.ok);
      if (!first.ok) return;
      await Deno.remove(`${first.dir}/${RUN_RESULT}`);
      const resumed = await trainRun(spec, { ...ctx, resume: true });
      assertTrue(resumed.ok && !resumed.cached);
      if (!resumed.ok) return;
      assertEquals(resumed.result.resumedFrom, spec.steps, "loaded the final checkpoint");
      assertEquals(resumed.result.evals.length, first.result.evals.length, "history kept");
      assertEquals(resumed.result.finalEval?.bitsPerDim, first.result.finalEval?.bitsPerDim);
    });
  } finally {
    await removeTestContext(ctx);
  }
});

Deno.test("density: which CIFAR-10 each preset trains on", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "resflow-cifar-rule-" });
  try {
    const datasets = (column: "cifar10" | "cifar10_small") =>
      (["smoke", "quick", "long", "paper"] as const).map((p) => columnDataset(column, dir, p));
    await t.step("without the official batches: the exact subset, except under paper", () => {
      assertEquals(datasets("cifar10"), ["cifar10-exact", "cifar10-exact", "cifar10-exact", "cifar10"]);
    });
    await t.step(
      "with them: smoke and quick stay on the exact subset, long and paper use the full set",
      async () => {
        await writeCifarBatchStubs(dir);
        for (const column of ["cifar10", "cifar10_small"] as const) {
          assertEquals(datasets(column), ["cifar10-exact", "cifar10-exact", "cifar10", "cifar10"]);
        }
        assertEquals(densitySpec("cifar10", "resflow-lipswish", "smoke", 0, dir).dataset, "cifar10-exact");
        assertEquals(densitySpec("cifar10", "resflow-lipswish", "quick", 0, dir).dataset, "cifar10-exact");
        assertEquals(densitySpec("cifar10", "resflow-lipswish", "long", 0, dir).dataset, "cifar10");
        assertEquals(columnDataset("mnist", dir, "smoke"), "mnist");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("density: the scale text names the test images the final evaluation used", () => {
  const spec = densitySpec("cifar10", "resflow-lipswish", "long", 0, undefined);
  assertEquals(spec.evalLimit, 2000);
  const text = (count?: number, nonFinite = 0) =>
    specScale("long", spec, "CIFAR-10 exact subset", count === undefined ? null : { count, nonFinite });
  assertTrue(text().endsWith("; 2000 test images"), text());
  assertTrue(text(2000).endsWith("; 2000 test images"), text(2000));
  assertTrue(
    text(1000).endsWith("; 1000 test images (the whole test set; the preset's limit is 2000)"),
    text(1000),
  );
  // Non-finite values are left out of the mean, not out of the images evaluated.
  assertTrue(text(1997, 3).endsWith("; 2000 test images"), text(1997, 3));
});

Deno.test("density: a missing dataset makes the unit incomplete with the reason", async (t) => {
  const ctx = await testContext("paper", await createDevice("cpu"));
  const empty = await Deno.makeTempDir({ prefix: "resflow-no-data-" });
  try {
    await t.step("ImageNet units are not planned without their data", () => {
      assertEquals(densityExperiment.units("paper", { dataDir: empty }).map((u) => u.name), [
        "mnist",
        "cifar10",
      ]);
    });
    await t.step("running one anyway reports 'not found' and --data-dir, and validates", async () => {
      const r = await densityUnit("imagenet32", "paper").run({ ...ctx, dataDir: empty });
      assertEquals(r.complete, false);
      assertTrue(/^ImageNet 32x32 not found/.test(r.incompleteReason ?? ""), r.incompleteReason);
      assertTrue(/--data-dir/.test(r.incompleteReason ?? ""), r.incompleteReason);
      assertEquals(r.figures.length, 1);
      assertEquals(r.figures[0].value, null);
      const artifact = await buildArtifact({
        suiteVersion: "0.0.0-test",
        experiment: "density",
        adapter: r.adapter,
        backend: r.backend,
        preset: "paper",
        config: r.config,
        seeds: r.seeds,
        wallTimeSeconds: 0,
        complete: r.complete,
        incompleteReason: r.incompleteReason,
        figures: r.figures,
        notes: r.notes?.join("\n"),
        gitCommit: "test",
        date: "2000-01-01T00:00:00Z",
        denoVersion: "test",
      });
      const errors = validateArtifact(artifact);
      assertTrue(errors.length === 0, errors.map(formatError).join("; "));
      const claims = densityExperiment.claims(r.figures);
      assertTrue(claims.every((c) => c.holds === null), "nothing to check");
    });
    await t.step("full CIFAR-10 missing from the data folder: 'CIFAR-10 not found'", async () => {
      const spec = {
        ...densitySpec("cifar10", "resflow-lipswish", "smoke", 0, empty),
        dataset: "cifar10" as const,
      };
      const r = await trainRun(spec, { ...ctx, preset: "smoke", dataDir: empty });
      assertEquals(r.ok, false);
      if (!r.ok) assertTrue(/^CIFAR-10 not found .*--data-dir/.test(r.reason), r.reason);
    });
  } finally {
    await Deno.remove(empty, { recursive: true });
    await removeTestContext(ctx);
  }
});

function fig(table: string, row: string, column: string, value: number | null, scale: string): Figure {
  return { table, row, column, value, stderr: 0.01, unit: "bits/dim", published: 0.97, scale, n: 100 };
}

Deno.test("density claims: verdicts on cells with a known answer", async (t) => {
  await t.step("the test bits/dim falls: holds; rises: does not", () => {
    const falling = [
      fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 1.5, "quick: x"),
      fig(DENSITY_TRAINING_TABLE, FIRST_EVAL_ROW, "mnist", 2.0, "quick: x"),
      fig(DENSITY_TRAINING_TABLE, LAST_EVAL_ROW, "mnist", 1.6, "quick: x"),
    ];
    assertEquals(densityClaims(falling)[0].holds, true);
    const rising = falling.map((f) => (f.row === LAST_EVAL_ROW ? { ...f, value: 2.1 } : f));
    assertEquals(densityClaims(rising)[0].holds, false);
    assertEquals(densityClaims(falling.slice(0, 2))[0].holds, null, "one evaluation only");
  });
  await t.step("the paper tolerance: checked only under paper, 0.02 bits/dim", () => {
    assertEquals(densityClaims([fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 0.98, "quick: x")])[1].holds, null);
    assertEquals(
      claimOutcome(densityClaims([fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 0.98, "quick: x")])[1]),
      "not testable",
    );
    assertEquals(densityClaims([fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 0.98, "paper: x")])[1].holds, true);
    assertEquals(densityClaims([fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 1.0, "paper: x")])[1].holds, false);
  });
  await t.step("non-finite test images left out of a cell fail the claims that read it", () => {
    const cells = [
      { ...fig(DENSITY_TABLE, DENSITY_ROW, "mnist", 0.98, "paper: x"), nonFinite: 2 },
      fig(DENSITY_TRAINING_TABLE, FIRST_EVAL_ROW, "mnist", 2.0, "paper: x"),
      { ...fig(DENSITY_TRAINING_TABLE, LAST_EVAL_ROW, "mnist", 1.6, "paper: x"), nonFinite: 1 },
    ];
    const claims = densityClaims(cells);
    assertEquals(claims.map((c) => c.holds), [false, false]);
    assertTrue(claims[0].detail.includes(`${LAST_EVAL_ROW}/mnist: 1 non-finite`), claims[0].detail);
    assertTrue(claims[1].detail.includes("2 non-finite per-example values left out"), claims[1].detail);
  });
});
