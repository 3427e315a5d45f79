/**
 * The JSON Schema of an experiment artifact (`results/<suiteVersion>/<preset>/<name>.json`), and the
 * matching TypeScript types. The schema is a plain object (no file is read at import time); it uses
 * only the subset of JSON Schema 2020-12 that `validate.ts` checks.
 * @module
 */
import type { JsonSchema } from "./validate.ts";

/**
 * Version of the artifact format; bump it when the schema changes incompatibly. 2: a claim may carry
 * the gate that decides whether it is testable at the run's scale, and the trend of its difference.
 */
export const ARTIFACT_SCHEMA_VERSION = 2;

/** A published value beside a figure: a number, a `[lo, hi]` range, or `null` (none in the paper). */
export type PublishedRef = number | readonly [number, number] | null;

/** One measured number of a table or figure, with its uncertainty and the paper's value beside it. */
export interface Figure {
  /** The table or figure it belongs to, e.g. "density_bpd" (a paper table name). */
  readonly table: string;
  /** The row (method), e.g. "Residual Flow". */
  readonly row: string;
  /** The column (dataset/setting), e.g. "mnist". */
  readonly column: string;
  /** The measured value; `null` when it could not be measured (then the artifact says why in `notes`). */
  readonly value: number | null;
  /** Standard error of `value` (`null` when none applies or is known). Either this or `ci` is required. */
  readonly stderr?: number | null;
  /** A confidence interval `[lo, hi]` (for instance 95%) instead of, or beside, the standard error. */
  readonly ci?: readonly [number, number];
  /** The unit, e.g. "bits/dim", "GB", "accuracy", "ratio". */
  readonly unit: string;
  /** The paper's value for this cell, or `null`. */
  readonly published: PublishedRef;
  /** At what scale it was run, in a few words (e.g. "quick: 2 blocks of width 32, 400 steps, 1000 test images"). */
  readonly scale: string;
  /** How many samples the value and its uncertainty rest on (test images, seeds, repeats). */
  readonly n: number;
  /** An optional remark on this cell. */
  readonly note?: string;
  /**
   * Per-example values that were NaN or infinite and are left out of `value` and its uncertainty (test
   * images of a bits/dim cell); claims reading a cell where this is above 0 fail.
   */
  readonly nonFinite?: number;
}

/** A numeric curve kept in the artifact (a training curve, the points of a plotted figure). */
export interface Series {
  /** What the curve is, e.g. "train bits/dim (biased estimate)". */
  readonly name: string;
  /** The x values (e.g. steps). */
  readonly x: readonly number[];
  /** The y values, one per x. */
  readonly y: readonly number[];
  /** Optional standard errors of y, one per x. */
  readonly yErr?: readonly number[];
  /** Label of the x values, for a reader of the JSON. */
  readonly xLabel?: string;
  /** Label of the y values. */
  readonly yLabel?: string;
}

/** An experiment artifact: everything needed to know what was run, where, and what it measured. */
export interface Artifact {
  /** The artifact format version ({@link ARTIFACT_SCHEMA_VERSION}). */
  readonly schemaVersion: typeof ARTIFACT_SCHEMA_VERSION;
  /** The suite's version (deno.json "version"); results are kept per suite version. */
  readonly suiteVersion: string;
  /** The experiment's name, e.g. "density". */
  readonly experiment: string;
  /** The git commit the run was made from, or "unknown". */
  readonly gitCommit: string;
  /** When the artifact was built, ISO 8601. */
  readonly date: string;
  /** `Deno.version.deno`. */
  readonly denoVersion: string;
  /** The compute adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "CPU reference (float64)". */
  readonly adapter: string;
  /** The backend(s) used, e.g. "webgpu", "cpu", "meta+webgpu". */
  readonly backend: string;
  /** The preset (scale) the run used, a plain name such as "smoke"; the experiments define the presets. */
  readonly preset: string;
  /** The full resolved configuration of the run (any JSON object). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Every seed used. */
  readonly seeds: readonly number[];
  /** Wall-clock seconds of the run. */
  readonly wallTimeSeconds: number;
  /** Whether every planned measurement was made. */
  readonly complete: boolean;
  /** Why the run is incomplete; `null` exactly when `complete` is true. */
  readonly incompleteReason: string | null;
  /** The measured figures. */
  readonly figures: readonly Figure[];
  /** Files written beside the artifact (PNG paths, relative to the artifact's folder). */
  readonly files?: readonly string[];
  /** Curves kept as numbers (training curves, figure data). */
  readonly series?: readonly Series[];
  /** Free text for the reader of the report. */
  readonly notes?: string;
  /**
   * Version of the experiment's figure keys and claims in the code that computed the figures (see
   * `Experiment.claimsVersion`); a merge checks claims only on units of the current version.
   */
  readonly claimsVersion?: number;
  /** Verdicts on the paper's claims, kept with the figures they were checked on (merged artifacts). */
  readonly claims?: readonly ClaimVerdict[];
}

/**
 * A condition measured in the same run that must hold before a claim about trained models can be
 * judged at the run's scale (e.g. "both models' test bits/dim stopped improving", "λ = 0 accuracy
 * >= 97 %"). When it fails the claim is not testable at this scale and has no verdict.
 */
export interface ClaimGate {
  /** The condition in words. */
  readonly statement: string;
  /** Whether it was met. */
  readonly passed: boolean;
  /** The measured numbers behind it. */
  readonly detail: string;
}

/** The compared difference at each periodic evaluation (paired over the same test images). */
export interface ClaimTrend {
  /** What is differenced, e.g. "Residual Flow + LipSwish − Residual Flow + ELU (bits/dim)". */
  readonly what: string;
  /** Training steps of the evaluations. */
  readonly step: readonly number[];
  /** The difference at each step. */
  readonly difference: readonly number[];
  /** Its standard error at each step (of the per-image differences). */
  readonly stderr: readonly number[];
}

/** The verdict of a claim in words: see {@link ClaimVerdict.holds}. */
export type ClaimOutcome = "holds" | "fails" | "not testable" | "not checked";

/** One of the paper's qualitative claims with its verdict on an artifact's figures. */
export interface ClaimVerdict {
  /** The table or figure it is about. */
  readonly table: string;
  /** The claim in words. */
  readonly statement: string;
  /**
   * Whether it holds at this scale: true (holds), false (fails), or null for no verdict: "not
   * testable at this scale" when `gate` is present and not passed, else "not checked" (missing cells).
   */
  readonly holds: boolean | null;
  /** The numbers behind the verdict (or why there is none). */
  readonly detail: string;
  /** The gate that decides whether the claim is testable at this scale (claims about trained models). */
  readonly gate?: ClaimGate;
  /** The compared difference at each periodic evaluation, so a reader sees where it is heading. */
  readonly trend?: ClaimTrend;
}

/** "holds", "fails", "not testable" (a gate failed) or "not checked" (cells missing) for a verdict. */
export function claimOutcome(c: ClaimVerdict): ClaimOutcome {
  if (c.gate && !c.gate.passed) return "not testable";
  return c.holds === null ? "not checked" : c.holds ? "holds" : "fails";
}

const NUMBER_PAIR = {
  type: "array",
  items: { type: "number" },
  minItems: 2,
  maxItems: 2,
} as const;

const NON_EMPTY_STRING = { type: "string", minLength: 1 } as const;

/** The JSON Schema (2020-12 subset) every artifact is validated against before it is written. */
export const ARTIFACT_SCHEMA: JsonSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "resflow-webgpu/artifact.schema.json",
  title: "Residual Flows reproduction: experiment artifact",
  type: "object",
  additionalProperties: false,
  required: [
    "schemaVersion",
    "suiteVersion",
    "experiment",
    "gitCommit",
    "date",
    "denoVersion",
    "adapter",
    "backend",
    "preset",
    "config",
    "seeds",
    "wallTimeSeconds",
    "complete",
    "incompleteReason",
    "figures",
  ],
  properties: {
    schemaVersion: { const: ARTIFACT_SCHEMA_VERSION },
    suiteVersion: NON_EMPTY_STRING,
    experiment: NON_EMPTY_STRING,
    gitCommit: NON_EMPTY_STRING,
    date: NON_EMPTY_STRING,
    denoVersion: NON_EMPTY_STRING,
    adapter: { type: "string" },
    backend: NON_EMPTY_STRING,
    preset: NON_EMPTY_STRING,
    config: { type: "object" },
    seeds: { type: "array", items: { type: "integer" } },
    wallTimeSeconds: { type: "number", minimum: 0 },
    complete: { type: "boolean" },
    incompleteReason: { type: ["string", "null"] },
    figures: { type: "array", items: { $ref: "#/$defs/figure" } },
    files: { type: "array", items: NON_EMPTY_STRING },
    series: { type: "array", items: { $ref: "#/$defs/series" } },
    notes: { type: "string" },
    claimsVersion: { type: "integer", minimum: 1 },
    claims: { type: "array", items: { $ref: "#/$defs/claim" } },
  },
  anyOf: [
    {
      description: "a complete run has no incompleteReason",
      properties: { complete: { const: true }, incompleteReason: { type: "null" } },
    },
    {
      description: "an incomplete run says why",
      properties: { complete: { const: false }, incompleteReason: NON_EMPTY_STRING },
    },
  ],
  $defs: {
    figure: {
      type: "object",
      additionalProperties: false,
      required: ["table", "row", "column", "value", "unit", "published", "scale", "n"],
      properties: {
        table: NON_EMPTY_STRING,
        row: NON_EMPTY_STRING,
        column: NON_EMPTY_STRING,
        value: { type: ["number", "null"] },
        stderr: { anyOf: [{ type: "number", minimum: 0 }, { type: "null" }] },
        ci: NUMBER_PAIR,
        unit: NON_EMPTY_STRING,
        published: { anyOf: [{ type: "number" }, NUMBER_PAIR, { type: "null" }] },
        scale: NON_EMPTY_STRING,
        n: { type: "integer", minimum: 0 },
        note: { type: "string" },
        nonFinite: { type: "integer", minimum: 0 },
      },
      anyOf: [
        { description: "uncertainty as a standard error", required: ["stderr"] },
        { description: "uncertainty as a confidence interval", required: ["ci"] },
      ],
    },
    claim: {
      type: "object",
      additionalProperties: false,
      required: ["table", "statement", "holds", "detail"],
      properties: {
        table: NON_EMPTY_STRING,
        statement: NON_EMPTY_STRING,
        holds: { type: ["boolean", "null"] },
        detail: { type: "string" },
        gate: {
          type: "object",
          additionalProperties: false,
          required: ["statement", "passed", "detail"],
          properties: {
            statement: NON_EMPTY_STRING,
            passed: { type: "boolean" },
            detail: { type: "string" },
          },
        },
        trend: {
          type: "object",
          additionalProperties: false,
          required: ["what", "step", "difference", "stderr"],
          properties: {
            what: NON_EMPTY_STRING,
            step: { type: "array", items: { type: "number" } },
            difference: { type: "array", items: { type: "number" } },
            stderr: { type: "array", items: { type: "number", minimum: 0 } },
          },
        },
      },
      anyOf: [
        {
          description: "no gate, or a gate that passed",
          properties: { gate: { properties: { passed: { const: true } } } },
        },
        {
          description: "a claim not testable at this scale has no verdict",
          properties: { holds: { type: "null" } },
        },
      ],
    },
    series: {
      type: "object",
      additionalProperties: false,
      required: ["name", "x", "y"],
      properties: {
        name: NON_EMPTY_STRING,
        x: { type: "array", items: { type: "number" } },
        y: { type: "array", items: { type: "number" } },
        yErr: { type: "array", items: { type: "number", minimum: 0 } },
        xLabel: { type: "string" },
        yLabel: { type: "string" },
      },
    },
  },
};
