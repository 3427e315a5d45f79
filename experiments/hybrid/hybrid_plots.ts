/**
 * The hybrid experiment's PNGs per dataset: test accuracy against test bits/dim for every row at
 * λ = 1/D and λ = 1 (one point per row and λ), and the test error (1 − accuracy) of every row and λ
 * beside the paper's, on a log scale.
 * @module
 */
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { barChartPng, scatterPlotPng, type ScatterSeries } from "../../lib/artifacts/plot.ts";
import { publishedValue } from "../published.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import { findCell } from "./hybrid_claims.ts";
import {
  HYBRID_LAMBDAS,
  HYBRID_ROWS,
  HYBRID_TABLE,
  hybridColumn,
  type HybridDataset,
  type HybridLambda,
} from "./hybrid_plan.ts";

/** Dark (λ = 1/D) and light (λ = 1) colours of each row, in row order. */
export const ROW_COLORS: readonly (readonly [string, string])[] = [
  ["#1f77b4", "#9ecae9"],
  ["#d95f02", "#fdae6b"],
  ["#2ca02c", "#a1d99b"],
];

/** Bar colours of λ = 0, 1/D, 1: ours dark, the paper's light. */
export const LAMBDA_COLORS: readonly (readonly [string, string])[] = [
  ["#6a3d9a", "#cab2d6"],
  ["#1f78b4", "#a6cee3"],
  ["#e31a1c", "#fb9a99"],
];

/** File names of a dataset's PNGs. */
export function plotFiles(ds: HybridDataset): { scatter: string; error: string } {
  return { scatter: `hybrid_${ds.key}_accuracy_vs_bpd.png`, error: `hybrid_${ds.key}_test_error.png` };
}

/** Points of the scatter plot: one series per row and λ > 0 that has both cells. */
export function scatterSeries(figures: readonly Figure[], ds: HybridDataset): ScatterSeries[] {
  const out: ScatterSeries[] = [];
  HYBRID_ROWS.forEach((r, i) => {
    for (const [j, lam] of HYBRID_LAMBDAS.filter((l) => l.key !== "l0").entries()) {
      const bpd = findCell(figures, r.row, hybridColumn(ds.key, lam.key, "bpd"));
      const acc = findCell(figures, r.row, hybridColumn(ds.key, lam.key, "acc"));
      if (bpd && acc) {
        out.push({ name: `${r.row}, ${lam.label}`, x: [bpd.value], y: [acc.value], color: ROW_COLORS[i][j] });
      }
    }
  });
  return out;
}

/** Writes the dataset's PNGs into `outDir`; returns the names written (none without any cell). */
export async function writeHybridPlots(
  outDir: string,
  figures: readonly Figure[],
  ds: HybridDataset,
  scale: string,
): Promise<string[]> {
  const files = plotFiles(ds);
  const written: string[] = [];
  const points = scatterSeries(figures, ds);
  if (points.length) {
    const png = await scatterPlotPng({
      title: `${ds.label} hybrid models: test accuracy vs bits/dim (${scale})`,
      xLabel: "test bits/dim (lower is better)",
      yLabel: "test accuracy",
      series: points,
      width: 860,
      height: 520,
    });
    await writeFileAtomic(`${outDir}/${files.scatter}`, png);
    written.push(files.scatter);
  }
  const errorOf = (row: string, lam: HybridLambda["key"]) => {
    const c = findCell(figures, row, hybridColumn(ds.key, lam, "acc"));
    return c === null ? null : Math.max(1 - c.value, 1e-4);
  };
  const seOf = (row: string, lam: HybridLambda["key"]) =>
    findCell(figures, row, hybridColumn(ds.key, lam, "acc"))?.stderr ?? null;
  const anyAcc = HYBRID_ROWS.some((r) => HYBRID_LAMBDAS.some((l) => errorOf(r.row, l.key) !== null));
  if (anyAcc) {
    const ours = HYBRID_LAMBDAS.map((l, i) => ({
      name: `ours, ${l.label}`,
      color: LAMBDA_COLORS[i][0],
      values: HYBRID_ROWS.map((r) => errorOf(r.row, l.key)),
      errors: HYBRID_ROWS.map((r) => seOf(r.row, l.key)),
    }));
    const paper = HYBRID_LAMBDAS.map((l, i) => ({
      name: `paper, ${l.label}`,
      color: LAMBDA_COLORS[i][1],
      values: HYBRID_ROWS.map((r) => {
        const p = publishedValue(HYBRID_TABLE, r.row, hybridColumn(ds.key, l.key, "acc"));
        return typeof p === "number" ? 1 - p : null;
      }),
    }));
    const png = await barChartPng({
      title: `${ds.label} hybrid models: test error (1 − accuracy) ± SE, ours (${scale}) vs the paper`,
      categories: HYBRID_ROWS.map((r) => r.row),
      series: [...ours, ...paper],
      yLabel: "test error, log scale",
      yLog: true,
      valueLabels: false,
      width: 960,
      height: 520,
    });
    await writeFileAtomic(`${outDir}/${files.error}`, png);
    written.push(files.error);
  }
  return written;
}
