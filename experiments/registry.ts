/**
 * The experiments of the suite, in report order.
 * @module
 */
import type { Experiment } from "./framework/experiment.ts";
import { ablationExperiment } from "./ablation.ts";
import { densityExperiment } from "./density.ts";
import { estimatorFiguresExperiment } from "./estimator_figures.ts";
import { hybridExperiment } from "./hybrid.ts";
import { memoryExperiment } from "./memory.ts";
import { pretrainedExperiment } from "./pretrained.ts";
import { samplesExperiment } from "./samples.ts";

/** Every experiment `deno task reproduce` knows, in the order they run and are reported. */
export const EXPERIMENTS: readonly Experiment[] = [
  densityExperiment,
  memoryExperiment,
  ablationExperiment,
  hybridExperiment,
  estimatorFiguresExperiment,
  samplesExperiment,
  pretrainedExperiment,
];
