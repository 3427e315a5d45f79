/**
 * The shape of the paper's published numbers and how a report writes them. The numbers themselves
 * live in each experiment's folder (`<experiment>/published.ts`) and are gathered, with the lookup
 * claims and figures use, in `experiments/published.ts`. Published numbers are only compared.
 * @module
 */

/** One published cell: a number, a range `[lo, hi]`, or `null` (no value in the paper). */
export type PublishedCell = number | readonly [number, number] | null;

/** One published table: caption, column names, and one row of cells per method. */
export interface PublishedTable {
  /** The table's caption, as given in the brief. */
  readonly caption: string;
  /** Column names, in order. */
  readonly columns: readonly string[];
  /** Cells by row (method) name, one per column. */
  readonly rows: Readonly<Record<string, readonly PublishedCell[]>>;
  /** Values under another protocol, not compared (density table: variational dequantization). */
  readonly variational?: Readonly<Record<string, readonly PublishedCell[]>>;
  /** How the brief's table was read. */
  readonly notes?: string;
}

/**
 * Formats a published cell for reports: `3.29`, `3.66–4.78`, or `—` for no value. Numbers are written
 * as published (shortest form) unless `digits` is given.
 */
export function formatPublished(cell: PublishedCell, digits?: number): string {
  const f = (x: number) => digits === undefined ? String(x) : x.toFixed(digits);
  if (cell === null) return "—";
  if (typeof cell === "number") return f(cell);
  return `${f(cell[0])}–${f(cell[1])}`;
}
