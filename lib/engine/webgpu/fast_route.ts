/**
 * Routes large matmuls and convolutions to the texture GEMM of fast_gemm.ts: the size thresholds, and
 * the glue that records a `recordFast*` call into the dispatcher's open compute pass
 * ({@link Dispatcher.recordExternal}), so fused ops, deferred buffer release and submit counting stay
 * right. Small products stay on the buffer kernels: the texture path costs ~0.1 ms of JavaScript and at
 * least three dispatches (pack, pack, multiply) per call, and below the thresholds it was measured slower.
 * @module
 */
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape } from "../backend.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import type { FastGemmContext } from "./fast_gemm.ts";

/**
 * Least FLOPs (2·batch·m·n·k) of a matmul routed to the texture GEMM. Measured on llvmpipe (2 busy
 * cores, square products, ms per call texture / buffer kernel): 256³ 4.8 / 2.7, 384³ 8.9–15.4 /
 * 8.2–14.3, 512³ 23 / 33, 768³ 84 / 110.
 */
export const FAST_MIN_MATMUL_FLOPS = 2e8;
/**
 * Least FLOPs (2·N·O·HO·WO·C·KH·KW) of a convolution routed to the texture GEMM. Measured on llvmpipe
 * (3×3, pad 1; ms per call of forward, input gradient, weight gradient, texture / buffer kernels):
 * [1,64,28,28]→64 (5.8e7 FLOP) 9.1/24.7, 7.7/9.5, 10.8/12.0; [16,32,16,16]→32 (7.5e7) 9.0/12.1,
 * 11.1/13.0, 13.9/14.7; [4,64,28,28]→64 (2.3e8) about 2× faster on all three.
 */
export const FAST_MIN_CONV_FLOPS = 2e7;
/** Least m, n and k of a routed matmul, and least input and output channels of a routed convolution. */
export const FAST_MIN_SIDE = 16;

/** Whether a matmul of these sizes goes to the texture GEMM (when enabled). */
export function fastMatmulWorthIt(batch: number, m: number, n: number, k: number): boolean {
  return m >= FAST_MIN_SIDE && n >= FAST_MIN_SIDE && k >= FAST_MIN_SIDE &&
    2 * batch * m * n * k >= FAST_MIN_MATMUL_FLOPS;
}

/** Whether a convolution (any of its three products) of geometry `g` goes to the texture GEMM. */
export function fastConvWorthIt(g: Conv2dGeometry): boolean {
  const [n, c] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  return c >= FAST_MIN_SIDE && o >= FAST_MIN_SIDE && 2 * n * o * ho * wo * c * kh * kw >= FAST_MIN_CONV_FLOPS;
}

/**
 * Records `record` (a `recordFast*` call) into `d`'s open pass, binding `storages` (its inputs and
 * output). Returns false, having recorded nothing, when the fast path is off or the hook declines.
 */
export function recordFast(
  d: Dispatcher,
  label: string,
  storages: readonly GpuStorage[],
  record: (ctx: FastGemmContext) => boolean,
): boolean {
  if (!d.fastGemm) return false;
  const device = d.device;
  const getPipeline = (code: string) => d.pipelines.get(code, label).pipeline;
  return d.recordExternal(label, storages, 3, (pass) => record({ device, pass, getPipeline }));
}
