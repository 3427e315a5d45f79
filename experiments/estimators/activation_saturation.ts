/**
 * The gradient-saturation argument for LipSwish (SPEC 4.1, paper §3.3): first and second derivatives
 * of ELU, softplus and LipSwish (several β) on a grid, and the numbers behind the argument. A
 * 1-Lipschitz activation wants |φ'| ≤ 1 everywhere and φ'' that does not vanish where |φ'| is close to
 * 1. ELU and softplus reach φ' → 1 on an unbounded half-line on which φ'' → 0 (ELU: φ'' = 0 exactly for
 * z > 0), so the "saturated" set {φ' ≥ 1 − ε, |φ''| ≤ δ} grows with the window looked at; LipSwish has
 * φ' ≈ 1 only near one point (z* ≈ 2.40/β) and φ' → 1/1.1 as z → ∞, so that set stays bounded.
 *
 * The curves come from the library's host closed forms (`activationDerivatives`); the same derivatives
 * are also taken by the engine's autograd (first and second order) on the activation modules, and the
 * largest difference is reported as a check.
 * @module
 */
import { grad } from "../../lib/engine/autograd.ts";
import { requireGrad, tensor } from "../../lib/engine/ops/creation.ts";
import { sum } from "../../lib/engine/ops/reduce.ts";
import { type Device, tidy } from "../../lib/engine/tensor.ts";
import {
  activationDerivatives,
  type ActivationKind,
  createActivation,
  type Derivatives,
} from "../../lib/flow/activations.ts";

/** One curve of the figure: an activation kind and, for LipSwish, its β. */
export interface ActivationCase {
  /** Name for legends and figure rows, e.g. "LipSwish β=0.97". */
  readonly name: string;
  /** The library's activation kind. */
  readonly kind: ActivationKind;
  /** LipSwish's β (null for the others). */
  readonly beta: number | null;
}

/** β_raw with softplus(β_raw) = β. */
export function betaRawFor(beta: number): number {
  if (!(beta > 0)) throw new Error(`Cannot invert softplus at beta = ${beta}: expected beta > 0`);
  return beta > 30 ? beta : Math.log(Math.expm1(beta));
}

/** The initial β of the official code, softplus(0.5). */
export const LIPSWISH_INIT_BETA = Math.log1p(Math.exp(0.5));

/** ELU, softplus and LipSwish at β ∈ {0.5, the initial 0.974, 2, 5}. */
export const ACTIVATION_CASES: readonly ActivationCase[] = [
  { name: "ELU", kind: "elu", beta: null },
  { name: "softplus", kind: "softplus", beta: null },
  ...[0.5, LIPSWISH_INIT_BETA, 2, 5].map((b) => ({
    name: `LipSwish β=${b === LIPSWISH_INIT_BETA ? "0.974 (init)" : String(b)}`,
    kind: "swish" as const,
    beta: b,
  })),
];

/** φ, φ', φ'' of a case at the points. */
export function caseDerivatives(c: ActivationCase, zs: readonly number[]): Derivatives[] {
  return activationDerivatives(c.kind, zs, c.beta === null ? undefined : betaRawFor(c.beta));
}

/** An evenly spaced grid from lo to hi inclusive. */
export function grid(lo: number, hi: number, step: number): number[] {
  const n = Math.round((hi - lo) / step);
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

/** Thresholds of the saturated set {φ' ≥ 1 − ε, |φ''| ≤ δ}. */
export const SATURATION_EPS = 0.01;
/** δ of the saturated set. */
export const SATURATION_DELTA = 0.01;
/** Grid spacing of the measurements. */
export const GRID_STEP = 1e-3;

/** The numbers of one activation. */
export interface SaturationStats {
  /** max φ' over the grid. */
  readonly maxDerivative: number;
  /** Where it is attained. */
  readonly argmaxDerivative: number;
  /** φ' at the right end of the window (the asymptote as z → ∞). */
  readonly derivativeAtRightEnd: number;
  /** φ'' at the right end of the window. */
  readonly secondAtRightEnd: number;
  /** Length of {φ' ≥ 1 − ε, |φ''| ≤ δ} within [−L, L]. */
  readonly saturatedLength: number;
  /** Fraction of {φ' ≥ 1 − ε} on which |φ''| ≤ δ (NaN when φ' never reaches 1 − ε). */
  readonly saturatedFraction: number;
  /** Mean |φ''| over {φ' ≥ 1 − ε} (NaN when empty). */
  readonly meanSecondWhereNearOne: number;
}

/** The saturation numbers of a case on [−L, L]. */
export function saturationStats(c: ActivationCase, halfWidth: number, step = GRID_STEP): SaturationStats {
  const zs = grid(-halfWidth, halfWidth, step);
  const d = caseDerivatives(c, zs);
  let maxD = -Infinity;
  let argmax = NaN;
  let near = 0;
  let saturated = 0;
  let sumSecond = 0;
  d.forEach((p, i) => {
    if (p.dy > maxD) {
      maxD = p.dy;
      argmax = zs[i];
    }
    if (p.dy >= 1 - SATURATION_EPS) {
      near++;
      sumSecond += Math.abs(p.d2y);
      if (Math.abs(p.d2y) <= SATURATION_DELTA) saturated++;
    }
  });
  const last = d[d.length - 1];
  return {
    maxDerivative: maxD,
    argmaxDerivative: argmax,
    derivativeAtRightEnd: last.dy,
    secondAtRightEnd: last.d2y,
    saturatedLength: saturated * step,
    saturatedFraction: near > 0 ? saturated / near : NaN,
    meanSecondWhereNearOne: near > 0 ? sumSecond / near : NaN,
  };
}

/**
 * The largest |difference| between the engine's autograd derivatives (φ' by one backward pass, φ'' by
 * differentiating that again) of the activation module and the host closed forms, over `zs`. Points
 * within 1e-12 of ELU's kink at 0 are skipped: there φ'' has no value and the two sides pick different
 * one-sided limits.
 */
export async function autogradMismatch(
  c: ActivationCase,
  zs: readonly number[],
  device: Device,
): Promise<number> {
  const pts = c.kind === "elu" ? zs.filter((z) => Math.abs(z) > 1e-12) : [...zs];
  const act = createActivation(c.kind, {
    device,
    betaRaw: c.beta === null ? undefined : betaRawFor(c.beta),
  });
  const [d1, d2] = tidy(() => {
    const z = requireGrad(tensor(Float64Array.from(pts), [pts.length], device));
    const [g1] = grad(sum(act.apply(z)), [z], { createGraph: true });
    const [g2] = grad(sum(g1), [z]);
    return [g1.detach(), g2];
  });
  const [a1, a2] = [await d1.read(), await d2.read()];
  d1.dispose();
  d2.dispose();
  for (const p of act.parameters()) p.value.dispose();
  const host = caseDerivatives(c, pts);
  let worst = 0;
  host.forEach((h, i) => {
    worst = Math.max(worst, Math.abs(a1[i] - h.dy), Math.abs(a2[i] - h.d2y));
  });
  return worst;
}
