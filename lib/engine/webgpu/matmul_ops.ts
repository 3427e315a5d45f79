/**
 * Host side of the batched matrix product. {@link matmulDispatch} is the single place that picks a
 * matmul kernel: with the "tiled" kernels (GPUs, see gemm_select.ts) every product goes to the
 * workgroup-memory tiled kernel of kernels/gemm_tiled.ts; otherwise large products go to the texture
 * GEMM (fast_gemm.ts, via fast_route.ts) when enabled and it accepts the shape, the rest to the buffer
 * kernels of kernels/matmul.ts.
 * @module
 */
import {
  MATMUL_BLOCK,
  MATMUL_BLOCK_TALL,
  matmulScalarKernel,
  matmulVec4Kernel,
  SCALAR_BLOCK,
} from "../../../kernels/matmul.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import { fillInto } from "./elementwise_ops.ts";
import { recordFastMatmul } from "./fast_gemm.ts";
import { fastMatmulWorthIt, recordFast } from "./fast_route.ts";
import { matmulTiledKernel, TILED_TILE } from "../../../kernels/gemm_tiled.ts";

/** Products with at least this many rows use the taller register block. */
const TALL_MIN_ROWS = 512;

/** Sizes of a batched product, as in `Backend.matmul`. */
export interface MatmulDims {
  /** Batch of the result. */
  readonly batch: number;
  /** Batch of a: `batch` or 1 (broadcast). */
  readonly aBatch: number;
  /** Batch of b: `batch` or 1 (broadcast). */
  readonly bBatch: number;
  /** Rows of the result. */
  readonly m: number;
  /** Reduction length. */
  readonly k: number;
  /** Columns of the result. */
  readonly n: number;
  /** a is stored [k, m]. */
  readonly transA: boolean;
  /** b is stored [n, k]. */
  readonly transB: boolean;
}

/** out[b] = op(a[b]) · op(b[b]), [batch, m, n]; batch-1 operands are broadcast. */
export function matmulDispatch(d: Dispatcher, a: GpuStorage, b: GpuStorage, dims: MatmulDims): GpuStorage {
  const { batch, aBatch, bBatch, m, k, n, transA, transB } = dims;
  const out = d.alloc(batch * m * n, "matmul");
  if (out.size === 0) return out;
  if (k === 0) {
    fillInto(d, out, 0);
    return out;
  }
  const sa = aBatch === 1 ? 0 : m * k, sb = bBatch === 1 ? 0 : k * n;
  const maxZ = d.limits.maxComputeWorkgroupsPerDimension;
  if (d.gemmKernel === "tiled") {
    const ta = transA ? "T" : "N", tb = transB ? "T" : "N";
    const kernel = d.kernel(`matmul:tiled:${ta}${tb}`, () => matmulTiledKernel(transA, transB));
    const gx = Math.ceil(n / TILED_TILE), gy = Math.ceil(m / TILED_TILE);
    for (let z0 = 0; z0 < batch; z0 += maxZ) {
      d.dispatch(kernel, { m, n, k, sa, sb, z0 }, out, [a, b], [gx, gy, Math.min(maxZ, batch - z0)]);
    }
    return out;
  }
  if (
    fastMatmulWorthIt(batch, m, n, k) &&
    recordFast(
      d,
      "fast:matmul",
      [a, b, out],
      (ctx) => recordFastMatmul(ctx, a.buffer, b.buffer, out.buffer, dims),
    )
  ) return out;
  const ta = transA ? "T" : "N", tb = transB ? "T" : "N";
  const vec = m % 4 === 0 && n % 4 === 0 && k % 4 === 0;
  const bl = m >= TALL_MIN_ROWS ? MATMUL_BLOCK_TALL : MATMUL_BLOCK;
  const kernel = vec
    ? d.kernel(`matmul:vec4:${ta}${tb}:${bl.tm}x${bl.tn}`, () => matmulVec4Kernel(transA, transB, bl))
    : d.kernel(`matmul:scalar:${ta}${tb}`, () => matmulScalarKernel(transA, transB));
  const gx = vec ? Math.ceil(n / bl.tn / bl.wgx) : Math.ceil(n / SCALAR_BLOCK / 8);
  const gy = vec ? Math.ceil(m / bl.tm / bl.wgy) : Math.ceil(m / SCALAR_BLOCK / 8);
  for (let z0 = 0; z0 < batch; z0 += maxZ) {
    const values = { m, n, k, sa, sb, z0 };
    d.dispatch(kernel, values, out, [a, b], [gx, gy, Math.min(maxZ, batch - z0)]);
  }
  return out;
}
