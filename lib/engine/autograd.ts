/**
 * Reverse-mode differentiation in the spirit of `torch.autograd.grad`.
 *
 * Backward visits the graph in topological order from the outputs, skips nodes that lead to no
 * requested input, accumulates gradients per node, and frees each node's saved tensors and its
 * incoming gradient as soon as it has been processed (unless the graph is retained). With
 * `createGraph`, the backward rules are recorded too (they are written in differentiable ops), so
 * the returned gradients can be differentiated again.
 * @module
 */
import { fmt } from "./backend.ts";
import type { Node } from "./graph.ts";
import { onesLike } from "./ops/creation.ts";
import { add } from "./ops/elementwise.ts";
import { reshape } from "./ops/shape.ts";
import { type Tensor, tidy, withGradMode } from "./tensor.ts";

/** Counters of the backward walks of {@link gradMaybe} (cheap, always on). */
export interface GradWalkCounters {
  /** grad/gradMaybe calls since start. */
  calls: number;
  /** Graph nodes examined by their walks (those on a path to a requested input and their boundary). */
  nodesVisited: number;
  /** Nodes examined by the latest call. */
  lastNodesVisited: number;
}

/** The running {@link GradWalkCounters} of this process. */
export const gradWalk: GradWalkCounters = { calls: 0, nodesVisited: 0, lastNodesVisited: 0 };

/**
 * Switches of the backward walk, for measuring each one's effect (benchmarks): `restrict` (default true)
 * stops the walk at nodes created before the oldest requested input. Results are the same either way.
 */
export const gradWalkOptions: { restrict: boolean } = { restrict: true };

/** Options of {@link grad}. */
export interface GradOptions {
  /** Gradients of the outputs (default: ones, which requires scalar outputs). */
  readonly gradOutputs?: readonly (Tensor | null)[];
  /** Record the backward computation so the result can be differentiated again (default false). */
  readonly createGraph?: boolean;
  /** Keep saved tensors for another backward pass (default: createGraph). */
  readonly retainGraph?: boolean;
  /** Return null for inputs the outputs do not depend on, instead of throwing (default false). */
  readonly allowUnused?: boolean;
}

/**
 * Gradients of sum_i <outputs[i], gradOutputs[i]> with respect to each input. The caller owns the
 * returned tensors.
 *
 * @example
 * ```ts
 * import { createDevice, mul, requireGrad, sum, tensor } from "./mod.ts";
 *
 * const device = await createDevice("cpu");
 * const x = requireGrad(tensor([1, 2, 3], [3], device));
 * const v = tensor([1, 0, 0], [3], device);
 * const [dx] = grad(sum(mul(x, x)), [x]); // 2x = [2, 4, 6]
 * const [g] = grad(sum(mul(x, x)), [x], { createGraph: true });
 * const [hv] = grad(sum(mul(g, v)), [x]); // Hessian-vector product: 2v = [2, 0, 0]
 * ```
 */
export function grad(
  outputs: Tensor | readonly Tensor[],
  inputs: readonly Tensor[],
  opts: GradOptions = {},
): Tensor[] {
  const res = gradMaybe(outputs, inputs, opts);
  return res.map((g, i) => {
    if (g === null) {
      throw new Error(
        `Cannot compute the gradient of input ${i} ${
          fmt(inputs[i].shape)
        }: the outputs do not depend on it (pass allowUnused: true to get null)`,
      );
    }
    return g;
  });
}

/** Like {@link grad} but returns null for unused inputs when `allowUnused` is set. */
export function gradMaybe(
  outputs: Tensor | readonly Tensor[],
  inputs: readonly Tensor[],
  opts: GradOptions = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs as readonly Tensor[] : [outputs as Tensor];
  const createGraph = opts.createGraph ?? false;
  const retainGraph = opts.retainGraph ?? createGraph;
  const targets = new Map<Node, number[]>();
  inputs.forEach((t, i) => {
    t.assertAlive("differentiate with respect to an input");
    if (t.node === null) {
      throw new Error(
        `Cannot differentiate with respect to input ${i} ${
          fmt(t.shape)
        }: it does not require gradients (use requireGrad)`,
      );
    }
    const list = targets.get(t.node) ?? [];
    list.push(i);
    targets.set(t.node, list);
  });

  // Which nodes lead to a target. A node created before every target (seq below the smallest target's)
  // cannot depend on one, so the walk stops there instead of visiting the whole graph upstream of the
  // inputs (each vector-Jacobian product inside a block would otherwise walk the model before it).
  let minSeq = gradWalkOptions.restrict ? Infinity : -Infinity;
  if (gradWalkOptions.restrict) { for (const n of targets.keys()) minSeq = Math.min(minSeq, n.seq); }
  const needed = new Map<Node, boolean>();
  // Iterative post-order to avoid deep recursion on long chains.
  const stack: [Node, number][] = [];
  const push = (n: Node) => {
    if (needed.has(n)) return;
    if (n.seq < minSeq) needed.set(n, false);
    else {
      needed.set(n, false); // provisional; graphs are acyclic, so no revisit reads it before it is final
      stack.push([n, 0]);
    }
  };
  for (const o of outs) if (o.node) push(o.node);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (i < n.parents.length) {
      top[1]++;
      const p = n.parents[i];
      if (p) push(p);
      continue;
    }
    stack.pop();
    let need = targets.has(n);
    for (const p of n.parents) if (p && needed.get(p)) need = true;
    needed.set(n, need);
  }
  gradWalk.calls++;
  gradWalk.nodesVisited += needed.size;
  gradWalk.lastNodesVisited = needed.size;

  const pending = new Map<Node, number>();
  for (const [n, need] of needed) {
    if (!need) continue;
    for (const p of n.parents) if (p && needed.get(p)) pending.set(p, (pending.get(p) ?? 0) + 1);
  }

  // Gradient contributions per node, summed in arrival order when the node is processed: the sum is
  // then recorded right before the node's backward rule, so a backend that fuses element-wise ops can
  // evaluate both in one kernel (the same additions in the same order as summing on arrival).
  const grads = new Map<Node, Tensor[]>();
  const results: (Tensor | null)[] = inputs.map(() => null);
  const accumulate = (n: Node, g: Tensor) => {
    const list = grads.get(n);
    if (list === undefined) grads.set(n, [g]);
    else list.push(g);
  };
  const total = (list: readonly Tensor[]): Tensor => {
    let g = list[0];
    for (let j = 1; j < list.length; j++) {
      const s = add(g, list[j]);
      g.dispose();
      list[j].dispose();
      g = s;
    }
    return g;
  };

  const held: Node[] = [];
  for (const n of needed.keys()) {
    n.retain();
    held.push(n);
  }
  try {
    return withGradMode(createGraph, () => {
      outs.forEach((o, i) => {
        if (!o.node || !needed.get(o.node)) return;
        const go = opts.gradOutputs?.[i] ?? null;
        if (go === null && o.size !== 1) {
          throw new Error(
            `Cannot backward from output ${i} ${fmt(o.shape)} without gradOutputs: it is not a scalar`,
          );
        }
        if (go && go.shape.join() !== o.shape.join()) {
          throw new Error(
            `Cannot backward: gradOutputs[${i}] has shape ${fmt(go.shape)} but output ${i} has ${
              fmt(o.shape)
            }`,
          );
        }
        // A fresh handle: accumulation disposes what it adds, never the caller's tensor.
        accumulate(o.node, go ? reshape(go, go.shape) : onesLike(o));
      });
      const ready: Node[] = [];
      for (const o of outs) {
        if (o.node && needed.get(o.node) && !pending.get(o.node) && !ready.includes(o.node)) {
          ready.push(o.node);
        }
      }
      while (ready.length) {
        const n = ready.pop()!;
        const list = grads.get(n);
        if (list === undefined) continue;
        const g = total(list);
        grads.set(n, [g]);
        const tgt = targets.get(n);
        if (tgt) {
          for (const i of tgt) results[i] = tgt.length > 1 && i !== tgt[0] ? g.detach() : g;
        }
        const parents = n.parents;
        const hasParents = parents.some((p) => p && needed.get(p));
        if (hasParents) {
          const needs = parents.map((p) => !!(p && needed.get(p)));
          const pg = tidy(() => {
            const raw = n.runBackward(g, needs);
            // Each gradient must be its own handle: rules may return g itself or one tensor twice.
            const seen = new Set<Tensor>([g]);
            return raw.map((t) => {
              if (t === null) return null;
              if (seen.has(t)) return reshape(t, t.shape);
              seen.add(t);
              return t;
            });
          });
          parents.forEach((p, i) => {
            if (!p || !needs[i]) {
              pg[i]?.dispose();
              return;
            }
            const gi = pg[i];
            if (gi) {
              if (gi.shape.join() !== p.shape.join()) {
                throw new Error(
                  `Internal error: ${n.name} returned a gradient of shape ${
                    fmt(gi.shape)
                  } for an input of shape ${fmt(p.shape)}`,
                );
              }
              accumulate(p, gi);
            }
            const left = (pending.get(p) ?? 1) - 1;
            pending.set(p, left);
            if (left === 0) ready.push(p);
          });
        }
        grads.delete(n);
        if (!tgt) g.dispose();
        if (!retainGraph && !n.isLeaf) n.free();
      }
      return results;
    });
  } finally {
    for (const list of grads.values()) for (const g of list) g.dispose();
    for (const n of held) n.release();
  }
}

/**
 * Vector-Jacobian product: returns f(x) and vᵀ·∂f/∂x for every input.
 *
 * @example
 * ```ts
 * import { createDevice, mul, requireGrad, tensor } from "./mod.ts";
 *
 * const device = await createDevice("cpu");
 * const x = requireGrad(tensor([1, 2, 3], [3], device));
 * const v = tensor([1, 1, 1], [3], device);
 * const [y, [vjpX]] = vjp((x) => mul(x, x), [x], v); // y = x², vjpX = 2x·v = [2, 4, 6]
 * ```
 */
export function vjp(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  v: Tensor,
  opts: { createGraph?: boolean } = {},
): [Tensor, Tensor[]] {
  const y = fn(...inputs);
  const gs = grad(y, inputs, { gradOutputs: [v], createGraph: opts.createGraph });
  return [y, gs];
}
