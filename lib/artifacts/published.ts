/**
 * The paper's published numbers: the one reference module of the project. Every published value
 * that an artifact, a report or a test shows comes from here (a copy of the project brief's
 * `shared/paper/tables.json`, also kept verbatim in `testdata/paper_tables.json`; a test checks all
 * three agree). Cells are a number, a `[lo, hi]` range, or `null` where the paper has no value.
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
  "source":
    "Residual Flows for Invertible Generative Modeling (Chen, Behrmann, Duvenaud, Jacobsen, NeurIPS 2019), as given in the project brief",
  "density_bpd": {
    "caption":
      "Test bits/dim with uniform dequantization (lower is better). Values in 'variational' used variational dequantization and are not compared.",
    "columns": [
      "mnist",
      "cifar10",
      "imagenet32",
      "imagenet64",
    ],
    "rows": {
      "Real NVP": [
        1.06,
        3.49,
        4.28,
        3.98,
      ],
      "Glow": [
        1.05,
        3.35,
        4.09,
        3.81,
      ],
      "FFJORD": [
        0.99,
        3.4,
        null,
        null,
      ],
      "Flow++": [
        null,
        3.29,
        null,
        null,
      ],
      "i-ResNet": [
        1.05,
        3.45,
        null,
        null,
      ],
      "Residual Flow": [
        0.97,
        3.29,
        4.02,
        3.78,
      ],
    },
    "variational": {
      "Flow++": [
        null,
        3.09,
        3.86,
        3.69,
      ],
    },
  },
  "memory_gb": {
    "caption":
      "Memory (GB) per minibatch of 64 samples when computing n=10 terms of the power series. cifar10_small uses immediate downsampling (a squeeze) before any residual block.",
    "columns": [
      "mnist_elu",
      "mnist_lipswish",
      "cifar10_small_elu",
      "cifar10_small_lipswish",
      "cifar10_elu",
      "cifar10_lipswish",
      "relative",
    ],
    "rows": {
      "naive_backprop": [
        92.0,
        192.1,
        33.3,
        66.4,
        120.2,
        263.5,
        1.0,
      ],
      "neumann_gradient": [
        13.4,
        31.2,
        5.5,
        11.3,
        17.6,
        40.8,
        0.157,
      ],
      "backward_in_forward": [
        8.7,
        19.8,
        3.8,
        7.4,
        11.5,
        26.1,
        0.103,
      ],
      "both": [
        4.9,
        13.6,
        3.0,
        5.9,
        6.6,
        18.0,
        0.071,
      ],
    },
  },
  "ablation_bpd": {
    "caption":
      "Test bits/dim. cifar10_small uses immediate downsampling before any residual block. 'i-ResNet + ELU' on cifar10 is a range (3.66 to 4.78) in the source.",
    "columns": [
      "mnist",
      "cifar10_small",
      "cifar10",
    ],
    "rows": {
      "i-ResNet + ELU": [
        1.05,
        3.45,
        [
          3.66,
          4.78,
        ],
      ],
      "Residual Flow + ELU": [
        1.0,
        3.4,
        3.32,
      ],
      "Residual Flow + LipSwish": [
        0.97,
        3.39,
        3.29,
      ],
    },
  },
  "hybrid": {
    "caption":
      "Hybrid modelling, objective lambda*log p(x) + log p(y|x). Accuracy (higher is better) and bits/dim (lower is better). D = data dimension.",
    "columns": [
      "mnist_l0_acc",
      "mnist_l1d_bpd",
      "mnist_l1d_acc",
      "mnist_l1_bpd",
      "mnist_l1_acc",
      "svhn_l0_acc",
      "svhn_l1d_bpd",
      "svhn_l1d_acc",
      "svhn_l1_bpd",
      "svhn_l1_acc",
    ],
    "rows": {
      "Nalisnick et al. 2019": [
        0.9933,
        1.26,
        0.9778,
        null,
        null,
        0.9574,
        2.4,
        0.9477,
        null,
        null,
      ],
      "Coupling": [
        0.995,
        1.18,
        0.9845,
        1.04,
        0.9542,
        0.9627,
        2.73,
        0.9515,
        null,
        null,
      ],
      "Coupling + 1x1 Conv": [
        0.9956,
        1.15,
        0.9893,
        1.03,
        0.9422,
        0.9672,
        2.61,
        0.9549,
        null,
        null,
      ],
      "Residual": [
        0.9953,
        1.01,
        0.9946,
        0.99,
        0.9869,
        0.9672,
        2.29,
        0.9579,
        2.06,
        0.5852,
      ],
    },
    "notes":
      "The brief's hybrid table is flattened; this column reading (lambda = 0, 1/D, 1 for each dataset; bpd then accuracy for lambda > 0) is the one under which every row has a consistent count of values. The brief lacks the SVHN lambda = 1 cells of the two coupling rows (null here).",
  },
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
