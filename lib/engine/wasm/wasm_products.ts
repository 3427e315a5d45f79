/**
 * The hot products of the "wasm" backend on the SIMD kernel: batched matmul (any transposes, size-1
 * batch broadcast) and the three convolution products. Convolutions unfold a group of images into one
 * wide matrix in the scratch block (im2col, or its transpose for the weight gradient), so each group is
 * a single large matrix product; the input gradient is a convolution with the flipped weight or folds
 * the product back (col2im) by adding, and the weight gradient at stride 1 with few output channels is
 * one product per kernel tap. Operands are packed from any Float32Array (views on the memory or not).
 * All results are float32, accumulated in float32 by the kernel.
 * @module
 */
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape } from "../backend.ts";
import { type ConvDims, convDims, validRange } from "../cpu/cpu_conv.ts";
import type { MatmulDims } from "../cpu/cpu_gemm.ts";
import { MR, NR, packA, packB, roundUp, type WasmRuntime } from "./wasm_runtime.ts";

/**
 * Floats of unfolded images per group (at least one image): 4 Mi floats (16 MiB) bound the arena a
 * convolution needs. The convolutions take it as a last argument so tests can force several groups.
 */
export const COL_BUDGET = 1 << 22;

/** Batched matmul into `out` ([batch, m, n]) with the kernel; see {@link MatmulDims}. */
export function matmulWasm(
  rt: WasmRuntime,
  a: Float32Array,
  b: Float32Array,
  d: MatmulDims,
  out: Float32Array,
): void {
  const { batch, m, k, n, transA, transB } = d;
  if (m === 0 || n === 0) return;
  if (k === 0) return; // out is already zero
  const mp = roundUp(m, MR), np = roundUp(n, NR);
  const aAt = rt.reserve(mp * k + k * np + mp * np), bAt = aAt + mp * k, cAt = bAt + k * np;
  const mem = rt.f32;
  // A(i, p): row stride and column stride in the stored layout.
  const ars = transA ? 1 : k, acs = transA ? m : 1;
  const brs = transB ? 1 : n, bcs = transB ? k : 1;
  for (let q = 0; q < batch; q++) {
    if (q === 0 || d.aBatch !== 1) packA(a, d.aBatch === 1 ? 0 : q * m * k, ars, acs, m, k, mem, aAt);
    if (q === 0 || d.bBatch !== 1) packB(b, d.bBatch === 1 ? 0 : q * k * n, brs, bcs, k, n, mem, bAt, np);
    mem.fill(0, cAt, cAt + mp * np);
    rt.gemm(aAt, bAt, cAt, mp, np, k, np, np);
    const o = q * m * n;
    if (np === n) out.set(mem.subarray(cAt, cAt + m * n), o);
    else for (let i = 0; i < m; i++) out.set(mem.subarray(cAt + i * np, cAt + i * np + n), o + i * n);
  }
}

/** The convolution geometry plus the images unfolded per product. */
interface Dims extends ConvDims {
  /** Images per group. */
  group: number;
}

function dimsOf(g: Conv2dGeometry, budget: number): Dims {
  const d = convDims(g);
  return { ...d, group: Math.max(1, Math.min(d.n, Math.floor(budget / (d.ckk * d.np)))) };
}

/**
 * Unfolds image `img` of x into columns [col0, col0 + HO WO) of the [C KH KW, ld] matrix at `at`
 * (transposed = false), or into rows [col0, col0 + HO WO) of the [HO WO, ld] matrix at `at` (transposed).
 */
function im2col(
  x: Float32Array,
  img: number,
  d: Dims,
  mem: Float32Array,
  at: number,
  ld: number,
  col0: number,
  transposed: boolean,
): void {
  const { c, h, w, kh, kw, s, p, ho, wo } = d;
  const xOff = img * c * h * w;
  for (let ci = 0; ci < c; ci++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = (ci * kh + ki) * kw + kj;
        const [lo, hi] = validRange(d, kj, w, wo);
        for (let oh = 0; oh < ho; oh++) {
          const ih = oh * s - p + ki;
          const inside = ih >= 0 && ih < h && lo <= hi;
          const src = xOff + (ci * h + ih) * w - p + kj;
          const col = col0 + oh * wo;
          if (!transposed) {
            const dst = at + row * ld + col;
            if (!inside) {
              mem.fill(0, dst, dst + wo);
              continue;
            }
            for (let ow = 0; ow < lo; ow++) mem[dst + ow] = 0;
            if (s === 1) mem.set(x.subarray(src + lo, src + hi + 1), dst + lo);
            else for (let ow = lo; ow <= hi; ow++) mem[dst + ow] = x[src + ow * s];
            for (let ow = hi + 1; ow < wo; ow++) mem[dst + ow] = 0;
          } else {
            const dst = at + col * ld + row;
            if (!inside) {
              for (let ow = 0; ow < wo; ow++) mem[dst + ow * ld] = 0;
              continue;
            }
            for (let ow = 0; ow < lo; ow++) mem[dst + ow * ld] = 0;
            for (let ow = lo; ow <= hi; ow++) mem[dst + ow * ld] = x[src + ow * s];
            for (let ow = hi + 1; ow < wo; ow++) mem[dst + ow * ld] = 0;
          }
        }
      }
    }
  }
}

/** Adds columns [col0, col0 + HO WO) of the [C KH KW, ld] matrix at `at` onto image `img` of dx. */
function col2im(
  mem: Float32Array,
  at: number,
  ld: number,
  col0: number,
  d: Dims,
  dx: Float32Array,
  img: number,
): void {
  const { c, h, w, kh, kw, s, p, ho, wo } = d;
  const xOff = img * c * h * w;
  for (let ci = 0; ci < c; ci++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = (ci * kh + ki) * kw + kj;
        const [lo, hi] = validRange(d, kj, w, wo);
        for (let oh = 0; oh < ho; oh++) {
          const ih = oh * s - p + ki;
          if (ih < 0 || ih >= h) continue;
          const src = at + row * ld + col0 + oh * wo;
          const dst = xOff + (ci * h + ih) * w - p + kj;
          for (let ow = lo; ow <= hi; ow++) dx[dst + ow * s] += mem[src + ow];
        }
      }
    }
  }
}

/** y = conv2d(x, w) into `out` ([N, O, HO, WO]): per group, W [O, CKK] times the unfolded images. */
export function conv2dWasm(
  rt: WasmRuntime,
  x: Float32Array,
  w: Float32Array,
  g: Conv2dGeometry,
  out: Float32Array,
  budget: number = COL_BUDGET,
): void {
  const d = dimsOf(g, budget);
  const { n, o, ckk, np, group } = d;
  const op = roundUp(o, MR), ld = roundUp(group * np, NR);
  const aAt = rt.reserve(op * ckk + ckk * ld + op * ld), bAt = aAt + op * ckk, cAt = bAt + ckk * ld;
  const mem = rt.f32;
  packA(w, 0, ckk, 1, o, ckk, mem, aAt);
  for (let q0 = 0; q0 < n; q0 += group) {
    const gn = Math.min(group, n - q0);
    const cols = roundUp(gn * np, NR);
    for (let r = 0; r < ckk; r++) mem.fill(0, bAt + r * ld + gn * np, bAt + r * ld + ld);
    for (let gi = 0; gi < gn; gi++) im2col(x, q0 + gi, d, mem, bAt, ld, gi * np, false);
    mem.fill(0, cAt, cAt + op * ld);
    rt.gemm(aAt, bAt, cAt, op, cols, ckk, ld, ld);
    for (let gi = 0; gi < gn; gi++) {
      for (let oc = 0; oc < o; oc++) {
        const src = cAt + oc * ld + gi * np;
        out.set(mem.subarray(src, src + np), ((q0 + gi) * o + oc) * np);
      }
    }
  }
}

/**
 * dx = the adjoint of conv2d in x applied to dy, into `out` ([N, C, H, W], zero on entry): a convolution
 * of dy with the flipped weight at stride 1 when O <= C, else W^T dy folded back (`route` forces one
 * where both apply).
 */
export function conv2dInputGradWasm(
  rt: WasmRuntime,
  dy: Float32Array,
  w: Float32Array,
  g: Conv2dGeometry,
  out: Float32Array,
  budget: number = COL_BUDGET,
  route: "auto" | "convolution" | "fold" = "auto",
): void {
  const [, c, h, wd] = g.x;
  const [o0, , kh, kw] = g.w;
  const convolvable = g.stride === 1 && kh === kw && g.pad <= kh - 1;
  if (convolvable && (route === "convolution" || (route === "auto" && o0 <= c))) {
    // At stride 1 the adjoint is itself a convolution: dy (O channels) with the weight transposed to
    // [C, O, KH, KW] and flipped in both taps, padding KH - 1 - pad. Unfolding dy copies O KH KW rows of
    // contiguous runs, where folding back (col2im) scatter-adds C KH KW rows: the convolution wins
    // when O <= C, folding back when C is the smaller (the model's 1- and 4-channel inputs).
    const wf = new Float32Array(w.length);
    for (let oc = 0; oc < o0; oc++) {
      for (let ci = 0; ci < c; ci++) {
        for (let ki = 0; ki < kh; ki++) {
          for (let kj = 0; kj < kw; kj++) {
            wf[((ci * o0 + oc) * kh + kh - 1 - ki) * kw + kw - 1 - kj] =
              w[((oc * c + ci) * kh + ki) * kw + kj];
          }
        }
      }
    }
    const [n0, , ho, wo] = conv2dOutputShape(g);
    const adj: Conv2dGeometry = { x: [n0, o0, ho, wo], w: [c, o0, kh, kw], stride: 1, pad: kh - 1 - g.pad };
    const [, , h2, w2] = conv2dOutputShape(adj);
    if (h2 !== h || w2 !== wd) {
      throw new Error(`Cannot compute conv2d input gradient: adjoint gives ${h2}x${w2}, not ${h}x${wd}`);
    }
    conv2dWasm(rt, dy, wf, adj, out, budget);
    return;
  }
  const d = dimsOf(g, budget);
  const { n, o, ckk, np, group } = d;
  const mp = roundUp(ckk, MR), ld = roundUp(group * np, NR);
  const aAt = rt.reserve(mp * o + o * ld + mp * ld), bAt = aAt + mp * o, cAt = bAt + o * ld;
  const mem = rt.f32;
  // A = W^T [CKK, O]: A(i, p) = w[p CKK + i].
  packA(w, 0, 1, ckk, ckk, o, mem, aAt);
  for (let q0 = 0; q0 < n; q0 += group) {
    const gn = Math.min(group, n - q0);
    const cols = roundUp(gn * np, NR);
    // B = dy of the group as [O, gn NP].
    for (let oc = 0; oc < o; oc++) {
      const row = bAt + oc * ld;
      for (let gi = 0; gi < gn; gi++) {
        const src = ((q0 + gi) * o + oc) * np;
        mem.set(dy.subarray(src, src + np), row + gi * np);
      }
      mem.fill(0, row + gn * np, row + ld);
    }
    mem.fill(0, cAt, cAt + mp * ld);
    rt.gemm(aAt, bAt, cAt, mp, cols, o, ld, ld);
    for (let gi = 0; gi < gn; gi++) col2im(mem, cAt, ld, gi * np, d, out, q0 + gi);
  }
}

/**
 * dw = the adjoint of conv2d in w, into `out` ([O, C, KH, KW]): at stride 1 with O < C one product per
 * tap, else the sum over images of dy_q unfold(x_q)^T (`route` forces one where both apply).
 */
export function conv2dWeightGradWasm(
  rt: WasmRuntime,
  x: Float32Array,
  dy: Float32Array,
  g: Conv2dGeometry,
  out: Float32Array,
  budget: number = COL_BUDGET,
  route: "auto" | "taps" | "unfold" = "auto",
): void {
  const d = dimsOf(g, budget);
  // Per-tap products pack KH KW shifted copies of dy (O rows each), unfolding writes KH KW copies of x
  // (C rows each): the taps win when O < C (64 -> 1 channels), unfolding when C is the smaller.
  if (d.s === 1 && (route === "taps" || (route === "auto" && d.o < d.c))) {
    weightGradByTaps(rt, x, dy, d, out, budget);
    return;
  }
  const { n, o, ckk, np, group } = d;
  const op = roundUp(o, MR), ld = roundUp(ckk, NR);
  const kMax = group * np;
  const aAt = rt.reserve(op * kMax + kMax * ld + op * ld), bAt = aAt + op * kMax, cAt = bAt + kMax * ld;
  const mem = rt.f32;
  mem.fill(0, cAt, cAt + op * ld);
  for (let q0 = 0; q0 < n; q0 += group) {
    const gn = Math.min(group, n - q0);
    const k = gn * np;
    // A = dy of the group as [O, gn NP], packed in panels of MR rows (panel stride k MR).
    for (let pq = 0; pq < op / MR; pq++) {
      for (let r = 0; r < MR; r++) {
        const oc = pq * MR + r;
        const base = aAt + pq * k * MR + r;
        if (oc >= o) {
          for (let t = 0; t < k; t++) mem[base + t * MR] = 0;
          continue;
        }
        for (let gi = 0; gi < gn; gi++) {
          const src = ((q0 + gi) * o + oc) * np;
          const dst = base + gi * np * MR;
          for (let t = 0; t < np; t++) mem[dst + t * MR] = dy[src + t];
        }
      }
    }
    // B = unfold(x)^T of the group as [gn NP, CKK], rows padded to ld.
    for (let gi = 0; gi < gn; gi++) im2col(x, q0 + gi, d, mem, bAt, ld, gi * np, true);
    if (ld > ckk) { for (let t = 0; t < k; t++) mem.fill(0, bAt + t * ld + ckk, bAt + t * ld + ld); }
    rt.gemm(aAt, bAt, cAt, op, ld, k, ld, ld);
  }
  for (let oc = 0; oc < o; oc++) out.set(mem.subarray(cAt + oc * ld, cAt + oc * ld + ckk), oc * ckk);
}

/**
 * dw at stride 1, one product per tap (ki, kj): dw[:, :, ki, kj] = shift(dy) [O, N H W] x^T [N H W, C],
 * where shift(dy) at input position (ih, iw) is dy at (ih + p - ki, iw + p - kj), or 0 outside. x is
 * transposed once per group of images; unfolding it (C KH KW rows of transposed writes) costs KH KW
 * times more, which dominated when O is small (the model's 64 -> 1 channel convolution).
 */
function weightGradByTaps(
  rt: WasmRuntime,
  x: Float32Array,
  dy: Float32Array,
  d: Dims,
  out: Float32Array,
  budget: number,
): void {
  const { n, c, h, w, o, kh, kw, p, ho, wo } = d;
  const hw = h * w, taps = kh * kw;
  const group = Math.max(1, Math.min(n, Math.floor(budget / (c * hw))));
  const op = roundUp(o, MR), ld = roundUp(c, NR), kMax = group * hw;
  const aAt = rt.reserve(op * kMax + kMax * ld + taps * op * ld),
    bAt = aAt + op * kMax,
    cAt = bAt + kMax * ld;
  const mem = rt.f32;
  mem.fill(0, cAt, cAt + taps * op * ld);
  for (let q0 = 0; q0 < n; q0 += group) {
    const gn = Math.min(group, n - q0);
    const k = gn * hw;
    // B = x^T of the group: B[gi HW + t, ci] = x[q0 + gi, ci, t], rows padded to ld.
    for (let gi = 0; gi < gn; gi++) {
      for (let ci = 0; ci < c; ci++) {
        const src = ((q0 + gi) * c + ci) * hw, dst = bAt + gi * hw * ld + ci;
        for (let t = 0; t < hw; t++) mem[dst + t * ld] = x[src + t];
      }
    }
    if (ld > c) { for (let t = 0; t < k; t++) mem.fill(0, bAt + t * ld + c, bAt + t * ld + ld); }
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        // A = shift(dy) of the group as [O, gn HW] in panels of MR rows (rows past O are zero).
        const iwLo = Math.max(0, kj - p), iwHi = Math.min(w - 1, wo - 1 + kj - p);
        for (let pq = 0; pq < op / MR; pq++) {
          for (let r = 0; r < MR; r++) {
            const oc = pq * MR + r;
            const base = aAt + pq * k * MR + r;
            if (oc >= o) {
              for (let t = 0; t < k; t++) mem[base + t * MR] = 0;
              continue;
            }
            for (let gi = 0; gi < gn; gi++) {
              const src = ((q0 + gi) * o + oc) * ho * wo;
              for (let ih = 0; ih < h; ih++) {
                const dst = base + (gi * hw + ih * w) * MR;
                const oh = ih + p - ki;
                if (oh < 0 || oh >= ho || iwLo > iwHi) {
                  for (let iw = 0; iw < w; iw++) mem[dst + iw * MR] = 0;
                  continue;
                }
                for (let iw = 0; iw < iwLo; iw++) mem[dst + iw * MR] = 0;
                const row = src + oh * wo + p - kj;
                for (let iw = iwLo; iw <= iwHi; iw++) mem[dst + iw * MR] = dy[row + iw];
                for (let iw = iwHi + 1; iw < w; iw++) mem[dst + iw * MR] = 0;
              }
            }
          }
        }
        rt.gemm(aAt, bAt, cAt + (ki * kw + kj) * op * ld, op, ld, k, ld, ld);
      }
    }
  }
  for (let oc = 0; oc < o; oc++) {
    for (let ci = 0; ci < c; ci++) {
      for (let tap = 0; tap < taps; tap++) {
        out[(oc * c + ci) * taps + tap] = mem[cAt + tap * op * ld + oc * ld + ci];
      }
    }
  }
}
