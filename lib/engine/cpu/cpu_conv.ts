/**
 * 2-D convolution kernels of the CPU backend (NCHW input, OIHW weight, cross-correlation with
 * stride and zero padding) and their two adjoints. Each image is unfolded (im2col) into a
 * [C KH KW, HO WO] matrix so the work is one matrix product per image; the input adjoint
 * folds back (col2im) by scatter-adding, so input pixels no window touches get exact zeros.
 * @module
 */
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape } from "../backend.ts";
import type { CpuArray } from "./cpu_storage.ts";
import { gemmRowB, gemmTransB } from "./cpu_gemm.ts";

/** Convolution geometry with every size spelled out (shared with the wasm backend's products). */
export interface ConvDims {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  s: number;
  p: number;
  ho: number;
  wo: number;
  /** C KH KW: rows of the unfolded image. */
  ckk: number;
  /** HO WO: columns of the unfolded image. */
  np: number;
  /** True when the unfolded image is the image itself (1x1 kernel, stride 1, no padding). */
  identity: boolean;
}

/** The {@link ConvDims} of a geometry. */
export function convDims(g: Conv2dGeometry): ConvDims {
  const [n, o, ho, wo] = conv2dOutputShape(g);
  const [, c, h, w] = g.x;
  const [, , kh, kw] = g.w;
  const s = g.stride, p = g.pad;
  return {
    n,
    c,
    h,
    w,
    o,
    kh,
    kw,
    s,
    p,
    ho,
    wo,
    ckk: c * kh * kw,
    np: ho * wo,
    identity: kh === 1 && kw === 1 && s === 1 && p === 0,
  };
}

/** Range [lo, hi] of output columns whose input column ow s - p + kj lies inside [0, w). */
export function validRange(d: ConvDims, k: number, inSize: number, outSize: number): [number, number] {
  const lo = Math.max(0, Math.ceil((d.p - k) / d.s));
  const hi = Math.min(outSize - 1, Math.floor((inSize - 1 + d.p - k) / d.s));
  return [lo, hi];
}

/** Unfolds image `xOff` of x into col ([C KH KW, HO WO], row-major). */
function im2col(x: CpuArray, xOff: number, d: ConvDims, col: Float64Array): void {
  const { c, h, w, kh, kw, s, p, ho, wo, np } = d;
  for (let ci = 0; ci < c; ci++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = ((ci * kh + ki) * kw + kj) * np;
        const [lo, hi] = validRange(d, kj, w, wo);
        for (let oh = 0; oh < ho; oh++) {
          const ih = oh * s - p + ki;
          const dst = row + oh * wo;
          if (ih < 0 || ih >= h || lo > hi) {
            col.fill(0, dst, dst + wo);
            continue;
          }
          const src = xOff + (ci * h + ih) * w - p + kj;
          for (let ow = 0; ow < lo; ow++) col[dst + ow] = 0;
          for (let ow = lo; ow <= hi; ow++) col[dst + ow] = x[src + ow * s];
          for (let ow = hi + 1; ow < wo; ow++) col[dst + ow] = 0;
        }
      }
    }
  }
}

/** Folds col ([C KH KW, HO WO]) back onto one image dx ([C, H, W]) by adding. */
function col2im(col: Float64Array, d: ConvDims, dx: Float64Array): void {
  const { c, h, w, kh, kw, s, p, ho, wo, np } = d;
  for (let ci = 0; ci < c; ci++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = ((ci * kh + ki) * kw + kj) * np;
        const [lo, hi] = validRange(d, kj, w, wo);
        for (let oh = 0; oh < ho; oh++) {
          const ih = oh * s - p + ki;
          if (ih < 0 || ih >= h) continue;
          const src = row + oh * wo;
          const dst = (ci * h + ih) * w - p + kj;
          for (let ow = lo; ow <= hi; ow++) dx[dst + ow * s] += col[src + ow];
        }
      }
    }
  }
}

/** y = conv2d(x, w) into `out` ([N, O, HO, WO]). */
export function conv2dInto(x: CpuArray, w: CpuArray, g: Conv2dGeometry, out: CpuArray): void {
  const d = convDims(g);
  const { n, c, h, o, ckk, np } = d;
  const imgSize = c * h * d.w;
  const col = d.identity ? null : new Float64Array(ckk * np);
  const direct = out instanceof Float64Array;
  const acc = direct ? out : new Float64Array(o * np);
  for (let q = 0; q < n; q++) {
    const outOff = q * o * np;
    if (!direct) acc.fill(0);
    if (col) {
      im2col(x, q * imgSize, d, col);
      gemmRowB(w, 0, ckk, 1, col, 0, acc, direct ? outOff : 0, o, ckk, np);
    } else {
      gemmRowB(w, 0, ckk, 1, x, q * imgSize, acc, direct ? outOff : 0, o, ckk, np);
    }
    if (!direct) out.set(acc, outOff);
  }
}

/** dx = conv2d adjoint in x applied to dy, into `out` ([N, C, H, W]). */
export function conv2dInputGradInto(dy: CpuArray, w: CpuArray, g: Conv2dGeometry, out: CpuArray): void {
  const d = convDims(g);
  const { n, c, h, o, ckk, np } = d;
  const imgSize = c * h * d.w;
  const col = new Float64Array(ckk * np);
  const direct = out instanceof Float64Array;
  const dx = d.identity ? null : new Float64Array(imgSize);
  for (let q = 0; q < n; q++) {
    const dyOff = q * o * np;
    if (dx) {
      col.fill(0);
      // col[CKK, P] = W^T dy_q with W^T(i, p) = w[p CKK + i].
      gemmRowB(w, 0, 1, ckk, dy, dyOff, col, 0, ckk, o, np);
      dx.fill(0);
      col2im(col, d, dx);
      out.set(dx, q * imgSize);
    } else if (direct) {
      gemmRowB(w, 0, 1, ckk, dy, dyOff, out, q * imgSize, ckk, o, np);
    } else {
      col.fill(0);
      gemmRowB(w, 0, 1, ckk, dy, dyOff, col, 0, ckk, o, np);
      out.set(col, q * imgSize);
    }
  }
}

/** dw = conv2d adjoint in w: sum over images of dy_q col_q^T, into `out` ([O, C, KH, KW]). */
export function conv2dWeightGradInto(x: CpuArray, dy: CpuArray, g: Conv2dGeometry, out: CpuArray): void {
  const d = convDims(g);
  const { n, c, h, o, ckk, np } = d;
  const imgSize = c * h * d.w;
  const col = d.identity ? null : new Float64Array(ckk * np);
  const direct = out instanceof Float64Array;
  const dw = direct ? out : new Float64Array(o * ckk);
  const scratch = new Float64Array(ckk * np);
  for (let q = 0; q < n; q++) {
    const dyOff = q * o * np;
    // dw[O, CKK] += dy_q[O, P] col_q[CKK, P]^T.
    if (col) {
      im2col(x, q * imgSize, d, col);
      gemmTransB(dy, dyOff, np, 1, col, 0, dw, 0, o, np, ckk, scratch);
    } else {
      gemmTransB(dy, dyOff, np, 1, x, q * imgSize, dw, 0, o, np, ckk, scratch);
    }
  }
  if (!direct) out.set(dw);
}
