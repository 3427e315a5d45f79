/**
 * What an experiment is to the runner. An experiment is a list of *units* (one training run, one
 * table column, one figure), each producing figures; the runner runs units (all of them, or one shard's
 * share), writes each unit's artifact, and `merge` builds the experiment artifact, the report and the
 * terminal tables from the unit artifacts. The same code runs at every preset; only the configuration
 * returned by `plan` changes.
 * @module
 */
import type { ClaimVerdict, Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "./presets.ts";
import type { ProgressBar } from "../../lib/cli/progress.ts";
import type { DatasetName } from "../../lib/data/mod.ts";
import type { Device } from "../../lib/engine/tensor.ts";

/** Everything a unit needs from the runner. */
export interface UnitContext {
  /** The preset being run. */
  readonly preset: Preset;
  /** The run's base seed (units derive their own seeds from it). */
  readonly seed: number;
  /** The user's data folder, if any (`--data-dir` or RESFLOW_DATA_DIR). */
  readonly dataDir: string | undefined;
  /** The compute device for real work (WebGPU when an adapter exists, else the CPU backend). */
  readonly device: Device;
  /** Folder for this unit's checkpoints and scratch files (kept for `--resume`). */
  readonly workDir: string;
  /** Folder of the experiment's artifacts; PNGs go here, named in `files` relative to it. */
  readonly outDir: string;
  /** Continue from checkpoints in `workDir` when they exist. */
  readonly resume: boolean;
  /** Prints a line of progress text. */
  log(message: string): void;
  /** A progress bar for a long loop (quiet when the output is not a terminal). */
  progress(label: string, total: number, unit?: string): ProgressBar;
}

/** What a unit returns. */
export interface UnitResult {
  /** Measured cells (see `makeFigure`, which fills the published value). */
  readonly figures: readonly Figure[];
  /** Curves kept as numbers. */
  readonly series?: readonly Series[];
  /** PNG files written into `outDir` (names relative to it). */
  readonly files?: readonly string[];
  /** The resolved configuration of the unit. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Seeds used. */
  readonly seeds: readonly number[];
  /** Backend(s) used, e.g. "webgpu" or "meta+webgpu". */
  readonly backend: string;
  /** Adapter description. */
  readonly adapter: string;
  /** False when some planned measurement was not made (then `incompleteReason` says why). */
  readonly complete: boolean;
  /** Why the unit is incomplete. */
  readonly incompleteReason?: string;
  /** Remarks for the report. */
  readonly notes?: readonly string[];
}

/**
 * One qualitative claim of the paper checked on the measured figures: its table, the statement in words
 * (e.g. "Residual Flow + LipSwish < Residual Flow + ELU < i-ResNet + ELU on MNIST"), whether it holds at
 * this scale (null when there is no verdict: "not testable at this scale" when its `gate` failed, see
 * `claim_gates.ts`; "not checked" otherwise, missing cells) and the numbers behind the verdict.
 */
export type Claim = ClaimVerdict;

/** One unit of an experiment at a preset: its name, its budget in words, and how to run it. */
export interface Unit {
  /** Plain name, unique within the experiment (letters, digits, "-", "_"); part of its artifact's name. */
  readonly name: string;
  /** Human-readable budget at the preset (printed before it runs), e.g. "400 steps, batch 64". */
  readonly budget: string;
  /** Runs the unit. */
  run(ctx: UnitContext): Promise<UnitResult>;
}

/**
 * The unit `name` of `experiment` at `preset` (with the data folder `dataDir`, which decides whether
 * data-dependent units are planned); throws "Cannot find unit ..." naming the planned ones.
 */
export function unitNamed(experiment: Experiment, preset: Preset, name: string, dataDir?: string): Unit {
  const units = experiment.units(preset, { dataDir });
  const u = units.find((x) => x.name === name);
  if (!u) {
    throw new Error(
      `Cannot find unit "${name}" of ${experiment.name} at preset ${preset}: expected one of ${
        units.map((x) => x.name).join(", ")
      }`,
    );
  }
  return u;
}

/** An experiment of the suite. */
export interface Experiment {
  /** Short name used by `--only` and as the artifact name, e.g. "density". */
  readonly name: string;
  /** A title for the report, e.g. "Density estimation (Table 1)". */
  readonly title: string;
  /**
   * Version of the figure keys (table, row, column) the units write and the claims read. Bump it
   * whenever either changes: each unit artifact records the version it was computed with, and a merge
   * checks claims only when every unit has the current one (see `mergeExperiments`).
   */
  readonly claimsVersion: number;
  /** The units at a preset, in run order (names are plain: letters, digits, "-", "_"). */
  units(preset: Preset, opts: { dataDir: string | undefined }): Unit[];
  /**
   * The registry datasets its units read at a preset (with duplicates allowed), so that `deno task
   * reproduce` can fetch the missing ones before any unit runs. Omitted: nothing is fetched for it.
   */
  datasets?(preset: Preset, opts: { dataDir: string | undefined }): DatasetName[];
  /**
   * The paper's qualitative claims, checked on all figures (and curves: periodic evaluations, paired
   * trends, which gates read) of this experiment.
   */
  claims(figures: readonly Figure[], series?: readonly Series[]): Claim[];
}
