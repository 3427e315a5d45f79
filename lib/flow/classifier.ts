/**
 * The hybrid classifier head (SPEC §6; official `build_multiscale_classifier`): one branch per scale,
 * Conv3×3(C_s → hidden, plain, padding 1) → ActNorm2d(hidden) (data-dependent init on its first call)
 * → ReLU → global average pool; the pooled vectors of all scales are concatenated (hidden·S values) →
 * Linear → class logits. hidden = 256 in the paper (`--cdim`). Parameter names follow the official
 * model: "classification_heads.<s>.0.weight|bias" (conv), "classification_heads.<s>.1.weight|bias"
 * (ActNorm, with buffer "…1.initialized"), "logit_layer.weight|bias".
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { relu } from "../engine/ops/elementwise.ts";
import { mean } from "../engine/ops/reduce.ts";
import { concat } from "../engine/ops/shape.ts";
import type { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { ActNorm2d } from "./actnorm.ts";
import { Conv2d, Linear } from "./linear.ts";
import { type BufferState, type Module, nameChildren, type Parameter } from "./module.ts";

/** Options of {@link ClassifierHead}. */
export interface ClassifierHeadOptions {
  /** Channels of the tensor each branch reads, one per scale (e.g. [12, 48, 48] for CIFAR-10). */
  readonly scaleChannels: readonly number[];
  /** Branch width (default 256). */
  readonly hidden?: number;
  /** Number of classes (default 10). */
  readonly classes?: number;
  /** Source of the initial weights. */
  readonly rng: Rng;
  /** Device of the parameters. */
  readonly device: Device;
}

/** One per-scale branch: conv → ActNorm → ReLU → average pool. */
class Branch implements Module {
  readonly conv: Conv2d;
  readonly actnorm: ActNorm2d;

  constructor(channels: number, hidden: number, rng: Rng, device: Device) {
    this.conv = new Conv2d({
      inChannels: channels,
      outChannels: hidden,
      kernelSize: 3,
      padding: 1,
      rng,
      device,
    });
    this.actnorm = new ActNorm2d({ channels: hidden, device });
    nameChildren("0", this.conv);
    nameChildren("1", this.actnorm);
  }

  /** [B, C, H, W] → [B, hidden]. */
  apply(x: Tensor): Tensor {
    return tidy(() => mean(relu(this.actnorm.apply(this.conv.apply(x))), [2, 3]));
  }

  parameters(): Parameter[] {
    return [...this.conv.parameters(), ...this.actnorm.parameters()];
  }

  buffers(): BufferState[] {
    return this.actnorm.buffers();
  }
}

/**
 * The multiscale classifier head.
 *
 * @example
 * ```ts
 * import { createDevice, crossEntropy, randn, Rng } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const rng = new Rng(0);
 * const head = new ClassifierHead({ scaleChannels: [12, 48, 48], rng, device });
 * const [h0, h1, h2] = [[2, 12, 16, 16], [2, 48, 8, 8], [2, 48, 4, 4]].map((s) => randn(s, rng, device));
 * const logits = head.apply([h0, h1, h2]); // [B, 10]
 * const loss = crossEntropy(logits, [3, 7]); // labels
 * ```
 */
export class ClassifierHead implements Module {
  /** The per-scale branches. */
  readonly branches: readonly Module[];
  /** The final linear layer (hidden·S → classes). */
  readonly logitLayer: Linear;
  /** Branch width. */
  readonly hidden: number;
  readonly #branches: Branch[];

  /** Builds the head (PyTorch default init from `rng`). */
  constructor(opts: ClassifierHeadOptions) {
    const hidden = opts.hidden ?? 256;
    const classes = opts.classes ?? 10;
    if (opts.scaleChannels.length === 0) throw new Error("Cannot build a classifier head for 0 scales");
    if (!Number.isInteger(hidden) || hidden < 1 || !Number.isInteger(classes) || classes < 2) {
      throw new Error(`Cannot build a classifier head with width ${hidden} and ${classes} classes`);
    }
    this.hidden = hidden;
    this.#branches = opts.scaleChannels.map((c) => new Branch(c, hidden, opts.rng, opts.device));
    this.#branches.forEach((b, i) => nameChildren(`classification_heads.${i}`, b));
    this.branches = this.#branches;
    this.logitLayer = new Linear({
      inFeatures: hidden * opts.scaleChannels.length,
      outFeatures: classes,
      rng: opts.rng,
      device: opts.device,
    });
    nameChildren("logit_layer", this.logitLayer);
  }

  /** Logits [B, classes] from one feature map per scale. */
  apply(features: readonly Tensor[]): Tensor {
    if (features.length !== this.#branches.length) {
      throw new Error(
        `Cannot classify from ${features.length} feature maps: the head has ${this.#branches.length} branches (${
          features.map((f) => fmt(f.shape)).join(", ")
        })`,
      );
    }
    return tidy(() => this.logitLayer.apply(concat(features.map((f, i) => this.#branches[i].apply(f)), 1)));
  }

  /** Branch parameters in scale order, then the logit layer's. */
  parameters(): Parameter[] {
    return [...this.#branches.flatMap((b) => b.parameters()), ...this.logitLayer.parameters()];
  }

  /** The branches' ActNorm flags. */
  buffers(): BufferState[] {
    return this.#branches.flatMap((b) => b.buffers());
  }
}
