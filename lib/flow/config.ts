/**
 * Model configuration: every option of the Residual Flow model builder, with the official code's
 * defaults (SPEC 1.0), and the paper's configurations per dataset (SPEC 1.1-1.9). Where the paper and
 * the official code differ (SPEC 1.12) the paper's choice is the default and the other is selectable.
 * @module
 */

/** Activation of the residual branches. */
export type ActivationName = "lipswish" | "elu" | "softplus" | "relu" | "identity";

/** Block type: invertible residual block, or the affine coupling baseline. */
export type BlockKind = "resblock" | "coupling";

/** Distribution of the Russian-roulette truncation N. */
export type NDist = "geometric" | "poisson";

/** Everything the model builder needs. */
export interface ResidualFlowConfig {
  /** Input shape [C, H, W] at data resolution (before squeeze-first). */
  readonly inputShape: readonly [number, number, number];
  /** Blocks per scale, e.g. [16, 16, 16]. */
  readonly nBlocks: readonly number[];
  /** Hidden channels of the conv residual branches (paper 512). */
  readonly hiddenChannels: number;
  /** Kernel sizes of the three branch convolutions (paper 3-1-3). */
  readonly kernels: readonly [number, number, number];
  /** Activation (paper LipSwish). */
  readonly activation: ActivationName;
  /** Per-layer Lipschitz coefficient (0.98; i-ResNet 0.90). */
  readonly coeff: number;
  /** Pre-activation branches (activation before the first conv, except the very first block). */
  readonly preact: boolean;
  /** ActNorm after every block (and before the first). */
  readonly actnorm: boolean;
  /** Fully connected residual blocks at the end (MNIST/CIFAR-10 density only). */
  readonly fcEnd: boolean;
  /** Hidden width of the FC blocks (128). */
  readonly fcHidden: number;
  /** Number of FC end blocks (4). */
  readonly fcBlocks: number;
  /** Factor out half of the channels after each squeeze but the first (large images). */
  readonly factorOut: boolean;
  /** One squeeze before the model (ImageNet 64, CelebA, the "CIFAR-10 small" ablation). */
  readonly squeezeFirst: boolean;
  /** Logit transform alpha, or null for none (hybrid CIFAR uses a Normalize instead). */
  readonly logitAlpha: number | null;
  /** Values per pixel of the data: 256 for 8-bit, 32 for 5-bit. */
  readonly nvals: number;
  /** Block type. */
  readonly block: BlockKind;
  /** Invertible 1x1 convolution before each block (the "+1x1 conv" baseline). */
  readonly quadratic: boolean;
  /** Log-det estimator settings for residual blocks. */
  readonly estimator: EstimatorConfig;
  /** Spectral normalisation settings. */
  readonly spectral: SpectralConfig;
}

/** How residual blocks estimate log det(I + J). */
export interface EstimatorConfig {
  /** Unbiased Russian roulette (Residual Flows) or a fixed biased truncation (i-ResNet). */
  readonly kind: "unbiased" | "truncated";
  /** Terms of the truncated series (i-ResNet used 5 or 10). */
  readonly nTruncated: number;
  /** Distribution of N (paper: geometric; official code: poisson). */
  readonly nDist: NDist;
  /** Geometric p (0.5) or Poisson lambda (2). */
  readonly nDistParam: number;
  /** Terms always computed before roulette (2). */
  readonly nExactTerms: number;
  /** Exact terms in evaluation mode (20). */
  readonly evalExactTerms: number;
  /** Neumann gradient series (Theorem 2). */
  readonly neumannGrad: boolean;
  /** Backward-in-forward (memory-efficient log-det gradients). */
  readonly backwardInForward: boolean;
}

/** Power-iteration settings of spectral normalisation. */
export interface SpectralConfig {
  /** null: adaptive (tolerance), else a fixed number of iterations per update. */
  readonly nIterations: number | null;
  /** atol = rtol of the adaptive stop (1e-3). */
  readonly tol: number;
  /** Iteration cap of the adaptive mode (200). */
  readonly maxIterations: number;
}

/** The official defaults (SPEC 1.0) with the paper's choices where they differ. */
export const DEFAULT_ESTIMATOR: EstimatorConfig = {
  kind: "unbiased",
  nTruncated: 5,
  nDist: "geometric",
  nDistParam: 0.5,
  nExactTerms: 2,
  evalExactTerms: 20,
  neumannGrad: true,
  backwardInForward: true,
};

/** Default power iteration: adaptive to 1e-3, at most 200 iterations. */
export const DEFAULT_SPECTRAL: SpectralConfig = { nIterations: null, tol: 1e-3, maxIterations: 200 };

/**
 * A configuration read from a file, with the estimator's `memEff` (this project's name for
 * backward-in-forward before it was renamed `backwardInForward`) under its current name, so checkpoints
 * written earlier still load and compare equal. Anything else is returned as it is.
 */
export function upgradeLegacyConfig(config: unknown): unknown {
  if (config === null || typeof config !== "object") return config;
  const est = (config as { estimator?: unknown }).estimator;
  if (est === null || typeof est !== "object" || !("memEff" in est)) return config;
  const { memEff, ...rest } = est as Record<string, unknown>;
  const estimator = "backwardInForward" in rest ? rest : { ...rest, backwardInForward: memEff };
  return { ...config, estimator };
}

/** Builds a config from overrides on the official defaults (SPEC 1.0). */
export function makeConfig(
  overrides: Partial<ResidualFlowConfig> & Pick<ResidualFlowConfig, "inputShape">,
): ResidualFlowConfig {
  overrides = upgradeLegacyConfig(overrides) as typeof overrides;
  const cfg: ResidualFlowConfig = {
    nBlocks: [16, 16, 16],
    hiddenChannels: 512,
    kernels: [3, 1, 3],
    activation: "lipswish",
    coeff: 0.98,
    preact: true,
    actnorm: true,
    fcEnd: true,
    fcHidden: 128,
    fcBlocks: 4,
    factorOut: false,
    squeezeFirst: false,
    logitAlpha: 0.05,
    nvals: 256,
    block: "resblock",
    quadratic: false,
    ...overrides,
    estimator: { ...DEFAULT_ESTIMATOR, ...(overrides.estimator ?? {}) },
    spectral: { ...DEFAULT_SPECTRAL, ...(overrides.spectral ?? {}) },
  };
  validateConfig(cfg);
  return cfg;
}

/** Throws a clear error naming the field and the expected values. */
export function validateConfig(c: ResidualFlowConfig): void {
  const bad = (field: string, value: unknown, expected: string) => {
    throw new Error(
      `Cannot build a Residual Flow: config field ${field} is ${JSON.stringify(value)}, expected ${expected}`,
    );
  };
  if (c.inputShape.length !== 3 || c.inputShape.some((v) => !Number.isInteger(v) || v < 1)) {
    bad("inputShape", c.inputShape, "[C, H, W] positive integers");
  }
  if (c.nBlocks.length < 1 || c.nBlocks.some((v) => !Number.isInteger(v) || v < 0)) {
    bad("nBlocks", c.nBlocks, "a non-empty list of non-negative integers");
  }
  if (!(c.coeff > 0 && c.coeff < 1)) bad("coeff", c.coeff, "a number in (0, 1)");
  if (!["lipswish", "elu", "softplus", "relu", "identity"].includes(c.activation)) {
    bad("activation", c.activation, "lipswish, elu, softplus, relu or identity");
  }
  if (c.hiddenChannels < 1) bad("hiddenChannels", c.hiddenChannels, "a positive integer");
  if (c.logitAlpha !== null && !(c.logitAlpha > 0 && c.logitAlpha < 0.5)) {
    bad("logitAlpha", c.logitAlpha, "null or a number in (0, 0.5)");
  }
  if (c.estimator.nDist === "geometric" && !(c.estimator.nDistParam > 0 && c.estimator.nDistParam < 1)) {
    bad("estimator.nDistParam", c.estimator.nDistParam, "a geometric p in (0, 1)");
  }
  if (c.estimator.nDist === "poisson" && !(c.estimator.nDistParam > 0)) {
    bad("estimator.nDistParam", c.estimator.nDistParam, "a Poisson lambda > 0");
  }
  const [, h, w] = c.inputShape;
  const side = c.squeezeFirst ? Math.min(h, w) / 2 : Math.min(h, w);
  if (c.squeezeFirst && (h % 2 !== 0 || w % 2 !== 0)) {
    bad("squeezeFirst", true, "an even input height and width");
  }
  if (!Number.isInteger(side)) bad("inputShape", c.inputShape, "sizes divisible by 2 with squeezeFirst");
}

/**
 * Number of scales actually built: min(len(nBlocks), number of halvings while H, W >= 4), as the
 * official code computes it (SPEC 4.3).
 */
export function numScales(c: ResidualFlowConfig): number {
  let [, h, w] = c.inputShape;
  if (c.squeezeFirst) {
    h /= 2;
    w /= 2;
  }
  let n = 1;
  while (h % 2 === 0 && w % 2 === 0 && h / 2 >= 4 && w / 2 >= 4) {
    n++;
    h /= 2;
    w /= 2;
  }
  return Math.min(c.nBlocks.length, n);
}

/** The paper's density-model configurations (SPEC 1.1-1.5); nothing here is shrunk. */
export const PAPER_CONFIGS: Record<string, ResidualFlowConfig> = {
  // MNIST: alpha 1e-5 in the paper (1e-6 in the official code, SPEC 1.12 item 2).
  mnist: makeConfig({ inputShape: [1, 28, 28], logitAlpha: 1e-5 }),
  cifar10: makeConfig({ inputShape: [3, 32, 32] }),
  // The ablation's "CIFAR-10 small": immediate invertible downsampling.
  cifar10_small: makeConfig({ inputShape: [3, 32, 32], squeezeFirst: true }),
  // ImageNet: the paper drops the FC blocks for datasets other than MNIST/CIFAR-10 (SPEC 1.3/1.12 item 4).
  imagenet32: makeConfig({ inputShape: [3, 32, 32], nBlocks: [32, 32, 32], fcEnd: false }),
  imagenet64: makeConfig({
    inputShape: [3, 64, 64],
    nBlocks: [32, 32, 32],
    fcEnd: false,
    factorOut: true,
    squeezeFirst: true,
  }),
  celebahq256: makeConfig({
    inputShape: [3, 256, 256],
    nBlocks: [16, 16, 16, 16, 16, 16],
    activation: "elu",
    fcEnd: false,
    factorOut: true,
    squeezeFirst: true,
    nvals: 32,
    estimator: { ...DEFAULT_ESTIMATOR, nExactTerms: 8 },
  }),
};
