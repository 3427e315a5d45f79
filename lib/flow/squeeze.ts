/**
 * Squeeze (official `SqueezeLayer`): (C, H, W) → (C·r², H/r, W/r) with output channel
 * c·r² + i·r + j for the position (i, j) inside each r×r block (4c + 2i + j for r = 2). The inverse is
 * PyTorch's `pixel_shuffle(r)`; the log-det is 0 (a permutation).
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { permute, reshape } from "../engine/ops/shape.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import type { BufferState, FlowContext, FlowLayer, FlowOutput, Parameter } from "./module.ts";

function checkFactor(r: number): void {
  if (!Number.isInteger(r) || r < 1) {
    throw new Error(`Cannot squeeze by factor ${r}: expected a positive integer`);
  }
}

/**
 * [B, C, H, W] → [B, C·r², H/r, W/r], y[b, c·r² + i·r + j, h, w] = x[b, c, r·h + i, r·w + j].
 *
 * @example
 * ```ts
 * import { createDevice, tensor } from "../engine/mod.ts";
 *
 * const x = tensor(Array.from({ length: 32 }, (_, i) => i), [1, 2, 4, 4], await createDevice("cpu"));
 * const y = squeeze2d(x); // [1, 2, 4, 4] -> [1, 8, 2, 2]
 * ```
 */
export function squeeze2d(x: Tensor, factor = 2): Tensor {
  checkFactor(factor);
  const [b, c, h, w] = x.shape;
  if (x.rank !== 4 || h % factor !== 0 || w % factor !== 0) {
    throw new Error(
      `Cannot squeeze ${fmt(x.shape)} by ${factor}: expected NCHW with H and W divisible by ${factor}`,
    );
  }
  const r = factor;
  return tidy(() =>
    reshape(
      permute(reshape(x, [b, c, h / r, r, w / r, r]), [0, 1, 3, 5, 2, 4]),
      [b, c * r * r, h / r, w / r],
    )
  );
}

/** The inverse of {@link squeeze2d} (PyTorch `pixel_shuffle(r)`): [B, C·r², H, W] → [B, C, H·r, W·r]. */
export function unsqueeze2d(y: Tensor, factor = 2): Tensor {
  checkFactor(factor);
  const [b, cr, h, w] = y.shape;
  const r2 = factor * factor;
  if (y.rank !== 4 || cr % r2 !== 0) {
    throw new Error(
      `Cannot unsqueeze ${fmt(y.shape)} by ${factor}: expected NCHW with channels divisible by ${r2}`,
    );
  }
  const c = cr / r2;
  const r = factor;
  return tidy(() =>
    reshape(permute(reshape(y, [b, c, r, r, h, w]), [0, 1, 4, 2, 5, 3]), [b, c, h * r, w * r])
  );
}

/** The squeeze as a flow layer (log-det identically zero, reported as null). */
export class Squeeze implements FlowLayer {
  /** "Squeeze". */
  readonly kind: string = "Squeeze";
  /** Block size r. */
  readonly factor: number;

  /** Creates a squeeze by `factor` (default 2). */
  constructor(opts: { factor?: number } = {}) {
    this.factor = opts.factor ?? 2;
    checkFactor(this.factor);
  }

  /** {@link squeeze2d}. */
  forward(x: Tensor, _ctx: FlowContext): FlowOutput {
    return { y: squeeze2d(x, this.factor), logdet: null };
  }

  /** {@link unsqueeze2d}. */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    return unsqueeze2d(y, this.factor);
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
