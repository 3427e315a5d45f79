/**
 * Training-set sizes of the full datasets, known before any data is loaded: the paper preset's epochs
 * turn into steps with them, and budgets are printed with them.
 * @module
 */
import { MNIST_COUNTS } from "../../lib/data/mnist.ts";
import { SVHN_COUNTS } from "../../lib/data/svhn.ts";

/** Training images by dataset key (the keys the density, ablation and hybrid experiments use). */
export const TRAIN_COUNTS: Readonly<Record<string, number>> = {
  mnist: MNIST_COUNTS.train,
  cifar10: 50000,
  "cifar10-exact": 4000,
  svhn: SVHN_COUNTS.train,
  imagenet32: 1281167,
  imagenet64: 1281167,
};
