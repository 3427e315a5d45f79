/**
 * Residual Flows on WebGPU, in Deno: a reproducibility suite and library for "Residual Flows for
 * Invertible Generative Modeling" (Chen, Behrmann, Duvenaud, Jacobsen, NeurIPS 2019).
 *
 * This module gives the tensor engine: devices (a WebGPU backend that runs on any adapter, including
 * Mesa's llvmpipe without a GPU; a CPU reference backend in float32 or float64; a meta backend that
 * runs shapes only to measure memory), tensors with explicit ownership (`tidy`, `dispose`, `keep`),
 * differentiable primitive ops and reverse-mode autograd with gradients of gradients.
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
