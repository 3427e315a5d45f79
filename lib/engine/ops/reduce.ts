/**
 * Reductions (sum, mean, max, logsumexp) and `sumTo`, the adjoint of broadcasting.
 * @module
 */
import { fmt } from "../backend.ts";
import { noGrad, type Tensor } from "../tensor.ts";
import { add, div, eq, exp, log, mul, sub } from "./elementwise.ts";
import { record, sameDevice } from "./record.ts";
import { expand, reshape } from "./shape.ts";

/** Normalises an axis list (negative axes count from the end; undefined means all). Sorted, unique. */
export function normalizeAxes(rank: number, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : [...axes];
  const out = new Set<number>();
  for (const a of list) {
    const v = a < 0 ? a + rank : a;
    if (v < 0 || v >= rank || !Number.isInteger(v)) {
      throw new Error(`Cannot reduce over axis ${a}: the tensor has rank ${rank}`);
    }
    out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Sum over `axes` (all if omitted); `keepDims` keeps reduced axes as size 1. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const d = sameDevice("sum", x);
  const ax = normalizeAxes(x.rank, axes);
  if (ax.length === 0) return reshape(x, x.shape);
  const outShape = keepDims ? keptShape(x.shape, ax) : x.shape.filter((_, i) => !ax.includes(i));
  const s = d.backend.reduce("sum", x.buffer.storage, x.shape, ax);
  return record("sum", d, s, outShape, [x], [], (g) => [expand(reshape(g, keptShape(x.shape, ax)), x.shape)]);
}

/** Mean over `axes` (all if omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(x.rank, axes);
  let n = 1;
  for (const a of ax) n *= x.shape[a];
  return mul(sum(x, ax, keepDims), 1 / n);
}

/** Maximum over `axes`; the gradient is shared equally among tied maxima. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const d = sameDevice("max", x);
  const ax = normalizeAxes(x.rank, axes);
  const kept = keptShape(x.shape, ax);
  const outShape = keepDims ? kept : x.shape.filter((_, i) => !ax.includes(i));
  const s = d.backend.reduce("max", x.buffer.storage, x.shape, ax);
  const out = record("max", d, s, outShape, [x], [x], (g) => {
    const m = noGrad(() => max(x, ax, true));
    const mask = eq(x, m);
    const count = sum(mask, ax, true);
    return [mul(expand(reshape(g, kept), x.shape), div(mask, count))];
  });
  return out;
}

/** log(sum(exp(x))) over `axes`, computed stably by shifting with the (constant) maximum. */
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(x.rank, axes);
  const m = noGrad(() => max(x, ax, true));
  const r = add(log(sum(exp(sub(x, m)), ax, true)), m);
  return keepDims ? r : reshape(r, x.shape.filter((_, i) => !ax.includes(i)));
}

/** Sums a broadcast gradient back to `shape` (the adjoint of broadcasting to g's shape). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((v, i) => v === shape[i])) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`Cannot sum ${fmt(g.shape)} down to the larger rank ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (shape[i - lead] !== g.shape[i]) {
      throw new Error(`Cannot sum ${fmt(g.shape)} down to ${fmt(shape)}`);
    }
  }
  const r = axes.length ? sum(g, axes, true) : g;
  return reshape(r, shape);
}
