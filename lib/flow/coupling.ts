/**
 * Affine coupling blocks of the coupling baseline (SPEC §6; official `coupling.py`,
 * `StackedCouplingBlocks`):
 * - {@link MaskedCouplingBlock} (scale 0, which has the init layer): a checkerboard mask b; the net sees
 *   b·x (all C channels) and outputs 2C channels: s = sigmoid(f[:, :C] + 2), t = f[:, C:];
 *   y = (x·s + t)·(1 − b) + b·x; log|det| = Σ (1 − b)·log s.
 * - {@link ChannelCouplingBlock} (later scales): halves of C/2 channels; the net sees the kept half and
 *   outputs C channels, s = f[:, :C/2], t = f[:, C/2:]; the other half becomes x_b·sigmoid(s + 2) + t;
 *   log|det| = Σ log sigmoid(s + 2). "channel0" keeps the first half, "channel1" the second.
 * - The net is the residual blocks' 3-1-3 conv stack with plain (unnormalised) convolutions:
 *   [act] → Conv k0 (→ hidden) → act → Conv k1 (→ hidden) → act → Conv k2 (→ out), padding k//2, with a
 *   leading activation unless the block is the first one of scale 0.
 * - Masks alternate from block to block: see {@link alternatingMask}.
 * Every inverse is exact (one net evaluation on the unchanged half). Parameter names follow the
 * official `nn.Sequential`: "nnet.<index>.weight", "nnet.<index>.bias", "nnet.<index>.beta".
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { add, div, mul, neg, sigmoid, softplus, sub } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, reshape, sliceAxis } from "../engine/ops/shape.ts";
import type { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { type Activation, type ActivationKind, createActivation } from "./activations.ts";
import { Conv2d } from "./linear.ts";
import {
  type BufferState,
  type FlowContext,
  type FlowLayer,
  type FlowOutput,
  type Module,
  nameChildren,
  type Parameter,
} from "./module.ts";

/** Options of {@link CouplingNet}. */
export interface CouplingNetOptions {
  /** Input channels of the net. */
  readonly inChannels: number;
  /** Output channels of the net. */
  readonly outChannels: number;
  /** Hidden channels (512 in the paper's models). */
  readonly hidden: number;
  /** Kernel sizes (default [3, 1, 3]). */
  readonly kernels?: readonly number[];
  /** Activation (default "swish", i.e. LipSwish). */
  readonly activation?: ActivationKind;
  /** Start with an activation (default true; false for the first block of scale 0). */
  readonly leadingActivation?: boolean;
  /** Source of the initial weights. */
  readonly rng: Rng;
  /** Device of the parameters. */
  readonly device: Device;
}

/** The s/t network: a plain conv stack, as an ordered list of layers named by index. */
export class CouplingNet implements Module {
  /** The layers in order (activations and convolutions). */
  readonly layers: readonly (Activation | Conv2d)[];

  /** Builds the stack. */
  constructor(opts: CouplingNetOptions) {
    const ks = opts.kernels ?? [3, 1, 3];
    if (ks.length < 1 || ks.some((k) => !Number.isInteger(k) || k < 1 || k % 2 === 0)) {
      throw new Error(
        `Cannot build a coupling net with kernels [${ks.join(", ")}]: expected odd positive sizes`,
      );
    }
    const act = () => createActivation(opts.activation ?? "swish", { device: opts.device });
    const conv = (i: number, o: number, k: number) =>
      new Conv2d({
        inChannels: i,
        outChannels: o,
        kernelSize: k,
        padding: Math.floor(k / 2),
        rng: opts.rng,
        device: opts.device,
      });
    const layers: (Activation | Conv2d)[] = [];
    if (opts.leadingActivation ?? true) layers.push(act());
    ks.forEach((k, i) => {
      const cin = i === 0 ? opts.inChannels : opts.hidden;
      const cout = i === ks.length - 1 ? opts.outChannels : opts.hidden;
      layers.push(conv(cin, cout, k));
      if (i < ks.length - 1) layers.push(act());
    });
    layers.forEach((l, i) => nameChildren(`${i}`, l));
    this.layers = layers;
  }

  /** f(x). */
  apply(x: Tensor): Tensor {
    return tidy(() => {
      let h = x;
      for (const l of this.layers) h = l.apply(h);
      return h;
    });
  }

  /** Every layer's parameters, in order. */
  parameters(): Parameter[] {
    return this.layers.flatMap((l) => l.parameters());
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** The four official mask types. */
export type MaskType = "checkerboard0" | "checkerboard1" | "channel0" | "channel1";

/**
 * The mask of block `index` (0-based) in a stack, as the official global toggle gives it: even blocks
 * get "…0", odd blocks "…1".
 */
export function alternatingMask(kind: "checkerboard" | "channel", index: number): MaskType {
  return `${kind}${index % 2}` as MaskType;
}

/** log sigmoid(z), computed stably as −softplus(−z). */
function logSigmoid(z: Tensor): Tensor {
  return neg(softplus(neg(z)));
}

/** Settings shared by the coupling blocks. */
export interface CouplingBlockOptions {
  /** Channels C of the block's input. */
  readonly channels: number;
  /** Hidden channels of the net. */
  readonly hidden: number;
  /** Kernel sizes (default [3, 1, 3]). */
  readonly kernels?: readonly number[];
  /** Activation (default "swish"). */
  readonly activation?: ActivationKind;
  /** Leading activation in the net (default true). */
  readonly leadingActivation?: boolean;
  /** Source of the initial weights. */
  readonly rng: Rng;
  /** Device. */
  readonly device: Device;
}

function netOptions(o: CouplingBlockOptions, inChannels: number, outChannels: number): CouplingNetOptions {
  return { ...o, inChannels, outChannels };
}

/**
 * Checkerboard-masked affine coupling (scale 0).
 *
 * @example
 * ```ts
 * import { createDevice, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const block = new MaskedCouplingBlock({ channels: 3, hidden: 512, mask: "checkerboard0", rng, device });
 * ```
 */
export class MaskedCouplingBlock implements FlowLayer {
  /** "MaskedCouplingBlock". */
  readonly kind: string = "MaskedCouplingBlock";
  /** The s/t net (C → 2C). */
  readonly nnet: CouplingNet;
  /** "checkerboard0" (ones where h + w is even) or "checkerboard1". */
  readonly mask: MaskType;
  /** Channels. */
  readonly channels: number;

  /** Builds the block. */
  constructor(opts: CouplingBlockOptions & { mask: MaskType }) {
    if (opts.mask !== "checkerboard0" && opts.mask !== "checkerboard1") {
      throw new Error(
        `Cannot build MaskedCouplingBlock with mask "${opts.mask}": expected checkerboard0 or checkerboard1`,
      );
    }
    this.channels = opts.channels;
    this.mask = opts.mask;
    this.nnet = new CouplingNet(netOptions(opts, opts.channels, 2 * opts.channels));
    nameChildren("nnet", this.nnet);
  }

  /** The mask b [1, 1, H, W]: 1 on the kept (conditioning) positions. */
  maskTensor(h: number, w: number, device: Device): Tensor {
    const parity = this.mask === "checkerboard0" ? 0 : 1;
    const m = new Float64Array(h * w);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) m[i * w + j] = (i + j) % 2 === parity ? 1 : 0;
    return tensor(m, [1, 1, h, w], device);
  }

  #st(xa: Tensor): [Tensor, Tensor] {
    const f = this.nnet.apply(xa);
    const c = this.channels;
    return [add(sliceAxis(f, 1, 0, c), 2), sliceAxis(f, 1, c, c)];
  }

  #check(x: Tensor): void {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(
        `Cannot apply ${this.kind}(${this.channels}) to ${
          fmt(x.shape)
        }: expected [B, ${this.channels}, H, W]`,
      );
    }
  }

  /** y = (x·s + t)·(1 − b) + b·x with log|det| = Σ (1 − b)·log s. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    this.#check(x);
    return tidy(() => {
      const b = this.maskTensor(x.shape[2], x.shape[3], x.device);
      const xa = mul(x, b);
      const [pre, t] = this.#st(xa);
      const free = sub(1, b);
      const y = add(mul(add(mul(x, sigmoid(pre)), t), free), xa);
      if (ctx.skipLogdet) return { y, logdet: null };
      const logdet = sum(reshape(mul(logSigmoid(pre), free), [x.shape[0], -1]), 1);
      return { y, logdet };
    });
  }

  /** x = b·y + (1 − b)·(y − t)/s. */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    this.#check(y);
    return tidy(() => {
      const b = this.maskTensor(y.shape[2], y.shape[3], y.device);
      const ya = mul(y, b);
      const [pre, t] = this.#st(ya);
      return add(ya, mul(sub(1, b), div(sub(y, t), sigmoid(pre))));
    });
  }

  /** The net's parameters ("nnet.…"). */
  parameters(): Parameter[] {
    return this.nnet.parameters();
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/**
 * Channel-split affine coupling (later scales).
 *
 * @example
 * ```ts
 * import { createDevice, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const block = new ChannelCouplingBlock({ channels: 12, hidden: 512, mask: "channel1", rng, device });
 * ```
 */
export class ChannelCouplingBlock implements FlowLayer {
  /** "ChannelCouplingBlock". */
  readonly kind: string = "ChannelCouplingBlock";
  /** The s/t net (C/2 → C). */
  readonly nnet: CouplingNet;
  /** "channel0" (first half conditions the second) or "channel1" (the reverse). */
  readonly mask: MaskType;
  /** Channels. */
  readonly channels: number;

  /** Builds the block (C must be even). */
  constructor(opts: CouplingBlockOptions & { mask: MaskType }) {
    if (opts.mask !== "channel0" && opts.mask !== "channel1") {
      throw new Error(
        `Cannot build ChannelCouplingBlock with mask "${opts.mask}": expected channel0 or channel1`,
      );
    }
    if (!Number.isInteger(opts.channels) || opts.channels < 2 || opts.channels % 2 !== 0) {
      throw new Error(
        `Cannot build ChannelCouplingBlock with ${opts.channels} channels: expected an even number`,
      );
    }
    this.channels = opts.channels;
    this.mask = opts.mask;
    this.nnet = new CouplingNet(netOptions(opts, opts.channels / 2, opts.channels));
    nameChildren("nnet", this.nnet);
  }

  #check(x: Tensor): void {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(
        `Cannot apply ${this.kind}(${this.channels}) to ${
          fmt(x.shape)
        }: expected [B, ${this.channels}, H, W]`,
      );
    }
  }

  /** [kept half, transformed half] of x. */
  #split(x: Tensor): [Tensor, Tensor] {
    const d = this.channels / 2;
    const first = sliceAxis(x, 1, 0, d);
    const second = sliceAxis(x, 1, d, d);
    return this.mask === "channel0" ? [first, second] : [second, first];
  }

  #join(kept: Tensor, changed: Tensor): Tensor {
    return this.mask === "channel0" ? concat([kept, changed], 1) : concat([changed, kept], 1);
  }

  #st(xa: Tensor): [Tensor, Tensor] {
    const f = this.nnet.apply(xa);
    const d = this.channels / 2;
    return [add(sliceAxis(f, 1, 0, d), 2), sliceAxis(f, 1, d, d)];
  }

  /** y_b = x_b·sigmoid(s + 2) + t with log|det| = Σ log sigmoid(s + 2). */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    this.#check(x);
    return tidy(() => {
      const [xa, xb] = this.#split(x);
      const [pre, t] = this.#st(xa);
      const y = this.#join(xa, add(mul(xb, sigmoid(pre)), t));
      if (ctx.skipLogdet) return { y, logdet: null };
      return { y, logdet: sum(reshape(logSigmoid(pre), [x.shape[0], -1]), 1) };
    });
  }

  /** x_b = (y_b − t)/sigmoid(s + 2). */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    this.#check(y);
    return tidy(() => {
      const [ya, yb] = this.#split(y);
      const [pre, t] = this.#st(ya);
      return this.#join(ya, div(sub(yb, t), sigmoid(pre)));
    });
  }

  /** The net's parameters ("nnet.…"). */
  parameters(): Parameter[] {
    return this.nnet.parameters();
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}
