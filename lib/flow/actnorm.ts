/**
 * ActNorm (official `ActNorm2d` / `ActNorm1d`): y = (x + b)·exp(s) per channel (2-D) or per feature
 * (1-D), log|det| = H·W·Σ_c s_c (2-D) or Σ s (1-D) per example, inverse x = y·exp(−s) − b.
 *
 * Data-dependent initialisation on the first forward (in any mode, as the official layer): b = −mean
 * and s = −½ log(max(var, 0.2)) over the batch (and spatial positions), with the unbiased variance.
 * It runs on the device without a readback. The buffer "initialized" is null before and a scalar 1
 * after; a checkpoint that restores it (with "weight" = s and "bias" = b) restores an initialised
 * layer. Parameter names follow the official ones: "weight" is the log-scale s.
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { full, zeros } from "../engine/ops/creation.ts";
import { add, div, exp, log, maximum, mul, neg, square, sub } from "../engine/ops/elementwise.ts";
import { mean, sum } from "../engine/ops/reduce.ts";
import { expand, reshape } from "../engine/ops/shape.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { BufferState, type FlowContext, type FlowLayer, type FlowOutput, Parameter } from "./module.ts";

/** The variance floor of the initialisation. */
export const ACTNORM_VARIANCE_FLOOR = 0.2;

/** Options of the ActNorm layers. */
export interface ActNormOptions {
  /** Channels (2-D) or features (1-D). */
  readonly channels: number;
  /** Device of parameters and buffers. */
  readonly device: Device;
}

/** The shared ActNorm machinery (see the module docs). */
export abstract class ActNormBase implements FlowLayer {
  /** "ActNorm2d" or "ActNorm1d". */
  abstract readonly kind: string;
  /** Log-scale s (official name "weight"), shape [C]. */
  readonly weight: Parameter;
  /** Bias b, shape [C]. */
  readonly bias: Parameter;
  /** Null before the data-dependent initialisation, a scalar 1 after. */
  readonly initialized: BufferState;
  /** Channels or features. */
  readonly channels: number;

  /** Creates the layer with s = b = 0 (identity) until the first forward. */
  constructor(opts: ActNormOptions) {
    if (!Number.isInteger(opts.channels) || opts.channels < 1) {
      throw new Error(`Cannot create ActNorm with ${opts.channels} channels: expected a positive integer`);
    }
    this.channels = opts.channels;
    this.weight = new Parameter("weight", zeros([opts.channels], opts.device));
    this.bias = new Parameter("bias", zeros([opts.channels], opts.device));
    this.initialized = new BufferState("initialized");
  }

  /** Checks x and returns [view shape of the parameters, reduction axes, positions per channel per example]. */
  protected abstract layout(x: Tensor): { view: number[]; axes: number[]; perExample: number };

  /** True once initialised (or restored). */
  get isInitialized(): boolean {
    return this.initialized.value !== null;
  }

  /** Sets b = −mean and s = −½ log(max(unbiased var, 0.2)) from a batch (no readback). */
  initializeFrom(x: Tensor): void {
    const { view, axes } = this.layout(x);
    const count = x.size / this.channels;
    if (count < 2) {
      throw new Error(
        `Cannot initialise ${this.kind} from input ${
          fmt(x.shape)
        }: the variance needs at least 2 values per channel`,
      );
    }
    const [b, s] = noGrad(() =>
      tidy(() => {
        const xd = x.detach();
        const m = mean(xd, axes);
        const v = div(sum(square(sub(xd, reshape(m, view))), axes), count - 1);
        return [neg(m), mul(log(maximum(v, ACTNORM_VARIANCE_FLOOR)), -0.5)];
      })
    );
    this.bias.set(b);
    this.weight.set(s);
    this.initialized.set(full([], 1, x.device));
  }

  /** y = (x + b)·exp(s) (initialising from x on first use), without the log-det. */
  apply(x: Tensor): Tensor {
    const { view } = this.layout(x);
    if (!this.isInitialized) this.initializeFrom(x);
    return tidy(() => mul(add(x, reshape(this.bias.value, view)), exp(reshape(this.weight.value, view))));
  }

  /** y and log|det| = (positions per channel)·Σ s for every example. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    const y = this.apply(x);
    if (ctx.skipLogdet) return { y, logdet: null };
    const { perExample } = this.layout(x);
    const logdet = tidy(() => expand(reshape(mul(sum(this.weight.value), perExample), [1]), [x.shape[0]]));
    return { y, logdet };
  }

  /** x = y·exp(−s) − b. */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    const { view } = this.layout(y);
    if (!this.isInitialized) {
      throw new Error(
        `Cannot invert ${this.kind}: it is not initialised (run a forward pass or load a checkpoint)`,
      );
    }
    return tidy(() =>
      sub(mul(y, exp(neg(reshape(this.weight.value, view)))), reshape(this.bias.value, view))
    );
  }

  /** [weight, bias]. */
  parameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  /** [initialized]. */
  buffers(): BufferState[] {
    return [this.initialized];
  }
}

/**
 * ActNorm over the channels of NCHW images.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const x = randn([4, 3, 8, 8], new Rng(0), device);
 * const an = new ActNorm2d({ channels: 3, device });
 * const { y, logdet } = an.forward(x, { training: true, rng: new Rng(1) }); // the first call initialises from x
 * ```
 */
export class ActNorm2d extends ActNormBase {
  /** "ActNorm2d". */
  readonly kind: string = "ActNorm2d";

  /** Checks NCHW input; parameters view as [1, C, 1, 1]; statistics over N, H, W. */
  protected layout(x: Tensor): { view: number[]; axes: number[]; perExample: number } {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(
        `Cannot apply ActNorm2d(${this.channels}) to input ${
          fmt(x.shape)
        }: expected [B, ${this.channels}, H, W]`,
      );
    }
    return { view: [1, this.channels, 1, 1], axes: [0, 2, 3], perExample: x.shape[2] * x.shape[3] };
  }
}

/**
 * ActNorm over features: input [B, D], or any [B, ...] with D values per example (flattened, as the
 * official `FCWrapper(ActNorm1d(C·H·W))`).
 */
export class ActNorm1d extends ActNormBase {
  /** "ActNorm1d". */
  readonly kind: string = "ActNorm1d";

  /** Checks [B, D] (or [B, ...] of D values) input; statistics over the batch. */
  protected layout(x: Tensor): { view: number[]; axes: number[]; perExample: number } {
    if (x.rank < 2 || x.size / x.shape[0] !== this.channels) {
      throw new Error(
        `Cannot apply ActNorm1d(${this.channels}) to input ${fmt(x.shape)}: expected [B, ${this.channels}]`,
      );
    }
    return { view: [1, this.channels], axes: [0], perExample: 1 };
  }

  #flat<T>(x: Tensor, fn: (x2: Tensor) => T): T {
    if (x.rank === 2) return fn(x);
    return tidy(() => fn(reshape(x, [x.shape[0], this.channels])));
  }

  /** Initialises from [B, D] (or [B, ...]) input. */
  override initializeFrom(x: Tensor): void {
    this.#flat(x, (x2) => super.initializeFrom(x2));
  }

  /** y with the input's shape. */
  override apply(x: Tensor): Tensor {
    if (x.rank === 2) return super.apply(x);
    return tidy(() => reshape(super.apply(reshape(x, [x.shape[0], this.channels])), x.shape));
  }

  /** x with the input's shape. */
  override inverse(y: Tensor, ctx: FlowContext): Tensor {
    if (y.rank === 2) return super.inverse(y, ctx);
    return tidy(() => reshape(super.inverse(reshape(y, [y.shape[0], this.channels]), ctx), y.shape));
  }
}
