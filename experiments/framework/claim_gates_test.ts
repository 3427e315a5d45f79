/** The claim gates and paired statistics: each fails on the broken input it exists to catch. */
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  type Tolerance,
} from "../../lib/testing/asserts.ts";
import {
  allGates,
  anyGate,
  combineSeeds,
  type EvalCurve,
  gated,
  ORDERING_MIN_SE,
  orderingSettledGate,
  pairedDifference,
  PLATEAU_WINDOW,
  plateauGate,
  thresholdGate,
  trendDirection,
} from "./claim_gates.ts";
import type { ClaimTrend } from "../../lib/artifacts/schema.ts";

/** Sums of a handful of doubles: exact to rounding. */
const EXACT: Tolerance = { atol: 1e-12, rtol: 0 };

const curve = (value: number[], se = 0.01): EvalCurve => ({
  name: "m",
  step: value.map((_, i) => 100 * (i + 1)),
  value,
  stderr: value.map(() => se),
});

Deno.test("pairedDifference", async (t) => {
  await t.step("the SE is that of the per-image differences, not the combined SE of two means", () => {
    // Images differ a lot from each other (0..9) but b is a shifted by 0.1 ± 0.01 on every image.
    const a = Array.from({ length: 10 }, (_, i) => i + 0.1 + (i % 2 ? 0.01 : -0.01));
    const b = Array.from({ length: 10 }, (_, i) => i);
    const p = pairedDifference(a, b);
    assertClose(p.mean, 0.1, EXACT);
    const d = a.map((x, i) => x - b[i]);
    const sd = Math.sqrt(d.reduce((s, v) => s + (v - 0.1) ** 2, 0) / 9);
    assertClose(p.stderr, sd / Math.sqrt(10), EXACT);
    // The unpaired SE (spread of the images, about 0.96 per mean) is nearly 300 times larger.
    assertTrue(p.stderr < 0.01, `paired SE ${p.stderr}`);
  });
  await t.step("non-finite pairs (numbers, or NaN written as text) are left out and counted", () => {
    const p = pairedDifference([1, NaN, 3, "Infinity", 5], [0, 0, 1, 0, 4]);
    assertEquals([p.n, p.nonFinite], [3, 2]);
    assertClose(p.mean, (1 + 2 + 1) / 3, EXACT);
  });
  await t.step("different image counts cannot be paired", () => {
    assertThrows(() => pairedDifference([1, 2], [1]), /2 images against 1/);
  });
  await t.step("seeds combine as independent estimates", () => {
    const c = combineSeeds([{ mean: 0.1, stderr: 0.03, n: 5, nonFinite: 0 }, {
      mean: -0.1,
      stderr: 0.04,
      n: 5,
      nonFinite: 1,
    }]);
    assertClose(c.mean, 0, EXACT);
    assertClose(c.stderr, 0.025, EXACT);
    assertEquals([c.n, c.nonFinite], [10, 1]);
  });
});

Deno.test("plateauGate", async (t) => {
  await t.step("a still-falling curve keeps the gate shut", () => {
    const g = plateauGate([curve([2.0, 1.8, 1.6, 1.4])]);
    assertEquals(g.passed, false);
    assertTrue(g.detail.includes("still improving"), g.detail);
  });
  await t.step("a flat curve opens it (changes within the SE, either sign)", () => {
    assertEquals(plateauGate([curve([2.0, 1.5, 1.3, 1.305, 1.3, 1.302])]).passed, true);
  });
  await t.step("every compared model must have stopped", () => {
    assertEquals(plateauGate([curve([1.3, 1.3, 1.3, 1.3]), curve([2.0, 1.8, 1.6, 1.4])]).passed, false);
  });
  await t.step("too few evaluations, none, or non-finite values never open it", () => {
    assertEquals(plateauGate([curve([1.3, 1.3, 1.3])]).passed, false, `a window of ${PLATEAU_WINDOW}`);
    assertEquals(plateauGate([]).passed, false);
    assertEquals(plateauGate([curve([1.3, 1.3, NaN, NaN])]).passed, false);
  });
  await t.step("the window counts intervals back from the last evaluation", () => {
    // Falling early, flat over the last 2 intervals, falling over the last 3.
    const c = curve([2.0, 1.5, 1.3, 1.3, 1.3]);
    assertEquals(plateauGate([c], 2).passed, true);
    assertEquals(plateauGate([c], 3).passed, false);
  });
});

Deno.test("orderingSettledGate", async (t) => {
  const trend = (d: number[], se = 0.01): ClaimTrend => ({
    what: "a − b",
    step: d.map((_, i) => 100 * (i + 1)),
    difference: d,
    stderr: d.map(() => se),
  });
  await t.step("past the crossover, the gap widening: settled (the quick MNIST LipSwish − ELU shape)", () => {
    const g = orderingSettledGate(trend([0.12, 0.1, 0.03, -0.02, -0.06, -0.08, -0.1]));
    assertEquals(g.passed, true, g.detail);
    assertTrue(g.detail.includes("grew by"), g.detail);
  });
  await t.step("a gap holding within its SE either side is settled, of either sign", () => {
    assertEquals(orderingSettledGate(trend([0.05, 0.055, 0.05, 0.045])).passed, true);
  });
  await t.step("a gap shrinking toward zero is a model catching up: shut", () => {
    // The 120-step quick run of issue 15: LipSwish behind, but catching up.
    const g = orderingSettledGate(trend([0.12, 0.1, 0.086, 0.054]));
    assertEquals(g.passed, false);
    assertTrue(g.detail.includes("toward zero"), g.detail);
  });
  await t.step("a sign change inside the window, or a last value within the SE bound, keeps it shut", () => {
    assertEquals(orderingSettledGate(trend([0.05, -0.06, -0.07, -0.08])).passed, false);
    const se = 0.01;
    const edge = ORDERING_MIN_SE * se;
    assertEquals(orderingSettledGate(trend([-edge, -edge, -edge, -edge], se)).passed, false);
    assertEquals(orderingSettledGate(trend([-3 * se, -3 * se, -3 * se, -3 * se], se)).passed, true);
  });
  await t.step("too few, missing or non-finite points never open it", () => {
    assertEquals(
      orderingSettledGate(trend([-0.1, -0.1, -0.1])).passed,
      false,
      `a window of ${PLATEAU_WINDOW}`,
    );
    assertEquals(orderingSettledGate(undefined).passed, false);
    assertEquals(orderingSettledGate(trend([-0.1, NaN, -0.1, -0.1])).passed, false);
  });
});

Deno.test("thresholdGate and allGates", async (t) => {
  await t.step("a floor is met at or above it, never by a missing or NaN value", () => {
    assertEquals(thresholdGate("λ = 0 accuracy", 0.97, 0.97).passed, true);
    assertEquals(thresholdGate("λ = 0 accuracy", 0.869, 0.97).passed, false);
    assertEquals(thresholdGate("λ = 0 accuracy", null, 0.97).passed, false);
    assertEquals(thresholdGate("λ = 0 accuracy", NaN, 0.97).passed, false);
  });
  await t.step("all gates must pass, and none is not a pass", () => {
    const yes = thresholdGate("x", 1, 0), no = thresholdGate("y", 0, 1);
    assertEquals(allGates([yes, yes]).passed, true);
    assertEquals(allGates([yes, no]).passed, false);
    assertEquals(allGates([]).passed, false);
  });
  await t.step("anyGate: one passing alternative is enough, none is not a pass", () => {
    const yes = thresholdGate("x", 1, 0), no = thresholdGate("y", 0, 1);
    assertEquals(anyGate([no, yes]).passed, true);
    assertEquals(anyGate([no, no]).passed, false);
    assertEquals(anyGate([]).passed, false);
    assertTrue(anyGate([no, yes]).statement.includes("; or "));
  });
});

Deno.test("trendDirection", async (t) => {
  const trend = (d: number[]): ClaimTrend => ({
    what: "a − b",
    step: d.map((_, i) => i),
    difference: d,
    stderr: d.map(() => 0.02),
  });
  await t.step("still falling vs flat vs rising", () => {
    assertEquals(trendDirection(trend([0.11, 0.08, -0.01, -0.08])), "falling");
    assertEquals(trendDirection(trend([0.11, -0.07, -0.08, -0.075, -0.07])), "flat");
    assertEquals(trendDirection(trend([-0.1, 0.0, 0.1, 0.2])), "rising");
    assertEquals(trendDirection(trend([0.1, 0.0, 0.0])), "too short");
  });
});

Deno.test("gated", async (t) => {
  const claim = { table: "t", statement: "a <= b", holds: false, detail: "a 1.0, b 0.9" };
  const trend: ClaimTrend = {
    what: "a − b",
    step: [1, 2, 3, 4],
    difference: [0.3, 0.2, 0.1, 0.0],
    stderr: [0.01, 0.01, 0.01, 0.01],
  };
  await t.step("a failed gate removes the verdict and names the gate, keeping the trend", () => {
    const g = gated(claim, thresholdGate("λ = 0 accuracy", 0.8, 0.97), trend);
    assertEquals(g.holds, null);
    assertTrue(
      g.detail.startsWith("gate: λ = 0 accuracy >= 0.97 — not met (measured: λ = 0 accuracy 0.8000)"),
      g.detail,
    );
    assertTrue(g.detail.includes("+0.300") && g.detail.includes("falling"), g.detail);
    assertEquals(g.trend, trend);
  });
  await t.step("a passed gate keeps the verdict", () => {
    const g = gated(claim, thresholdGate("λ = 0 accuracy", 0.99, 0.97));
    assertEquals([g.holds, g.gate?.passed], [false, true]);
  });
});
