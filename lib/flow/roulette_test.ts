/**
 * Russian-roulette bookkeeping: tail probabilities against SPEC 2.1's values and direct sums, the
 * coefficients of the unbiased, truncated and evaluation plans, and the sampled N's distribution.
 */
import { Rng } from "../engine/random.ts";
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import {
  PAPER_DIST,
  REPO_DIST,
  roulettePlan,
  sampleN,
  sampleRoulettePlan,
  tailProb,
  truncatedPlan,
} from "./roulette.ts";

/** SPEC 2.1 quotes P(N ≥ j) for Poisson(2) to four decimals. */
const SPEC_4DP: Tolerance = { atol: 5e-5, rtol: 0 };
/** Closed forms vs direct sums of the probability mass function. */
const EXACT: Tolerance = { atol: 1e-14, rtol: 1e-12 };

Deno.test("tail probabilities P(N >= j)", async (t) => {
  await t.step("Poisson(2): the values quoted in SPEC 2.1", () => {
    assertClose(
      [1, 2, 3, 4, 5].map((j) => tailProb(REPO_DIST, j)),
      [0.8647, 0.594, 0.3233, 0.1429, 0.0527],
      SPEC_4DP,
    );
    assertEquals(tailProb(REPO_DIST, 0), 1);
  });
  await t.step("both distributions: 1 − Σ_{i<j} P(N = i) from the mass function", () => {
    const pmfPois = (i: number) => Math.exp(-2) * 2 ** i / [1, 1, 2, 6, 24, 120, 720, 5040, 40320][i];
    const pmfGeom = (i: number) => (i >= 1 ? 0.5 ** (i - 1) * 0.5 : 0);
    for (let j = 1; j <= 8; j++) {
      let sp = 0;
      let sg = 0;
      for (let i = 0; i < j; i++) {
        sp += pmfPois(i);
        sg += pmfGeom(i);
      }
      assertClose(tailProb(REPO_DIST, j), 1 - sp, EXACT, `poisson j=${j}`);
      assertClose(tailProb(PAPER_DIST, j), 1 - sg, EXACT, `geometric j=${j}`);
    }
    assertEquals(tailProb(PAPER_DIST, 1), 1); // numpy's geometric has support {1, 2, ...}
  });
});

Deno.test("series plans", async (t) => {
  await t.step("unbiased: N + nExact terms, c_k = 1 up to nExact, then 1/P(N >= k − nExact)", () => {
    const p = roulettePlan(PAPER_DIST, 2, 3);
    assertEquals(p.nTerms, 5);
    assertEquals(p.sampledN, 3);
    assertClose(p.coeffs, [1, 1, 1, 2, 4], EXACT);
    const q = roulettePlan(REPO_DIST, 2, 0);
    assertEquals([q.nTerms, q.coeffs.length], [2, 2]);
    const e = roulettePlan(REPO_DIST, 20, 2);
    assertClose(e.coeffs.slice(19), [1, 1 / tailProb(REPO_DIST, 1), 1 / tailProb(REPO_DIST, 2)], EXACT);
  });
  await t.step("truncated: n terms with c_k = 1; bad sizes are refused", () => {
    assertEquals(truncatedPlan(3), { nTerms: 3, coeffs: [1, 1, 1], sampledN: null });
    assertThrows(() => truncatedPlan(0), /truncated series of 0 terms/);
    assertThrows(() => roulettePlan(PAPER_DIST, -1, 2), /nExactTerms = -1/);
    assertThrows(() => sampleRoulettePlan({ kind: "geometric", p: 1.5 }, 2, new Rng(0)), /p = 1.5/);
    assertThrows(() => sampleRoulettePlan({ kind: "poisson", lambda: 0 }, 2, new Rng(0)), /lambda = 0/);
  });
  await t.step("sampled N: the empirical tail matches P(N >= j) (20000 draws, 4 standard errors)", () => {
    for (const dist of [PAPER_DIST, REPO_DIST]) {
      const rng = new Rng(11);
      const n = 20000;
      const counts = new Array<number>(8).fill(0);
      for (let i = 0; i < n; i++) {
        const k = sampleN(dist, rng);
        for (let j = 0; j < 8; j++) if (k >= j) counts[j]++;
      }
      for (let j = 0; j < 8; j++) {
        const p = tailProb(dist, j);
        const se = Math.sqrt(Math.max(p * (1 - p), 1e-12) / n);
        assertTrue(
          Math.abs(counts[j] / n - p) <= 4 * se + 1e-12,
          `${dist.kind} j=${j}: ${counts[j] / n} vs ${p}`,
        );
      }
    }
  });
});
