/**
 * Data-movement kernels of the CPU backend: permute, slice, pad and concat, all built on one
 * strided box copy that merges axes and copies contiguous rows with `TypedArray.set`.
 * @module
 */
import type { Shape } from "../backend.ts";
import type { CpuArray } from "./cpu_storage.ts";

/** Row-major strides of `shape`. */
export function stridesOf(shape: Shape): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= shape[d];
  }
  return st;
}

/**
 * Copies a box of extent `sizes`: dst[dBase + Σ i_d dStr_d] = src[sBase + Σ i_d sStr_d] for every
 * index i inside the box.
 */
export function copyBox(
  src: CpuArray,
  sBase: number,
  sStr: readonly number[],
  dst: CpuArray,
  dBase: number,
  dStr: readonly number[],
  sizes: readonly number[],
): void {
  // Merge axes (innermost first while building) wherever both sides are contiguous across them.
  const n: number[] = [];
  const ss: number[] = [];
  const ds: number[] = [];
  for (let d = sizes.length - 1; d >= 0; d--) {
    const k = sizes[d];
    if (k === 0) return;
    if (k === 1) continue;
    const last = n.length - 1;
    if (last >= 0 && sStr[d] === ss[last] * n[last] && dStr[d] === ds[last] * n[last]) {
      n[last] *= k;
      continue;
    }
    n.push(k);
    ss.push(sStr[d]);
    ds.push(dStr[d]);
  }
  if (n.length === 0) {
    dst[dBase] = src[sBase];
    return;
  }
  n.reverse();
  ss.reverse();
  ds.reverse();
  const r = n.length;
  const inner = n[r - 1];
  const si = ss[r - 1];
  const di = ds[r - 1];
  const contiguous = si === 1 && di === 1;
  let rows = 1;
  for (let d = 0; d < r - 1; d++) rows *= n[d];
  const idx = new Array<number>(r).fill(0);
  let so = sBase, dOff = dBase;
  for (let q = 0; q < rows; q++) {
    if (contiguous) {
      dst.set(src.subarray(so, so + inner), dOff);
    } else {
      for (let j = 0, a = so, b = dOff; j < inner; j++, a += si, b += di) dst[b] = src[a];
    }
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      if (idx[d] < n[d]) {
        so += ss[d];
        dOff += ds[d];
        break;
      }
      idx[d] = 0;
      so -= ss[d] * (n[d] - 1);
      dOff -= ds[d] * (n[d] - 1);
    }
  }
}

/** out (shape perm.map(i => shape[i])) = x transposed. */
export function permuteInto(x: CpuArray, shape: Shape, perm: readonly number[], out: CpuArray): void {
  const st = stridesOf(shape);
  const outShape = perm.map((i) => shape[i]);
  copyBox(x, 0, perm.map((i) => st[i]), out, 0, stridesOf(outShape), outShape);
}

/** out (shape `sizes`) = the box of x starting at `starts`. */
export function sliceInto(
  x: CpuArray,
  shape: Shape,
  starts: readonly number[],
  sizes: readonly number[],
  out: CpuArray,
): void {
  const st = stridesOf(shape);
  let base = 0;
  for (let d = 0; d < shape.length; d++) base += starts[d] * st[d];
  copyBox(x, base, st, out, 0, stridesOf(sizes), sizes);
}

/** out (shape + before + after) = value outside, x inside. */
export function padInto(
  x: CpuArray,
  shape: Shape,
  before: readonly number[],
  after: readonly number[],
  value: number,
  out: CpuArray,
): void {
  const outShape = shape.map((n, d) => n + before[d] + after[d]);
  out.fill(value);
  const ost = stridesOf(outShape);
  let base = 0;
  for (let d = 0; d < shape.length; d++) base += before[d] * ost[d];
  copyBox(x, 0, stridesOf(shape), out, base, ost, shape);
}

/** out = the inputs laid side by side along `axis`; `outShape` is the concatenated shape. */
export function concatInto(
  xs: readonly CpuArray[],
  shapes: readonly Shape[],
  axis: number,
  outShape: Shape,
  out: CpuArray,
): void {
  const ost = stridesOf(outShape);
  let base = 0;
  for (let i = 0; i < xs.length; i++) {
    copyBox(xs[i], 0, stridesOf(shapes[i]), out, base, ost, shapes[i]);
    base += shapes[i][axis] * ost[axis];
  }
}
