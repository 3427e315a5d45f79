/**
 * Residual Flows on WebGPU, in Deno: a reproducibility suite and library for "Residual Flows for
 * Invertible Generative Modeling" (Chen, Behrmann, Duvenaud, Jacobsen, NeurIPS 2019).
 *
 * This root module is the common path: devices (WebGPU on any adapter, including Mesa's llvmpipe
 * without a GPU; a CPU reference backend in float32 or float64), tensors with explicit ownership
 * (`tidy`, `dispose`, `keep`), the differentiable ops and reverse-mode autograd; the Residual Flow
 * model (`makeConfig` → `ResidualFlow`: forward with the unbiased log-det estimator, exact log-det,
 * inverse, sampling, bits/dim), its layers; training (Adam, clipping, EMA, the `Trainer`, evaluation,
 * checkpoints, `saveModel` / `loadModel`); and the datasets. Everything else, internals included, is
 * in the subpath modules: `./engine`, `./flow`, `./train`, `./data` and `./artifacts` (PNG grids,
 * plots, versioned JSON, safetensors).
 *
 * @example
 * ```ts
 * import { createDevice, grad, mul, requireGrad, setDefaultDevice, sum, tensor } from "./mod.ts";
 *
 * setDefaultDevice(await createDevice("cpu")); // or "webgpu", or "auto"
 * const x = requireGrad(tensor([1, 2, 3]));
 * const [dx] = grad(sum(mul(x, x)), [x]);
 * console.log(await dx.read()); // Float32Array [2, 4, 6]
 * ```
 *
 * @example
 * ```ts
 * import { createDevice, makeConfig, mean, rand, ResidualFlow, Rng } from "./mod.ts";
 *
 * const device = await createDevice("auto");
 * const config = makeConfig({ inputShape: [1, 28, 28], nBlocks: [2, 2], hiddenChannels: 32, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * const x = rand([4, 1, 28, 28], new Rng(1), device); // dequantised images in [0, 1)
 * const out = model.forward(x, { training: false, rng: new Rng(2) });
 * console.log(await mean(model.bitsPerDim(out.logpx!)).item()); // bits/dim (eval estimator)
 * ```
 * @module
 */

// Devices, tensors and autograd.
export {
  createDevice,
  type CreateDeviceOptions,
  DEVICE_KINDS,
  type DeviceKind,
  getDefaultDevice,
  setDefaultDevice,
  withDevice,
} from "./lib/engine/devices.ts";
export type { DType, Shape } from "./lib/engine/backend.ts";
export {
  Device,
  dispose,
  isGradEnabled,
  noGrad,
  Tensor,
  tidy,
  tidyAsync,
  withGradMode,
} from "./lib/engine/tensor.ts";
export { grad, gradMaybe, type GradOptions, vjp } from "./lib/engine/autograd.ts";
export {
  full,
  ones,
  onesLike,
  parameter,
  requireGrad,
  scalarConst,
  tensor,
  zeros,
  zerosLike,
} from "./lib/engine/ops/creation.ts";
export {
  abs,
  add,
  div,
  elu,
  eq,
  exp,
  ge,
  gt,
  le,
  log,
  log1p,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  recip,
  relu,
  sigmoid,
  sign,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
  where,
} from "./lib/engine/ops/elementwise.ts";
export { logsumexp, max, mean, sum } from "./lib/engine/ops/reduce.ts";
export {
  concat,
  expand,
  flatten,
  pad,
  permute,
  reshape,
  slice,
  sliceAxis,
  transpose,
} from "./lib/engine/ops/shape.ts";
export { matmul } from "./lib/engine/ops/linalg.ts";
export { conv2d, type Conv2dOptions, convTranspose2d } from "./lib/engine/ops/conv.ts";
export { crossEntropy, gather, logSoftmax, oneHot } from "./lib/engine/ops/nn.ts";
export { rand, randn, Rng, type RngState } from "./lib/engine/random.ts";
export {
  checkGradient,
  checkHessianVector,
  type CheckInput,
  type CheckReport,
  type ScalarFn,
} from "./lib/engine/gradcheck.ts";

// The Residual Flow model and its layers.
export {
  type ActivationName,
  type BlockKind,
  DEFAULT_ESTIMATOR,
  DEFAULT_SPECTRAL,
  type EstimatorConfig,
  makeConfig,
  type NDist,
  numScales,
  PAPER_CONFIGS,
  type ResidualFlowConfig,
  type SpectralConfig,
  validateConfig,
} from "./lib/flow/config.ts";
export {
  type BuildOptions,
  type ModelOutput,
  ResidualFlow,
  type ScaleShape,
  type Stage,
} from "./lib/flow/model.ts";
export {
  BufferState,
  type FlowContext,
  type FlowLayer,
  type FlowOutput,
  type Module,
  Parameter,
} from "./lib/flow/module.ts";
export { IResBlock, type IResBlockOptions } from "./lib/flow/iresblock.ts";
export {
  type Activation,
  type ActivationKind,
  createActivation,
  Elu,
  LipSwish,
  type LipSwishOptions,
} from "./lib/flow/activations.ts";
export { ActNorm1d, ActNorm2d } from "./lib/flow/actnorm.ts";
export { LogitTransform } from "./lib/flow/logit.ts";
export { Squeeze, squeeze2d, unsqueeze2d } from "./lib/flow/squeeze.ts";
export { dequantize, dequantizeHost } from "./lib/flow/dequantize.ts";
export {
  bitsPerDim,
  bitsPerDimHost,
  type BitsPerDimOptions,
  discreteLogLikelihood,
  samplePrior,
  standardNormalLogProb,
} from "./lib/flow/prior.ts";
export { exactLogdet } from "./lib/flow/exact_logdet.ts";
export { type LipschitzUpdate, SpectralNormConv2d, SpectralNormLinear } from "./lib/flow/spectral_norm.ts";
export { buildConvBranch, buildFcBranch, SequentialBranch } from "./lib/flow/resblock_nets.ts";

// Training.
export { Adam, type AdamOptions, clipGradNorm } from "./lib/train/optimizer.ts";
export { Ema } from "./lib/train/ema.ts";
export { densityLoss, Trainer } from "./lib/train/trainer.ts";
export type { LossFn, RunOptions, RunResult, StepResult, TrainerOptions } from "./lib/train/train_types.ts";
export { type EvalResult, evaluateBitsPerDim, type EvaluateOptions } from "./lib/train/evaluate.ts";
export {
  type CheckpointMeta,
  readCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from "./lib/train/checkpoint.ts";
export { loadModel, type LoadModelOptions, saveModel, type SaveModelOptions } from "./lib/train/model_io.ts";

// Datasets (the data module's own generator and dequantiser are `./data`'s `Rng` and `dequantize`).
export { type Batch, Batcher, type BatchOptions, type BatchSource } from "./lib/data/batches.ts";
export type { Dataset, Labels, Split } from "./lib/data/dataset.ts";
export { DATASET_NAMES, type DatasetName } from "./lib/data/sources.ts";
export { loadDataset, type LoadOptions } from "./lib/data/registry.ts";
export { downloadDataset, type DownloadOptions } from "./lib/data/download.ts";
export { DatasetError } from "./lib/data/errors.ts";

// The authors' released checkpoints (.pth, read without Python): load, evaluate, convert; tensors by name.
export {
  buildOfficialModel,
  convertOfficialCheckpoint,
  evaluatePerImage,
  type LoadedModelFile,
  loadModelFile,
  type LoadModelFileOptions,
  officialConfig,
  type PerImageOptions,
  type PerImageResult,
  readOfficialCheckpoint,
  readTorchCheckpoint,
  type TorchCheckpoint,
  TorchFileError,
  type TorchTensor,
  type TorchValue,
} from "./lib/official/mod.ts";
export { type HostTensor, type NamedTensor, namedTensors, setTensor } from "./lib/flow/named.ts";
