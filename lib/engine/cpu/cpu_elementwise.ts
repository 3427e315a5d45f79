/**
 * Element-wise kernels of the CPU backend: unary functions, broadcast binary functions and
 * broadcast `where`. Each op is chosen once per call (or once per merged row), never per element.
 * @module
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import type { CpuArray } from "./cpu_storage.ts";
import type { BroadcastLayout } from "./cpu_broadcast.ts";
import { forEachRow } from "./cpu_broadcast.ts";

/** out[i] = op(x[i]) for every element; `out` has the length of `x`. */
export function unaryInto(op: UnaryOp, x: CpuArray, out: CpuArray): void {
  const n = x.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) out[i] = -x[i];
      return;
    case "exp":
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
      return;
    case "log":
      for (let i = 0; i < n; i++) out[i] = Math.log(x[i]);
      return;
    case "log1p":
      for (let i = 0; i < n; i++) out[i] = Math.log1p(x[i]);
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]);
      return;
    case "abs":
      for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]);
      return;
    case "sign":
      // sign(0) = 0 (and NaN stays NaN).
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v > 0 ? 1 : v < 0 ? -1 : v === 0 ? 0 : v;
      }
      return;
    case "sigmoid":
      // Never forms exp of a large positive number.
      for (let i = 0; i < n; i++) {
        const v = x[i];
        if (v >= 0) {
          out[i] = 1 / (1 + Math.exp(-v));
        } else {
          const e = Math.exp(v);
          out[i] = e / (1 + e);
        }
      }
      return;
    case "softplus":
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = (v > 0 ? v : 0) + Math.log1p(Math.exp(-Math.abs(v)));
      }
      return;
    case "tanh":
      for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]);
      return;
    case "elu":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v > 0 ? v : Math.expm1(v);
      }
      return;
    case "relu":
      // NaN propagates.
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v <= 0 ? 0 : v;
      }
      return;
    case "step":
      for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? 1 : 0;
      return;
    case "recip":
      for (let i = 0; i < n; i++) out[i] = 1 / x[i];
      return;
    case "square":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v * v;
      }
      return;
    default:
      throw new Error(`Cannot apply unary op: unknown op "${op as string}"`);
  }
}

/** out = op(a, b) over a broadcast layout with two inputs (a first). */
export function binaryInto(
  op: BinaryOp,
  a: CpuArray,
  b: CpuArray,
  layout: BroadcastLayout,
  out: CpuArray,
): void {
  const row = binaryRow(op);
  forEachRow(layout, (off, o, n) => {
    row(
      a,
      off[0],
      layout.strides[0][layout.sizes.length - 1],
      b,
      off[1],
      layout.strides[1][layout.sizes.length - 1],
      out,
      o,
      n,
    );
  });
}

type BinaryRow = (
  a: CpuArray,
  ai: number,
  sa: number,
  b: CpuArray,
  bi: number,
  sb: number,
  out: CpuArray,
  o: number,
  n: number,
) => void;

/** Strided row kernel for one binary op: out[o + j] = op(a[ai + j sa], b[bi + j sb]). */
function binaryRow(op: BinaryOp): BinaryRow {
  switch (op) {
    case "add":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] + b[bi];
      };
    case "sub":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] - b[bi];
      };
    case "mul":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] * b[bi];
      };
    case "div":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] / b[bi];
      };
    case "pow":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = Math.pow(a[ai], b[bi]);
      };
    case "max":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = Math.max(a[ai], b[bi]);
      };
    case "min":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = Math.min(a[ai], b[bi]);
      };
    case "gt":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] > b[bi] ? 1 : 0;
      };
    case "ge":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] >= b[bi] ? 1 : 0;
      };
    case "lt":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] < b[bi] ? 1 : 0;
      };
    case "le":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] <= b[bi] ? 1 : 0;
      };
    case "eq":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] === b[bi] ? 1 : 0;
      };
    case "ne":
      return (a, ai, sa, b, bi, sb, out, o, n) => {
        for (let j = 0; j < n; j++, ai += sa, bi += sb) out[o + j] = a[ai] !== b[bi] ? 1 : 0;
      };
    default:
      throw new Error(`Cannot apply binary op: unknown op "${op as string}"`);
  }
}

/** out = cond != 0 ? a : b over a broadcast layout with three inputs (cond, a, b). */
export function whereInto(
  cond: CpuArray,
  a: CpuArray,
  b: CpuArray,
  layout: BroadcastLayout,
  out: CpuArray,
): void {
  const last = layout.sizes.length - 1;
  const sc = layout.strides[0][last];
  const sa = layout.strides[1][last];
  const sb = layout.strides[2][last];
  forEachRow(layout, (off, o, n) => {
    let ci = off[0], ai = off[1], bi = off[2];
    for (let j = 0; j < n; j++, ci += sc, ai += sa, bi += sb) {
      out[o + j] = cond[ci] !== 0 ? a[ai] : b[bi];
    }
  });
}
