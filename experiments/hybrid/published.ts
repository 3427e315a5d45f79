/**
 * The paper's published numbers for the hybrid experiment: table `hybrid` of
 * `testdata/paper_tables.json` (a verbatim copy of the brief's `shared/paper/tables.json`;
 * `experiments/published_test.ts` checks they agree). Only compared, never used as a result.
 * @module
 */
import type { PublishedTable } from "../framework/published.ts";

/** Hybrid modelling: accuracy and bits/dim (the paper's hybrid table). */
export const HYBRID_PUBLISHED: PublishedTable = {
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
};
