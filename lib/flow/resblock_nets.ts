/**
 * The residual branches g of the official model (SPEC 4.3): the convolutional 3-1-3 branch
 * ([act] → conv k0 (C→h) → act → conv k1 (h→h) → … → act → conv kn (h→C), every convolution spectrally
 * normalised with padding k // 2, no activation after the last) and the fully connected branch
 * (flatten → [act] → Linear(D→h) → act → … → Linear(h→D) → reshape). Both are
 * {@link ResidualBranch}es for {@link IResBlock}; the Lipschitz layers they contain are listed by
 * `lipschitzLayers()` for the power-iteration update after each optimizer step.
 * @module
 */
import { reshape } from "../engine/ops/shape.ts";
import type { Rng } from "../engine/random.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { type ActivationKind, createActivation } from "./activations.ts";
import type { ResidualBranch } from "./estimators.ts";
import { OrderChain } from "./mixed_norm.ts";
import { type BufferState, type Module, nameChildren, type Parameter } from "./module.ts";
import { InducedNormLayer, SpectralNormConv2d, SpectralNormLinear } from "./spectral_norm.ts";

/** A module with a forward map (activations, normalised layers). */
export interface ApplyModule extends Module {
  /** The forward map. */
  apply(x: Tensor): Tensor;
}

/** Power-iteration settings passed to every normalised layer of a branch. */
export interface BranchSpectralOptions {
  /** Per-layer Lipschitz bound (default 0.98). */
  readonly coeff?: number;
  /** Fixed iterations per update, or null/undefined for adaptive. */
  readonly nIterations?: number | null;
  /** Adaptive tolerances (default 1e-3). */
  readonly atol?: number;
  /** Adaptive relative tolerance (default 1e-3). */
  readonly rtol?: number;
  /** Adaptive cap (default 200). */
  readonly maxIterations?: number;
}

/**
 * A chain of modules applied in order; children are named by their index ("0", "1", …, the layout of
 * the official `nn.Sequential`). Shared learnable norm orders, if any, are parameters "orders.<i>".
 */
export class SequentialBranch implements ResidualBranch {
  /** The modules in order. */
  readonly layers: readonly ApplyModule[];
  /** The norm orders of the Lipschitz layers (owns the learnable ones). */
  readonly orders: OrderChain | null;

  /** Wraps `layers`, prefixing their parameter and buffer names with their index. */
  constructor(layers: readonly ApplyModule[], orders: OrderChain | null = null) {
    this.layers = layers;
    this.orders = orders;
    layers.forEach((l, i) => nameChildren(`${i}`, l));
    if (orders) nameChildren("orders", orders);
  }

  /** Parameters of every layer in order, then the learnable orders. */
  parameters(): Parameter[] {
    return [...this.layers.flatMap((l) => l.parameters()), ...(this.orders?.parameters() ?? [])];
  }

  /** Buffers of every layer in order. */
  buffers(): BufferState[] {
    return this.layers.flatMap((l) => l.buffers());
  }

  /** The composition, first layer first. */
  apply(x: Tensor): Tensor {
    let h = x;
    for (const l of this.layers) {
      const next = l.apply(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }

  /** The spectrally normalised layers (for `updateLipschitzAll`). */
  lipschitzLayers(): InducedNormLayer[] {
    return this.layers.filter((l): l is InducedNormLayer & ApplyModule => l instanceof InducedNormLayer);
  }
}

/** Options of {@link buildConvBranch}. */
export interface ConvBranchOptions extends BranchSpectralOptions {
  /** Channels of x (and of g(x)). */
  readonly inChannels: number;
  /** Hidden channels (default 512, the paper's). */
  readonly hidden?: number;
  /** Kernel sizes, at least two (default [3, 1, 3]). */
  readonly kernels?: readonly number[];
  /** Activation (default "swish", LipSwish). */
  readonly activation?: ActivationKind;
  /** Activation before the first convolution (default true; false for the first block of scale 0). */
  readonly leadingActivation?: boolean;
  /** Norm orders: a vnorms string of kernels.length + 1 characters (default all "2"), or an OrderChain. */
  readonly vnorms?: string | OrderChain;
  /** Input resolution [H, W] if known (otherwise recorded on the first forward). */
  readonly inputHW?: readonly [number, number];
  /** Source of the initial weights (PyTorch default init) and the u, v draws. */
  readonly rng: Rng;
  /** Device of parameters and buffers. */
  readonly device: Device;
}

function orderChain(vnorms: string | OrderChain | undefined, layers: number): OrderChain {
  if (vnorms instanceof OrderChain) {
    if (vnorms.layers !== layers) {
      throw new Error(`Cannot use an order chain of ${vnorms.layers} layers for a branch of ${layers}`);
    }
    return vnorms;
  }
  return new OrderChain({ vnorms: vnorms ?? "2".repeat(layers + 1), layers });
}

/**
 * The convolutional residual branch of the official `_resblock` (kernels 3-1-3, hidden 512, LipSwish,
 * pre-activation; no batch norm or dropout).
 *
 * @example
 * ```ts
 * import { createDevice, Rng } from "../engine/mod.ts";
 * import { IResBlock } from "./iresblock.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const g = buildConvBranch({ inChannels: 3, hidden: 512, rng, device });
 * const block = new IResBlock(g);
 * ```
 */
export function buildConvBranch(opts: ConvBranchOptions): SequentialBranch {
  const ks = opts.kernels ?? [3, 1, 3];
  const hidden = opts.hidden ?? 512;
  if (ks.length < 2 || ks.some((k) => !Number.isInteger(k) || k < 1 || k % 2 === 0)) {
    throw new Error(`Cannot build a conv branch with kernels [${ks}]: expected at least two odd sizes`);
  }
  if (!Number.isInteger(hidden) || hidden < 1) {
    throw new Error(`Cannot build a conv branch with hidden = ${hidden}: expected a positive integer`);
  }
  const chain = orderChain(opts.vnorms, ks.length);
  const act = () => createActivation(opts.activation ?? "swish", { device: opts.device });
  const layers: ApplyModule[] = [];
  if (opts.leadingActivation ?? true) layers.push(act());
  ks.forEach((k, i) => {
    layers.push(
      new SpectralNormConv2d({
        inChannels: i === 0 ? opts.inChannels : hidden,
        outChannels: i === ks.length - 1 ? opts.inChannels : hidden,
        kernelSize: k,
        padding: Math.floor(k / 2),
        inputHW: k === 1 ? undefined : opts.inputHW,
        coeff: opts.coeff,
        nIterations: opts.nIterations,
        atol: opts.atol,
        rtol: opts.rtol,
        maxIterations: opts.maxIterations,
        domain: chain.domain(i),
        codomain: chain.codomain(i),
        rng: opts.rng,
        device: opts.device,
      }),
    );
    if (i < ks.length - 1) layers.push(act());
  });
  return new SequentialBranch(layers, chain.orders.length > 0 ? chain : null);
}

/** Options of {@link buildFcBranch}. */
export interface FcBranchOptions extends BranchSpectralOptions {
  /** Per-example shape [C, H, W] (or any shape) of x. */
  readonly inputShape: readonly number[];
  /** Hidden width (default 128, the official `fc_idim`). */
  readonly hidden?: number;
  /** Hidden layers (default 2: Linear(D→h), Linear(h→h), then Linear(h→D)). */
  readonly nHidden?: number;
  /** Activation (default "swish"). */
  readonly activation?: ActivationKind;
  /** Activation before the first linear layer (default true). */
  readonly leadingActivation?: boolean;
  /** Norm orders: vnorms of nHidden + 2 characters (default all "2"), or an OrderChain. */
  readonly vnorms?: string | OrderChain;
  /** Source of the initial weights and the u, v draws. */
  readonly rng: Rng;
  /** Device of parameters and buffers. */
  readonly device: Device;
}

/**
 * The fully connected residual branch (official `FCNet`): x [B, ...shape] is flattened, passed through
 * the chain, and reshaped back. Its chain is the child "nnet" (official names "nnet.<i>.…").
 */
export class FcBranch implements ResidualBranch {
  /** The chain of layers. */
  readonly nnet: SequentialBranch;
  /** Per-example shape. */
  readonly inputShape: readonly number[];

  /** Wraps a chain for inputs of `inputShape`. */
  constructor(nnet: SequentialBranch, inputShape: readonly number[]) {
    this.nnet = nnet;
    this.inputShape = [...inputShape];
    nameChildren("nnet", nnet);
  }

  /** The chain's parameters. */
  parameters(): Parameter[] {
    return this.nnet.parameters();
  }

  /** The chain's buffers. */
  buffers(): BufferState[] {
    return this.nnet.buffers();
  }

  /** reshape(nnet(flatten(x))). */
  apply(x: Tensor): Tensor {
    const d = this.inputShape.reduce((a, b) => a * b, 1);
    if (x.size !== x.shape[0] * d) {
      throw new Error(`Cannot apply an FC branch for shape [${this.inputShape}] to input [${x.shape}]`);
    }
    const flat = reshape(x, [x.shape[0], d]);
    const y = this.nnet.apply(flat);
    flat.dispose();
    const out = reshape(y, x.shape);
    y.dispose();
    return out;
  }

  /** The spectrally normalised layers. */
  lipschitzLayers(): InducedNormLayer[] {
    return this.nnet.lipschitzLayers();
  }
}

/**
 * The fully connected residual branch of the official FC end blocks.
 *
 * @example
 * ```ts
 * import { createDevice, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const g = buildFcBranch({ inputShape: [64, 4, 4], rng, device }); // 1024 → 128 → 128 → 1024
 * ```
 */
export function buildFcBranch(opts: FcBranchOptions): FcBranch {
  const d = opts.inputShape.reduce((a, b) => a * b, 1);
  const hidden = opts.hidden ?? 128;
  const nHidden = opts.nHidden ?? 2;
  if (!Number.isInteger(nHidden) || nHidden < 1 || !Number.isInteger(hidden) || hidden < 1 || !(d >= 1)) {
    throw new Error(
      `Cannot build an FC branch with shape [${opts.inputShape}], hidden ${hidden}, nHidden ${nHidden}: expected positive integers`,
    );
  }
  const chain = orderChain(opts.vnorms, nHidden + 1);
  const act = () => createActivation(opts.activation ?? "swish", { device: opts.device });
  const layers: ApplyModule[] = [];
  if (opts.leadingActivation ?? true) layers.push(act());
  for (let i = 0; i <= nHidden; i++) {
    layers.push(
      new SpectralNormLinear({
        inFeatures: i === 0 ? d : hidden,
        outFeatures: i === nHidden ? d : hidden,
        coeff: opts.coeff,
        nIterations: opts.nIterations,
        atol: opts.atol,
        rtol: opts.rtol,
        maxIterations: opts.maxIterations,
        domain: chain.domain(i),
        codomain: chain.codomain(i),
        rng: opts.rng,
        device: opts.device,
      }),
    );
    if (i < nHidden) layers.push(act());
  }
  return new FcBranch(new SequentialBranch(layers, chain.orders.length > 0 ? chain : null), opts.inputShape);
}
