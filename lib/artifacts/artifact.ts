/**
 * Building, validating and writing experiment artifacts. An artifact is written to
 * `<resultsDir>/<suiteVersion>/<preset>/<name>.json`, atomically, only after it validates against
 * {@link ARTIFACT_SCHEMA}; results of an older suite version live in their own folder and are never
 * touched by a newer one.
 * @module
 */
import { writeJsonAtomic } from "./atomic.ts";
import {
  type Artifact,
  ARTIFACT_SCHEMA,
  ARTIFACT_SCHEMA_VERSION,
  type ClaimVerdict,
  type Figure,
  type PublishedRef,
  type Series,
} from "./schema.ts";
import { childPath, formatError, validate, type ValidationError } from "./validate.ts";

/** What an experiment supplies; {@link buildArtifact} adds the run's metadata. */
export interface ArtifactInput {
  /** The suite's version (deno.json "version"). */
  readonly suiteVersion: string;
  /** The experiment's name, e.g. "density". */
  readonly experiment: string;
  /** The compute adapter's description. */
  readonly adapter: string;
  /** The backend(s) used, e.g. "webgpu". */
  readonly backend: string;
  /** The preset (scale) the run used, a plain name such as "smoke". */
  readonly preset: string;
  /** The full resolved configuration. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Every seed used. */
  readonly seeds: readonly number[];
  /** Wall-clock seconds of the run. */
  readonly wallTimeSeconds: number;
  /** Defaults to true. */
  readonly complete?: boolean;
  /** Required when `complete` is false. */
  readonly incompleteReason?: string | null;
  /** The measured figures (see {@link makeFigure}). */
  readonly figures: readonly Figure[];
  /** Files written beside the artifact (PNG paths relative to its folder). */
  readonly files?: readonly string[];
  /** Curves kept as numbers. */
  readonly series?: readonly Series[];
  /** Free text for the reader. */
  readonly notes?: string;
  /** Version of the experiment's figure keys and claims in the code that computed the figures. */
  readonly claimsVersion?: number;
  /** Verdicts on the paper's claims checked on these figures. */
  readonly claims?: readonly ClaimVerdict[];
  /** Overrides for tests; by default read from git, `Deno.version` and the clock. */
  readonly gitCommit?: string;
  /** Override of the date (ISO 8601). */
  readonly date?: string;
  /** Override of the Deno version. */
  readonly denoVersion?: string;
}

/**
 * The commit checked out in `cwd` (`git rev-parse HEAD`), or "unknown" when git, the repository or
 * the permission to run it is missing.
 */
export async function gitCommit(cwd?: string): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd,
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{7,64}$/.test(text) ? text : "unknown";
  } catch {
    return "unknown";
  }
}

/** Builds an artifact from an experiment's results, filling in git commit, date and Deno version. */
export async function buildArtifact(input: ArtifactInput): Promise<Artifact> {
  const complete = input.complete ?? true;
  const artifact: Artifact = {
    schemaVersion: ARTIFACT_SCHEMA_VERSION,
    suiteVersion: input.suiteVersion,
    experiment: input.experiment,
    gitCommit: input.gitCommit ?? await gitCommit(),
    date: input.date ?? new Date().toISOString(),
    denoVersion: input.denoVersion ?? Deno.version.deno,
    adapter: input.adapter,
    backend: input.backend,
    preset: input.preset,
    config: input.config,
    seeds: input.seeds,
    wallTimeSeconds: input.wallTimeSeconds,
    complete,
    incompleteReason: complete ? null : input.incompleteReason ?? null,
    figures: input.figures,
    ...(input.files ? { files: input.files } : {}),
    ...(input.series ? { series: input.series } : {}),
    ...(input.notes !== undefined ? { notes: input.notes } : {}),
    ...(input.claimsVersion !== undefined ? { claimsVersion: input.claimsVersion } : {}),
    ...(input.claims !== undefined ? { claims: input.claims } : {}),
  };
  return artifact;
}

/** The fields of a figure; `published` defaults to `null` (no published value beside it). */
export type FigureInput = Omit<Figure, "published"> & { readonly published?: PublishedRef };

/**
 * A figure with its published value: the one given, or `null` when none is (the experiments look the
 * paper's values up in `experiments/published.ts` and pass them here).
 */
export function makeFigure(input: FigureInput): Figure {
  return { ...input, published: input.published !== undefined ? input.published : null };
}

/**
 * Every problem with `value` as an artifact: the schema's errors, plus the checks JSON Schema cannot
 * express (a series' x and y of equal length, a confidence interval with lo <= hi).
 */
export function validateArtifact(value: unknown): ValidationError[] {
  const errors = validate(value, ARTIFACT_SCHEMA);
  if (errors.length > 0) return errors;
  const a = value as Artifact;
  a.figures.forEach((f, i) => {
    if (f.ci && f.ci[0] > f.ci[1]) {
      errors.push({
        path: childPath(childPath("$.figures", i), "ci"),
        message: `expected lo <= hi, got [${f.ci[0]}, ${f.ci[1]}]`,
      });
    }
  });
  (a.series ?? []).forEach((s, i) => {
    const at = childPath("$.series", i);
    if (s.x.length !== s.y.length) {
      errors.push({ path: at, message: `x has ${s.x.length} values but y has ${s.y.length}` });
    }
    if (s.yErr && s.yErr.length !== s.y.length) {
      errors.push({ path: at, message: `yErr has ${s.yErr.length} values but y has ${s.y.length}` });
    }
  });
  return errors;
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

/** The path `<resultsDir>/<suiteVersion>/<preset>/<name>.json` (each segment checked to be a plain name). */
export function artifactPath(resultsDir: string, suiteVersion: string, preset: string, name: string): string {
  for (const [what, seg] of [["suite version", suiteVersion], ["preset", preset], ["artifact name", name]]) {
    if (!SAFE_SEGMENT.test(seg) || seg.includes("..")) {
      throw new Error(
        `Cannot place artifact: ${what} "${seg}" is not a plain name (letters, digits, "_", ".", "+", "-")`,
      );
    }
  }
  return `${resultsDir.replace(/\/+$/, "")}/${suiteVersion}/${preset}/${name}.json`;
}

/**
 * Validates `artifact` and writes it atomically to `<resultsDir>/<suiteVersion>/<preset>/<name>.json`;
 * returns the path. Refuses an artifact whose own `suiteVersion` or `preset` disagree with the folder
 * (so a newer suite never writes into an older version's results), and an invalid artifact (listing
 * every schema error with its JSON path).
 */
export async function writeArtifact(
  resultsDir: string,
  suiteVersion: string,
  preset: string,
  name: string,
  artifact: Artifact,
): Promise<string> {
  const path = artifactPath(resultsDir, suiteVersion, preset, name);
  if (artifact.suiteVersion !== suiteVersion) {
    throw new Error(
      `Cannot write artifact ${path}: it was built by suite version ${artifact.suiteVersion}, not ${suiteVersion}`,
    );
  }
  if (artifact.preset !== preset) {
    throw new Error(
      `Cannot write artifact ${path}: it was run with preset ${artifact.preset}, not ${preset}`,
    );
  }
  const errors = validateArtifact(artifact);
  if (errors.length > 0) {
    throw new Error(
      `Cannot write artifact ${path}: ${errors.length} schema error${errors.length === 1 ? "" : "s"}: ${
        errors.map(formatError).join("; ")
      }`,
    );
  }
  await writeJsonAtomic(path, artifact);
  return path;
}

/** Reads and validates an artifact; throws "Cannot read artifact <path>: ..." naming every problem. */
export async function readArtifact(path: string): Promise<Artifact> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`Cannot read artifact ${path}: ${(e as Error).message}`);
  }
  const errors = validateArtifact(value);
  if (errors.length > 0) {
    throw new Error(`Cannot read artifact ${path}: ${errors.map(formatError).join("; ")}`);
  }
  return value as Artifact;
}

/**
 * Reads and validates an artifact that may not exist yet: `null` when there is no file at `path`;
 * an unreadable, non-JSON or invalid file is an error naming it (never taken for "not run yet").
 */
export async function readArtifactIfPresent(path: string): Promise<Artifact | null> {
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot read artifact ${path}: ${(e as Error).message}`);
  }
  return await readArtifact(path);
}
