/**
 * Experiment "ablation": the paper's ablation table (SPEC 1.9) and its bias figure (Fig. 2).
 *
 * Rows, trained with the same budget on MNIST, CIFAR-10 with immediate downsampling ("cifar10_small":
 * a squeeze before any block) and CIFAR-10:
 * - "i-ResNet + ELU": the biased truncated series of 5 terms in training, Lipschitz coefficient 0.90;
 * - "Residual Flow + ELU": the unbiased Russian-roulette estimator, coefficient 0.98;
 * - "Residual Flow + LipSwish": the same with LipSwish (the density experiment's model: the identical
 *   run, trained once).
 * Evaluation is always the unbiased eval estimator (20 exact terms plus roulette) with EMA weights;
 * test bits/dim ± standard error over the test images.
 *
 * The bias figure: for each run, the training-time estimate (the trainer's logged training bits/dim:
 * the biased estimator's value for the i-ResNet row) against periodic test evaluations on a fixed test
 * subset. The deviation at an evaluation step k is (mean logged training bits/dim over the steps since
 * the previous evaluation) − (test bits/dim at k); each run reports the mean |deviation| over its
 * evaluations. Both quantities carry the same confounders in every row (train vs test images, raw vs
 * EMA weights, the window's lag), so the rows are compared with each other, not with zero.
 *
 * Units: "<column>-<variant>" for the 3 columns and 3 variants (the i-ResNet unit of a column also
 * draws that column's bias figure from the two ELU runs).
 * @module
 */
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { makeFigure } from "../published.ts";
import { linePlotPng, type LineSeries, PALETTE } from "../../lib/artifacts/plot.ts";
import type { Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import type { DatasetName } from "../../lib/data/mod.ts";
import { failOnNonFinite } from "../framework/claim_guards.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import { trainRun, type TrainRunResult } from "../framework/train_run.ts";
import { datasetLabel } from "../../lib/data/mod.ts";
import {
  checkpointEvery,
  columnDataset,
  type DensityColumn,
  densitySpec,
  IRESNET_COEFF,
  IRESNET_TERMS,
  measuredText,
  type ModelVariant,
  QUICK_NOTE,
  RESFLOW_COEFF,
  specScale,
  VARIANT_ROWS,
} from "../density/density_presets.ts";
import { finiteFigure } from "../framework/figures.ts";

/** The published table. */
export const ABLATION_TABLE = "ablation_bpd";
/** The project's table of training-estimate deviations (the bias figure's numbers). */
export const BIAS_TABLE = "ablation_bias";
/** The ablation's columns, in the published order. */
export const ABLATION_COLUMNS: readonly DensityColumn[] = ["mnist", "cifar10_small", "cifar10"];
/** The variants, in run order (the i-ResNet last: its unit draws the bias figure). */
export const ABLATION_VARIANTS: readonly ModelVariant[] = ["resflow-lipswish", "resflow-elu", "iresnet-elu"];

/** The unit name "<column>-<variant>". */
export function ablationUnitName(column: DensityColumn, variant: ModelVariant): string {
  return `${column}-${variant}`;
}

/** Parses a unit name "<column>-<variant>". */
export function parseAblationUnit(unit: string): { column: DensityColumn; variant: ModelVariant } | null {
  for (const column of ABLATION_COLUMNS) {
    for (const variant of ABLATION_VARIANTS) {
      if (unit === ablationUnitName(column, variant)) return { column, variant };
    }
  }
  return null;
}

/** One point of a bias comparison: the training estimate and the test value at an evaluation step. */
export interface BiasPoint {
  /** Evaluation step. */
  readonly step: number;
  /** Mean logged training bits/dim over the steps since the previous evaluation. */
  readonly trainEstimate: number;
  /** Test bits/dim on the fixed subset. */
  readonly test: number;
}

/** The training estimate beside each periodic evaluation of a run. */
export function biasPoints(r: TrainRunResult): BiasPoint[] {
  const out: BiasPoint[] = [];
  let prev = 0;
  for (const e of r.evals) {
    const window = r.curve.filter((p) => p.step > prev && p.step <= e.step && Number.isFinite(p.loss));
    prev = e.step;
    if (!window.length || !Number.isFinite(e.bitsPerDim)) continue;
    out.push({
      step: e.step,
      trainEstimate: window.reduce((a, p) => a + p.loss, 0) / window.length,
      test: e.bitsPerDim,
    });
  }
  return out;
}

function meanSe(xs: readonly number[]): { mean: number; se: number | null } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, se: null };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, se: sd / Math.sqrt(n) };
}

function variantNote(variant: ModelVariant): string {
  return variant === "iresnet-elu"
    ? `biased truncated series of ${IRESNET_TERMS} terms in training, coeff ${IRESNET_COEFF}, ELU`
    : `unbiased Russian roulette, coeff ${RESFLOW_COEFF}, ${variant === "resflow-elu" ? "ELU" : "LipSwish"}`;
}

async function writeBiasPng(
  path: string,
  column: DensityColumn,
  runs: readonly { variant: ModelVariant; result: TrainRunResult }[],
  preset: Preset,
): Promise<void> {
  const lines: LineSeries[] = [];
  runs.forEach(({ variant, result }, i) => {
    const color = PALETTE[i === 0 ? 3 : 0];
    lines.push({
      name: `${VARIANT_ROWS[variant]}: training estimate`,
      x: result.curve.map((p) => p.step),
      y: result.curve.map((p) => p.loss),
      color,
      style: "dashed",
      markers: false,
    });
    lines.push({
      name: `${VARIANT_ROWS[variant]}: actual test bits/dim (± SE)`,
      x: result.evals.map((e) => e.step),
      y: result.evals.map((e) => e.bitsPerDim),
      band: result.evals.map((e) => e.standardError),
      color,
      markers: true,
    });
  });
  const name = runs[0] ? datasetLabel(runs[0].result.spec.dataset) : column;
  const png = await linePlotPng({
    title: `Training estimate vs test bits/dim: ${name}${
      column === "cifar10_small" ? ", squeeze first" : ""
    } (${preset})`,
    xLabel: "training step",
    yLabel: "bits/dim",
    series: lines,
    width: 900,
    height: 500,
  });
  await writeFileAtomic(path, png);
}

function incomplete(
  column: DensityColumn,
  variant: ModelVariant,
  scale: string,
  reason: string,
  base: Omit<UnitResult, "figures" | "complete">,
): UnitResult {
  return {
    ...base,
    figures: [
      makeFigure({
        table: ABLATION_TABLE,
        row: VARIANT_ROWS[variant],
        column,
        value: null,
        stderr: null,
        unit: "bits/dim",
        scale,
        n: 0,
        note: reason,
      }),
    ],
    complete: false,
    incompleteReason: reason,
    notes: [reason],
  };
}

async function runAblationUnit(
  column: DensityColumn,
  variant: ModelVariant,
  ctx: UnitContext,
): Promise<UnitResult> {
  const spec = densitySpec(column, variant, ctx.preset, ctx.seed, ctx.dataDir);
  const base = {
    config: { column, variant, dataset: spec.dataset, estimator: variantNote(variant), spec },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
  };
  const label = `${datasetLabel(spec.dataset)}${column === "cifar10_small" ? " (squeeze first)" : ""} ${
    VARIANT_ROWS[variant]
  }`;
  const outcome = await trainRun(spec, ctx, { checkpointEvery: checkpointEvery(ctx.preset), label });
  const scale0 = specScale(ctx.preset, spec, datasetLabel(spec.dataset));
  if (!outcome.ok) return incomplete(column, variant, scale0, outcome.reason, base);
  const r = outcome.result;
  const scale = specScale(ctx.preset, spec, r.datasetName) +
    (column === "cifar10_small" ? "; squeeze before the first block" : "") + measuredText(r);
  const fe = r.finalEval;
  const figures: Figure[] = [
    makeFigure({
      table: ABLATION_TABLE,
      row: VARIANT_ROWS[variant],
      column,
      value: fe ? fe.bitsPerDim : null,
      stderr: fe ? fe.standardError : null,
      unit: "bits/dim",
      scale,
      n: fe ? fe.count : 0,
      nonFinite: fe ? fe.nonFinite : 0,
      note: `${variantNote(variant)}; evaluation: EMA weights, 20 exact terms + roulette, SE over ${
        fe?.count ?? 0
      } test images`,
    }),
  ];
  const pts = biasPoints(r);
  const notes: string[] = [
    `${label}: ${r.parameters} parameters, ${r.steps} steps in ${
      (r.trainSeconds / 60).toFixed(1)
    } min (median ${r.stepSecondsMedian.toFixed(2)} s/step), final evaluation ${
      (r.finalEvalSeconds / 60).toFixed(1)
    } min${outcome.cached ? " (run reused from the cache)" : ""}.`,
  ];
  if (pts.length) {
    const dev = meanSe(pts.map((p) => Math.abs(p.trainEstimate - p.test)));
    const signed = meanSe(pts.map((p) => p.trainEstimate - p.test));
    figures.push(makeFigure({
      table: BIAS_TABLE,
      row: VARIANT_ROWS[variant],
      column,
      value: dev.mean,
      stderr: dev.se,
      unit: "bits/dim",
      scale,
      n: pts.length,
      nonFinite: r.evals.reduce((k, e) => k + (e.nonFinite ?? 0), 0),
      note:
        `mean over ${pts.length} periodic evaluations (every ${r.spec.evalEvery} steps, ${r.spec.evalSubset} ` +
        `fixed test images) of |training estimate − test bits/dim|; mean signed deviation ${
          signed.mean.toFixed(4)
        }`,
    }));
  }
  const series: Series[] = [
    {
      name: `${column} ${variant}: training estimate (mean of ${r.spec.logEvery} steps)`,
      x: r.curve.map((p) => p.step),
      y: r.curve.map((p) => p.loss),
      xLabel: "step",
      yLabel: "bits/dim",
    },
    {
      name: `${column} ${variant}: test bits/dim on ${r.spec.evalSubset} fixed images`,
      x: r.evals.map((e) => e.step),
      y: r.evals.map((e) => e.bitsPerDim),
      yErr: r.evals.map((e) => e.standardError),
      xLabel: "step",
      yLabel: "bits/dim",
    },
  ];
  const files: string[] = [];
  if (variant === "iresnet-elu") {
    // The bias figure of this column: the biased run against the unbiased run of the same activation.
    const other = densitySpec(column, "resflow-elu", ctx.preset, ctx.seed, ctx.dataDir);
    const o = await trainRun(other, ctx, {
      checkpointEvery: checkpointEvery(ctx.preset),
      label: `${datasetLabel(other.dataset)} ${VARIANT_ROWS["resflow-elu"]}`,
    });
    if (o.ok) {
      const file = `ablation_bias_${column}.png`;
      await writeBiasPng(`${ctx.outDir}/${file}`, column, [
        { variant, result: r },
        { variant: "resflow-elu", result: o.result },
      ], ctx.preset);
      files.push(file);
    } else notes.push(`bias figure not drawn: ${o.reason}`);
  }
  return {
    ...base,
    config: { ...base.config, runHash: r.hash, parameters: r.parameters, cached: outcome.cached },
    figures,
    series,
    files,
    complete: r.complete,
    incompleteReason: r.complete ? undefined : r.incompleteReason ?? "training stopped early",
    notes: [
      ...notes,
      ...(r.failures.length ? [`${r.failures.length} rejected steps: ${r.failures[0]}`] : []),
      ...(ctx.preset === "quick" && variant === "iresnet-elu" ? [`The quick budget was ${QUICK_NOTE}.`] : []),
    ],
  };
}

/** The ablation experiment (SPEC 1.9 table and Fig. 2). */
export const ablationExperiment: Experiment = {
  name: "ablation",
  title: "Ablation: i-ResNet vs Residual Flow, ELU vs LipSwish, and the estimator's bias (Fig. 2)",
  claimsVersion: 1,
  units(preset: Preset): Unit[] {
    return ABLATION_COLUMNS.flatMap((column) =>
      ABLATION_VARIANTS.map((variant): Unit => {
        const spec = densitySpec(column, variant, preset, 0, undefined);
        return {
          name: ablationUnitName(column, variant),
          budget: `${VARIANT_ROWS[variant]} (${variantNote(variant)}); ${
            specScale(preset, spec, datasetLabel(columnDataset(column, undefined, preset)))
          }; evaluation every ${spec.evalEvery} steps on ${spec.evalSubset} test images`,
          run: (ctx: UnitContext) => runAblationUnit(column, variant, ctx),
        };
      })
    );
  },
  datasets(preset: Preset, opts: { dataDir: string | undefined }): DatasetName[] {
    return ABLATION_COLUMNS.map((c) => columnDataset(c, opts.dataDir, preset));
  },
  claims(figures: readonly Figure[]): Claim[] {
    return ablationClaims(figures);
  },
};

const show = (f: Figure | null) => (f ? `${f.value!.toFixed(3)} ± ${(f.stderr ?? 0).toFixed(3)}` : "missing");

/** Whether a − b exceeds twice their combined standard error. */
function separated(a: Figure, b: Figure): boolean {
  return Math.abs(a.value! - b.value!) > 2 * Math.hypot(a.stderr ?? 0, b.stderr ?? 0);
}

/** The ablation's claims: the row ordering per column, and the biased estimator's larger deviation. */
export function ablationClaims(figures: readonly Figure[]): Claim[] {
  const claims: Claim[] = [];
  const [lip, elu, ires] = ["resflow-lipswish", "resflow-elu", "iresnet-elu"].map((v) =>
    VARIANT_ROWS[v as ModelVariant]
  );
  for (const column of ABLATION_COLUMNS) {
    const [a, b, c] = [lip, elu, ires].map((row) => finiteFigure(figures, ABLATION_TABLE, row, column));
    const pairs: [string, Figure | null, string, Figure | null, string][] = [
      [elu, b, ires, c, "the unbiased estimator with coeff 0.98 vs the biased 5-term series with coeff 0.9"],
      [lip, a, elu, b, "LipSwish vs ELU"],
    ];
    for (const [lo, x, hi, y, what] of pairs) {
      const known = x !== null && y !== null;
      claims.push(failOnNonFinite({
        table: ABLATION_TABLE,
        statement: `${lo} <= ${hi} in test bits/dim on ${column} (${what})`,
        holds: known ? x.value! <= y.value! : null,
        detail: `${lo} ${show(x)}, ${hi} ${show(y)}` +
          (known ? `; difference ${separated(x, y) ? "beyond" : "within"} 2 combined standard errors` : ""),
      }, [x, y]));
    }
  }
  for (const column of ABLATION_COLUMNS) {
    const biased = finiteFigure(figures, BIAS_TABLE, ires, column);
    const unbiased = finiteFigure(figures, BIAS_TABLE, elu, column);
    const known = biased !== null && unbiased !== null;
    claims.push(failOnNonFinite({
      table: BIAS_TABLE,
      statement:
        `the biased (i-ResNet, ${IRESNET_TERMS}-term) training estimate deviates more from the test bits/dim than the unbiased one (Residual Flow + ELU) on ${column}`,
      holds: known ? biased.value! > unbiased.value! : null,
      detail: `mean |training estimate − test| over the periodic evaluations: biased ${show(biased)}, ` +
        `unbiased ${show(unbiased)}` +
        (known
          ? `; difference ${separated(biased, unbiased) ? "beyond" : "within"} 2 combined standard errors`
          : ""),
    }, [biased, unbiased]));
  }
  return claims;
}
