/**
 * The paper's published numbers for the density experiment: table `density_bpd` of
 * `testdata/paper_tables.json` (a verbatim copy of the brief's `shared/paper/tables.json`;
 * `experiments/published_test.ts` checks they agree). Only compared, never used as a result.
 * @module
 */
import type { PublishedTable } from "../framework/published.ts";

/** Test bits/dim by method and dataset (the paper's density table). */
export const DENSITY_BPD_PUBLISHED: PublishedTable = {
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
};
