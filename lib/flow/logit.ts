/**
 * The logit transform (official `LogitTransform(α)`): s = α + (1 − 2α)·x, y = log s − log(1 − s), with
 * per-element log|dy/dx| = −log(s − s²) + log(1 − 2α), summed per example; inverse
 * x = (sigmoid(y) − α)/(1 − 2α). Computed exactly as the official formula (so with a tiny α and x near
 * 1 it loses digits to cancellation like the original: use float64 there, see the fixtures README).
 * α = 0.05 for every dataset except MNIST (1e-6 in the code, 1e-5 in the paper).
 * @module
 */
import { add, div, log, mul, sigmoid, sub } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { reshape } from "../engine/ops/shape.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import type { BufferState, FlowContext, FlowLayer, FlowOutput, Parameter } from "./module.ts";

/** The official default α. */
export const DEFAULT_LOGIT_ALPHA = 1e-6;

/**
 * The logit transform as a flow layer.
 *
 * @example
 * ```ts
 * import { createDevice, rand, Rng } from "../engine/mod.ts";
 *
 * const x = rand([2, 1, 4, 4], new Rng(0), await createDevice("cpu")); // in [0, 1)
 * const logit = new LogitTransform({ alpha: 0.05 });
 * const { y, logdet } = logit.forward(x, { training: false, rng: new Rng(1) });
 * ```
 */
export class LogitTransform implements FlowLayer {
  /** "LogitTransform". */
  readonly kind: string = "LogitTransform";
  /** α. */
  readonly alpha: number;

  /** Creates the transform (α default 1e-6, the official default). */
  constructor(opts: { alpha?: number } = {}) {
    const a = opts.alpha ?? DEFAULT_LOGIT_ALPHA;
    if (!(a >= 0 && a < 0.5)) {
      throw new Error(`Cannot create LogitTransform with alpha ${a}: expected 0 <= alpha < 0.5`);
    }
    this.alpha = a;
  }

  /** s = α + (1 − 2α)x. */
  #s(x: Tensor): Tensor {
    return add(mul(x, 1 - 2 * this.alpha), this.alpha);
  }

  /** Per-element log|dy/dx| = −log(s − s²) + log(1 − 2α). */
  logdetPerElement(x: Tensor): Tensor {
    return tidy(() => {
      const s = this.#s(x);
      return add(mul(log(sub(s, mul(s, s))), -1), Math.log(1 - 2 * this.alpha));
    });
  }

  /** y = log s − log(1 − s) and the per-example log-det. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    const y = tidy(() => {
      const s = this.#s(x);
      return sub(log(s), log(sub(1, s)));
    });
    if (ctx.skipLogdet) return { y, logdet: null };
    const logdet = tidy(() => sum(reshape(this.logdetPerElement(x), [x.shape[0], -1]), 1));
    return { y, logdet };
  }

  /** x = (sigmoid(y) − α)/(1 − 2α). */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    return tidy(() => div(sub(sigmoid(y), this.alpha), 1 - 2 * this.alpha));
  }

  /** None. */
  parameters(): Parameter[] {
    return [];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}
