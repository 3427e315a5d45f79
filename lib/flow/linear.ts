/**
 * Plain (unconstrained) Conv2d and Linear layers with PyTorch's default initialisation, for the
 * coupling baseline's s/t networks and the hybrid classifier head, plus the initialisers shared with
 * the spectrally normalised layers: Kaiming-uniform with a = √5, i.e. U(±1/√fan_in), for the weight and
 * U(±1/√fan_in) for the bias.
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { add, conv2d, type Conv2dOptions, matmul, reshape } from "../engine/mod.ts";
import type { Rng } from "../engine/random.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { type BufferState, type Module, Parameter } from "./module.ts";

/**
 * U(±bound) values with bound = gain·√(3/fan_in), gain = √(2/(1 + a²)) and a = √5 (PyTorch's
 * `kaiming_uniform_(w, a=√5)`), which is U(±1/√fan_in).
 */
export function kaimingUniform(shape: readonly number[], fanIn: number, rng: Rng, device: Device): Tensor {
  if (!(fanIn > 0)) throw new Error(`Cannot initialise a weight of shape ${fmt(shape)}: fan_in is ${fanIn}`);
  const a = Math.sqrt(5);
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  let n = 1;
  for (const d of shape) n *= d;
  return tensor(rng.fill(n, (r) => (2 * r.uniform() - 1) * bound), shape, device);
}

/** PyTorch's default bias: U(±1/√fan_in). */
export function defaultBias(size: number, fanIn: number, rng: Rng, device: Device): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tensor(rng.fill(size, (r) => (2 * r.uniform() - 1) * bound), [size], device);
}

/** Options of {@link Conv2d}. */
export interface Conv2dLayerOptions {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** Square kernel size. */
  readonly kernelSize: number;
  /** Stride (default 1). */
  readonly stride?: number;
  /** Zero padding on every side (default 0, as PyTorch). */
  readonly padding?: number;
  /** Add a bias (default true). */
  readonly bias?: boolean;
  /** Source of the initial weights. */
  readonly rng: Rng;
  /** Device of the parameters. */
  readonly device: Device;
}

/**
 * A plain 2-D convolution (PyTorch `nn.Conv2d`): parameters "weight" [O, C, k, k] and "bias" [O].
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const conv = new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, rng, device });
 * const y = conv.apply(randn([2, 3, 8, 8], rng, device));
 * ```
 */
export class Conv2d implements Module {
  /** Weight [O, C, k, k]. */
  readonly weight: Parameter;
  /** Bias [O], or null. */
  readonly bias: Parameter | null;
  /** Stride and padding. */
  readonly conv: Required<Conv2dOptions>;

  /** Creates the layer with PyTorch's default initialisation drawn from `rng`. */
  constructor(opts: Conv2dLayerOptions) {
    const { inChannels: c, outChannels: o, kernelSize: k } = opts;
    for (const [name, v] of [["inChannels", c], ["outChannels", o], ["kernelSize", k]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`Cannot create Conv2d: ${name} is ${v}, expected >= 1`);
      }
    }
    const fanIn = c * k * k;
    this.weight = new Parameter("weight", kaimingUniform([o, c, k, k], fanIn, opts.rng, opts.device));
    this.bias = opts.bias === false
      ? null
      : new Parameter("bias", defaultBias(o, fanIn, opts.rng, opts.device));
    this.conv = { stride: opts.stride ?? 1, pad: opts.padding ?? 0 };
  }

  /** conv2d(x, weight) + bias. */
  apply(x: Tensor): Tensor {
    return conv2d(x, this.weight.value, this.bias?.value ?? null, this.conv);
  }

  /** [weight, bias]. */
  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** Options of {@link Linear}. */
export interface LinearLayerOptions {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
  /** Add a bias (default true). */
  readonly bias?: boolean;
  /** Source of the initial weights. */
  readonly rng: Rng;
  /** Device of the parameters. */
  readonly device: Device;
}

/** A plain affine layer y = x·Wᵀ + b (PyTorch `nn.Linear`): "weight" [out, in], "bias" [out]. */
export class Linear implements Module {
  /** Weight [out, in]. */
  readonly weight: Parameter;
  /** Bias [out], or null. */
  readonly bias: Parameter | null;

  /** Creates the layer with PyTorch's default initialisation drawn from `rng`. */
  constructor(opts: LinearLayerOptions) {
    const { inFeatures: i, outFeatures: o } = opts;
    if (!Number.isInteger(i) || i < 1 || !Number.isInteger(o) || o < 1) {
      throw new Error(`Cannot create Linear(${i} -> ${o}): sizes must be positive integers`);
    }
    this.weight = new Parameter("weight", kaimingUniform([o, i], i, opts.rng, opts.device));
    this.bias = opts.bias === false ? null : new Parameter("bias", defaultBias(o, i, opts.rng, opts.device));
  }

  /** x [B, in] → [B, out]. */
  apply(x: Tensor): Tensor {
    return linear(x, this.weight.value, this.bias?.value ?? null);
  }

  /** [weight, bias]. */
  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** y = x·Wᵀ + b for x [B, in], W [out, in] (PyTorch `F.linear`). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `Cannot apply a linear layer of weight ${fmt(weight.shape)} to input ${fmt(x.shape)}: expected [B, ${
        weight.shape[1]
      }]`,
    );
  }
  const y = matmul(x, weight, false, true);
  return bias ? add(y, reshape(bias, [1, weight.shape[0]])) : y;
}
