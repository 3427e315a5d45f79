/**
 * The paper's published numbers, gathered from the experiment folders (`density/published.ts`,
 * `memory/published.ts`, `ablation/published.ts`, `hybrid/published.ts`), and the lookup that figures
 * and claims use. `published_test.ts` checks they equal `testdata/paper_tables.json` (a verbatim copy
 * of the brief's `shared/paper/tables.json`). Published numbers are only compared, never results.
 * @module
 */
import { makeFigure as makeOwnFigure } from "../lib/artifacts/artifact.ts";
import type { Figure, PublishedRef } from "../lib/artifacts/schema.ts";
import { ABLATION_BPD_PUBLISHED } from "./ablation/published.ts";
import { DENSITY_BPD_PUBLISHED } from "./density/published.ts";
import type { PublishedCell, PublishedTable } from "./framework/published.ts";
import { HYBRID_PUBLISHED } from "./hybrid/published.ts";
import { MEMORY_GB_PUBLISHED } from "./memory/published.ts";

export { formatPublished, type PublishedCell, type PublishedTable } from "./framework/published.ts";

/** All published tables, with the source they were copied from. */
export interface PublishedTables {
  /** Where the numbers come from. */
  readonly source: string;
  /** Test bits/dim by method and dataset. */
  readonly density_bpd: PublishedTable;
  /** Memory (GB) per minibatch by gradient method and architecture. */
  readonly memory_gb: PublishedTable;
  /** Ablation: test bits/dim by model and dataset. */
  readonly ablation_bpd: PublishedTable;
  /** Hybrid modelling: accuracy and bits/dim. */
  readonly hybrid: PublishedTable;
}

/** Names of the published tables. */
export type PublishedTableName = Exclude<keyof PublishedTables, "source">;

/** The paper's tables, as given in the project brief. */
export const PUBLISHED: PublishedTables = {
  source:
    "Residual Flows for Invertible Generative Modeling (Chen, Behrmann, Duvenaud, Jacobsen, NeurIPS 2019), as given in the project brief",
  density_bpd: DENSITY_BPD_PUBLISHED,
  memory_gb: MEMORY_GB_PUBLISHED,
  ablation_bpd: ABLATION_BPD_PUBLISHED,
  hybrid: HYBRID_PUBLISHED,
};

/** The names of the published tables. */
export const PUBLISHED_TABLE_NAMES: readonly PublishedTableName[] = [
  "density_bpd",
  "memory_gb",
  "ablation_bpd",
  "hybrid",
];

/** True when `name` is one of the paper's tables. */
export function isPublishedTable(name: string): name is PublishedTableName {
  return (PUBLISHED_TABLE_NAMES as readonly string[]).includes(name);
}

/** The published table `name`; throws "Cannot find published table ..." listing the valid names. */
export function publishedTable(name: string): PublishedTable {
  if (!isPublishedTable(name)) {
    throw new Error(
      `Cannot find published table "${name}": expected one of ${PUBLISHED_TABLE_NAMES.join(", ")}`,
    );
  }
  return PUBLISHED[name];
}

/**
 * The published cell at (`table`, `row`, `column`): a number, a `[lo, hi]` range, or `null` when the
 * paper gives no value there. Throws when the table, row or column does not exist (a typo must not
 * silently read as "no published value"), naming the valid choices.
 */
export function publishedValue(table: string, row: string, column: string): PublishedCell {
  const t = publishedTable(table);
  const cells = t.rows[row];
  if (!cells) {
    throw new Error(
      `Cannot find row "${row}" in published table ${table}: expected one of ${
        Object.keys(t.rows).map((r) => `"${r}"`).join(", ")
      }`,
    );
  }
  const j = t.columns.indexOf(column);
  if (j < 0) {
    throw new Error(
      `Cannot find column "${column}" in published table ${table}: expected one of ${t.columns.join(", ")}`,
    );
  }
  const cell = cells[j];
  return cell === undefined ? null : cell;
}

/** The fields of a figure an experiment measures; {@link makeFigure} adds the published value. */
export type FigureInput = Omit<Figure, "published"> & { readonly published?: PublishedRef };

/**
 * A figure with its published value looked up here when `table` is one of the paper's tables (a wrong
 * row or column name then throws), or `null` for the project's own figures.
 */
export function makeFigure(input: FigureInput): Figure {
  const published = input.published !== undefined
    ? input.published
    : isPublishedTable(input.table)
    ? publishedValue(input.table, input.row, input.column)
    : null;
  return makeOwnFigure({ ...input, published });
}
