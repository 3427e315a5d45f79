/**
 * Per-channel normalisation (official `Normalize(mean, std)`), the init layer of the hybrid and
 * classification CIFAR-10 models instead of the logit transform: y_c = (x_c − mean_c)/std_c for the
 * first len(mean) channels (any further channels, e.g. padding, pass unchanged), log|det| =
 * −H·W·Σ_c log|std_c| per example, inverse x_c = y_c·std_c + mean_c. "mean" and "std" are buffers, as
 * in the official layer.
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { abs, add, div, log, mul, sub } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, expand, reshape, sliceAxis } from "../engine/ops/shape.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { BufferState, type FlowContext, type FlowLayer, type FlowOutput, type Parameter } from "./module.ts";

/** The CIFAR-10 channel statistics used by the official hybrid/classification runs. */
export const CIFAR10_MEAN: readonly number[] = [0.4914, 0.4822, 0.4465];
/** The CIFAR-10 channel standard deviations used by the official hybrid/classification runs. */
export const CIFAR10_STD: readonly number[] = [0.2023, 0.1994, 0.2010];

/**
 * Per-channel normalisation as a flow layer.
 *
 * @example
 * ```ts
 * import { createDevice } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const norm = new Normalize({ mean: CIFAR10_MEAN, std: CIFAR10_STD, device });
 * ```
 */
export class Normalize implements FlowLayer {
  /** "Normalize". */
  readonly kind: string = "Normalize";
  /** Channel means, shape [C]. */
  readonly mean: BufferState;
  /** Channel standard deviations, shape [C]. */
  readonly std: BufferState;
  readonly #channels: number;

  /** Creates the layer from host statistics. */
  constructor(opts: { mean: readonly number[]; std: readonly number[]; device: Device }) {
    if (opts.mean.length === 0 || opts.mean.length !== opts.std.length) {
      throw new Error(
        `Cannot create Normalize from ${opts.mean.length} means and ${opts.std.length} stds: expected equal, non-zero lengths`,
      );
    }
    if (opts.std.some((s) => !(Math.abs(s) > 0))) {
      throw new Error(
        `Cannot create Normalize with std [${opts.std.join(", ")}]: every std must be non-zero`,
      );
    }
    this.#channels = opts.mean.length;
    this.mean = new BufferState("mean", tensor(opts.mean, [opts.mean.length], opts.device));
    this.std = new BufferState("std", tensor(opts.std, [opts.std.length], opts.device));
  }

  #parts(x: Tensor): [number, number] {
    const c = this.#channels;
    if (x.rank !== 4 || x.shape[1] < c) {
      throw new Error(`Cannot normalise input ${fmt(x.shape)}: expected NCHW with at least ${c} channels`);
    }
    return [c, x.shape[1] - c];
  }

  #view(b: BufferState): Tensor {
    return reshape(b.value!, [1, this.#channels, 1, 1]);
  }

  /** y and log|det| = −H·W·Σ log|std| for every example. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    const [c, rest] = this.#parts(x);
    const y = tidy(() => {
      const head = div(sub(rest ? sliceAxis(x, 1, 0, c) : x, this.#view(this.mean)), this.#view(this.std));
      return rest ? concat([head, sliceAxis(x, 1, c, rest)], 1) : head;
    });
    if (ctx.skipLogdet) return { y, logdet: null };
    const hw = x.shape[2] * x.shape[3];
    const logdet = tidy(() => expand(reshape(mul(sum(log(abs(this.std.value!))), -hw), [1]), [x.shape[0]]));
    return { y, logdet };
  }

  /** x = y·std + mean on the first C channels. */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    const [c, rest] = this.#parts(y);
    return tidy(() => {
      const head = add(mul(rest ? sliceAxis(y, 1, 0, c) : y, this.#view(this.std)), this.#view(this.mean));
      return rest ? concat([head, sliceAxis(y, 1, c, rest)], 1) : head;
    });
  }

  /** None. */
  parameters(): Parameter[] {
    return [];
  }

  /** [mean, std]. */
  buffers(): BufferState[] {
    return [this.mean, this.std];
  }
}
