/**
 * The paper's published numbers for the memory experiment: table `memory_gb` of
 * `testdata/paper_tables.json` (a verbatim copy of the brief's `shared/paper/tables.json`;
 * `experiments/published_test.ts` checks they agree). Only compared, never used as a result.
 * @module
 */
import type { PublishedTable } from "../framework/published.ts";

/** Memory (GB) per minibatch by gradient method and architecture (the paper's Figure 3 table). */
export const MEMORY_GB_PUBLISHED: PublishedTable = {
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
};
