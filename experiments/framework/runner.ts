/**
 * Runs experiment units and merges their artifacts. Each unit's artifact is written as
 * `results/<version>/<preset>/units/<experiment>.<unit>.json` as soon as it finishes, so a killed run
 * loses at most the unit in progress (and that unit resumes from its own checkpoints); `merge` builds
 * `<experiment>.json` per experiment from the unit artifacts, which is also how the shards of a job
 * array are combined.
 * @module
 */
import { buildArtifact, readArtifactIfPresent, writeArtifact } from "../../lib/artifacts/artifact.ts";
import type { Artifact, Figure, Series } from "../../lib/artifacts/schema.ts";
import type { Preset } from "./presets.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";
import type { Device } from "../../lib/engine/tensor.ts";
import type { Claim, Experiment, Unit, UnitContext } from "./experiment.ts";

/** Where and how a run happens. */
export interface RunSettings {
  /** Results root (default "results"). */
  readonly resultsDir: string;
  /** Suite version (deno.json "version"). */
  readonly suiteVersion: string;
  /** Preset. */
  readonly preset: Preset;
  /** Base seed. */
  readonly seed: number;
  /** User data folder. */
  readonly dataDir: string | undefined;
  /** Skip units whose complete artifact exists; resume units from their checkpoints. */
  readonly resume: boolean;
  /** This process's share of the units: [index, count] (0-based), or null for all. */
  readonly shard: readonly [number, number] | null;
  /** Compute device. */
  readonly device: Device;
  /** Prints a line. */
  readonly log: (line: string) => void;
}

/** A unit scheduled for a run. */
export interface PlannedUnit {
  /** Its experiment. */
  readonly experiment: Experiment;
  /** The unit: its name within the experiment, its budget and how to run it. */
  readonly unit: Unit;
  /** Global index over all planned units (for sharding). */
  readonly index: number;
}

/** The experiment folder: `<resultsDir>/<version>/<preset>`. */
export function presetDir(s: Pick<RunSettings, "resultsDir" | "suiteVersion" | "preset">): string {
  return `${s.resultsDir.replace(/\/+$/, "")}/${s.suiteVersion}/${s.preset}`;
}

/** Artifact name of a unit. */
export function unitArtifactName(experiment: string, unit: string): string {
  return `units.${experiment}.${unit}`;
}

/** Lists every unit of the selected experiments, with global indices, and keeps this shard's share. */
export function planUnits(experiments: readonly Experiment[], s: RunSettings): PlannedUnit[] {
  const all: PlannedUnit[] = [];
  for (const e of experiments) {
    for (const u of e.units(s.preset, { dataDir: s.dataDir })) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(u.name)) {
        throw new Error(
          `Cannot plan unit "${u.name}" of ${e.name}: unit names are letters, digits, "_" and "-"`,
        );
      }
      all.push({ experiment: e, unit: u, index: all.length });
    }
  }
  if (!s.shard) return all;
  const [i, n] = s.shard;
  return all.filter((p) => p.index % n === i);
}

/**
 * Whether a complete artifact of the current claims version exists at `path` (a unit computed by code
 * with other figure keys is run again); a corrupt or invalid one is an error naming the file.
 */
async function existingComplete(path: string, claimsVersion: number): Promise<boolean> {
  const a = await unitArtifact(path);
  return a !== null && a.complete && a.claimsVersion === claimsVersion;
}

/**
 * The unit artifact at `path`, or null when it was not written yet. A file that exists but cannot be
 * read or validated is an error naming it: it is never reported as "not run yet" (deleting it reruns
 * the unit).
 */
async function unitArtifact(path: string): Promise<Artifact | null> {
  try {
    return await readArtifactIfPresent(path);
  } catch (e) {
    throw new Error(`${(e as Error).message} (delete the file to run its unit again)`);
  }
}

/** Runs the planned units in order, writing each unit's artifact. Returns the paths written or kept. */
export async function runUnits(planned: readonly PlannedUnit[], s: RunSettings): Promise<string[]> {
  const dir = presetDir(s);
  const paths: string[] = [];
  for (const [k, p] of planned.entries()) {
    const e = p.experiment;
    const unitName = p.unit.name;
    const name = unitArtifactName(e.name, unitName);
    const path = `${dir}/${name}.json`;
    if (s.resume && await existingComplete(path, e.claimsVersion)) {
      s.log(`[${k + 1}/${planned.length}] ${e.name}/${unitName}: done earlier (${path}), skipped`);
      paths.push(path);
      continue;
    }
    s.log(`[${k + 1}/${planned.length}] ${e.name}/${unitName}: budget ${p.unit.budget}`);
    const workDir = `${dir}/work/${e.name}/${unitName}`;
    await Deno.mkdir(workDir, { recursive: true });
    const ctx: UnitContext = {
      preset: s.preset,
      seed: s.seed,
      dataDir: s.dataDir,
      device: s.device,
      workDir,
      outDir: dir,
      resume: s.resume,
      log: (m) => s.log(`  ${e.name}/${unitName}: ${m}`),
      progress: (label, total, unit) =>
        new ProgressBar({ label: `  ${e.name}/${unitName} ${label}`, total, unit }),
    };
    const t0 = performance.now();
    let artifact: Artifact;
    try {
      const r = await p.unit.run(ctx);
      artifact = await buildArtifact({
        suiteVersion: s.suiteVersion,
        experiment: e.name,
        adapter: r.adapter,
        backend: r.backend,
        preset: s.preset,
        config: { unit: unitName, ...r.config },
        seeds: r.seeds,
        wallTimeSeconds: (performance.now() - t0) / 1000,
        complete: r.complete,
        incompleteReason: r.complete ? null : r.incompleteReason ?? "not stated",
        figures: r.figures,
        files: r.files,
        series: r.series,
        notes: r.notes?.join("\n"),
        claimsVersion: e.claimsVersion,
      });
    } catch (err) {
      // A failing unit never stops the others: its artifact says what went wrong.
      const msg = err instanceof Error ? err.message : String(err);
      s.log(`  ${e.name}/${unitName}: FAILED: ${msg}`);
      artifact = await buildArtifact({
        suiteVersion: s.suiteVersion,
        experiment: e.name,
        adapter: s.device.backend.description,
        backend: s.device.name,
        preset: s.preset,
        config: { unit: unitName },
        seeds: [s.seed],
        wallTimeSeconds: (performance.now() - t0) / 1000,
        complete: false,
        incompleteReason: `the unit failed: ${msg}`,
        figures: [],
        claimsVersion: e.claimsVersion,
      });
    }
    paths.push(await writeArtifact(s.resultsDir, s.suiteVersion, s.preset, name, artifact));
    s.log(
      `  ${e.name}/${unitName}: ${artifact.complete ? "done" : "INCOMPLETE"} in ${
        artifact.wallTimeSeconds.toFixed(1)
      } s`,
    );
  }
  return paths;
}

/** The merged result of one experiment. */
export interface MergedExperiment {
  /** The experiment. */
  readonly experiment: Experiment;
  /** Its merged artifact (null when no unit artifact exists). */
  readonly artifact: Artifact | null;
  /** Units planned at this preset that have no artifact yet. */
  readonly missingUnits: readonly string[];
  /** The claims checked on the merged figures. */
  readonly claims: readonly Claim[];
}

/** Reads every unit artifact of each experiment and writes `<experiment>.json` (merged). */
export async function mergeExperiments(
  experiments: readonly Experiment[],
  s: Omit<RunSettings, "device" | "shard" | "resume"> & {
    readonly adapter: string;
    readonly backend: string;
  },
): Promise<MergedExperiment[]> {
  const dir = presetDir(s);
  const out: MergedExperiment[] = [];
  for (const e of experiments) {
    const units = e.units(s.preset, { dataDir: s.dataDir }).map((u) => u.name);
    const parts: Artifact[] = [];
    const missing: string[] = [];
    for (const u of units) {
      const a = await unitArtifact(`${dir}/${unitArtifactName(e.name, u)}.json`);
      if (a) parts.push(a);
      else missing.push(u);
    }
    if (parts.length === 0) {
      out.push({ experiment: e, artifact: null, missingUnits: missing, claims: [] });
      continue;
    }
    // Claims are checked only on units computed with the current claims version. A verdict kept with one
    // unit cannot be re-used instead: claims compare cells of several units. And current claims read on
    // figures written under other keys (a renamed row) give wrong verdicts, so stale units are named
    // and their section's claims are left unchecked until they are rerun.
    const stale = parts.filter((p) => p.claimsVersion !== e.claimsVersion).map((p) =>
      `${p.config.unit} (${
        p.claimsVersion === undefined ? "no claims version" : `version ${p.claimsVersion}`
      })`
    );
    const figures: Figure[] = parts.flatMap((p) => p.figures);
    const series: Series[] = parts.flatMap((p) => p.series ?? []);
    const files = [...new Set(parts.flatMap((p) => p.files ?? []))];
    const incomplete = parts.filter((p) => !p.complete).map((p) => `${p.config.unit}: ${p.incompleteReason}`);
    if (missing.length) incomplete.push(`units not run yet: ${missing.join(", ")}`);
    if (stale.length) {
      incomplete.push(
        `units computed by code of another claims version (this code: ${e.claimsVersion}): ${
          stale.join(", ")
        }`,
      );
    }
    const claims: Claim[] = stale.length ? [staleClaim(e, stale, s.preset)] : e.claims(figures, series);
    const notes = parts.map((p) => (p.notes ? `${p.config.unit}: ${p.notes}` : "")).filter((n) => n).join(
      "\n",
    );
    const artifact = await buildArtifact({
      suiteVersion: s.suiteVersion,
      experiment: e.name,
      adapter: [...new Set(parts.map((p) => p.adapter))].join("; "),
      backend: [...new Set(parts.map((p) => p.backend))].join("+"),
      preset: s.preset,
      config: { units: Object.fromEntries(parts.map((p) => [String(p.config.unit), p.config])) },
      seeds: [...new Set(parts.flatMap((p) => p.seeds))],
      wallTimeSeconds: parts.reduce((t, p) => t + p.wallTimeSeconds, 0),
      complete: incomplete.length === 0,
      incompleteReason: incomplete.length ? incomplete.join("; ") : null,
      figures,
      files: files.length ? files : undefined,
      series: series.length ? series : undefined,
      notes: notes || undefined,
      // The units' provenance, not the merge's: their commits (joined with "+" when they differ) and the
      // newest unit's date.
      gitCommit: [...new Set(parts.map((p) => p.gitCommit))].join("+"),
      date: parts.map((p) => p.date).sort().at(-1),
      ...(stale.length ? {} : { claimsVersion: e.claimsVersion }),
      claims,
    });
    await writeArtifact(s.resultsDir, s.suiteVersion, s.preset, e.name, artifact);
    out.push({ experiment: e, artifact, missingUnits: missing, claims });
  }
  return out;
}

/** The one verdict of a section with stale units: not checked, naming them and how to rerun them. */
function staleClaim(e: Experiment, stale: readonly string[], preset: Preset): Claim {
  return {
    table: e.name,
    statement: `the paper's claims on ${e.title}`,
    holds: null,
    detail: `not checked: units ${stale.join(", ")} were computed by code whose figure keys or claims ` +
      `differ from this code's (claims version ${e.claimsVersion}); rerun them with ` +
      `\`deno task reproduce --preset ${preset} --only ${e.name}\``,
  };
}
