/**
 * Host side of the element-wise ops: picks the vec4 same-shape / scalar-operand fast paths or the
 * general strided-broadcast kernel, and records the dispatch. With fusion on, the flat paths (unary,
 * same-shape or single-value binary, `where` with same-shape or single-value operands) are handed to the dispatcher's fuser instead
 * (see fusion.ts).
 * @module
 */
import type { BinaryOp, Shape, UnaryOp } from "../backend.ts";
import { broadcastShapes, sizeOf } from "../backend.ts";
import {
  binaryBroadcastKernel,
  binaryKernel,
  type BinaryMode,
  fillKernel,
  unaryKernel,
  whereKernel,
} from "../../../kernels/elementwise.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import { broadcastStrides, simplifyStrided } from "./shape_utils.ts";

/** Uniform values of a strided kernel: n, dims d*, and per operand `<name>_base` and `<name>_s*`. */
export function stridedValues(
  n: number,
  dims: readonly number[],
  operands: readonly { name: string; base: number; strides: readonly number[] }[],
): Record<string, number> {
  const v: Record<string, number> = { n };
  dims.forEach((x, d) => v[`d${d}`] = x);
  for (const o of operands) {
    v[`${o.name}_base`] = o.base;
    o.strides.forEach((s, d) => v[`${o.name}_s${d}`] = s);
  }
  return v;
}

/** out[i] = op(x[i]). */
export function unaryOp(d: Dispatcher, op: UnaryOp, x: GpuStorage): GpuStorage {
  if (d.fuser) return d.fuser.add({ kind: "unary", op }, x.size, [x], `unary ${op}`);
  const out = d.alloc(x.size, `unary ${op}`);
  const n4 = Math.ceil(x.size / 4);
  const k = d.kernel(`unary:${op}`, () => unaryKernel(op));
  d.dispatch(k, { n4 }, out, [x], d.grid1d(n4, k.label));
  return out;
}

/** out = op(a, b) with broadcasting. */
export function binaryOp(
  d: Dispatcher,
  op: BinaryOp,
  a: GpuStorage,
  aShape: Shape,
  b: GpuStorage,
  bShape: Shape,
): GpuStorage {
  const outShape = broadcastShapes(aShape, bShape);
  const n = sizeOf(outShape);
  const na = sizeOf(aShape), nb = sizeOf(bShape);
  let mode: BinaryMode | null = null;
  if (na === n && nb === n) mode = "same";
  else if (na === n && nb === 1) mode = "scalarB";
  else if (na === 1 && nb === n) mode = "scalarA";
  if (mode !== null && d.fuser) return d.fuser.add({ kind: "binary", op }, n, [a, b], `binary ${op}`);
  const out = d.alloc(n, `binary ${op}`);
  if (n === 0) return out;
  if (mode !== null) {
    const m = mode;
    const n4 = Math.ceil(n / 4);
    const k = d.kernel(`binary:${op}:${m}`, () => binaryKernel(op, m));
    d.dispatch(k, { n4 }, out, [a, b], d.grid1d(n4, k.label));
    return out;
  }
  const lay = simplifyStrided(outShape, [
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
  ]);
  const rank = lay.dims.length;
  const inner = lay.dims[rank - 1];
  const [sa, sb] = lay.strides.map((s) => s[rank - 1]);
  if (inner % 4 === 0 && (sa === 0 || sa === 1) && (sb === 0 || sb === 1)) {
    // 4 outputs per invocation: stride-1 operands in vec4 units, stride-0 operands splatted.
    const vec = { a: sa === 1, b: sb === 1 };
    const dims = [...lay.dims.slice(0, -1), inner / 4];
    const units = (s: number[], v: boolean) => v ? s.map((x, j) => j === rank - 1 ? 1 : x / 4) : s;
    const key = `binary-bc4:${op}:${rank}:${vec.a ? "v" : "s"}${vec.b ? "v" : "s"}`;
    const k = d.kernel(key, () => binaryBroadcastKernel(op, rank, vec));
    const values = stridedValues(n / 4, dims, [
      { name: "a", base: 0, strides: units(lay.strides[0], vec.a) },
      { name: "b", base: 0, strides: units(lay.strides[1], vec.b) },
    ]);
    d.dispatch(k, values, out, [a, b], d.grid1d(n / 4, k.label));
    return out;
  }
  const k = d.kernel(`binary-bc:${op}:${rank}`, () => binaryBroadcastKernel(op, rank));
  const values = stridedValues(n, lay.dims, [
    { name: "a", base: 0, strides: lay.strides[0] },
    { name: "b", base: 0, strides: lay.strides[1] },
  ]);
  d.dispatch(k, values, out, [a, b], d.grid1d(n, k.label));
  return out;
}

/** out = cond != 0 ? a : b, all broadcast to `outShape`. */
export function whereOp(
  d: Dispatcher,
  cond: GpuStorage,
  cShape: Shape,
  a: GpuStorage,
  aShape: Shape,
  b: GpuStorage,
  bShape: Shape,
  outShape: Shape,
): GpuStorage {
  const n = sizeOf(outShape);
  const flat = sizeOf(cShape) === n && sizeOf(aShape) === n && sizeOf(bShape) === n;
  // Fused, an operand holding one value is splatted (e.g. `expand` of a scalar, a where(1, x, x)).
  const splat = (sh: Shape) => sizeOf(sh) === n || sizeOf(sh) === 1;
  if (d.fuser && splat(cShape) && splat(aShape) && splat(bShape)) {
    return d.fuser.add({ kind: "where" }, n, [cond, a, b], "where");
  }
  const out = d.alloc(n, "where");
  if (n === 0) return out;
  if (flat) {
    const n4 = Math.ceil(n / 4);
    const k = d.kernel("where:same", () => whereKernel(0));
    d.dispatch(k, { n4 }, out, [cond, a, b], d.grid1d(n4, k.label));
    return out;
  }
  const lay = simplifyStrided(outShape, [cShape, aShape, bShape].map((s) => broadcastStrides(s, outShape)));
  const rank = lay.dims.length;
  const k = d.kernel(`where:${rank}`, () => whereKernel(rank));
  const values = stridedValues(
    n,
    lay.dims,
    ["c", "a", "b"].map((name, j) => ({ name, base: 0, strides: lay.strides[j] })),
  );
  d.dispatch(k, values, out, [cond, a, b], d.grid1d(n, k.label));
  return out;
}

/** Writes `value` into every element of `out` (in the recorded batch). */
export function fillInto(d: Dispatcher, out: GpuStorage, value: number): void {
  const n4 = Math.ceil(out.size / 4);
  const k = d.kernel("fill", fillKernel);
  d.dispatch(k, { n4, v: value }, out, [], d.grid1d(n4, k.label));
}
