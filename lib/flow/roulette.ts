/**
 * Russian-roulette bookkeeping of the log-det power series (SPEC 2.1): the distribution of the
 * random truncation N, its tail probabilities P(N ≥ j), and the series plan (number of terms and
 * per-term weights c_k) for the unbiased, truncated and evaluation settings.
 * @module
 */
import type { Rng } from "../engine/random.ts";

/**
 * The distribution of the roulette draw N.
 * - geometric: numpy's convention, support {1, 2, ...}, P(N ≥ j) = (1 − p)^(j − 1) (the paper: p = 0.5).
 * - poisson: support {0, 1, ...}, P(N ≥ j) = 1 − e^(−λ) Σ_{i<j} λ^i / i! (the official repo: λ = 2).
 */
export type RouletteDist =
  | { readonly kind: "geometric"; readonly p: number }
  | { readonly kind: "poisson"; readonly lambda: number };

/** The paper's choice: Geom(0.5) (SPEC 1.12). */
export const PAPER_DIST: RouletteDist = { kind: "geometric", p: 0.5 };
/** The official repository's default: Poisson(2) (SPEC 1.12). */
export const REPO_DIST: RouletteDist = { kind: "poisson", lambda: 2 };

/** Throws unless the distribution's parameter is in range. */
export function checkDist(dist: RouletteDist): void {
  if (dist.kind === "geometric") {
    if (!(dist.p > 0 && dist.p <= 1)) {
      throw new Error(`Cannot use roulette distribution geometric(p = ${dist.p}): expected 0 < p <= 1`);
    }
  } else if (dist.kind === "poisson") {
    if (!(dist.lambda > 0 && dist.lambda <= 500)) {
      throw new Error(
        `Cannot use roulette distribution poisson(lambda = ${dist.lambda}): expected 0 < lambda <= 500`,
      );
    }
  } else {
    throw new Error(
      `Cannot use roulette distribution ${JSON.stringify(dist)}: expected geometric or poisson`,
    );
  }
}

/** P(N ≥ j) for the distribution (1 for j ≤ 0; for geometric also 1 at j = 1). */
export function tailProb(dist: RouletteDist, j: number): number {
  if (j <= 0) return 1;
  if (dist.kind === "geometric") return Math.pow(1 - dist.p, j - 1);
  // 1 − e^{−λ} Σ_{i<j} λ^i/i!, summed in the stable direction for the small j used here.
  let term = Math.exp(-dist.lambda);
  let cdf = term;
  for (let i = 1; i < j; i++) {
    term *= dist.lambda / i;
    cdf += term;
  }
  return Math.max(0, 1 - cdf);
}

/** One draw of N from the host generator. */
export function sampleN(dist: RouletteDist, rng: Rng): number {
  return dist.kind === "geometric" ? rng.geometric(dist.p) : rng.poisson(dist.lambda);
}

/** How many power-series terms to compute and with which weights. */
export interface SeriesPlan {
  /** Number of terms n (powers J^1 .. J^n). */
  readonly nTerms: number;
  /** c_k for k = 1..n (index k − 1): the term's weight on top of (−1)^(k+1)/k. */
  readonly coeffs: readonly number[];
  /** The roulette draw N, or null for a fixed truncation. */
  readonly sampledN: number | null;
}

/**
 * The unbiased plan: n = N + nExact, c_k = 1 for k ≤ nExact, else 1 / P(N ≥ k − nExact).
 * With one draw the official "fraction of samples with N ≥ j" is always 1, so it is left out.
 */
export function roulettePlan(dist: RouletteDist, nExact: number, n: number): SeriesPlan {
  if (!Number.isInteger(nExact) || nExact < 0) {
    throw new Error(`Cannot plan the roulette series: nExactTerms = ${nExact}, expected an integer >= 0`);
  }
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`Cannot plan the roulette series: N = ${n}, expected an integer >= 0`);
  }
  const nTerms = n + nExact;
  const coeffs: number[] = [];
  for (let k = 1; k <= nTerms; k++) coeffs.push(k <= nExact ? 1 : 1 / tailProb(dist, k - nExact));
  return { nTerms, coeffs, sampledN: n };
}

/** Draws N and returns the unbiased plan (one draw per block per call, shared by the batch). */
export function sampleRoulettePlan(dist: RouletteDist, nExact: number, rng: Rng): SeriesPlan {
  checkDist(dist);
  return roulettePlan(dist, nExact, sampleN(dist, rng));
}

/** The biased i-ResNet plan: exactly n terms, every c_k = 1. */
export function truncatedPlan(n: number): SeriesPlan {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`Cannot plan a truncated series of ${n} terms: expected an integer >= 1`);
  }
  return { nTerms: n, coeffs: new Array<number>(n).fill(1), sampledN: null };
}

/** (−1)^(k+1) / k · c_k, the full weight of ⟨w_k, v⟩ in the log-det estimate. */
export function logdetWeight(plan: SeriesPlan, k: number): number {
  return ((k % 2 === 1 ? 1 : -1) / k) * plan.coeffs[k - 1];
}
