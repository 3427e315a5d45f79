/**
 * The ablation experiment at `smoke`: every unit makes a valid artifact with finite figures and
 * standard errors; the LipSwish row reuses the density experiment's run; each column's i-ResNet unit
 * draws the bias figure; the claims give the expected verdicts on cells with a known answer.
 */
import type { Figure } from "../../lib/artifacts/schema.ts";
import { publishedValue } from "../published.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import {
  ABLATION_COLUMNS,
  ABLATION_TABLE,
  ablationClaims,
  ablationExperiment,
  BIAS_TABLE,
  biasPoints,
  parseAblationUnit,
} from "./ablation.ts";
import { densityExperiment } from "../density/density.ts";
import { densitySpec, VARIANT_ROWS } from "../density/density_presets.ts";
import type { TrainRunResult } from "../framework/train_run.ts";
import { unitNamed } from "../framework/experiment.ts";

Deno.test("ablation experiment, smoke preset", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  const figures: Figure[] = [];
  try {
    const units = ablationExperiment.units("smoke", { dataDir: undefined }).map((u) => u.name);
    assertEquals(units.length, 9);
    assertTrue(units.every((u) => parseAblationUnit(u) !== null), units.join(","));

    await t.step("the i-ResNet row trains the biased 5-term series with coeff 0.9, ELU", () => {
      const m = densitySpec("mnist", "iresnet-elu", "paper", 0, undefined).model;
      assertEquals([m.estimator.kind, m.estimator.nTruncated, m.coeff, m.activation], [
        "truncated",
        5,
        0.9,
        "elu",
      ]);
      const r = densitySpec("cifar10_small", "resflow-elu", "paper", 0, undefined).model;
      assertEquals([r.estimator.kind, r.coeff, r.activation, r.squeezeFirst], [
        "unbiased",
        0.98,
        "elu",
        true,
      ]);
      assertEquals(r.nBlocks, [16, 16, 16], "the paper preset shrinks nothing");
    });

    await t.step("density first: the ablation's LipSwish rows reuse its runs", async () => {
      const d = await unitNamed(densityExperiment, "smoke", "mnist").run(ctx);
      assertEquals(d.config.cached, false);
      const a = await unitNamed(ablationExperiment, "smoke", "mnist-resflow-lipswish").run(ctx);
      assertEquals(a.config.cached, true, "served from the run cache");
      assertEquals(a.config.runHash, d.config.runHash);
      const dv = d.figures.find((f) => f.table === "density_bpd")!.value;
      assertEquals(a.figures.find((f) => f.table === ABLATION_TABLE)!.value, dv);
      await checkUnitResult("ablation/mnist-resflow-lipswish", "smoke", a, ctx.outDir);
      figures.push(...a.figures);
    });

    for (const unit of units.filter((u) => u !== "mnist-resflow-lipswish")) {
      await t.step(`unit ${unit}: a valid artifact with finite figures`, async () => {
        const r = await unitNamed(ablationExperiment, "smoke", unit).run(ctx);
        await checkUnitResult(`ablation/${unit}`, "smoke", r, ctx.outDir);
        const u = parseAblationUnit(unit)!;
        const main = r.figures.find((f) => f.table === ABLATION_TABLE)!;
        assertEquals([main.row, main.column], [VARIANT_ROWS[u.variant], u.column]);
        assertEquals(main.published, publishedValue(ABLATION_TABLE, main.row, main.column));
        assertTrue(main.stderr! > 0, "standard error over the test images");
        assertTrue(r.figures.some((f) => f.table === BIAS_TABLE), "deviation of the training estimate");
        if (u.variant === "iresnet-elu") assertEquals(r.files, [`ablation_bias_${u.column}.png`]);
        if (u.variant === "resflow-elu") assertEquals(r.config.cached, false);
        if (u.variant === "iresnet-elu") assertTrue(r.notes!.every((n) => !/not drawn/.test(n)));
        figures.push(...r.figures);
      });
    }

    await t.step("every claim evaluates on the measured cells", () => {
      const claims = ablationExperiment.claims(figures);
      assertEquals(claims.length, 3 * ABLATION_COLUMNS.length);
      for (const c of claims) assertTrue(typeof c.holds === "boolean", `${c.statement}: ${c.detail}`);
    });
  } finally {
    await removeTestContext(ctx);
  }
});

function cell(table: string, row: string, column: string, value: number | null, stderr = 0.01): Figure {
  return { table, row, column, value, stderr, unit: "bits/dim", published: null, scale: "quick: x", n: 10 };
}

Deno.test("ablation claims and the bias measure on known numbers", async (t) => {
  const [lip, elu, ires] = [
    VARIANT_ROWS["resflow-lipswish"],
    VARIANT_ROWS["resflow-elu"],
    VARIANT_ROWS["iresnet-elu"],
  ];
  await t.step("the paper's own numbers satisfy the ordering in every column", () => {
    const paper = ABLATION_COLUMNS.flatMap((c) =>
      [lip, elu, ires].map((row) => {
        const p = publishedValue(ABLATION_TABLE, row, c);
        return cell(ABLATION_TABLE, row, c, typeof p === "number" ? p : p![0]);
      })
    );
    const claims = ablationClaims(paper);
    for (const c of claims.slice(0, 6)) assertEquals(c.holds, true, c.detail);
    for (const c of claims.slice(6)) assertEquals(c.holds, null, "no bias cells");
  });
  await t.step("a swapped pair breaks the ordering; bias compares |deviation|", () => {
    const figs = [
      cell(ABLATION_TABLE, lip, "mnist", 1.2),
      cell(ABLATION_TABLE, elu, "mnist", 1.1),
      cell(ABLATION_TABLE, ires, "mnist", 1.3),
      cell(BIAS_TABLE, ires, "mnist", 0.2),
      cell(BIAS_TABLE, elu, "mnist", 0.05),
      cell(BIAS_TABLE, ires, "cifar10", 0.01),
      cell(BIAS_TABLE, elu, "cifar10", 0.05),
    ];
    const claims = ablationClaims(figs);
    assertEquals(claims[0].holds, true, "ELU <= i-ResNet on mnist");
    assertEquals(claims[1].holds, false, "LipSwish <= ELU on mnist");
    assertEquals([claims[2].holds, claims[3].holds], [null, null], "no cifar10_small cells");
    assertEquals(claims[6].holds, true, "bias on mnist");
    assertEquals(claims[8].holds, false, "bias on cifar10");
    const poisoned = ablationClaims(figs.map((f, i) => (i === 2 || i === 3 ? { ...f, nonFinite: 1 } : f)));
    assertEquals(poisoned[0].holds, false, "a cell with non-finite test images left out fails the ordering");
    assertEquals(poisoned[1].holds, false, "unchanged");
    assertEquals(poisoned[6].holds, false, "and the bias claim");
    assertTrue(poisoned[0].detail.startsWith("fails: "), poisoned[0].detail);
  });
  await t.step("biasPoints averages the logged losses since the previous evaluation", () => {
    const r = {
      curve: [1, 2, 3, 4].map((k) => ({ step: 10 * k, loss: k, wallSeconds: k })),
      evals: [20, 40].map((s) => ({ step: s, bitsPerDim: 1, standardError: 0, count: 1, nonFinite: 0 })),
    } as unknown as TrainRunResult;
    const pts = biasPoints(r);
    assertEquals(pts.map((p) => p.trainEstimate), [1.5, 3.5]);
    assertEquals(pts.map((p) => p.step), [20, 40]);
  });
});
