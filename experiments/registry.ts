/**
 * The experiments of the suite, in report order.
 * @module
 */
import type { Experiment } from "./framework/experiment.ts";
import { ablationExperiment } from "./ablation/ablation.ts";
import { densityExperiment } from "./density/density.ts";
import { estimatorFiguresExperiment } from "./estimators/estimator_figures.ts";
import { hybridExperiment } from "./hybrid/hybrid.ts";
import { memoryExperiment } from "./memory/memory.ts";
import { pretrainedExperiment } from "./pretrained/pretrained.ts";
import { samplesExperiment } from "./samples/samples.ts";

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
