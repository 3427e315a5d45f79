/**
 * Host side of 2-D convolution and its two adjoints as implicit GEMMs. {@link conv2dDispatch},
 * {@link conv2dInputGradDispatch} and {@link conv2dWeightGradDispatch} are the single places that pick
 * a kernel: with the "tiled" kernels (GPUs, see gemm_select.ts) all three run as implicit GEMMs on the
 * workgroup-memory tiled kernel of kernels/gemm_tiled.ts; otherwise large convolutions go to the texture GEMM (fast_gemm.ts, via fast_route.ts) when enabled and
 * it accepts the shape, the rest to the implicit-GEMM buffer kernels. The repacked weights are
 * cached per weight storage ({@link Dispatcher.derived}), so the many products with one weight in a
 * training step (forward, then one input gradient per power-series term) repack it once per layout.
 * @module
 */
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape } from "../backend.ts";
import { CONV_WG, convGemmKernel, convStripKernel, convWeightGradKernel } from "../../../kernels/conv2d.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import { reduceOp } from "./reduce_ops.ts";
import { transposePad } from "./layout_ops.ts";
import {
  type FastGemmContext,
  recordFastConv2d,
  recordFastConv2dInputGrad,
  recordFastConv2dWeightGrad,
} from "./fast_gemm.ts";
import { fastConvWorthIt, recordFast } from "./fast_route.ts";
import { convTiledKernel, TILED_TILE } from "../../../kernels/gemm_tiled.ts";
import { fillInto } from "./elementwise_ops.ts";

/**
 * One of the convolution's products on the workgroup-memory tiled kernel (the "tiled" kernels, for
 * GPUs; see gemm_select.ts): a [m, n] result reducing over k, written into `out`.
 */
function convTiled(
  d: Dispatcher,
  mode: "forward" | "inputGrad" | "weightGrad",
  out: GpuStorage,
  inputs: readonly GpuStorage[],
  g: Conv2dGeometry,
  [m, n, k]: readonly [number, number, number],
): GpuStorage {
  if (k === 0) {
    fillInto(d, out, 0);
    return out;
  }
  const [nb, c, h, w] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  const kernel = d.kernel(`conv:tiled:${mode}`, () => convTiledKernel(mode));
  const values = { m, n, k, z0: 0, nb, c, h, w, o, kh, kw, ho, wo, stride: g.stride, pad: g.pad };
  d.dispatch(kernel, values, out, inputs, [Math.ceil(n / TILED_TILE), Math.ceil(m / TILED_TILE), 1]);
  return out;
}

/**
 * Pixel columns per invocation of the forward / input-gradient kernel, and of the weight-gradient
 * kernel. Measured on llvmpipe (3x3, 64->64, batch 64, 28x28): 32x16 blocks ran at ~25 GFLOP/s against
 * ~15 for 16x8; the weight gradient, with far fewer output blocks, was fastest at 16x8.
 */
const CONV_TN = 16;
const WGRAD_TN = 8;
/** Split the weight gradient over the batch when it has fewer output blocks than this. */
const WGRAD_MIN_BLOCKS = 512;

/** Rows per invocation for a result with `rows` channels: 4, 8, 16 or (up to `max`) 32. */
function rowBlock(rows: number, max: number): number {
  return rows <= 4 ? 4 : rows <= 8 ? 8 : rows <= 16 || max <= 16 ? 16 : 32;
}

/**
 * How stride-1 convolutions (forward and input gradient) are computed: "auto" picks the row-strip
 * kernel for results with at most {@link STRIP_MAX_ROWS} channels and kernels wider than 1, the implicit
 * GEMM otherwise; the others force one (tests; "strip-scalar" without the vec4 source loads the strip
 * kernel uses when the source width is a multiple of 4). All give the same bits.
 */
export type ConvStrategy = "auto" | "gemm" | "strip" | "strip-scalar";

/**
 * Results with at most this many channels use the strip kernel. Measured on llvmpipe (batch 32, 3x3,
 * 32 reduction channels): 1 channel at 28x28 ~2.7-4x faster (e.g. 11 vs 30 ms), 4 channels at 14x14
 * ~2-4x; with 32 channels the GEMM was as fast or faster.
 */
const STRIP_MAX_ROWS = 8;

/** Largest accumulator block (rows × pixels) of the strip kernel. */
const STRIP_MAX_BLOCK = 512;

/** Pixels per strip for result width `yw` and kernel width `kw`: fewest source loads per result row. */
export function stripWidth(yw: number, kw: number, tm: number): number {
  const maxTn = Math.max(4, Math.min(32, Math.floor(STRIP_MAX_BLOCK / tm / 4) * 4));
  let best = 4, bestCost = Infinity;
  for (let tn = 4; tn <= maxTn; tn += 4) {
    const cost = Math.ceil(yw / tn) * (tn + kw - 1);
    if (cost < bestCost) [best, bestCost] = [tn, cost];
  }
  return best;
}

function useStrip(g: Conv2dGeometry, rows: number, strategy: ConvStrategy): boolean {
  if (g.stride !== 1) return false;
  if (strategy === "strip" || strategy === "strip-scalar") return true;
  return strategy === "auto" && g.w[3] > 1 && rows <= STRIP_MAX_ROWS;
}

function runConvStrip(
  d: Dispatcher,
  mode: "forward" | "inputGrad",
  src: GpuStorage,
  wp: GpuStorage,
  out: GpuStorage,
  g: Conv2dGeometry,
  tm: number,
  rows: number,
  rowsPadded: number,
  values: Record<string, number>,
  vecLoads: boolean,
): void {
  const [, , kh, kw] = g.w;
  // A result with 1 or 2 channels is one row block of that height (no FMAs on zero rows).
  if (rows <= 2) tm = rows;
  const { yw, yp, ncol } = values;
  const yh = yp / yw, tn = stripWidth(yw, kw, tm);
  const vecStore = yw % 4 === 0;
  const vecLoadPad = values.sw % 4 === 0 && vecLoads ? g.pad : null;
  const key = `conv-strip:${mode}:${kh}x${kw}:${tm}x${tn}:${vecStore ? "v" : "s"}${vecLoadPad ?? "s"}`;
  const k = d.kernel(key, () => convStripKernel({ mode, kh, kw, tm, tn, vecStore, vecLoadPad }));
  const xs = Math.ceil(yw / tn);
  const ns = (ncol / yp) * yh * xs;
  const [gx, gy] = d.fold(Math.ceil(ns / CONV_WG), key);
  const u = {
    ns,
    xs,
    rm: rows,
    rp4: rowsPadded / 4,
    rc: values.rc,
    sh: values.sh,
    sw: values.sw,
    yh,
    yw,
    simg: values.simg,
    pad: g.pad,
  };
  d.dispatch(k, u, out, [src, wp], [gx, gy, rows <= 2 ? 1 : rowsPadded / tm]);
}

function runConvGemm(
  d: Dispatcher,
  mode: "forward" | "inputGrad",
  src: GpuStorage,
  wp: GpuStorage,
  out: GpuStorage,
  g: Conv2dGeometry,
  tm: number,
  rows: number,
  rowsPadded: number,
  values: Record<string, number>,
  strategy: ConvStrategy = "auto",
): void {
  if (useStrip(g, rows, strategy)) {
    const vecLoads = strategy !== "strip-scalar";
    return runConvStrip(d, mode, src, wp, out, g, tm, rows, rowsPadded, values, vecLoads);
  }
  const [, , kh, kw] = g.w;
  const yp = values.yp;
  const vecStore = yp % 4 === 0;
  const key = `conv:${mode}:${kh}x${kw}:s${g.stride}:${tm}x${CONV_TN}:${vecStore ? "v" : "s"}`;
  const k = d.kernel(
    key,
    () => convGemmKernel({ mode, kh, kw, stride: g.stride, tm, tn: CONV_TN, vecStore }),
  );
  const blocks = Math.ceil(values.ncol / CONV_TN);
  const [gx, gy] = d.fold(Math.ceil(blocks / CONV_WG), key);
  d.dispatch(k, { ...values, rm: rows, rp4: rowsPadded / 4, pad: g.pad }, out, [src, wp], [
    gx,
    gy,
    rowsPadded / tm,
  ]);
}

/** y = conv2d(x, w): [N, O, HO, WO]. */
export function conv2dDispatch(
  d: Dispatcher,
  x: GpuStorage,
  w: GpuStorage,
  g: Conv2dGeometry,
  strategy: ConvStrategy = "auto",
): GpuStorage {
  const [n, c, h, wd] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  const out = d.alloc(n * o * ho * wo, "conv2d");
  if (out.size === 0) return out;
  if (d.gemmKernel === "tiled") return convTiled(d, "forward", out, [x, w], g, [o, n * ho * wo, c * kh * kw]);
  if (
    strategy === "auto" && fastConvWorthIt(g) &&
    recordFast(
      d,
      "fast:conv2d",
      [x, w, out],
      (ctx) => recordFastConv2d(ctx, x.buffer, w.buffer, out.buffer, g),
    )
  ) return out;
  const tm = rowBlock(o, 32);
  const op = Math.ceil(o / tm) * tm;
  const wp = d.derived(
    w,
    `conv-forward:${o}:${c * kh * kw}:${op}`,
    () => transposePad(d, w, 1, o, c * kh * kw, op),
  );
  const values = { ncol: n * ho * wo, rc: c, sh: h, sw: wd, yw: wo, yp: ho * wo, simg: c * h * wd };
  runConvGemm(d, "forward", x, wp, out, g, tm, o, op, values, strategy);
  return out;
}

/** dx = conv2d adjoint in x (transposed convolution of dy): [N, C, H, W]. */
export function conv2dInputGradDispatch(
  d: Dispatcher,
  dy: GpuStorage,
  w: GpuStorage,
  g: Conv2dGeometry,
  strategy: ConvStrategy = "auto",
): GpuStorage {
  const [n, c, h, wd] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  const out = d.alloc(n * c * h * wd, "conv2dInputGrad");
  if (out.size === 0) return out;
  if (d.gemmKernel === "tiled") {
    return convTiled(d, "inputGrad", out, [dy, w], g, [c, n * h * wd, o * kh * kw]);
  }
  if (
    strategy === "auto" && fastConvWorthIt(g) &&
    recordFast(
      d,
      "fast:conv2dInputGrad",
      [dy, w, out],
      (ctx) => recordFastConv2dInputGrad(ctx, dy.buffer, w.buffer, out.buffer, g),
    )
  ) return out;
  const tm = rowBlock(c, 32);
  const cp = Math.ceil(c / tm) * tm;
  const wp = d.derived(
    w,
    `conv-inputGrad:${o}:${c}:${kh * kw}:${cp}`,
    () => transposePad(d, w, o, c, kh * kw, cp),
  );
  const values = { ncol: n * h * wd, rc: o, sh: ho, sw: wo, yw: wd, yp: h * wd, simg: o * ho * wo };
  runConvGemm(d, "inputGrad", dy, wp, out, g, tm, c, cp, values, strategy);
  return out;
}

/** dw = conv2d adjoint in w: [O, C, KH, KW], summed over the batch (in chunks, then reduced). */
export function conv2dWeightGradDispatch(
  d: Dispatcher,
  x: GpuStorage,
  dy: GpuStorage,
  g: Conv2dGeometry,
): GpuStorage {
  const [n, c, h, wd] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  const kc = c * kh * kw;
  if (d.gemmKernel === "tiled") {
    const dw = d.alloc(o * kc, "conv2dWeightGrad");
    return dw.size === 0 ? dw : convTiled(d, "weightGrad", dw, [x, dy], g, [o, kc, n * ho * wo]);
  }
  if (fastConvWorthIt(g) && n * o * ho * wo > 0) {
    const dw = d.alloc(o * kc, "conv2dWeightGrad");
    const rec = (ctx: FastGemmContext) => recordFastConv2dWeightGrad(ctx, x.buffer, dy.buffer, dw.buffer, g);
    if (recordFast(d, "fast:conv2dWeightGrad", [x, dy, dw], rec)) return dw;
    d.release(dw);
  }
  // Weights with 1 or 2 output channels get row blocks of that height (no FMAs on zero rows).
  const tm = o <= 2 ? o : rowBlock(o, 16);
  const rb = Math.ceil(o / tm);
  const colBlocks = Math.ceil(kc / WGRAD_TN);
  const blocks = rb * colBlocks;
  const want = blocks >= WGRAD_MIN_BLOCKS ? 1 : Math.min(n, Math.ceil(WGRAD_MIN_BLOCKS / blocks));
  const chunk = Math.max(1, Math.ceil(n / Math.max(1, want)));
  const chunks = Math.max(1, Math.ceil(n / chunk));
  const part = d.alloc(chunks * o * kc, "conv2dWeightGrad");
  if (part.size === 0) return part;
  const dyVec = wo % 4 === 0;
  const vecStore = kc % 4 === 0;
  const key = `conv:wgrad:${kh}x${kw}:s${g.stride}:${tm}x${WGRAD_TN}:${dyVec ? "v" : "s"}${
    vecStore ? "v" : "s"
  }`;
  const k = d.kernel(
    key,
    () => convWeightGradKernel({ kh, kw, stride: g.stride, tm, tn: WGRAD_TN, dyVec, vecStore }),
  );
  const [gx, gy] = d.fold(Math.ceil(colBlocks / CONV_WG), key);
  const values = {
    kc,
    o,
    h,
    w: wd,
    ho,
    wo,
    ximg: c * h * wd,
    dimg: o * ho * wo,
    nb: n,
    chunk,
    rb,
    pad: g.pad,
  };
  d.dispatch(k, values, part, [x, dy], [gx, gy, chunks * rb]);
  if (chunks === 1) return part;
  const out = reduceOp(d, "sum", part, [chunks, o * kc], [0]);
  d.release(part);
  return out;
}
