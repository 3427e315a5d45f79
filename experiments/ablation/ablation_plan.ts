/**
 * Which ablation runs each preset makes: its columns, the variants of each, and the seeds (each seed
 * trains every variant of its column; paired comparisons are made within a seed and combined over
 * seeds). The training budget of a run is the density preset's (`density_presets.ts`, with its
 * per-column changes), so the LipSwish row is the density experiment's run.
 *
 * - `smoke`: everything, one seed (the pipeline test).
 * - `quick`: MNIST, every variant, one seed, 1000 steps each: the crossover of LipSwish and ELU
 *   (issue 15: LipSwish is behind until about 550-600 steps of this model) is inside the run, so the
 *   quick report can say yes or no on LipSwish vs ELU, and on the unbiased vs the biased estimator
 *   where their gates pass. The CIFAR-10 columns do not fit the hour (see QUICK_NOTE) and are reported
 *   "not testable at this scale".
 * - `long`: every column and variant; MNIST with two seeds (2000 steps each), CIFAR-10 with one.
 * - `paper`: everything, one seed.
 * @module
 */
import type { Preset } from "../framework/presets.ts";
import type { DensityColumn, ModelVariant } from "../density/density_presets.ts";

/** The runs of one column at a preset. */
export interface AblationColumnPlan {
  /** The column. */
  readonly column: DensityColumn;
  /** Its variants, in run order (the i-ResNet last: its unit draws the bias figure). */
  readonly variants: readonly ModelVariant[];
  /** Seeds per variant (the run's base seed, +1, ...). */
  readonly seeds: number;
}

const ALL_VARIANTS: readonly ModelVariant[] = ["resflow-lipswish", "resflow-elu", "iresnet-elu"];
const ALL_COLUMNS: readonly DensityColumn[] = ["mnist", "cifar10_small", "cifar10"];

/** The plan of every preset. */
export const ABLATION_PLANS: Readonly<Record<Preset, readonly AblationColumnPlan[]>> = {
  smoke: ALL_COLUMNS.map((column) => ({ column, variants: ALL_VARIANTS, seeds: 1 })),
  quick: [{ column: "mnist", variants: ALL_VARIANTS, seeds: 1 }],
  long: ALL_COLUMNS.map((column) => ({ column, variants: ALL_VARIANTS, seeds: column === "mnist" ? 2 : 1 })),
  paper: ALL_COLUMNS.map((column) => ({ column, variants: ALL_VARIANTS, seeds: 1 })),
};

/** The plan of `column` at `preset`, or null when the preset does not run it. */
export function columnPlan(preset: Preset, column: DensityColumn): AblationColumnPlan | null {
  return ABLATION_PLANS[preset].find((p) => p.column === column) ?? null;
}

/** The seeds of a column's runs: base, base + 1, ... (`seeds` of them). */
export function planSeeds(plan: AblationColumnPlan, base: number): number[] {
  return Array.from({ length: plan.seeds }, (_, i) => base + i);
}

/**
 * The variant a variant's unit pairs with (the better one of the paper's ordering: LipSwish for ELU,
 * ELU for the i-ResNet), or null for LipSwish or when the partner is not planned.
 */
export function pairPartner(plan: AblationColumnPlan, variant: ModelVariant): ModelVariant | null {
  const partner: ModelVariant | null = variant === "resflow-elu"
    ? "resflow-lipswish"
    : variant === "iresnet-elu"
    ? "resflow-elu"
    : null;
  return partner && plan.variants.includes(partner) ? partner : null;
}
