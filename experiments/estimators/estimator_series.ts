/**
 * Bias and spread of log-det estimators on small residual blocks whose exact log-det is known
 * (SPEC 2.1): the biased truncated power series (i-ResNet, n = 1..10 terms) against the unbiased
 * Russian-roulette estimator at equal expected cost (m exact terms plus Geom(0.5) more, so
 * E[terms] = m + 2 = n), with Gaussian Hutchinson probes.
 *
 * Every estimate comes from the library's Hutchinson terms t_k = vᵀJ^k v (`hutchinsonTerms`, one
 * vector-Jacobian product per power) combined with the library's plan weights (`truncatedPlan`,
 * `roulettePlan`, `logdetWeight`); each draw has its own probe v and, for the roulette, its own N.
 * The reference is the exact log|det(I + J)| from the full Jacobian (`exact_logdet.ts`), and the
 * truncation's exact expected bias comes from the traces of the Jacobian's powers.
 * @module
 */
import { requireGrad, tensor } from "../../lib/engine/ops/creation.ts";
import { mul } from "../../lib/engine/ops/elementwise.ts";
import { randn, Rng } from "../../lib/engine/random.ts";
import { type Device, dispose, type Tensor, tidy } from "../../lib/engine/tensor.ts";
import { hutchinsonTerms, type ResidualBranch } from "../../lib/flow/estimators.ts";
import { jacobian, logdetOfIdentityPlus, traceOfPowers } from "../../lib/flow/exact_logdet.ts";
import { buildConvBranch, buildFcBranch, type SequentialBranch } from "../../lib/flow/resblock_nets.ts";
import {
  logdetWeight,
  PAPER_DIST,
  roulettePlan,
  sampleN,
  type SeriesPlan,
  truncatedPlan,
} from "../../lib/flow/roulette.ts";
import { updateLipschitzAll } from "../../lib/flow/spectral_norm.ts";

/** The blocks studied. */
export type SeriesBlockKind = "fc" | "conv";

/** A small residual branch with what is known about its Lipschitz constant. */
export interface SeriesBlock {
  /** Which block. */
  readonly kind: SeriesBlockKind;
  /** The branch g. */
  readonly branch: ResidualBranch;
  /** Per-example shape of x. */
  readonly inputShape: readonly number[];
  /** Values per example (D). */
  readonly dims: number;
  /** The certified bound on Lip(g): the product of the per-layer coefficients. */
  readonly lipBound: number;
  /** What the block is, in words. */
  readonly description: string;
}

/** Per-layer coefficient of the FC block: three layers whose product is 0.9. */
export const FC_LAYER_COEFF = Math.cbrt(0.9);
/** Per-layer coefficient of the conv block (the paper's 0.98). */
export const CONV_LAYER_COEFF = 0.98;

/** A random n×n orthogonal matrix (Gram–Schmidt on Gaussian columns), row-major. */
export function randomOrthogonal(n: number, rng: Rng): Float64Array {
  const rows: Float64Array[] = [];
  while (rows.length < n) {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    for (const u of rows) {
      let d = 0;
      for (let i = 0; i < n; i++) d += u[i] * v[i];
      for (let i = 0; i < n; i++) v[i] -= d * u[i];
    }
    const norm = Math.hypot(...v);
    if (norm < 1e-8) continue;
    rows.push(v.map((x) => x / norm));
  }
  const out = new Float64Array(n * n);
  rows.forEach((r, i) => out.set(r, i * n));
  return out;
}

/**
 * Builds a block with the library's branch builders.
 * - "fc": the FC branch (pre-activation, ELU, D = 16, hidden 16, three linear layers) with every weight
 *   set to c·Q for a random orthogonal Q and c = 0.9^(1/3): every layer sits exactly at its bound, so
 *   Lip(g) ≤ 0.9 and ‖J(x)‖ comes close to it where ELU is near-linear.
 * - "conv": the conv branch (3×3 → ELU → 3×3, 2 channels on 4×4, hidden 2) with its PyTorch-default
 *   weights scaled up tenfold, so that spectral normalisation holds every layer at 0.98 (Lip(g) ≤ 0.96).
 * The power iteration runs to convergence before use.
 */
export async function buildSeriesBlock(
  kind: SeriesBlockKind,
  device: Device,
  seed: number,
): Promise<SeriesBlock> {
  const rng = new Rng(seed);
  if (kind === "fc") {
    const d = 16;
    const branch = buildFcBranch({
      inputShape: [d],
      hidden: d,
      nHidden: 2,
      activation: "elu",
      coeff: FC_LAYER_COEFF,
      rng,
      device,
    });
    for (const l of branch.lipschitzLayers()) {
      l.weight.set(tensor(randomOrthogonal(d, rng).map((w) => w * FC_LAYER_COEFF), [d, d], device));
    }
    await settle(branch.nnet, [1, d], device);
    return {
      kind,
      branch,
      inputShape: [d],
      dims: d,
      lipBound: FC_LAYER_COEFF ** 3,
      description:
        "FC branch ELU → Linear(16,16) → ELU → Linear(16,16) → ELU → Linear(16,16), orthogonal weights at 0.9^(1/3) each",
    };
  }
  if (kind === "conv") {
    const shape = [2, 4, 4];
    const branch = buildConvBranch({
      inChannels: 2,
      hidden: 2,
      kernels: [3, 3],
      activation: "elu",
      coeff: CONV_LAYER_COEFF,
      leadingActivation: false,
      inputHW: [4, 4],
      rng,
      device,
    });
    for (const l of branch.lipschitzLayers()) l.weight.set(tidy(() => mul(l.weight.value, 10)));
    await settle(branch, [1, ...shape], device);
    return {
      kind,
      branch,
      inputShape: shape,
      dims: 32,
      lipBound: CONV_LAYER_COEFF ** 2,
      description:
        "conv branch Conv3x3(2→2) → ELU → Conv3x3(2→2) on 2×4×4, weights held at the bound 0.98 by spectral normalisation",
    };
  }
  throw new Error(`Cannot build series block "${kind}": expected fc or conv`);
}

/** One forward (records the input size), then the power iteration to convergence. */
async function settle(branch: SequentialBranch, shape: number[], device: Device): Promise<void> {
  tidy(() => branch.apply(tensor(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape, device)));
  await updateLipschitzAll(branch.lipschitzLayers(), { nIterations: 300 });
}

/** The exact quantities at the evaluation points. */
export interface ExactReference {
  /** log|det(I + J(x_p))| per point. */
  readonly logdet: readonly number[];
  /** tr(J(x_p)^k) for k = 1..kMax, per point. */
  readonly traces: readonly (readonly number[])[];
  /** ‖J(x_p)‖₂ per point. */
  readonly jacobianNorm: readonly number[];
  /** Spectral radius of J(x_p) per point (‖J^64‖_F^(1/64)). */
  readonly spectralRadius: readonly number[];
}

/** The exact log-dets, traces of powers, norms and spectral radii of J at the points `x` ([P, ...shape]). */
export async function exactReference(block: SeriesBlock, x: Tensor, kMax: number): Promise<ExactReference> {
  const p = x.shape[0];
  const d = block.dims;
  const jac = tidy(() => {
    const xr = requireGrad(x.detach());
    return jacobian(block.branch.apply(xr), xr);
  });
  const host = await jac.read();
  jac.dispose();
  const logdet = logdetOfIdentityPlus(host, p, d);
  const traces: number[][] = [];
  const jacobianNorm: number[] = [];
  const spectralRadius: number[] = [];
  for (let i = 0; i < p; i++) {
    const m = host.slice(i * d * d, (i + 1) * d * d);
    traces.push(traceOfPowers(m, d, kMax));
    jacobianNorm.push(spectralNorm(m, d));
    spectralRadius.push(spectralRadiusOf(m, d));
  }
  return { logdet, traces, jacobianNorm, spectralRadius };
}

/** ‖A‖₂ of a row-major n×n matrix (power iteration on AᵀA, float64). */
export function spectralNorm(a: ArrayLike<number>, n: number): number {
  let v = new Float64Array(n).fill(1 / Math.sqrt(n));
  let s = 0;
  for (let it = 0; it < 1000; it++) {
    const u = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i] += a[i * n + j] * v[j];
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[j] += a[i * n + j] * u[i];
    const nw = Math.hypot(...w);
    if (nw === 0) return 0;
    const next = Math.sqrt(nw);
    v = w.map((x) => x / nw);
    if (Math.abs(next - s) <= 1e-13 * next) return next;
    s = next;
  }
  return s;
}

/** The spectral radius of a row-major n×n matrix by Gelfand's formula, ‖A^64‖_F^(1/64) (six squarings). */
export function spectralRadiusOf(a: ArrayLike<number>, n: number): number {
  let m = Float64Array.from(a);
  let logScale = 0;
  for (let s = 0; s < 6; s++) {
    const next = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const v = m[i * n + k];
        if (v === 0) continue;
        for (let j = 0; j < n; j++) next[i * n + j] += v * m[k * n + j];
      }
    }
    // Renormalise to keep the numbers in range: A^(2^(s+1)) = exp(logScale) · next.
    const f = Math.hypot(...next);
    if (f === 0) return 0;
    logScale = 2 * logScale + Math.log(f);
    m = next.map((x) => x / f);
  }
  return Math.exp(logScale / 64);
}

/** Settings of a Monte-Carlo run on one block. */
export interface SeriesRunOptions {
  /** Evaluation points (fixed x, one per row). */
  readonly points: number;
  /** Probe draws per point. */
  readonly probesPerPoint: number;
  /** Rows per batched pass (memory bound). */
  readonly chunk: number;
  /** Largest truncation (the figure's n = 1..maxTerms). */
  readonly maxTerms: number;
  /** Seed of the points, probes and roulette draws. */
  readonly seed: number;
  /** Called after each chunk with the rows done so far. */
  readonly onChunk?: (done: number, total: number) => void;
  /** Weight of term k of a roulette draw (default the library's `logdetWeight`; tests pass broken ones). */
  readonly rouletteWeight?: (plan: SeriesPlan, k: number) => number;
}

/** Mean, standard deviation and standard error of (estimate − exact) over all draws. */
export interface ErrorStats {
  /** Mean of estimate − exact (the bias estimate). */
  readonly bias: number;
  /** Standard error of the bias estimate. */
  readonly stderr: number;
  /** Sample standard deviation of one estimate. */
  readonly sd: number;
  /** Number of draws. */
  readonly n: number;
}

/** The results on one block. */
export interface SeriesResult {
  /** The exact reference at the points. */
  readonly exact: ExactReference;
  /** Truncated series with n = 1..maxTerms terms (index n − 1). */
  readonly truncated: readonly ErrorStats[];
  /** The exact expected bias of the truncated series (from the traces), n = 1..maxTerms. */
  readonly truncatedExactBias: readonly number[];
  /** Roulette with m = cost − 2 exact terms plus Geom(0.5), for expected cost 2..maxTerms (index cost − 2). */
  readonly roulette: readonly ErrorStats[];
  /** Mean number of terms the roulette actually computed, per expected cost. */
  readonly rouletteMeanTerms: readonly number[];
  /** Largest number of terms any roulette draw needed. */
  readonly maxTermsComputed: number;
}

class Accumulator {
  #n = 0;
  #mean = 0;
  #m2 = 0;
  add(x: number): void {
    this.#n++;
    const d = x - this.#mean;
    this.#mean += d / this.#n;
    this.#m2 += d * (x - this.#mean);
  }
  stats(): ErrorStats {
    const sd = this.#n > 1 ? Math.sqrt(this.#m2 / (this.#n - 1)) : 0;
    return { bias: this.#mean, stderr: sd / Math.sqrt(Math.max(1, this.#n)), sd, n: this.#n };
  }
}

/**
 * Runs the Monte-Carlo comparison on one block: `points` fixed inputs x ~ N(0, I), and for each,
 * `probesPerPoint` independent draws of (v, N). Each draw gives the truncated estimates for every n
 * from its probe (common random numbers across n), and the roulette estimate of one expected cost:
 * draw r serves cost 2 + (r mod (maxTerms − 1)), so the costs' estimates rest on disjoint, independent
 * draws (each cost gets about 1/(maxTerms − 1) of them) and their z-scores are independent tests.
 */
export async function runSeries(
  block: SeriesBlock,
  device: Device,
  opts: SeriesRunOptions,
): Promise<SeriesResult> {
  const rng = new Rng(opts.seed);
  const d = block.dims;
  const x = randn([opts.points, ...block.inputShape], rng.fork(1), device);
  const xHost = await x.read();
  const costs = Array.from({ length: opts.maxTerms - 1 }, (_, i) => i + 2);
  const total = opts.points * opts.probesPerPoint;
  // Roulette draws first, so the number of terms to compute is known: one N per row, for its own cost.
  const nRng = rng.fork(2);
  const costOf = (row: number) => row % costs.length;
  const draws = Int32Array.from({ length: total }, () => sampleN(PAPER_DIST, nRng));
  // Terms each row needs: maxTerms for the truncated series, m + N for its roulette.
  const rowNeeds = new Int32Array(total);
  for (let r = 0; r < total; r++) rowNeeds[r] = Math.max(opts.maxTerms, costs[costOf(r)] - 2 + draws[r]);
  let needed = 0;
  for (let r = 0; r < total; r++) needed = Math.max(needed, rowNeeds[r]);
  const exact = await exactReference(block, x, opts.maxTerms);
  x.dispose();
  const trunc = Array.from({ length: opts.maxTerms }, () => new Accumulator());
  const roul = costs.map(() => new Accumulator());
  const termsUsed = costs.map(() => 0);
  const drawsPerCost = costs.map(() => 0);
  const probeRng = rng.fork(3);
  const truncPlan = truncatedPlan(opts.maxTerms);
  const rouletteWeight = opts.rouletteWeight ?? logdetWeight;
  for (let start = 0; start < total; start += opts.chunk) {
    const rows = Math.min(opts.chunk, total - start);
    const tiled = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const p = (start + r) % opts.points;
      tiled.set(xHost.subarray(p * d, (p + 1) * d), r * d);
    }
    let chunkNeeds = 0;
    for (let r = 0; r < rows; r++) chunkNeeds = Math.max(chunkNeeds, rowNeeds[start + r]);
    const terms = tidy(() => {
      const xs = requireGrad(tensor(tiled, [rows, ...block.inputShape], device));
      const v = randn([rows, ...block.inputShape], probeRng, device);
      return hutchinsonTerms(block.branch.apply(xs), xs, v, chunkNeeds);
    });
    const t = await Promise.all(terms.map((z) => z.read()));
    dispose(terms);
    for (let r = 0; r < rows; r++) {
      const row = start + r;
      const ref = exact.logdet[row % opts.points];
      let est = 0;
      for (let k = 1; k <= opts.maxTerms; k++) {
        est += logdetWeight(truncPlan, k) * t[k - 1][r];
        trunc[k - 1].add(est - ref);
      }
      const i = costOf(row);
      const plan = roulettePlan(PAPER_DIST, costs[i] - 2, draws[row]);
      let e = 0;
      for (let k = 1; k <= plan.nTerms; k++) e += rouletteWeight(plan, k) * t[k - 1][r];
      roul[i].add(e - ref);
      termsUsed[i] += plan.nTerms;
      drawsPerCost[i]++;
    }
    opts.onChunk?.(start + rows, total);
  }
  const truncatedExactBias: number[] = [];
  for (let n = 1; n <= opts.maxTerms; n++) {
    let b = 0;
    for (let p = 0; p < opts.points; p++) {
      let s = 0;
      for (let k = 1; k <= n; k++) s += (((k % 2) === 1 ? 1 : -1) / k) * exact.traces[p][k - 1];
      b += s - exact.logdet[p];
    }
    truncatedExactBias.push(b / opts.points);
  }
  return {
    exact,
    truncated: trunc.map((a) => a.stats()),
    truncatedExactBias,
    roulette: roul.map((a) => a.stats()),
    rouletteMeanTerms: termsUsed.map((u, i) => u / Math.max(1, drawsPerCost[i])),
    maxTermsComputed: needed,
  };
}
