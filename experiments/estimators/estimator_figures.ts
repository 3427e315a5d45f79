/**
 * Experiment "estimators": the estimator figures.
 *
 * (a) Units "series_fc" and "series_conv": on small residual blocks with an exact log-det, the bias
 *     and standard deviation of the biased truncated series (n = 1..10 terms) against the unbiased
 *     Russian-roulette estimator at equal expected cost (m = n − 2 exact terms plus Geom(0.5), so
 *     E[terms] = n), over many Gaussian probes and roulette draws (`estimator_series.ts`).
 * (b) Unit "activations": first and second derivatives of ELU, softplus and LipSwish (several β) and
 *     the numbers of the gradient-saturation argument (`activation_saturation.ts`).
 *
 * Both parts run in float64 on a CPU device of their own (tiny tensors, exact references); no part
 * uses the accelerator.
 * @module
 */
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { makeFigure } from "../published.ts";
import { linePlotPng, type LineSeries } from "../../lib/artifacts/plot.ts";
import type { Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import {
  ACTIVATION_CASES,
  autogradMismatch,
  caseDerivatives,
  grid,
  SATURATION_DELTA,
  SATURATION_EPS,
  saturationStats,
} from "./activation_saturation.ts";
import { buildSeriesBlock, runSeries, type SeriesBlockKind, type SeriesResult } from "./estimator_series.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { findFigure } from "../framework/figures.ts";
import { gated } from "../framework/claim_gates.ts";
import type { ClaimGate } from "../../lib/artifacts/schema.ts";

/** Largest truncation and expected cost of the figure (n = 1..10). */
export const MAX_TERMS = 10;
/** Evaluation points per block. */
export const POINTS = 8;
/** Standard errors beyond which a bias counts as detected, and within which it counts as zero. */
export const SE_THRESHOLD = 3;
/**
 * Standard errors of the estimate the truncation's exact expected bias must reach before the claim
 * that the estimate shows it (beyond {@link SE_THRESHOLD}) is judged: at 6, a working estimator
 * lands beyond 3 SE with probability 99.87 %; a smaller bias is below the draws' resolution (the fc
 * block at n = 2: exact −0.007 nats against an SE of 0.005), so the claim is not testable there.
 */
export const DETECTABLE_SE = 6;
/** Row of the truncated series' exact expected bias (from the traces of J^k). */
export const TRUNCATED_EXACT_ROW = "truncated_exact";
/** The "small n" at which the truncated series must show its bias. */
export const SMALL_N: readonly number[] = [1, 2];
/** Half-widths of the windows on which the saturated set is measured (ELU's grows, LipSwish's not). */
export const SATURATION_WINDOWS = [10, 20] as const;
/** φ' must stay this far below 1 at the right end for an activation not to tend to 1 (LipSwish: 1/1.1). */
export const ASYMPTOTE_MAX = 0.95;

const BLOCKS: Record<string, SeriesBlockKind> = { series_fc: "fc", series_conv: "conv" };

/** Probe draws per evaluation point at a preset. */
export function probesPerPoint(preset: Preset): number {
  switch (preset) {
    case "smoke":
      return 250;
    case "quick":
      return 25_000;
    case "long":
    case "paper":
      return 125_000;
    default:
      throw new Error(`Cannot plan the estimator figures for preset "${preset}"`);
  }
}

/** Table names of a block's figures. */
export function biasTable(kind: SeriesBlockKind): string {
  return `estimator_bias_${kind}`;
}

/** Table of a block's standard deviations. */
export function sdTable(kind: SeriesBlockKind): string {
  return `estimator_sd_${kind}`;
}

/** Row of the truncated series' cells (written by the units, read by the claims). */
export const TRUNCATED_ROW = "truncated";
/** Row of the Russian-roulette cells (written by the units, read by the claims). */
export const ROULETTE_ROW = "roulette";

/** The blocks' own numbers (Lipschitz bound, Jacobian norms). */
export const BLOCK_TABLE = "estimator_block";
/** The activation numbers. */
export const ACTIVATION_TABLE = "activation_saturation";

function costColumn(n: number): string {
  return `n=${n}`;
}

async function runSeriesUnit(unit: string, ctx: UnitContext): Promise<UnitResult> {
  const kind = BLOCKS[unit];
  const device = await createDevice("cpu64");
  const blockSeed = ctx.seed * 1000 + (kind === "fc" ? 11 : 12);
  const runSeed = blockSeed + 1;
  const block = await buildSeriesBlock(kind, device, blockSeed);
  const perPoint = probesPerPoint(ctx.preset);
  const total = POINTS * perPoint;
  const bar = ctx.progress(`estimator draws (${kind} block)`, total, "draws");
  const r = await runSeries(block, device, {
    points: POINTS,
    probesPerPoint: perPoint,
    chunk: 8192,
    maxTerms: MAX_TERMS,
    seed: runSeed,
    onChunk: (done) => bar.update(done),
  });
  bar.finish();
  const scale =
    `${ctx.preset}: ${POINTS} points x ${perPoint} probe draws = ${total} draws, ${block.dims}-dim ${kind} block`;
  const figures = seriesFigures(kind, r, scale, block.lipBound);
  const files = await seriesPlots(ctx.outDir, kind, r);
  const costs = Array.from({ length: MAX_TERMS }, (_, i) => i + 1);
  const series: Series[] = [
    {
      name: `${kind}: truncated series bias (Monte Carlo)`,
      x: costs,
      y: r.truncated.map((s) => s.bias),
      yErr: r.truncated.map((s) => s.stderr),
      xLabel: "terms n",
      yLabel: "bias (nats)",
    },
    {
      name: `${kind}: truncated series bias (exact expectation from tr(J^k))`,
      x: costs,
      y: [...r.truncatedExactBias],
      xLabel: "terms n",
      yLabel: "bias (nats)",
    },
    {
      name: `${kind}: roulette bias (Monte Carlo)`,
      x: costs.slice(1),
      y: r.roulette.map((s) => s.bias),
      yErr: r.roulette.map((s) => s.stderr),
      xLabel: "expected terms",
      yLabel: "bias (nats)",
    },
    {
      name: `${kind}: truncated series standard deviation`,
      x: costs,
      y: r.truncated.map((s) => s.sd),
      xLabel: "terms n",
      yLabel: "sd (nats)",
    },
    {
      name: `${kind}: roulette standard deviation`,
      x: costs.slice(1),
      y: r.roulette.map((s) => s.sd),
      xLabel: "expected terms",
      yLabel: "sd (nats)",
    },
  ];
  const rhoMax = Math.max(...r.exact.spectralRadius);
  const notes = [
    `Block: ${block.description}; certified Lip(g) <= ${
      block.lipBound.toFixed(3)
    }, measured ||J(x)|| at the points ${Math.min(...r.exact.jacobianNorm).toFixed(3)}..${
      Math.max(...r.exact.jacobianNorm).toFixed(3)
    }, spectral radius up to ${rhoMax.toFixed(3)}.`,
    `Estimates use Gaussian Hutchinson probes; the truncated estimates for every n share each draw's probe (common random numbers), while each draw serves the roulette of one expected cost only (draw r: cost 2 + r mod ${
      MAX_TERMS - 1
    }), so the nine roulette columns rest on disjoint, independent draws. The roulette's m = n - 2 exact terms plus N ~ Geom(0.5) terms give E[terms] = n; the most terms any draw needed was ${r.maxTermsComputed}.`,
    `With Geom(0.5) the roulette's variance is finite when 2·rho(J)^2 < 1; here 2·rho^2 <= ${
      (2 * rhoMax * rhoMax).toFixed(2)
    }${
      2 * rhoMax * rhoMax >= 1
        ? " (at or above 1 at some point: the sample standard deviation of the roulette may understate its spread)"
        : ""
    }.`,
  ];
  return {
    figures,
    series,
    files,
    config: {
      unit,
      block: block.description,
      dims: block.dims,
      lipBound: block.lipBound,
      points: POINTS,
      probesPerPoint: perPoint,
      maxTerms: MAX_TERMS,
      roulette: "m = n - 2 exact terms + N ~ Geom(0.5) (numpy convention), c_k = 1 / P(N >= k - m)",
      probe: "standard Gaussian, one per draw; each draw serves every truncation and one roulette cost",
      device: "cpu64",
    },
    seeds: [blockSeed, runSeed],
    backend: "cpu64",
    adapter: device.backend.description,
    complete: true,
    notes,
  };
}

/** The figures of one block. */
export function seriesFigures(
  kind: SeriesBlockKind,
  r: SeriesResult,
  scale: string,
  lipBound: number,
): Figure[] {
  const figures: Figure[] = [];
  r.truncated.forEach((s, i) => {
    figures.push(makeFigure({
      table: biasTable(kind),
      row: TRUNCATED_ROW,
      column: costColumn(i + 1),
      value: s.bias,
      stderr: s.stderr,
      unit: "nats",
      scale,
      n: s.n,
      note: `mean of estimate - exact log-det; exact expected bias ${
        r.truncatedExactBias[i].toExponential(3)
      }`,
    }));
  });
  r.roulette.forEach((s, i) => {
    figures.push(makeFigure({
      table: biasTable(kind),
      row: ROULETTE_ROW,
      column: costColumn(i + 2),
      value: s.bias,
      stderr: s.stderr,
      unit: "nats",
      scale,
      n: s.n,
      note: `m = ${i} exact terms + Geom(0.5); mean terms computed ${r.rouletteMeanTerms[i].toFixed(3)}`,
    }));
  });
  r.truncatedExactBias.forEach((b, i) => {
    figures.push(makeFigure({
      table: biasTable(kind),
      row: TRUNCATED_EXACT_ROW,
      column: costColumn(i + 1),
      value: b,
      stderr: null,
      unit: "nats",
      scale,
      n: r.exact.logdet.length,
      note:
        "exact expectation over probes: sum_k<=n (-1)^(k+1) tr(J^k)/k - log det(I+J), mean over the points",
    }));
  });
  const sdFigure = (row: string, n: number, s: { sd: number; n: number }) =>
    makeFigure({
      table: sdTable(kind),
      row,
      column: costColumn(n),
      value: s.sd,
      stderr: s.sd / Math.sqrt(2 * Math.max(1, s.n - 1)),
      unit: "nats",
      scale,
      n: s.n,
      note: "standard deviation of one estimate; its standard error assumes normal draws",
    });
  r.truncated.forEach((s, i) => figures.push(sdFigure(TRUNCATED_ROW, i + 1, s)));
  r.roulette.forEach((s, i) => figures.push(sdFigure(ROULETTE_ROW, i + 2, s)));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const blockCells: [string, number][] = [
    ["lip_bound", lipBound],
    ["max_jacobian_norm", Math.max(...r.exact.jacobianNorm)],
    ["mean_jacobian_norm", mean(r.exact.jacobianNorm)],
    ["max_spectral_radius", Math.max(...r.exact.spectralRadius)],
    ["mean_abs_exact_logdet", mean(r.exact.logdet.map(Math.abs))],
  ];
  for (const [column, value] of blockCells) {
    figures.push(makeFigure({
      table: BLOCK_TABLE,
      row: kind,
      column,
      value,
      stderr: null,
      unit: column === "mean_abs_exact_logdet" ? "nats" : "ratio",
      scale,
      n: r.exact.logdet.length,
    }));
  }
  return figures;
}

async function seriesPlots(
  outDir: string,
  kind: SeriesBlockKind,
  r: SeriesResult,
): Promise<string[]> {
  const ns = Array.from({ length: MAX_TERMS }, (_, i) => i + 1);
  const biasSeries: LineSeries[] = [
    {
      name: "truncated series (Monte Carlo, ± 2 se)",
      x: ns,
      y: r.truncated.map((s) => s.bias),
      band: r.truncated.map((s) => 2 * s.stderr),
    },
    {
      name: "Russian roulette, equal expected cost (± 2 se)",
      x: ns.slice(1),
      y: r.roulette.map((s) => s.bias),
      band: r.roulette.map((s) => 2 * s.stderr),
    },
    { name: "truncated series, exact expected bias", x: ns, y: [...r.truncatedExactBias], style: "dashed" },
  ];
  const bias = await linePlotPng({
    title: `Log-det estimator bias, ${kind} block (${r.truncated[0].n} draws)`,
    xLabel: "terms n (truncated) / expected terms (roulette)",
    yLabel: "bias: estimate − exact (nats)",
    series: biasSeries,
    referenceLines: [{ y: 0, label: "unbiased" }],
    width: 760,
    height: 480,
  });
  const sd = await linePlotPng({
    title: `Standard deviation of one estimate vs cost, ${kind} block`,
    xLabel: "terms n (truncated) / expected terms (roulette)",
    yLabel: "standard deviation (nats)",
    series: [
      { name: "truncated series", x: ns, y: r.truncated.map((s) => s.sd) },
      { name: "Russian roulette (m = n − 2 + Geom(0.5))", x: ns.slice(1), y: r.roulette.map((s) => s.sd) },
    ],
    width: 760,
    height: 480,
  });
  const files = [`estimator_bias_${kind}.png`, `estimator_sd_${kind}.png`];
  await writeFileAtomic(`${outDir}/${files[0]}`, bias);
  await writeFileAtomic(`${outDir}/${files[1]}`, sd);
  return files;
}

async function runActivations(ctx: UnitContext): Promise<UnitResult> {
  const device = await createDevice("cpu64");
  const figures: Figure[] = [];
  const series: Series[] = [];
  const plotZ = grid(-6, 6, 0.01);
  const checkZ = grid(-6, 6, 0.01);
  const bar = ctx.progress("activation derivatives", ACTIVATION_CASES.length, "activations");
  const scale = `grid step 0.001 on [-L, L], L = ${SATURATION_WINDOWS.join(" and ")}; saturated: φ' >= ${
    1 - SATURATION_EPS
  } and |φ''| <= ${SATURATION_DELTA}`;
  for (const c of ACTIVATION_CASES) {
    const [small, large] = SATURATION_WINDOWS.map((w) => saturationStats(c, w));
    const mismatch = await autogradMismatch(c, checkZ, device);
    const n = Math.round((2 * SATURATION_WINDOWS[1]) / 0.001) + 1;
    const cells: [string, number, string, string?][] = [
      ["max_dphi", large.maxDerivative, "ratio", `attained at z = ${large.argmaxDerivative.toFixed(3)}`],
      ["dphi_at_z=20", large.derivativeAtRightEnd, "ratio", "φ' at the window's right end (its asymptote)"],
      ["d2phi_at_z=20", large.secondAtRightEnd, "ratio"],
      [`saturated_length_L=${SATURATION_WINDOWS[0]}`, small.saturatedLength, "length"],
      [`saturated_length_L=${SATURATION_WINDOWS[1]}`, large.saturatedLength, "length"],
      [
        "mean_abs_d2phi_where_dphi_near_1",
        large.meanSecondWhereNearOne,
        "ratio",
        `mean |φ''| over the grid points with φ' >= ${1 - SATURATION_EPS}`,
      ],
      [
        "saturated_fraction",
        large.saturatedFraction,
        "ratio",
        `fraction of {φ' >= ${1 - SATURATION_EPS}} where |φ''| <= ${SATURATION_DELTA}`,
      ],
      [
        "autograd_max_abs_diff",
        mismatch,
        "ratio",
        "largest |autograd − closed form| of φ' and φ'' on [-6, 6] step 0.01 (float64)",
      ],
    ];
    for (const [column, value, unit, note] of cells) {
      if (!Number.isFinite(value)) continue;
      figures.push(makeFigure({
        table: ACTIVATION_TABLE,
        row: c.name,
        column,
        value,
        stderr: null,
        unit,
        scale,
        n: column === "autograd_max_abs_diff" ? checkZ.length : n,
        ...(note ? { note } : {}),
      }));
    }
    const d = caseDerivatives(c, plotZ);
    series.push(
      { name: `${c.name}: φ'`, x: plotZ, y: d.map((p) => p.dy), xLabel: "z", yLabel: "φ'(z)" },
      { name: `${c.name}: φ''`, x: plotZ, y: d.map((p) => p.d2y), xLabel: "z", yLabel: "φ''(z)" },
    );
    bar.tick(1, c.name);
  }
  bar.finish();
  const files = await activationPlots(ctx.outDir, plotZ);
  return {
    figures,
    series,
    files,
    config: {
      unit: "activations",
      cases: ACTIVATION_CASES.map((c) => ({ name: c.name, kind: c.kind, beta: c.beta })),
      windows: SATURATION_WINDOWS,
      gridStep: 0.001,
      saturationEps: SATURATION_EPS,
      saturationDelta: SATURATION_DELTA,
    },
    seeds: [],
    backend: "cpu64",
    adapter: device.backend.description,
    complete: true,
    notes: [
      "Curves and numbers from the library's closed forms (lib/flow/activations.ts); the autograd column checks them against the engine's first and second derivatives of the activation modules.",
      "ELU has a kink at 0 (φ'' jumps from 1 to 0); the autograd check skips that point.",
      "The saturation argument is read off these figures (a closed form, so not checked as a claim): ELU's saturated length grows with the window (φ' = 1 and φ'' = 0 for all z > 0), LipSwish's stays the same bounded interval for every β and its φ' tends to 1/1.1.",
    ],
  };
}

/** Line colour and style per activation case, in {@link ACTIVATION_CASES} order. */
const CASE_STYLES: readonly { style?: "solid" | "dashed" | "dotted"; color: string }[] = [
  { color: "#111111" },
  { color: "#7f7f7f", style: "dashed" },
  { color: "#1f77b4" },
  { color: "#d62728" },
  { color: "#2ca02c" },
  { color: "#ff7f0e" },
];

async function activationPlots(outDir: string, zs: readonly number[]): Promise<string[]> {
  const curves = ACTIVATION_CASES.map((c) => ({ c, d: caseDerivatives(c, zs) }));
  const line = (
    pick: (p: { dy: number; d2y: number }) => number,
  ): LineSeries[] =>
    curves.map(({ c, d }, i) => ({
      name: c.name,
      x: zs,
      y: d.map(pick),
      markers: false,
      ...CASE_STYLES[i % CASE_STYLES.length],
    }));
  const first = await linePlotPng({
    title: "First derivatives: |φ'| <= 1 for all (LipSwish never tends to 1)",
    xLabel: "z",
    yLabel: "φ'(z)",
    series: line((p) => p.dy),
    referenceLines: [{ y: 1, label: "φ' = 1 (Lipschitz bound)" }, {
      y: 1 / 1.1,
      label: "1/1.1 (LipSwish as z -> ∞)",
      color: "#6b8fb3",
    }],
    width: 760,
    height: 500,
  });
  const second = await linePlotPng({
    title: "Second derivatives: ELU's φ'' is 0 wherever φ' = 1",
    xLabel: "z",
    yLabel: "φ''(z)",
    series: line((p) => p.d2y),
    referenceLines: [{ y: 0, label: "φ'' = 0" }],
    width: 760,
    height: 500,
  });
  const files = ["activation_first_derivative.png", "activation_second_derivative.png"];
  await writeFileAtomic(`${outDir}/${files[0]}`, first);
  await writeFileAtomic(`${outDir}/${files[1]}`, second);
  return files;
}

/** The estimator figures experiment. */
export const estimatorFiguresExperiment: Experiment = {
  name: "estimators",
  title: "Estimator figures: truncation bias vs Russian roulette, and the LipSwish saturation argument",
  claimsVersion: 2,
  units(preset: Preset): Unit[] {
    const p = probesPerPoint(preset);
    const series = (["series_fc", "series_conv"] as const).map((name): Unit => ({
      name,
      budget: `${POINTS} points x ${p} probe draws (${POINTS * p} draws), n = 1..${MAX_TERMS}, float64 CPU`,
      run: (ctx: UnitContext) => runSeriesUnit(name, ctx),
    }));
    const activations: Unit = {
      name: "activations",
      budget:
        `${ACTIVATION_CASES.length} activations on grids of step 0.001 over [-20, 20], closed forms + autograd check`,
      run: runActivations,
    };
    return [...series, activations];
  },
  claims(figures: readonly Figure[]): Claim[] {
    return estimatorClaims(figures);
  },
};

/**
 * The truncated-series claim's gate: at every small n, the exact expected bias is at least
 * {@link DETECTABLE_SE} standard errors of the estimate (else the draws cannot resolve it).
 */
export function detectableGate(figures: readonly Figure[], table: string): ClaimGate {
  const parts = SMALL_N.map((n) => {
    const exact = findFigure(figures, table, TRUNCATED_EXACT_ROW, costColumn(n))?.value;
    const se = findFigure(figures, table, TRUNCATED_ROW, costColumn(n))?.stderr;
    const ok = typeof exact === "number" && typeof se === "number" && se > 0 &&
      Math.abs(exact) >= DETECTABLE_SE * se;
    const text = typeof exact === "number" && typeof se === "number" && se > 0
      ? `n=${n}: exact ${exact.toFixed(4)} = ${(Math.abs(exact) / se).toFixed(1)} se`
      : `n=${n}: exact expected bias or its se missing`;
    return { ok, text };
  });
  return {
    statement: `the truncation's exact expected bias is at least ${DETECTABLE_SE} se of the estimate at n = ${
      SMALL_N.join(", ")
    } (resolvable by these draws)`,
    passed: parts.every((p) => p.ok),
    detail: parts.map((p) => p.text).join(", "),
  };
}

function zScore(f: Figure | undefined): number | null {
  if (!f || f.value === null || f.stderr === null || f.stderr === undefined || !(f.stderr > 0)) return null;
  return f.value / f.stderr;
}

/**
 * The claims: truncation bias is detectable at small n, the roulette's is not (each expected cost on
 * its own independent draws). The saturation argument is a closed form: its numbers are figures of
 * the activation table, not a claim.
 */
export function estimatorClaims(figures: readonly Figure[]): Claim[] {
  const claims: Claim[] = [];
  for (const kind of Object.values(BLOCKS)) {
    const table = biasTable(kind);
    const small = SMALL_N.map((n) => zScore(findFigure(figures, table, TRUNCATED_ROW, costColumn(n))));
    const claim: Claim = {
      table,
      statement: `the truncated series is biased on the ${kind} block: |bias| > ${SE_THRESHOLD} se at n = ${
        SMALL_N.join(", ")
      }`,
      holds: small.every((z) => z !== null) ? small.every((z) => Math.abs(z!) > SE_THRESHOLD) : null,
      detail: SMALL_N.map((n, i) => `n=${n}: ${small[i] === null ? "missing" : `${small[i]!.toFixed(1)} se`}`)
        .join(", "),
    };
    claims.push(claim.holds === null ? claim : gated(claim, detectableGate(figures, table)));
    const costs = Array.from({ length: MAX_TERMS - 1 }, (_, i) => i + 2);
    const roul = costs.map((n) => zScore(findFigure(figures, table, ROULETTE_ROW, costColumn(n))));
    claims.push({
      table,
      statement:
        `the Russian-roulette estimator is unbiased on the ${kind} block: |bias| <= ${SE_THRESHOLD} se at every expected cost 2..${MAX_TERMS}`,
      holds: roul.every((z) => z !== null) ? roul.every((z) => Math.abs(z!) <= SE_THRESHOLD) : null,
      detail: costs.map((n, i) => `n=${n}: ${roul[i] === null ? "missing" : `${roul[i]!.toFixed(1)} se`}`)
        .join(", "),
    });
  }
  return claims;
}
