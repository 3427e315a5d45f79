/**
 * The tensor engine: devices (CPU reference, WebGPU, meta), tensors with explicit ownership,
 * differentiable primitive ops and reverse-mode autograd with higher-order gradients.
 * @module
 */
export type {
  Backend,
  BinaryOp,
  Conv2dGeometry,
  DType,
  ReduceOp,
  Shape,
  Storage,
  UnaryOp,
} from "./backend.ts";
export { broadcastShapes, conv2dOutputShape, sizeOf } from "./backend.ts";
export {
  createDevice,
  type CreateDeviceOptions,
  DEVICE_KINDS,
  type DeviceKind,
  getDefaultDevice,
  setDefaultDevice,
  withDevice,
} from "./devices.ts";
export { MemoryAccount, type MemoryStats } from "./memory.ts";
export { type BackwardFn, Node } from "./graph.ts";
export {
  Buffer,
  Device,
  dispose,
  isGradEnabled,
  noGrad,
  Tensor,
  tidy,
  tidyAsync,
  withGradMode,
} from "./tensor.ts";
export { grad, gradMaybe, type GradOptions, vjp } from "./autograd.ts";
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
} from "./ops/creation.ts";
export * from "./ops/elementwise.ts";
export { logsumexp, max, mean, normalizeAxes, sum, sumTo } from "./ops/reduce.ts";
export {
  concat,
  expand,
  flatten,
  pad,
  permute,
  reshape,
  slice,
  sliceAxis,
  splitFlat,
  transpose,
} from "./ops/shape.ts";
export { matmul } from "./ops/linalg.ts";
export {
  conv2d,
  conv2dInputGradOp,
  type Conv2dOptions,
  conv2dWeightGradOp,
  convTranspose2d,
} from "./ops/conv.ts";
export { crossEntropy, gather, logSoftmax, oneHot } from "./ops/nn.ts";
export { composite } from "./ops/record.ts";
export { rand, randGeometric, randn, randPoisson, Rng, type RngState } from "./random.ts";
export { addFlops, flopCount, resetFlops } from "./flops.ts";
