/**
 * Peak memory of one training step of a Residual Flow (paper Fig. 3, SPEC 1.11 and 2.4): build the
 * model on a device, run one warm-up step (ActNorm's data-dependent initialisation, cached scalar
 * constants), then measure the device's peak live bytes over a second step: forward pass, mean
 * bits/dim loss, and the gradients of every parameter. The optimizer (Adam's two moment buffers and its
 * update) and the power iteration after the step are not part of the step.
 *
 * The four gradient methods of the paper are the {naive, Neumann} × {plain, backward-in-forward}
 * settings of the model's estimator, every block computing exactly n power-series terms (the fixed
 * truncation, as in the paper's "computing n = 10 terms").
 * @module
 */
import type { Device } from "../../lib/engine/tensor.ts";
import { type ActivationName, makeConfig, type ResidualFlowConfig } from "../../lib/flow/config.ts";
import { type GradientMode, measureTrainingStep, memoryConfig } from "../../lib/flow/model_memory.ts";

/** The paper's four gradient methods, in the figure's order (row names of the `memory_gb` table). */
export const MEMORY_METHODS = ["naive_backprop", "neumann_gradient", "backward_in_forward", "both"] as const;

/** One of {@link MEMORY_METHODS}. */
export type MemoryMethod = typeof MEMORY_METHODS[number];

/** Human-readable names of the methods (the paper's legend). */
export const METHOD_LABELS: Record<MemoryMethod, string> = {
  naive_backprop: "Naive backprop",
  neumann_gradient: "Neumann series",
  backward_in_forward: "Backward-in-forward",
  both: "Both",
};

/** The library's gradient mode behind each method. */
export const METHOD_MODES: Record<MemoryMethod, GradientMode> = {
  naive_backprop: "naive",
  neumann_gradient: "neumann",
  backward_in_forward: "backwardInForward",
  both: "both",
};

/** Bytes per GB in every figure of the memory experiment (decimal gigabytes). */
export const BYTES_PER_GB = 1e9;

/** The config of `base` with the method's gradient settings and exactly `nTerms` series terms per block. */
export function methodConfig(
  base: ResidualFlowConfig,
  method: MemoryMethod,
  nTerms: number,
): ResidualFlowConfig {
  const mode = METHOD_MODES[method];
  if (!mode) {
    throw new Error(
      `Cannot configure memory method "${method}": expected one of ${MEMORY_METHODS.join(", ")}`,
    );
  }
  return memoryConfig(base, mode, nTerms);
}

/** `base` with another activation and, optionally, another number of blocks per scale. */
export function variantConfig(
  base: ResidualFlowConfig,
  activation: ActivationName,
  blocksPerScale?: number,
): ResidualFlowConfig {
  return makeConfig({
    ...base,
    activation,
    nBlocks: blocksPerScale === undefined ? base.nBlocks : base.nBlocks.map(() => blocksPerScale),
  });
}

/** What {@link measureStepPeak} found. */
export interface StepMemory {
  /** Peak live bytes on the device during the measured step (model, batch and everything the step made). */
  readonly peakBytes: number;
  /** Live bytes when the measured step began (parameters, buffers, the input batch, cached constants). */
  readonly startBytes: number;
  /** `peakBytes − startBytes`: what the step itself needed at its peak. */
  readonly stepBytes: number;
  /** Live bytes after the step's results were freed, minus `startBytes` (0 when nothing leaked). */
  readonly leakedBytes: number;
  /** Trainable parameter count. */
  readonly parameters: number;
  /** Parameter bytes (Adam would add twice this for its moments; the step excludes the optimizer). */
  readonly parameterBytes: number;
}

/** Options of {@link measureStepPeak}. */
export interface StepOptions {
  /** Batch size (the paper's 64). */
  readonly batch: number;
  /** Seed of the weights, the batch and the probes. */
  readonly seed: number;
}

/**
 * Builds the model of `config` on `device`, runs a warm-up training step, then measures the peak bytes
 * of a second step (forward, mean bits/dim, gradients of every parameter); the measurement is the
 * library's {@link measureTrainingStep}. Everything it created is freed before it returns, so a device
 * can be reused.
 */
export function measureStepPeak(config: ResidualFlowConfig, device: Device, opts: StepOptions): StepMemory {
  const m = measureTrainingStep(config, { device, batch: opts.batch, seed: opts.seed });
  return {
    peakBytes: m.peakBytes,
    startBytes: m.restingBytes,
    stepBytes: m.stepPeakBytes,
    leakedBytes: m.leakedBytes,
    parameters: m.parameters,
    parameterBytes: m.paramBytes,
  };
}
