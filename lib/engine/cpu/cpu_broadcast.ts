/**
 * Broadcast iteration for the CPU backend: turns an output shape and the shapes of several
 * broadcast inputs into a few merged axes, so element-wise loops run over long contiguous
 * (or stride-0) rows instead of one element at a time.
 * @module
 */
import type { Shape } from "../backend.ts";

/** Merged axes, innermost last: `sizes[d]` and, per input, `strides[i][d]` (0 where broadcast). */
export interface BroadcastLayout {
  /** Size of each merged axis, outermost first. */
  readonly sizes: number[];
  /** strides[i][d]: element stride of input i along merged axis d (0 where broadcast). */
  readonly strides: number[][];
}

/**
 * Merges the axes of `outShape` for inputs of `inShapes` (each broadcastable to `outShape`,
 * aligned right). Size-1 output axes are dropped and neighbouring axes merged wherever every
 * input walks them as one. Always returns at least one axis.
 */
export function broadcastLayout(outShape: Shape, inShapes: readonly Shape[]): BroadcastLayout {
  const rank = outShape.length;
  const full = inShapes.map((s) => {
    const st = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const k = s.length - rank + d;
      const n = k >= 0 ? s[k] : 1;
      st[d] = n === 1 ? 0 : acc;
      acc *= n;
    }
    return st;
  });
  // Walk from the innermost axis outwards, merging when every input is contiguous across the pair.
  const sizes: number[] = [];
  const strides: number[][] = inShapes.map(() => []);
  for (let d = rank - 1; d >= 0; d--) {
    const n = outShape[d];
    if (n === 1) continue;
    const last = sizes.length - 1;
    if (last >= 0 && full.every((st, i) => st[d] === strides[i][last] * sizes[last])) {
      sizes[last] *= n;
      continue;
    }
    sizes.push(n);
    full.forEach((st, i) => strides[i].push(st[d]));
  }
  if (sizes.length === 0) {
    sizes.push(1);
    strides.forEach((s) => s.push(0));
  }
  sizes.reverse();
  strides.forEach((s) => s.reverse());
  return { sizes, strides };
}

/**
 * Calls `row(offsets, outOffset, n)` once per innermost row of `layout`, in output order.
 * `offsets[i]` is the start of input i for that row; the array is reused, do not keep it.
 */
export function forEachRow(
  layout: BroadcastLayout,
  row: (offsets: number[], outOffset: number, n: number) => void,
): void {
  const { sizes, strides } = layout;
  const r = sizes.length;
  const inner = sizes[r - 1];
  let total = 1;
  for (const s of sizes) total *= s;
  if (total === 0) return;
  const rows = total / inner;
  const k = strides.length;
  const offsets = new Array<number>(k).fill(0);
  const idx = new Array<number>(r).fill(0);
  let out = 0;
  for (let q = 0; q < rows; q++) {
    row(offsets, out, inner);
    out += inner;
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      if (idx[d] < sizes[d]) {
        for (let i = 0; i < k; i++) offsets[i] += strides[i][d];
        break;
      }
      idx[d] = 0;
      for (let i = 0; i < k; i++) offsets[i] -= strides[i][d] * (sizes[d] - 1);
    }
  }
}
