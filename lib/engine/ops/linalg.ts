/**
 * Batched matrix products with transposes, differentiable in both operands.
 * @module
 */
import { fmt } from "../backend.ts";
import type { Tensor } from "../tensor.ts";
import { addFlops } from "../flops.ts";
import { record, sameDevice } from "./record.ts";
import { sum } from "./reduce.ts";
import { reshape } from "./shape.ts";

/**
 * op(a) · op(b) where op transposes the last two axes when the flag is set. Leading axes are batch
 * axes: equal on both sides, or absent/size-one on one side (broadcast). Rank-2 times rank-2 is a
 * plain matrix product.
 *
 * @example
 * ```ts
 * import { createDevice, tensor } from "../mod.ts";
 *
 * const device = await createDevice("cpu");
 * const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], device);
 * const b = tensor([1, 0, 0, 1, 1, 1], [3, 2], device);
 * const c = matmul(a, b); // [2, 3] x [3, 2] -> [2, 2]
 * const d = matmul(a, a, false, true); // a · aᵀ: [2, 2]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const d = sameDevice("matmul", a, b);
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`Cannot matmul ${fmt(a.shape)} and ${fmt(b.shape)}: both need rank >= 2`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) {
    throw new Error(
      `Cannot matmul ${fmt(a.shape)}${transA ? "ᵀ" : ""} and ${fmt(b.shape)}${
        transB ? "ᵀ" : ""
      }: inner sizes ${k} and ${kb} differ`,
    );
  }
  const aLead = a.shape.slice(0, -2);
  const bLead = b.shape.slice(0, -2);
  const aBatch = aLead.reduce((p, v) => p * v, 1);
  const bBatch = bLead.reduce((p, v) => p * v, 1);
  let lead: number[];
  if (aBatch === bBatch && aLead.length === bLead.length) lead = [...aLead];
  else if (aBatch === 1) lead = [...bLead];
  else if (bBatch === 1) lead = [...aLead];
  else throw new Error(`Cannot matmul ${fmt(a.shape)} and ${fmt(b.shape)}: batch axes differ`);
  const batch = Math.max(aBatch, bBatch);
  const s = d.backend.matmul(a.buffer.storage, b.buffer.storage, {
    batch,
    aBatch,
    bBatch,
    m,
    k,
    n,
    transA,
    transB,
  });
  addFlops(2 * batch * m * n * k);
  const shape = [...lead, m, n];
  return record("matmul", d, s, shape, [a, b], [a, b], (g, needs) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[0]) {
      ga = transA ? matmul(b, g, transB, true) : matmul(g, b, false, !transB);
      if (aBatch === 1 && batch > 1) {
        ga = reshape(sum(reshape(ga, [batch, ga.shape[ga.rank - 2], ga.shape[ga.rank - 1]]), 0), a.shape);
      } else ga = reshape(ga, a.shape);
    }
    if (needs[1]) {
      gb = transB ? matmul(g, a, true, transA) : matmul(a, g, !transA, false);
      if (bBatch === 1 && batch > 1) {
        gb = reshape(sum(reshape(gb, [batch, gb.shape[gb.rank - 2], gb.shape[gb.rank - 1]]), 0), b.shape);
      } else gb = reshape(gb, b.shape);
    }
    return [ga, gb];
  });
}
