/**
 * Workgroup-memory tiled batched matrix product, the usual kernel on discrete GPUs (on llvmpipe the
 * register-blocked buffer kernels of matmul.ts and the texture GEMM of gemm_tex.ts are much faster;
 * the backend picks by adapter, see lib/engine/webgpu/gemm_select.ts).
 *
 * C[b] = op(A[b]) · op(B[b]) with the uniforms of {@link MATMUL_FIELDS} (m, n, k, batch strides sa / sb,
 * first batch z0). Each workgroup of TILED_WG×TILED_WG invocations computes a TILED_TILE×TILED_TILE
 * block of C, staging TILED_K-deep slices of A and B in workgroup memory; each invocation owns a
 * TILED_PER×TILED_PER register block. Any m, n, k (edges are zero-filled on load and masked on store).
 * @module
 */
import { type KernelSource, paramStruct } from "./common.ts";
import { MATMUL_FIELDS } from "./matmul.ts";

/** Invocations per workgroup side. */
export const TILED_WG = 16;
/** Results per invocation side. */
export const TILED_PER = 4;
/** Side of C's block per workgroup (TILED_WG · TILED_PER). */
export const TILED_TILE = TILED_WG * TILED_PER;
/** Depth of the staged slices of A and B. */
export const TILED_K = 16;

/** The tiled kernel for the given operand layouts (a stored [k, m] when transA, b stored [n, k] when transB). */
export function matmulTiledKernel(transA: boolean, transB: boolean): KernelSource {
  const T = TILED_TILE, K = TILED_K, W = TILED_WG, R = TILED_PER;
  const threads = W * W;
  const loads = (T * K) / threads;
  // Element e of a slice: the reduction index kk and the row (or column) r within the tile. The layout
  // whose reduction index is contiguous in memory walks kk fastest, so neighbouring invocations read
  // neighbouring addresses.
  const split = (contiguousK: boolean) =>
    contiguousK
      ? `let kk = e % ${K}u;\n      let r = e / ${K}u;`
      : `let r = e % ${T}u;\n      let kk = e / ${T}u;`;
  const aIndex = transA ? "aOff + (k0 + kk) * p.m + row0 + r" : "aOff + (row0 + r) * p.k + k0 + kk";
  const bIndex = transB ? "bOff + (col0 + r) * p.k + k0 + kk" : "bOff + (k0 + kk) * p.n + col0 + r";
  const code = `${paramStruct(MATMUL_FIELDS)}
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
var<workgroup> As: array<f32, ${T * K}>;
var<workgroup> Bs: array<f32, ${T * K}>;

@compute @workgroup_size(${W}, ${W}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bz = wg.z + p.z0;
  let row0 = wg.y * ${T}u;
  let col0 = wg.x * ${T}u;
  let tid = lid.y * ${W}u + lid.x;
  let aOff = bz * p.sa;
  let bOff = bz * p.sb;
  var acc: array<f32, ${R * R}>;
  for (var i = 0u; i < ${R * R}u; i++) {
    acc[i] = 0.0;
  }
  for (var k0 = 0u; k0 < p.k; k0 += ${K}u) {
    for (var l = 0u; l < ${loads}u; l++) {
      let e = tid + l * ${threads}u;
      {
      ${split(!transA)}
      var a = 0.0;
      if (row0 + r < p.m && k0 + kk < p.k) {
        a = A[${aIndex}];
      }
      As[kk * ${T}u + r] = a;
      }
      {
      ${split(transB)}
      var b = 0.0;
      if (col0 + r < p.n && k0 + kk < p.k) {
        b = B[${bIndex}];
      }
      Bs[kk * ${T}u + r] = b;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${K}u; kk++) {
      var av: array<f32, ${R}>;
      var bv: array<f32, ${R}>;
      for (var i = 0u; i < ${R}u; i++) {
        av[i] = As[kk * ${T}u + lid.y * ${R}u + i];
        bv[i] = Bs[kk * ${T}u + lid.x * ${R}u + i];
      }
      for (var i = 0u; i < ${R}u; i++) {
        for (var j = 0u; j < ${R}u; j++) {
          acc[i * ${R}u + j] = fma(av[i], bv[j], acc[i * ${R}u + j]);
        }
      }
    }
    workgroupBarrier();
  }
  let cOff = bz * p.m * p.n;
  for (var i = 0u; i < ${R}u; i++) {
    let row = row0 + lid.y * ${R}u + i;
    for (var j = 0u; j < ${R}u; j++) {
      let col = col0 + lid.x * ${R}u + j;
      if (row < p.m && col < p.n) {
        C[cOff + row * p.n + col] = acc[i * ${R}u + j];
      }
    }
  }
}
`;
  return { code, fields: MATMUL_FIELDS };
}
