/**
 * Peak memory of one training step of a ResidualFlow (forward, bits/dim, gradients of every
 * parameter) for the four ways of getting log-det gradients (SPEC 2.2, paper Fig. 3): naive backprop
 * through the power series, the Neumann gradient series, backward-in-forward, and both. Meant for the
 * meta device, which tracks every allocation and release without doing arithmetic, so paper-size
 * models can be measured on any machine; real devices report the same bytes.
 * @module
 */
import { gradMaybe } from "../engine/autograd.ts";
import { mean } from "../engine/ops/reduce.ts";
import { rand, Rng } from "../engine/random.ts";
import { type Device, dispose, tidy } from "../engine/tensor.ts";
import { makeConfig, type ResidualFlowConfig } from "./config.ts";
import { ResidualFlow } from "./model.ts";

/** How log-det gradients are computed in training. */
export type GradientMode = "naive" | "neumann" | "backwardInForward" | "both";

/** The four modes, in the order of the paper's Fig. 3 bars. */
export const GRADIENT_MODES: readonly GradientMode[] = ["naive", "neumann", "backwardInForward", "both"];

/** The estimator flags of a mode: Neumann series and/or backward-in-forward. */
export function gradientModeFlags(mode: GradientMode): { neumannGrad: boolean; backwardInForward: boolean } {
  switch (mode) {
    case "naive":
      return { neumannGrad: false, backwardInForward: false };
    case "neumann":
      return { neumannGrad: true, backwardInForward: false };
    case "backwardInForward":
      return { neumannGrad: false, backwardInForward: true };
    case "both":
      return { neumannGrad: true, backwardInForward: true };
    default:
      throw new Error(
        `Cannot use gradient mode "${mode}": expected naive, neumann, backwardInForward or both`,
      );
  }
}

/**
 * `config` with a mode's gradient flags and a fixed number of series terms (the paper's memory
 * figure computes n = 10 terms: the truncated series with `nTerms` terms).
 */
export function memoryConfig(
  config: ResidualFlowConfig,
  mode: GradientMode,
  nTerms = 10,
): ResidualFlowConfig {
  return makeConfig({
    ...config,
    estimator: { ...config.estimator, kind: "truncated", nTruncated: nTerms, ...gradientModeFlags(mode) },
  });
}

/** Options of {@link measureTrainingStep}. */
export interface TrainingStepMemoryOptions {
  /** Device to build on (normally the meta device). */
  readonly device: Device;
  /** Batch size (the paper's figure: 64). */
  readonly batch: number;
  /** Seed of the weights, the input batch and the estimator draws (default 0). */
  readonly seed?: number;
}

/** What one training step held. */
export interface TrainingStepMemory {
  /** Trainable parameter count. */
  readonly parameters: number;
  /** Bytes of the model's parameters. */
  readonly paramBytes: number;
  /** Bytes live just before the step: parameters, buffers and the input batch. */
  readonly restingBytes: number;
  /** Highest bytes live during the step above `restingBytes`. */
  readonly stepPeakBytes: number;
  /** restingBytes + stepPeakBytes: the device's high-water mark during the step. */
  readonly peakBytes: number;
  /** Bytes live after the step's results were freed, minus `restingBytes` (0 when nothing leaked). */
  readonly leakedBytes: number;
}

/**
 * Builds a model from `config`, runs one warm-up training step (ActNorm's data-dependent
 * initialisation, cached constants), then measures one training step: a training-mode forward,
 * the batch-mean bits/dim, and the gradients of every parameter (released at once, as an optimizer
 * step would consume them). The model and the batch are freed afterwards.
 *
 * @example
 * ```ts
 * import { createDevice } from "../engine/mod.ts";
 * import { PAPER_CONFIGS } from "./config.ts";
 *
 * const meta = await createDevice("meta");
 * const m = measureTrainingStep(memoryConfig(PAPER_CONFIGS.mnist, "both"), { device: meta, batch: 64 });
 * console.log(m.peakBytes / 2 ** 30, "GiB");
 * ```
 */
export function measureTrainingStep(
  config: ResidualFlowConfig,
  opts: TrainingStepMemoryOptions,
): TrainingStepMemory {
  const { device, batch } = opts;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`Cannot measure a training step with batch ${batch}: expected a positive integer`);
  }
  const model = new ResidualFlow(config, { rng: new Rng(seed), device });
  const x = rand([batch, ...config.inputShape], new Rng(seed + 1), device);
  try {
    const params = model.parameters();
    const step = (s: number) =>
      tidy(() => {
        const out = model.forward(x, { training: true, rng: new Rng(seed + 2 + s) });
        const loss = mean(model.bitsPerDim(out.logpx!));
        dispose(gradMaybe(loss, params.map((p) => p.value), { allowUnused: true }));
      });
    step(0);
    device.resetPeak();
    const restingBytes = device.memoryStats().bytesLive;
    step(1);
    const stats = device.memoryStats();
    const parameters = params.reduce((n, p) => n + p.value.size, 0);
    return {
      parameters,
      paramBytes: parameters * device.bytesPerElement,
      restingBytes,
      stepPeakBytes: stats.peakBytes - restingBytes,
      peakBytes: stats.peakBytes,
      leakedBytes: stats.bytesLive - restingBytes,
    };
  } finally {
    x.dispose();
    model.dispose();
  }
}
