/**
 * Looking a measured cell up among an experiment's figures: the one lookup that claims, plots and
 * reports share.
 * @module
 */
import type { Figure } from "../../lib/artifacts/schema.ts";

/** The first figure at (`table`, `row`, `column`) that `accept` takes (any, by default), or undefined. */
export function findFigure(
  figures: readonly Figure[],
  table: string,
  row: string,
  column: string,
  accept: (f: Figure) => boolean = () => true,
): Figure | undefined {
  return figures.find((f) => f.table === table && f.row === row && f.column === column && accept(f));
}

/** True when a figure has a value (not `null`: a cell that was measured). */
export function hasValue(f: Figure): boolean {
  return f.value !== null;
}

/**
 * The figure at (`table`, `row`, `column`) when its value is a finite number; `null` when the cell is
 * missing or its value is `null`, NaN or infinite (claims then say "missing" instead of comparing).
 */
export function finiteFigure(
  figures: readonly Figure[],
  table: string,
  row: string,
  column: string,
): (Figure & { readonly value: number }) | null {
  const f = findFigure(figures, table, row, column);
  return f && typeof f.value === "number" && Number.isFinite(f.value)
    ? f as Figure & { value: number }
    : null;
}
