/**
 * Pure shape arithmetic for the WebGPU backend's host side: strides, merging of axes that are
 * contiguous for every operand, and the canonical 4-group form of a reduction.
 * @module
 */
import type { Shape } from "../backend.ts";

/** Row-major strides of `shape` (in elements). */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Strides reading `inShape` broadcast to `outShape` (right-aligned; 0 on stretched or missing axes). */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const cs = contiguousStrides(inShape);
  const off = outShape.length - inShape.length;
  return outShape.map((_, d) => {
    const k = d - off;
    return k < 0 || inShape[k] === 1 ? 0 : cs[k];
  });
}

/** An iteration box and, per operand, its strides over the box. */
export interface StridedLayout {
  /** Extent of each axis of the box. */
  readonly dims: number[];
  /** Per operand, its stride on each axis. */
  readonly strides: number[][];
}

/**
 * Drops axes of extent 1 and merges neighbouring axes d, d+1 whenever every operand has
 * stride[d] = stride[d+1] · dims[d+1]. The result has at least one axis.
 */
export function simplifyStrided(dims: Shape, strides: readonly (readonly number[])[]): StridedLayout {
  const outDims: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < dims.length; d++) {
    if (dims[d] === 1) continue;
    const last = outDims.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[d] * dims[d])) {
      outDims[last] *= dims[d];
      strides.forEach((s, j) => outStrides[j][last] = s[d]);
    } else {
      outDims.push(dims[d]);
      strides.forEach((s, j) => outStrides[j].push(s[d]));
    }
  }
  if (outDims.length === 0) return { dims: [1], strides: strides.map(() => [0]) };
  return { dims: outDims, strides: outStrides };
}

/** A reduction in canonical form: out[o1, o2] = op over (r1, r2) of x[((o1 R1 + r1) K2 + o2) R2 + r2]. */
export interface ReduceForm {
  /** Outer kept extent. */
  readonly k1: number;
  /** Outer reduced extent. */
  readonly r1: number;
  /** Inner kept extent. */
  readonly k2: number;
  /** Inner (contiguous) reduced extent. */
  readonly r2: number;
}

/**
 * The canonical form of reducing `axes` of `shape`, or null when the axes form more than two separate
 * reduced groups (the caller then permutes the reduced axes to the end first). A single trailing reduced
 * group always lands in R2 so it is read contiguously.
 */
export function reduceForm(shape: Shape, axes: readonly number[]): ReduceForm | null {
  const groups: { size: number; red: boolean }[] = [];
  const red = new Set(axes);
  shape.forEach((n, d) => {
    if (n === 1) return;
    const r = red.has(d);
    const last = groups[groups.length - 1];
    if (last && last.red === r) last.size *= n;
    else groups.push({ size: n, red: r });
  });
  if (groups.length > 0 && groups[0].red) groups.unshift({ size: 1, red: false });
  if (groups.length > 4) return null;
  const [k1, r1, k2, r2] = [0, 1, 2, 3].map((i) => groups[i]?.size ?? 1);
  if (k2 === 1) return { k1, r1: 1, k2: 1, r2: r1 * r2 };
  return { k1, r1, k2, r2 };
}
