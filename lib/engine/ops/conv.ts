/**
 * 2-D convolution (NCHW, OIHW, cross-correlation, zero padding, stride) and its two adjoints, each
 * a differentiable op so gradients of gradients work: the three are linear in each argument, and
 * each one's backward rule is written with the other two.
 * @module
 */
import { type Conv2dGeometry, conv2dOutputShape, fmt } from "../backend.ts";
import type { Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { addFlops } from "../flops.ts";
import { record, sameDevice } from "./record.ts";
import { reshape } from "./shape.ts";

/** Convolution options. */
export interface Conv2dOptions {
  /** Stride in both axes (default 1). */
  readonly stride?: number;
  /** Zero padding on every side (default 0). */
  readonly pad?: number;
}

/** 2·(outputs of the forward convolution)·C·KH·KW: the work of a convolution or either adjoint. */
function convFlops(g: Conv2dGeometry): number {
  const y = conv2dOutputShape(g);
  return 2 * y[0] * y[1] * y[2] * y[3] * g.w[1] * g.w[2] * g.w[3];
}

function geometry(x: readonly number[], w: readonly number[], o: Conv2dOptions): Conv2dGeometry {
  if (x.length !== 4 || w.length !== 4) {
    throw new Error(`Cannot convolve x ${fmt(x)} with w ${fmt(w)}: expected NCHW input and OIHW weight`);
  }
  return { x, w, stride: o.stride ?? 1, pad: o.pad ?? 0 };
}

/**
 * y = conv2d(x, w) (+ bias per output channel).
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng, zeros } from "../mod.ts";
 *
 * const device = await createDevice("cpu");
 * const rng = new Rng(0);
 * const x = randn([1, 2, 8, 8], rng, device); // NCHW
 * const w = randn([4, 2, 3, 3], rng, device); // OIHW
 * const b = zeros([4], device);
 * const y = conv2d(x, w, b, { pad: 1 }); // 3x3 "same" convolution: [1, 4, 8, 8]
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const g = geometry(x.shape, w.shape, opts);
  const y = conv2dRaw(x, w, g);
  if (!bias) return y;
  if (bias.rank !== 1 || bias.shape[0] !== w.shape[0]) {
    throw new Error(`Cannot add bias ${fmt(bias.shape)} to a convolution with ${w.shape[0]} output channels`);
  }
  return add(y, reshape(bias, [1, w.shape[0], 1, 1]));
}

function conv2dRaw(x: Tensor, w: Tensor, g: Conv2dGeometry): Tensor {
  const d = sameDevice("conv2d", x, w);
  const shape = conv2dOutputShape(g);
  const s = d.backend.conv2d(x.buffer.storage, w.buffer.storage, g);
  addFlops(convFlops(g));
  return record("conv2d", d, s, shape, [x, w], [x, w], (gy, needs) => [
    needs[0] ? conv2dInputGradOp(gy, w, g) : null,
    needs[1] ? conv2dWeightGradOp(x, gy, g) : null,
  ]);
}

/** The adjoint of conv2d in x (a transposed convolution): maps dy of the output shape to g.x. */
export function conv2dInputGradOp(dy: Tensor, w: Tensor, g: Conv2dGeometry): Tensor {
  const d = sameDevice("conv2dInputGrad", dy, w);
  const s = d.backend.conv2dInputGrad(dy.buffer.storage, w.buffer.storage, g);
  addFlops(convFlops(g));
  return record("conv2dInputGrad", d, s, g.x, [dy, w], [dy, w], (gx, needs) => [
    needs[0] ? conv2dRaw(gx, w, g) : null,
    needs[1] ? conv2dWeightGradOp(gx, dy, g) : null,
  ]);
}

/** The adjoint of conv2d in w: dw = Σ x ⋆ dy, of shape g.w. */
export function conv2dWeightGradOp(x: Tensor, dy: Tensor, g: Conv2dGeometry): Tensor {
  const d = sameDevice("conv2dWeightGrad", x, dy);
  const s = d.backend.conv2dWeightGrad(x.buffer.storage, dy.buffer.storage, g);
  addFlops(convFlops(g));
  return record("conv2dWeightGrad", d, s, g.w, [x, dy], [x, dy], (gw, needs) => [
    needs[0] ? conv2dInputGradOp(dy, gw, g) : null,
    needs[1] ? conv2dRaw(x, gw, g) : null,
  ]);
}

/** conv_transpose2d(y, w) for a weight of shape [O, C, KH, KW] mapping C-channel outputs back (same as PyTorch's with weight [C_in=O, C_out=C]). `outHW` picks the output size. */
export function convTranspose2d(
  y: Tensor,
  w: Tensor,
  outHW: readonly [number, number],
  opts: Conv2dOptions = {},
): Tensor {
  const xShape = [y.shape[0], w.shape[1], outHW[0], outHW[1]];
  const g = geometry(xShape, w.shape, opts);
  const expected = conv2dOutputShape(g);
  if (expected.some((v, i) => v !== y.shape[i])) {
    throw new Error(
      `Cannot transpose-convolve ${fmt(y.shape)} to ${fmt(xShape)}: the forward convolution gives ${
        fmt(expected)
      }`,
    );
  }
  return conv2dInputGradOp(y, w, g);
}
