/**
 * The ablation experiment at `smoke`: every unit makes a valid artifact with finite figures and
 * standard errors; the LipSwish row reuses the density experiment's run; each column's i-ResNet unit
 * draws the bias figure; the claims give the expected verdicts on cells with a known answer.
 */
import { claimOutcome, type Figure, type Series } from "../../lib/artifacts/schema.ts";
import { publishedValue } from "../published.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import {
  ABLATION_COLUMNS,
  ABLATION_PAIRED_TABLE,
  ABLATION_TABLE,
  ablationClaims,
  ablationExperiment,
  BIAS_TABLE,
  biasPoints,
  pairedResults,
  pairedRow,
  pairedSeriesName,
  parseAblationUnit,
  testSeriesPrefix,
} from "./ablation.ts";
import { densityExperiment } from "../density/density.ts";
import { densitySpec, type ModelVariant, VARIANT_ROWS } from "../density/density_presets.ts";
import type { TrainRunResult } from "../framework/train_run.ts";
import { unitNamed } from "../framework/experiment.ts";

Deno.test("ablation experiment, smoke preset", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  const figures: Figure[] = [];
  const series: Series[] = [];
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
      series.push(...a.series!);
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
        if (u.variant !== "resflow-lipswish") {
          const paired = r.figures.find((f) => f.table === ABLATION_PAIRED_TABLE);
          assertTrue(paired !== undefined && paired.n > 0 && paired.stderr! >= 0, "paired images");
          assertTrue(r.series!.some((x) => x.name.includes(" paired: ")), "the paired trend");
        }
        figures.push(...r.figures);
        series.push(...r.series!);
      });
    }

    await t.step("smoke is too small to test the orderings: not testable, naming the gate", () => {
      const claims = ablationExperiment.claims(figures, series);
      assertEquals(claims.length, 3 * ABLATION_COLUMNS.length);
      for (const c of claims.filter((c) => c.table === ABLATION_TABLE)) {
        assertEquals(claimOutcome(c), "not testable", `${c.statement}: ${c.detail}`);
        assertTrue(c.detail.startsWith("gate: every compared model"), c.detail);
        assertTrue(c.trend !== undefined && c.trend.step.length > 0, "with the paired trend");
      }
      for (const c of claims.filter((c) => c.table === BIAS_TABLE)) {
        assertEquals(claimOutcome(c), "not testable", `${c.statement}: ${c.detail}`);
      }
    });
  } finally {
    await removeTestContext(ctx);
  }
});

function cell(table: string, row: string, column: string, value: number | null, stderr = 0.01): Figure {
  return { table, row, column, value, stderr, unit: "bits/dim", published: null, scale: "long: x", n: 10 };
}

/** A run's periodic test curve as the unit writes it. */
function curve(column: "mnist" | "cifar10", v: ModelVariant, y: number[]): Series {
  return {
    name: `${testSeriesPrefix(column, v)} on 10 fixed images (seed 1)`,
    x: y.map((_, i) => 100 * (i + 1)),
    y,
    yErr: y.map(() => 0.01),
  };
}

Deno.test("ablation claims on known numbers: paired, gated, with the trend", async (t) => {
  const [lip, elu, ires] = ["resflow-lipswish", "resflow-elu", "iresnet-elu"] as const;
  const flat = [1.5, 1.3, 1.3, 1.3, 1.3];
  const trend: Series = {
    name: pairedSeriesName("mnist", lip, elu),
    x: [100, 200, 300, 400, 500],
    y: [0.11, 0.08, -0.01, -0.07, -0.08],
    yErr: [0.01, 0.01, 0.01, 0.01, 0.01],
  };
  const base = (paired: number, nonFinite = 0) => [
    cell(ABLATION_TABLE, VARIANT_ROWS[lip], "mnist", 1.25),
    cell(ABLATION_TABLE, VARIANT_ROWS[elu], "mnist", 1.3),
    { ...cell(ABLATION_PAIRED_TABLE, pairedRow(lip, elu), "mnist", paired, 0.01), nonFinite },
  ];
  const lipElu = (figs: Figure[], series: Series[]) =>
    ablationClaims(figs, series).find((c) => c.statement.startsWith(`${VARIANT_ROWS[lip]} <=`))!;
  await t.step("gate met: the sign of the paired difference decides", () => {
    const series = [curve("mnist", lip, flat), curve("mnist", elu, flat), trend];
    const yes = lipElu(base(-0.05), series);
    assertEquals([claimOutcome(yes), yes.gate?.passed], ["holds", true], yes.detail);
    assertTrue(yes.detail.includes("5.0 SE, beyond 2 paired SE"), yes.detail);
    assertEquals(yes.trend?.difference, trend.y);
    assertEquals(claimOutcome(lipElu(base(0.05), series)), "fails");
    const poisoned = lipElu(base(-0.05, 1), series);
    assertEquals(claimOutcome(poisoned), "fails", "non-finite test images left out");
  });
  await t.step("a model still improving: not testable, naming the gate, with the trend", () => {
    const series = [curve("mnist", lip, [1.9, 1.7, 1.5, 1.4, 1.3]), curve("mnist", elu, flat), trend];
    const c = lipElu(base(-0.05), series);
    assertEquals(claimOutcome(c), "not testable");
    assertTrue(c.detail.includes("still improving") && c.detail.includes("falling"), c.detail);
  });
  await t.step("both still improving, the ordering past its crossover: judged on the paired sign", () => {
    const falling = [2.0, 1.8, 1.7, 1.6, 1.5];
    const widening: Series = { ...trend, y: [0.11, -0.02, -0.05, -0.08, -0.1] };
    const series = [curve("mnist", lip, falling), curve("mnist", elu, falling), widening];
    const c = lipElu(base(-0.1), series);
    assertEquals([claimOutcome(c), c.gate?.passed], ["holds", true], c.detail);
    assertTrue(c.detail.includes("settled"), c.detail);
    assertEquals(
      claimOutcome(lipElu(base(0.1), [...series.slice(0, 2), { ...trend, y: widening.y.map((v) => -v) }])),
      "fails",
    );
    const closing: Series = { ...trend, y: [0.11, 0.1, 0.08, 0.06, 0.03] };
    const open = lipElu(base(0.03), [...series.slice(0, 2), closing]);
    assertEquals(claimOutcome(open), "not testable", "a gap closing toward zero is a model catching up");
  });
  await t.step(
    "a column or row the preset does not run is not testable; a missing pair is not checked",
    () => {
      const quick = [cell(ABLATION_TABLE, VARIANT_ROWS[lip], "mnist", 1.25)].map((f) => ({
        ...f,
        scale: "quick: x",
      }));
      const claims = ablationClaims(quick, []);
      const cifar = claims.filter((c) => c.statement.includes("on cifar10 ("));
      assertEquals(cifar.map(claimOutcome), ["not testable", "not testable"]);
      assertTrue(cifar[0].detail.includes("not run on cifar10 at quick"), cifar[0].detail);
      assertEquals(claimOutcome(lipElu(quick, [])), "not checked");
    },
  );
  await t.step("bias compares |deviation| where both runs are planned", () => {
    const figs = [
      cell(BIAS_TABLE, VARIANT_ROWS[ires], "mnist", 0.2),
      cell(BIAS_TABLE, VARIANT_ROWS[elu], "mnist", 0.05),
      cell(BIAS_TABLE, VARIANT_ROWS[ires], "cifar10", 0.01),
      cell(BIAS_TABLE, VARIANT_ROWS[elu], "cifar10", 0.05),
    ];
    const curves = (["mnist", "cifar10"] as const).flatMap((
      c,
    ) => [curve(c, elu, flat), curve(c, ires, flat)]);
    const bias = ablationClaims(figs, curves).filter((c) => c.table === BIAS_TABLE);
    assertEquals(bias.map(claimOutcome), ["holds", "not checked", "fails"]);
    const poisoned = ablationClaims(figs.map((f, i) => (i === 0 ? { ...f, nonFinite: 1 } : f)), curves);
    assertEquals(claimOutcome(poisoned.filter((c) => c.table === BIAS_TABLE)[0]), "fails");
    const falling = [curve("mnist", elu, flat), curve("mnist", ires, [2, 1.8, 1.6, 1.4])];
    const early = ablationClaims(figs, falling).filter((c) => c.table === BIAS_TABLE);
    assertEquals(claimOutcome(early[0]), "not testable", "still improving");
  });
  await t.step("pairedResults pairs per image at the steps both runs evaluated, seeds combined", () => {
    const ev = (step: number, perImage: number[]) => ({
      step,
      perImage,
      bitsPerDim: 0,
      standardError: 0,
      count: 3,
      nonFinite: 0,
    });
    const a = { evals: [ev(10, [1, 2, 3]), ev(20, [1, 1, 1])], finalEval: ev(20, [2, 3, 4]) };
    const b = { evals: [ev(20, [0, 0, 0]), ev(30, [0, 0, 0])], finalEval: ev(20, [1, 2, 3]) };
    const r = pairedResults([{ a, b }]);
    assertEquals(r.trend.step, [20]);
    assertEquals([r.final.mean, r.final.stderr, r.final.n], [1, 0, 3]);
    const two = pairedResults([{ a, b }, { a: { ...a, finalEval: ev(20, [1, 2, 5]) }, b }]);
    assertEquals(two.final.n, 6);
    assertTrue(Math.abs(two.final.mean - 5 / 6) < 1e-12, `${two.final.mean}`);
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
