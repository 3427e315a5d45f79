/**
 * Residual Flows on WebGPU, in Deno: a reproducibility suite and library for "Residual Flows for
 * Invertible Generative Modeling" (Chen, Behrmann, Duvenaud, Jacobsen, NeurIPS 2019).
 *
 * This module gives the tensor engine: devices (a WebGPU backend that runs on any adapter, including
 * Mesa's llvmpipe without a GPU; a CPU reference backend in float32 or float64; a meta backend that
 * runs shapes only to measure memory), tensors with explicit ownership (`tidy`, `dispose`, `keep`),
 * differentiable primitive ops and reverse-mode autograd with gradients of gradients. On top of it:
 * the Residual Flow library (Lipschitz layers, the unbiased log-det estimator with Neumann gradients
 * and backward-in-forward, inverses, the multiscale model builder `ResidualFlow`: config in, model
 * out) and the training pieces (Adam, gradient clipping, EMA).
 *
 * @example
 * ```ts
 * import { createDevice, grad, mul, requireGrad, setDefaultDevice, sum, tensor } from "./mod.ts";
 *
 * setDefaultDevice(await createDevice("cpu")); // or "webgpu"
 * const x = requireGrad(tensor([1, 2, 3]));
 * const [dx] = grad(sum(mul(x, x)), [x]);
 * console.log(await dx.read()); // Float32Array [2, 4, 6]
 * ```
 *
 * @example
 * ```ts
 * import { createDevice, makeConfig, mean, rand, ResidualFlow, Rng } from "./mod.ts";
 *
 * const device = await createDevice("cpu");
 * const config = makeConfig({ inputShape: [1, 28, 28], nBlocks: [2, 2], hiddenChannels: 32, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * const x = rand([4, 1, 28, 28], new Rng(1), device); // dequantised images in [0, 1)
 * const out = model.forward(x, { training: false, rng: new Rng(2) });
 * console.log(await mean(model.bitsPerDim(out.logpx!)).item()); // bits/dim (eval estimator)
 * ```
 * @module
 */
export * from "./lib/engine/mod.ts";
export {
  checkGradient,
  checkHessianVector,
  type CheckInput,
  type CheckReport,
  type ScalarFn,
} from "./lib/engine/gradcheck.ts";
export * from "./lib/flow/mod.ts";
export * from "./lib/train/mod.ts";
// Datasets. The data module's own seeded generator and dequantiser share names with the engine's and
// the flow library's; those names resolve to the engine (`Rng`) and the flow library (`dequantize`), and
// the data versions are exported as `DataRng` and `dequantizeBatch`.
export * from "./lib/data/mod.ts";
export { Rng } from "./lib/engine/mod.ts";
export { dequantize } from "./lib/flow/mod.ts";
export { dequantize as dequantizeBatch, Rng as DataRng } from "./lib/data/mod.ts";
export { type Dtype, DTYPES, type SafeTensor, type TensorData } from "./lib/artifacts/safetensors.ts";
// The authors' released checkpoints (.pth, read without Python): load, evaluate, convert.
export * from "./lib/official/mod.ts";
