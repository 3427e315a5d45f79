/**
 * The report: for every table, each cell as ours (± standard error), the paper's value, the difference
 * and the scale it was run at; then the paper's qualitative claims with a verdict at this scale. Written
 * as `REPORT.md` and `summary.json` beside the artifacts, and printed to the terminal.
 * @module
 */
import { writeFileAtomic, writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import { formatPublished } from "./published.ts";
import { type ClaimOutcome, claimOutcome, type Figure } from "../../lib/artifacts/schema.ts";
import type { Preset } from "./presets.ts";
import type { MergedExperiment } from "./runner.ts";

/** One row of a rendered table. */
export interface CellRow {
  /** Row label. */
  readonly row: string;
  /** Column label. */
  readonly column: string;
  /** Ours, formatted. */
  readonly ours: string;
  /** The paper's, formatted. */
  readonly paper: string;
  /** Ours minus paper, formatted ("" when either is missing). */
  readonly diff: string;
  /** Unit. */
  readonly unit: string;
  /** Scale the cell was run at. */
  readonly scale: string;
}

function digitsFor(unit: string): number {
  return unit === "accuracy" ? 4 : unit === "ratio" ? 3 : unit === "GB" ? 2 : 3;
}

/**
 * Formats a figure's value with its standard error or interval, and the count of non-finite
 * per-example values left out of it when there are any.
 */
export function formatOurs(f: Figure): string {
  const left = f.nonFinite ? ` (${f.nonFinite} non-finite left out)` : "";
  if (f.value === null) return `not measured${left}`;
  const d = digitsFor(f.unit);
  const v = f.value.toFixed(d);
  if (f.stderr !== undefined && f.stderr !== null) return `${v} ± ${f.stderr.toFixed(d)}${left}`;
  if (f.ci) return `${v} [${f.ci[0].toFixed(d)}, ${f.ci[1].toFixed(d)}]${left}`;
  return `${v}${left}`;
}

/** Ours minus the paper (for a range, the distance to it; 0 inside). */
export function difference(f: Figure): number | null {
  if (f.value === null || f.published === null) return null;
  if (typeof f.published === "number") return f.value - f.published;
  const [lo, hi] = f.published;
  return f.value < lo ? f.value - lo : f.value > hi ? f.value - hi : 0;
}

/** The rows of a table, in figure order. */
export function tableRows(figures: readonly Figure[]): CellRow[] {
  return figures.map((f) => {
    const d = difference(f);
    const digits = digitsFor(f.unit);
    return {
      row: f.row,
      column: f.column,
      ours: formatOurs(f),
      paper: f.published === null ? "—" : formatPublished(f.published, digits),
      diff: d === null ? "" : `${d >= 0 ? "+" : ""}${d.toFixed(digits)}`,
      unit: f.unit,
      scale: f.scale,
    };
  });
}

function markdownTable(rows: readonly CellRow[]): string {
  const head = "| row | column | ours | paper | ours − paper | unit | scale |\n|---|---|---|---|---|---|---|";
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    head,
    ...rows.map((r) =>
      `| ${[r.row, r.column, r.ours, r.paper, r.diff, r.unit, r.scale].map(esc).join(" | ")} |`
    ),
  ]
    .join("\n");
}

/** Plain-text table for the terminal. */
export function textTable(rows: readonly CellRow[]): string {
  const cols: (keyof CellRow)[] = ["row", "column", "ours", "paper", "diff", "unit"];
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join("  ");
  return [
    line(cols.map(String)),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(cols.map((c) => r[c]))),
  ]
    .join("\n");
}

const PRESET_NOTE: Record<Preset, string> = {
  smoke:
    "`smoke` runs tiny models for a few steps to exercise the pipeline end to end. Its numbers say nothing about the paper.",
  quick:
    "`quick` runs every experiment at a scale that finishes in about an hour on a 2-core machine without a GPU. Its absolute numbers are not expected to match the paper's (the paper trains 300+ epochs of 16-16-16 width-512 models on 4 GPUs); what can be compared is the qualitative claim of each table, checked below, and the memory table, which is measured at full paper size on the meta device.",
  long:
    "`long` runs the same experiments with an overnight budget. Absolute numbers are still far from the paper's budgets; compare the qualitative claims.",
  paper: "`paper` runs the paper's exact configurations; its numbers are comparable to the paper's.",
};

/** The report's word for each outcome of a claim. */
export const VERDICT_WORDS: Readonly<Record<ClaimOutcome, string>> = {
  holds: "yes",
  fails: "no",
  "not testable": "not testable at this scale",
  "not checked": "not checked",
};

/** Abbreviated commit(s): "c8fe1a0" or "c8fe1a0+3e3b0be". */
function short(commits: string): string {
  return commits.split("+").map((c) => c.slice(0, 7)).join("+");
}

/**
 * The report's provenance line: one run at the report's commit, or (after `--only` reruns merged with
 * earlier artifacts) the commits the sections were computed at.
 */
function provenance(merged: readonly MergedExperiment[], commit: string): string[] {
  const published = "the paper's values come from `lib/artifacts/published.ts` and are only compared.";
  const commits = [...new Set(merged.flatMap((m) => (m.artifact ? m.artifact.gitCommit.split("+") : [])))];
  if (commits.length <= 1 && (commits[0] ?? commit) === commit) {
    return [`Every number below was computed by this run; ${published}`];
  }
  const list = merged.filter((m) => m.artifact).map((m) =>
    `${m.experiment.name} at ${short(m.artifact!.gitCommit)} (${m.artifact!.date})`
  );
  return [
    `Every number below was computed by a run of this suite, but not all by one run: ${
      list.join(", ")
    }. Each section names its commit; ${published}`,
  ];
}

/** Builds REPORT.md and summary.json in `dir`; returns the terminal text. */
export async function writeReport(
  dir: string,
  merged: readonly MergedExperiment[],
  meta: { suiteVersion: string; preset: Preset; date: string; commit: string; adapter: string },
): Promise<string> {
  const md: string[] = [
    `# Residual Flows reproduction report: suite ${meta.suiteVersion}, preset \`${meta.preset}\``,
    "",
    `Generated ${meta.date} from commit ${meta.commit} on ${meta.adapter} by \`deno task reproduce --preset ${meta.preset}\`.`,
    ...provenance(merged, meta.commit),
    "",
    PRESET_NOTE[meta.preset],
    "",
  ];
  const text: string[] = [];
  const summary: Record<string, unknown> = { ...meta, experiments: {} as Record<string, unknown> };
  for (const m of merged) {
    const a = m.artifact;
    md.push(`## ${m.experiment.title}`, "");
    text.push(`\n=== ${m.experiment.title} ===`);
    if (!a) {
      md.push(`Not run at this preset yet (units: ${m.missingUnits.join(", ")}).`, "");
      text.push("not run yet");
      continue;
    }
    md.push(
      `Artifact: \`${m.experiment.name}.json\` (${
        a.complete ? "complete" : `incomplete: ${a.incompleteReason}`
      }); wall time ${(a.wallTimeSeconds / 60).toFixed(1)} min on ${a.backend}; computed at commit ${
        short(a.gitCommit)
      } on ${a.date}.`,
      "",
    );
    const tables = [...new Set(a.figures.map((f) => f.table))];
    for (const t of tables) {
      const rows = tableRows(a.figures.filter((f) => f.table === t));
      md.push(`### ${t}`, "", markdownTable(rows), "");
      text.push(`-- ${t}`, textTable(rows));
    }
    for (const f of a.files ?? []) md.push(`![${f}](${f})`, "");
    if (m.claims.length) {
      md.push("### The paper's claims at this scale", "", "| claim | holds | numbers |", "|---|---|---|");
      for (const c of m.claims) {
        const verdict = VERDICT_WORDS[claimOutcome(c)];
        md.push(`| ${c.statement} | ${verdict} | ${c.detail.replace(/\|/g, "\\|")} |`);
        text.push(`claim: ${c.statement}: ${verdict} (${c.detail})`);
      }
      md.push("");
    }
    if (a.notes) md.push("Notes:", "", ...a.notes.split("\n").map((n) => `- ${n}`), "");
    (summary.experiments as Record<string, unknown>)[m.experiment.name] = {
      complete: a.complete,
      incompleteReason: a.incompleteReason,
      cells: tableRows(a.figures).map((r, i) => ({
        ...r,
        table: a.figures[i].table,
        value: a.figures[i].value,
        stderr: a.figures[i].stderr ?? null,
        published: a.figures[i].published,
        ...(a.figures[i].nonFinite !== undefined ? { nonFinite: a.figures[i].nonFinite } : {}),
      })),
      claims: m.claims,
      files: a.files ?? [],
    };
  }
  await writeFileAtomic(`${dir}/REPORT.md`, md.join("\n"));
  await writeJsonAtomic(`${dir}/summary.json`, summary);
  return text.join("\n");
}
