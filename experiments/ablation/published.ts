/**
 * The paper's published numbers for the ablation experiment: table `ablation_bpd` of
 * `testdata/paper_tables.json` (a verbatim copy of the brief's `shared/paper/tables.json`;
 * `experiments/published_test.ts` checks they agree). Only compared, never used as a result.
 * @module
 */
import type { PublishedTable } from "../framework/published.ts";

/** Ablation: test bits/dim by model and dataset (the paper's ablation table). */
export const ABLATION_BPD_PUBLISHED: PublishedTable = {
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
};
