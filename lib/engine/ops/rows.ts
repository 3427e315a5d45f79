/**
 * Row ops of the power iteration on [rows, cols] matrices: {@link normalizeRows},
 * {@link rowsConverged} and both at once, {@link normalizeRowsConverged}. Each is defined by a composition of other ops (the reference, used on backends
 * without a fused kernel and whenever a gradient is recorded) and runs as one fused dispatch on backends
 * that implement the optional {@link Backend.normalizeRows} / {@link Backend.rowsConverged}.
 * @module
 */
import { type Backend, fmt } from "../backend.ts";
import { isGradEnabled, type Tensor } from "../tensor.ts";
import { add, div, lt, maximum, mul, pow, sub } from "./elementwise.ts";
import { constant, sameDevice } from "./record.ts";
import { max, sum } from "./reduce.ts";

/** Switch of the fused row kernels, for measuring their effect (benchmarks, tests); default on. */
export const rowOpsOptions: { fused: boolean } = { fused: true };

function assertRows(op: string, x: Tensor): void {
  if (x.rank !== 2) {
    throw new Error(`Cannot ${op}: expected a [rows, cols] matrix, got shape ${fmt(x.shape)}`);
  }
}

/**
 * Each row of x [rows, cols] divided by max(its l2 norm, eps) (`F.normalize` per row). Differentiable:
 * with a gradient to record it runs as the composed ops, which record their own backward rules.
 */
export function normalizeRows(x: Tensor, eps = 1e-12): Tensor {
  assertRows("normalize rows", x);
  const d = sameDevice("normalize rows", x);
  const fused: Backend["normalizeRows"] = rowOpsOptions.fused
    ? d.backend.normalizeRows?.bind(d.backend)
    : undefined;
  if (fused && (!isGradEnabled() || x.node === null)) {
    return constant(d, fused(x.buffer.storage, x.shape[0], x.shape[1], eps), x.shape);
  }
  return div(x, maximum(pow(sum(mul(x, x), 1, true), 0.5), eps));
}

/** Per row of [rows, n]: ‖a − b‖₂/√n < atol + rtol·max(a), as 1 or 0 ([rows]; the composed reference). */
function rowConverged(a: Tensor, b: Tensor, atol: number, rtol: number): Tensor {
  const e = sub(a, b);
  const rms = pow(div(sum(mul(e, e), 1), a.shape[1]), 0.5);
  return lt(rms, add(atol, mul(max(a, 1), rtol)));
}

/**
 * The power iteration's stopping test per row: 1 where both rms(a − b) < atol + rtol·max(a) and
 * rms(c − d) < atol + rtol·max(c) hold for that row, else 0. a, b are [rows, colsA]; c, d [rows, colsC].
 * Shape [rows]; never carries a gradient.
 */
export function rowsConverged(
  a: Tensor,
  b: Tensor,
  c: Tensor,
  d: Tensor,
  atol: number,
  rtol: number,
): Tensor {
  for (const t of [a, b, c, d]) assertRows("test convergence", t);
  const dev = sameDevice("test convergence", a, b, c, d);
  const rows = a.shape[0];
  if (
    b.shape[0] !== rows || c.shape[0] !== rows || d.shape[0] !== rows || b.shape[1] !== a.shape[1] ||
    d.shape[1] !== c.shape[1]
  ) {
    throw new Error(
      `Cannot test convergence: shapes ${fmt(a.shape)}, ${fmt(b.shape)}, ${fmt(c.shape)}, ${
        fmt(d.shape)
      } do not pair up (expected a, b [rows, colsA] and c, d [rows, colsC])`,
    );
  }
  const fused: Backend["rowsConverged"] = rowOpsOptions.fused
    ? dev.backend.rowsConverged?.bind(dev.backend)
    : undefined;
  if (fused) {
    const st = [a, b, c, d].map((t) => t.buffer.storage);
    return constant(dev, fused(st[0], st[1], st[2], st[3], rows, a.shape[1], c.shape[1], atol, rtol), [rows]);
  }
  return mul(rowConverged(a, b, atol, rtol), rowConverged(c, d, atol, rtol));
}

/**
 * The second half of a power-iteration step with its stopping test: y = {@link normalizeRows}(x, eps)
 * and {@link rowsConverged}(y, v, a, b, atol, rtol), in one dispatch on backends with
 * {@link Backend.normalizeRowsConverged}. Returns [y, flags]; never records a gradient (call it under noGrad
 * or on tensors without one).
 */
export function normalizeRowsConverged(
  x: Tensor,
  v: Tensor,
  a: Tensor,
  b: Tensor,
  eps: number,
  atol: number,
  rtol: number,
): [Tensor, Tensor] {
  for (const t of [x, v, a, b]) assertRows("normalize and test rows", t);
  const dev = sameDevice("normalize and test rows", x, v, a, b);
  const fused: Backend["normalizeRowsConverged"] = rowOpsOptions.fused
    ? dev.backend.normalizeRowsConverged?.bind(dev.backend)
    : undefined;
  const rows = x.shape[0];
  const paired = v.shape.join() === x.shape.join() && a.shape[0] === rows &&
    b.shape.join() === a.shape.join();
  if (fused && paired && (!isGradEnabled() || x.node === null)) {
    const [y, flags] = fused(
      x.buffer.storage,
      v.buffer.storage,
      a.buffer.storage,
      b.buffer.storage,
      rows,
      x.shape[1],
      a.shape[1],
      eps,
      atol,
      rtol,
    );
    return [constant(dev, y, x.shape), constant(dev, flags, [rows])];
  }
  const y = normalizeRows(x, eps);
  return [y, rowsConverged(y, v, a, b, atol, rtol)];
}
