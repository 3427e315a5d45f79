/**
 * Shared plumbing of differentiable ops: device checks, result wrapping and graph recording.
 * @module
 */
import type { Shape, Storage } from "../backend.ts";
import { fmt } from "../backend.ts";
import { type BackwardFn, Node } from "../graph.ts";
import { type Device, isGradEnabled, noGrad, type Tensor, tidy, wrap } from "../tensor.ts";

/** Throws unless every tensor is alive and on one device; returns that device. */
export function sameDevice(op: string, ...ts: Tensor[]): Device {
  const d = ts[0].device;
  for (const t of ts) {
    t.assertAlive(op);
    if (t.device !== d) {
      throw new Error(
        `Cannot ${op}: tensors are on different devices (${d.name} and ${t.device.name}, shapes ${
          fmt(ts[0].shape)
        } and ${fmt(t.shape)})`,
      );
    }
  }
  return d;
}

/**
 * Wraps `storage` as the op's output and, when recording and some input needs a gradient, attaches a
 * node whose backward rule is `backward`. `saved` lists the tensors the rule reads.
 */
export function record(
  name: string,
  device: Device,
  storage: Storage,
  shape: Shape,
  inputs: readonly Tensor[],
  saved: readonly Tensor[],
  backward: BackwardFn,
): Tensor {
  const out = wrap(device, storage, shape);
  if (!isGradEnabled()) return out;
  let any = false;
  for (const t of inputs) if (t.node !== null) any = true;
  if (!any) return out;
  const node = new Node(name, out.shape, inputs.map((t) => t.node), [...saved], backward);
  node.retain();
  out.node = node;
  return out;
}

/** Wraps a result that never carries a gradient (comparisons, random draws, constants). */
export function constant(device: Device, storage: Storage, shape: Shape): Tensor {
  return wrap(device, storage, shape);
}

/**
 * A differentiable op made of other ops: `forward` runs without recording (its intermediates are
 * freed at once, so the graph keeps only `saved`), and the result gets one node whose `backward`
 * rule (written in differentiable ops, returning gradients already reduced to each input's shape)
 * replaces the chain's rules. This trades recomputation in backward for memory held by the graph.
 *
 * @example
 * ```ts
 * import { add, createDevice, exp, mul, requireGrad, tensor } from "../mod.ts";
 *
 * const device = await createDevice("cpu");
 * const x = requireGrad(tensor([0, 1, 2], [3], device));
 * // x·e^x saving only x (the chain would also keep e^x and the product's operands).
 * const y = composite("xexp", [x], [x], () => mul(x, exp(x)), (g) => [mul(g, mul(add(x, 1), exp(x)))]);
 * ```
 */
export function composite(
  name: string,
  inputs: readonly Tensor[],
  saved: readonly Tensor[],
  forward: () => Tensor,
  backward: BackwardFn,
): Tensor {
  const out = noGrad(() => tidy(forward));
  if (out.node !== null || inputs.includes(out)) {
    throw new Error(
      `Cannot record composite op ${name}: its forward returned an input tensor, expected a new result`,
    );
  }
  if (!isGradEnabled() || !inputs.some((t) => t.node !== null)) return out;
  const node = new Node(name, out.shape, inputs.map((t) => t.node), [...saved], backward);
  node.retain();
  out.node = node;
  return out;
}
