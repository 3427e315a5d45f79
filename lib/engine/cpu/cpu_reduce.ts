/**
 * Sum and max reductions of the CPU backend over any set of axes. Neighbouring axes of the same
 * kind (reduced or kept) are merged, the input is walked once in memory order, and partial
 * results accumulate in float64 whatever the storage dtype.
 * @module
 */
import type { ReduceOp, Shape } from "../backend.ts";
import type { CpuArray } from "./cpu_storage.ts";

/**
 * Reduces `axes` (sorted, unique) of `x` with `shape`; returns float64 results in row-major
 * order of the kept axes (length = product of the kept sizes). Sum of nothing is 0, max of
 * nothing is -Infinity; max propagates NaN.
 */
export function reduceToF64(op: ReduceOp, x: CpuArray, shape: Shape, axes: readonly number[]): Float64Array {
  const reduced = new Array<boolean>(shape.length).fill(false);
  for (const a of axes) reduced[a] = true;
  // Merge runs of same-kind axes; size-1 axes drop out.
  const sizes: number[] = [];
  const kinds: boolean[] = [];
  let outSize = 1;
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (!reduced[d]) outSize *= n;
    if (n === 1) continue;
    const last = sizes.length - 1;
    if (last >= 0 && kinds[last] === reduced[d]) sizes[last] *= n;
    else {
      sizes.push(n);
      kinds.push(reduced[d]);
    }
  }
  const out = new Float64Array(outSize).fill(op === "sum" ? 0 : -Infinity);
  if (sizes.length === 0) {
    // Every axis has size 1: the result is the single element.
    if (x.length > 0) out[0] = x[0];
    return out;
  }
  // Output strides of each merged axis (0 on reduced axes).
  const r = sizes.length;
  const ostr = new Array<number>(r).fill(0);
  let acc = 1;
  for (let d = r - 1; d >= 0; d--) {
    if (!kinds[d]) {
      ostr[d] = acc;
      acc *= sizes[d];
    }
  }
  const inner = sizes[r - 1];
  const innerReduced = kinds[r - 1];
  const total = x.length;
  if (total === 0) return out;
  const idx = new Array<number>(r).fill(0);
  let o = 0;
  const isSum = op === "sum";
  for (let start = 0; start < total; start += inner) {
    if (innerReduced) {
      if (isSum) {
        let s = 0;
        for (let j = 0; j < inner; j++) s += x[start + j];
        out[o] += s;
      } else {
        let m = out[o];
        for (let j = 0; j < inner; j++) m = Math.max(m, x[start + j]);
        out[o] = m;
      }
    } else if (isSum) {
      for (let j = 0; j < inner; j++) out[o + j] += x[start + j];
    } else {
      for (let j = 0; j < inner; j++) out[o + j] = Math.max(out[o + j], x[start + j]);
    }
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      if (idx[d] < sizes[d]) {
        o += ostr[d];
        break;
      }
      idx[d] = 0;
      o -= ostr[d] * (sizes[d] - 1);
    }
  }
  return out;
}
