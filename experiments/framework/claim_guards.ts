/**
 * Guards every claim shares: a cell whose value left out non-finite per-example values (a test image
 * whose bits/dim is NaN or infinite) cannot support a verdict, since leaving them out makes a diverging
 * model look better. A claim reading such a cell fails, naming the cell and the count.
 * @module
 */
import type { Figure } from "../../lib/artifacts/schema.ts";
import type { Claim } from "./experiment.ts";

/** "row/column: k non-finite" for each of `cells` with non-finite per-example values left out. */
export function nonFiniteCells(cells: readonly (Figure | null | undefined)[]): string[] {
  return cells.filter((f): f is Figure => !!f && (f.nonFinite ?? 0) > 0).map((f) =>
    `${f.row}/${f.column}: ${f.nonFinite} non-finite per-example value${
      f.nonFinite === 1 ? "" : "s"
    } left out`
  );
}

/** `claim`, failed when any of the cells it reads left out non-finite per-example values. */
export function failOnNonFinite(claim: Claim, cells: readonly (Figure | null | undefined)[]): Claim {
  const bad = nonFiniteCells(cells);
  if (!bad.length) return claim;
  return { ...claim, holds: false, detail: `fails: ${bad.join("; ")}. ${claim.detail}` };
}
