/**
 * Host side of the row kernels of kernels/rows.ts (the power iteration's per-row normalisation and
 * stopping test): one dispatch each, one workgroup per row.
 * @module
 */
import { rowNormalizeKernel, rowNormalizeTestKernel, rowsConvergedKernel } from "../../../kernels/rows.ts";
import type { Dispatcher, GpuStorage, Grid } from "./dispatcher.ts";

function rowGrid(d: Dispatcher, rows: number, what: string): Grid {
  const [x, y] = d.fold(rows, what);
  return [x, y, 1];
}

/** x [rows, cols] with each row divided by max(its l2 norm, eps). */
export function normalizeRowsOp(
  d: Dispatcher,
  x: GpuStorage,
  rows: number,
  cols: number,
  eps: number,
): GpuStorage {
  const out = d.alloc(rows * cols, "normalizeRows");
  if (rows * cols === 0) return out;
  const k = d.kernel("rows:normalize", rowNormalizeKernel);
  d.dispatch(k, { rows, cols, eps }, out, [x], rowGrid(d, rows, k.label));
  return out;
}

/** Per row: 1 when rms(a − b) < atol + rtol·max(a) and rms(c − d) < atol + rtol·max(c), else 0. */
export function rowsConvergedOp(
  d: Dispatcher,
  a: GpuStorage,
  b: GpuStorage,
  c: GpuStorage,
  dd: GpuStorage,
  rows: number,
  colsA: number,
  colsC: number,
  atol: number,
  rtol: number,
): GpuStorage {
  const out = d.alloc(rows, "rowsConverged");
  if (rows === 0) return out;
  const k = d.kernel("rows:converged", rowsConvergedKernel);
  d.dispatch(k, { rows, colsA, colsC, atol, rtol }, out, [a, b, c, dd], rowGrid(d, rows, k.label));
  return out;
}

/**
 * y = x [rows, cols] with unit rows (norm floored at eps) and per row 1 when rms(y − v) < atol + rtol·max(y)
 * and rms(a − b) < atol + rtol·max(a) (a, b [rows, colsA]), else 0: [y, flags] in one dispatch.
 */
export function normalizeRowsConvergedOp(
  d: Dispatcher,
  x: GpuStorage,
  v: GpuStorage,
  a: GpuStorage,
  b: GpuStorage,
  rows: number,
  cols: number,
  colsA: number,
  eps: number,
  atol: number,
  rtol: number,
): [GpuStorage, GpuStorage] {
  const y = d.alloc(rows * cols, "normalizeRowsConverged");
  const flags = d.alloc(rows, "normalizeRowsConverged");
  if (rows === 0) return [y, flags];
  const k = d.kernel("rows:normalize-converged", rowNormalizeTestKernel);
  const all = [y, flags, x, v, a, b];
  for (const s of all) d.checkBinding(s, k.label);
  d.dispatchBindings(k, { rows, cols, colsA, eps, atol, rtol }, all, rowGrid(d, rows, k.label));
  return [y, flags];
}
