/**
 * Tensor factories: from host data, constants, and parameters that require gradients.
 * @module
 */
import type { Shape } from "../backend.ts";
import { fmt, sizeOf } from "../backend.ts";
import { getDefaultDevice } from "../devices.ts";
import { leafNode } from "../graph.ts";
import { type Device, type Tensor, wrap } from "../tensor.ts";

/**
 * Creates a tensor from host numbers (row-major) on `device` (default device if omitted).
 *
 * @example
 * ```ts
 * const x = tensor([1, 2, 3, 4], [2, 2]);
 * ```
 */
export function tensor(data: ArrayLike<number>, shape?: Shape, device?: Device): Tensor {
  const dev = device ?? getDefaultDevice();
  const sh = shape ?? [data.length];
  if (sizeOf(sh) !== data.length) {
    throw new Error(
      `Cannot create tensor of shape ${fmt(sh)} (${sizeOf(sh)} elements) from ${data.length} values`,
    );
  }
  return wrap(dev, dev.backend.fromArray(data), sh);
}

/** A tensor filled with `value`. */
export function full(shape: Shape, value: number, device?: Device): Tensor {
  const dev = device ?? getDefaultDevice();
  return wrap(dev, dev.backend.fill(sizeOf(shape), value), shape);
}

/** A tensor of zeros. */
export function zeros(shape: Shape, device?: Device): Tensor {
  return full(shape, 0, device);
}

/** A tensor of ones. */
export function ones(shape: Shape, device?: Device): Tensor {
  return full(shape, 1, device);
}

/** A zero tensor with the shape and device of `t`. */
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, t.device);
}

/** A one tensor with the shape and device of `t`. */
export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, t.device);
}

const constants = new WeakMap<Device, Map<number, Tensor>>();

/** A cached, kept scalar constant on `device` (used for numbers mixed into tensor ops). */
export function scalarConst(value: number, device: Device): Tensor {
  let m = constants.get(device);
  if (!m) {
    m = new Map();
    constants.set(device, m);
  }
  let t = m.get(value);
  if (!t) {
    if (m.size > 4096) {
      for (const old of m.values()) old.dispose();
      m.clear();
    }
    t = full([], value, device).keep();
    m.set(value, t);
  }
  return t;
}

/** Marks a tensor as a gradient leaf (a parameter or an input we differentiate with respect to). Returns it. */
export function requireGrad(t: Tensor): Tensor {
  t.assertAlive("require gradients");
  if (t.node === null) {
    const n = leafNode(t.shape);
    n.retain();
    t.node = n;
  }
  return t;
}

/** Creates a kept parameter tensor (requires gradients, never disposed by `tidy`). */
export function parameter(data: ArrayLike<number>, shape: Shape, device?: Device): Tensor {
  return requireGrad(tensor(data, shape, device)).keep();
}
