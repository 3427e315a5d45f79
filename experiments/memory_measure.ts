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
import { gradMaybe } from "../lib/engine/autograd.ts";
import { mean } from "../lib/engine/ops/reduce.ts";
import { rand, Rng } from "../lib/engine/random.ts";
import { type Device, dispose, tidy } from "../lib/engine/tensor.ts";
import { type ActivationName, makeConfig, type ResidualFlowConfig } from "../lib/flow/config.ts";
import { ResidualFlow } from "../lib/flow/model.ts";

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

/** Estimator switches of each method. */
export const METHOD_SETTINGS: Record<MemoryMethod, { neumannGrad: boolean; memEff: boolean }> = {
  naive_backprop: { neumannGrad: false, memEff: false },
  neumann_gradient: { neumannGrad: true, memEff: false },
  backward_in_forward: { neumannGrad: false, memEff: true },
  both: { neumannGrad: true, memEff: true },
};

/** Bytes per GB in every figure of the memory experiment (decimal gigabytes). */
export const BYTES_PER_GB = 1e9;

/** The config of `base` with the method's gradient settings and exactly `nTerms` series terms per block. */
export function methodConfig(
  base: ResidualFlowConfig,
  method: MemoryMethod,
  nTerms: number,
): ResidualFlowConfig {
  const s = METHOD_SETTINGS[method];
  if (!s) {
    throw new Error(
      `Cannot configure memory method "${method}": expected one of ${MEMORY_METHODS.join(", ")}`,
    );
  }
  return makeConfig({
    ...base,
    estimator: { ...base.estimator, kind: "truncated", nTruncated: nTerms, ...s },
  });
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
 * of a second step (forward, mean bits/dim, gradients of every parameter). Everything the function
 * created is freed before it returns, so a device can be reused.
 */
export function measureStepPeak(config: ResidualFlowConfig, device: Device, opts: StepOptions): StepMemory {
  const model = new ResidualFlow(config, { rng: new Rng(opts.seed), device });
  const x = rand([opts.batch, ...config.inputShape], new Rng(opts.seed + 1), device);
  const step = (seed: number) =>
    tidy(() => {
      const out = model.forward(x, { training: true, rng: new Rng(seed) });
      if (!out.logpx) throw new Error("Cannot measure a training step: the model returned no log p(x)");
      const loss = mean(model.bitsPerDim(out.logpx));
      // Parameters are read after the forward: ActNorm replaces its parameters on first use.
      dispose(gradMaybe(loss, model.parameters().map((p) => p.value), { allowUnused: true }));
    });
  try {
    step(opts.seed + 2);
    device.resetPeak();
    const startBytes = device.memoryStats().bytesLive;
    step(opts.seed + 3);
    const stats = device.memoryStats();
    const params = model.parameters();
    const parameters = params.reduce((n, p) => n + p.value.size, 0);
    return {
      peakBytes: stats.peakBytes,
      startBytes,
      stepBytes: stats.peakBytes - startBytes,
      leakedBytes: stats.bytesLive - startBytes,
      parameters,
      parameterBytes: parameters * device.bytesPerElement,
    };
  } finally {
    x.dispose();
    for (const p of model.parameters()) p.value.dispose();
    for (const b of model.buffers()) b.set(null);
    for (const blk of model.residualBlocks()) {
      blk.lastUpstreamSpread?.dispose();
      blk.lastUpstreamSpread = null;
    }
  }
}
