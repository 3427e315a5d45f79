/**
 * Whether a claim about trained models is testable at the run's scale, and the paired statistics it
 * is judged on. Pure functions of measured numbers:
 * - {@link pairedDifference}: mean and standard error of per-image differences of two models
 *   evaluated on the same images with the same noise and probes (the SE of the differences, not the
 *   combined SE of two independent means: the image-to-image spread, common to both, cancels);
 * - {@link plateauGate}: every compared model's periodic test value has stopped improving by more
 *   than its standard error over the last evaluations;
 * - {@link orderingSettledGate}: a paired difference is past its crossover: one sign over the last
 *   evaluations, the last beyond 2 paired standard errors, its size holding or growing (the ordering
 *   of two models that are both still improving);
 * - {@link thresholdGate}: a measured value reaches a floor (λ = 0 accuracy >= 97 % before a hybrid
 *   accuracy claim);
 * - {@link trendDirection} and {@link trendText}: where the difference is heading;
 * - {@link gated}: a claim with its gate; "not testable at this scale (gate: ... — not met)" when it
 *   failed.
 * @module
 */
import type { ClaimGate, ClaimTrend } from "../../lib/artifacts/schema.ts";
import type { Claim } from "./experiment.ts";

/** Mean and standard error of paired per-image differences. */
export interface PairedDifference {
  /** Mean of a_i − b_i over the images where both are finite. */
  readonly mean: number;
  /** Sample standard deviation of the differences over √n (0 for one pair, NaN for none). */
  readonly stderr: number;
  /** Pairs used. */
  readonly n: number;
  /** Pairs left out because either value was not a finite number. */
  readonly nonFinite: number;
}

/**
 * The paired difference a − b of per-image values of two models on the same images (same order);
 * throws when the lengths differ (the images cannot then be the same ones).
 */
export function pairedDifference(
  a: readonly (number | string | null)[],
  b: readonly (number | string | null)[],
): PairedDifference {
  if (a.length !== b.length) {
    throw new Error(
      `Cannot pair per-image values: ${a.length} images against ${b.length}, expected the same images`,
    );
  }
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (typeof x === "number" && typeof y === "number" && Number.isFinite(x) && Number.isFinite(y)) {
      d.push(x - y);
    }
  }
  const n = d.length;
  const mean = n ? d.reduce((s, v) => s + v, 0) / n : NaN;
  const ss = d.reduce((s, v) => s + (v - mean) ** 2, 0);
  const stderr = n > 1 ? Math.sqrt(ss / (n - 1) / n) : n === 1 ? 0 : NaN;
  return { mean, stderr, n, nonFinite: a.length - n };
}

/** Independent paired differences (one per seed) combined: their mean, SE √(Σ se²) / k. */
export function combineSeeds(parts: readonly PairedDifference[]): PairedDifference {
  if (!parts.length) return { mean: NaN, stderr: NaN, n: 0, nonFinite: 0 };
  const k = parts.length;
  return {
    mean: parts.reduce((s, p) => s + p.mean, 0) / k,
    stderr: Math.sqrt(parts.reduce((s, p) => s + p.stderr ** 2, 0)) / k,
    n: parts.reduce((s, p) => s + p.n, 0),
    nonFinite: parts.reduce((s, p) => s + p.nonFinite, 0),
  };
}

/** A model's periodic test values (lower is better), each with its standard error. */
export interface EvalCurve {
  /** The model, e.g. "Residual Flow + ELU". */
  readonly name: string;
  /** Steps of the evaluations, increasing. */
  readonly step: readonly number[];
  /** The value at each step (bits/dim). */
  readonly value: readonly number[];
  /** Its standard error at each step. */
  readonly stderr: readonly number[];
}

/**
 * Evaluation intervals the plateau gate and the trend look back over: 3, so that a run needs at least
 * 4 periodic evaluations to be judged (smoke's 3 never are) and the quick MNIST ablation (one every 100
 * steps) is judged on its last 300 steps.
 */
export const PLATEAU_WINDOW = 3;

/**
 * Passed when every curve's improvement over its last `window` evaluation intervals (value `window`
 * evaluations before the last minus the last) is at most the last value's standard error: the
 * compared models have stopped improving at the resolution of the test set, so a difference between
 * them is not just one of them learning faster. Fails on a curve with too few (or non-finite) values.
 */
export function plateauGate(curves: readonly EvalCurve[], window = PLATEAU_WINDOW): ClaimGate {
  const statement = `every compared model's test bits/dim improved by at most its standard error over ` +
    `the last ${window} periodic evaluations`;
  if (!curves.length) return { statement, passed: false, detail: "no periodic evaluations" };
  const parts: string[] = [];
  let passed = true;
  for (const c of curves) {
    const k = c.value.length;
    if (k < window + 1) {
      passed = false;
      parts.push(`${c.name}: ${k} evaluation${k === 1 ? "" : "s"}, need ${window + 1}`);
      continue;
    }
    const first = c.value[k - 1 - window], last = c.value[k - 1], se = c.stderr[k - 1];
    const gain = first - last;
    const ok = [first, last, se].every(Number.isFinite) && gain <= se;
    passed &&= ok;
    parts.push(
      `${c.name}: ${first.toFixed(4)} at step ${c.step[k - 1 - window]} → ${last.toFixed(4)} ± ${
        se.toFixed(4)
      } at ${c.step[k - 1]} (improved ${gain.toFixed(4)}: ${ok ? "stopped" : "still improving"})`,
    );
  }
  return { statement, passed, detail: parts.join("; ") };
}

/** Passed when `value` (finite) is at least `floor`; `what` names the value, `unit` formats it. */
export function thresholdGate(what: string, value: number | null, floor: number, digits = 4): ClaimGate {
  const statement = `${what} >= ${floor}`;
  if (value === null || !Number.isFinite(value)) {
    return { statement, passed: false, detail: `${what} missing` };
  }
  return { statement, passed: value >= floor, detail: `${what} ${value.toFixed(digits)}` };
}

/** Paired standard errors the last difference must exceed for {@link orderingSettledGate}. */
export const ORDERING_MIN_SE = 2;

/**
 * Passed when the ordering of two models is past its crossover: the paired difference a − b had the
 * same sign at each of the last `window + 1` periodic evaluations, the last one beyond
 * {@link ORDERING_MIN_SE} paired standard errors, and its size did not shrink by more than the last
 * standard error over those `window` intervals. Both models may still be improving; the gap between
 * them is then holding or widening, so the sign at the end of the run is not one model catching up
 * (issue 15: LipSwish trails ELU for the first ~600 steps of the quick model, then leads). A gap
 * shrinking toward zero, a sign change inside the window, too few or non-finite points keep it shut.
 */
export function orderingSettledGate(trend: ClaimTrend | undefined, window = PLATEAU_WINDOW): ClaimGate {
  const statement = `the paired difference kept one sign over the last ${window + 1} periodic evaluations, ` +
    `ended beyond ${ORDERING_MIN_SE} paired SE and did not shrink by more than its SE over the last ${window} ` +
    `intervals (past its crossover)`;
  const k = trend?.difference.length ?? 0;
  if (!trend || k < window + 1) {
    return {
      statement,
      passed: false,
      detail: `${k} evaluation${k === 1 ? "" : "s"} of the difference, need ${window + 1}`,
    };
  }
  const d = trend.difference.slice(k - 1 - window);
  const first = d[0], last = d[window], se = trend.stderr[k - 1];
  const where = `${first >= 0 ? "+" : ""}${first.toFixed(4)} at step ${trend.step[k - 1 - window]} → ${
    last >= 0 ? "+" : ""
  }${last.toFixed(4)} ± ${se.toFixed(4)} at ${trend.step[k - 1]}`;
  if (![...d, se].every(Number.isFinite)) return { statement, passed: false, detail: `${where}: not finite` };
  const oneSign = d.every((x) => x > 0) || d.every((x) => x < 0);
  const beyond = Math.abs(last) > ORDERING_MIN_SE * se;
  const shrink = Math.abs(first) - Math.abs(last);
  const passed = oneSign && beyond && shrink <= se;
  const why = !oneSign
    ? "the sign changed"
    : !beyond
    ? `within ${ORDERING_MIN_SE} paired SE`
    : shrink > se
    ? `shrank by ${shrink.toFixed(4)} toward zero`
    : `one sign, ${shrink > 0 ? `shrank by ${shrink.toFixed(4)}` : `grew by ${(-shrink).toFixed(4)}`}`;
  return { statement, passed, detail: `${where} (${why}: ${passed ? "settled" : "not settled"})` };
}

/** Several gates as alternatives: passed when any passed; statements and details joined with "or". */
export function anyGate(gates: readonly ClaimGate[]): ClaimGate {
  return {
    statement: gates.map((g) => g.statement).join("; or "),
    passed: gates.some((g) => g.passed),
    detail: gates.map((g) => g.detail).join("; "),
  };
}

/** Several gates as one: passed when all passed; statements and details joined. */
export function allGates(gates: readonly ClaimGate[]): ClaimGate {
  return {
    statement: gates.map((g) => g.statement).join("; and "),
    passed: gates.length > 0 && gates.every((g) => g.passed),
    detail: gates.map((g) => g.detail).join("; "),
  };
}

/** Where a trend is heading over its last `window` intervals. */
export type TrendDirection = "falling" | "rising" | "flat" | "too short";

/**
 * "falling" / "rising" when the difference moved by more than its last standard error over the last
 * `window` intervals, else "flat"; "too short" with fewer than `window + 1` points.
 */
export function trendDirection(t: ClaimTrend, window = PLATEAU_WINDOW): TrendDirection {
  const k = t.difference.length;
  if (k < window + 1) return "too short";
  const move = t.difference[k - 1] - t.difference[k - 1 - window];
  const se = t.stderr[k - 1];
  if (!Number.isFinite(move) || !Number.isFinite(se)) return "too short";
  return move < -se ? "falling" : move > se ? "rising" : "flat";
}

/** "difference at each evaluation: step 100 +0.111 ± 0.010, ...; over the last 2: falling". */
export function trendText(t: ClaimTrend, digits = 3): string {
  const pts = t.step.map((s, i) => {
    const d = t.difference[i];
    return `${s} ${d >= 0 ? "+" : ""}${d.toFixed(digits)} ± ${t.stderr[i].toFixed(digits)}`;
  });
  return `${t.what} at each periodic evaluation (step difference ± paired SE): ${
    pts.length ? pts.join(", ") : "none"
  }; over the last ${PLATEAU_WINDOW} intervals: ${trendDirection(t)}`;
}

/**
 * `claim` with its gate (and trend) attached. When the gate failed the claim has no verdict: holds is
 * null (the report says "not testable at this scale") and the detail starts "gate: <condition> — not
 * met (measured: ...)" with the gate's numbers, then the claim's own numbers and the trend.
 */
export function gated(claim: Claim, gate: ClaimGate, trend?: ClaimTrend): Claim {
  const withTrend = trend ? { ...claim, trend } : claim;
  const trendPart = trend ? ` Trend: ${trendText(trend)}.` : "";
  if (gate.passed) {
    return {
      ...withTrend,
      gate,
      detail: `${claim.detail}; gate met (${gate.statement}: ${gate.detail}).${trendPart}`,
    };
  }
  return {
    ...withTrend,
    holds: null,
    gate,
    detail: `gate: ${gate.statement} — not met (measured: ${gate.detail}). ${claim.detail}.${trendPart}`,
  };
}
