/**
 * Workgroup-memory tiled batched matrix product, the usual kernel on discrete GPUs (on llvmpipe the
 * register-blocked buffer kernels of matmul.ts and the texture GEMM of gemm_tex.ts are much faster;
 * the backend picks by adapter, see lib/engine/webgpu/gemm_select.ts).
 *
 * C[b] = op(A[b]) · op(B[b]) with the uniforms of {@link MATMUL_FIELDS} (m, n, k, batch strides sa / sb,
 * first batch z0). Each workgroup of TILED_WG×TILED_WG invocations computes a TILED_TILE×TILED_TILE
 * block of C, staging TILED_K-deep slices of A and B in workgroup memory; each invocation owns a
 * TILED_PER×TILED_PER register block. Any m, n, k (edges are zero-filled on load and masked on store).
 *
 * The same skeleton ({@link tiledGemmCode}) runs the convolution's three products as implicit GEMMs
 * ({@link convTiledKernel}): operands are gathered from the tensors on load (im2col inside the loads)
 * and results scattered to their layout on store.
 * @module
 */
import { type KernelSource, type ParamField, paramStruct } from "./common.ts";
import { MATMUL_FIELDS } from "./matmul.ts";

/** Invocations per workgroup side. */
export const TILED_WG = 16;
/** Results per invocation side. */
export const TILED_PER = 4;
/** Side of C's block per workgroup (TILED_WG · TILED_PER). */
export const TILED_TILE = TILED_WG * TILED_PER;
/** Depth of the staged slices of A and B. */
export const TILED_K = 16;

/**
 * The parts of a tiled GEMM: WGSL functions `loadA(z, row, kk) -> f32`, `loadB(z, kk, col) -> f32` and
 * `storeC(z, row, col, v)` (called inside the bounds p.m, p.n, p.k only), their bindings, and whether
 * each operand is contiguous along the reduction (decides which index neighbouring invocations load).
 */
export interface TiledGemmParts {
  /** Uniform fields; must include m, n, k and z0. */
  readonly fields: readonly ParamField[];
  /** Binding declarations (binding 1 the output, then the inputs). */
  readonly bindings: string;
  /** WGSL functions loadA, loadB and storeC. */
  readonly functions: string;
  /** A is contiguous along the reduction index. */
  readonly aContiguousK: boolean;
  /** B is contiguous along the reduction index. */
  readonly bContiguousK: boolean;
}

/** The tiled GEMM kernel around `parts`; grid [ceil(n / TILED_TILE), ceil(m / TILED_TILE), batches]. */
export function tiledGemmCode(parts: TiledGemmParts): string {
  const T = TILED_TILE, K = TILED_K, W = TILED_WG, R = TILED_PER;
  const threads = W * W;
  const loads = (T * K) / threads;
  // Element e of a slice: the reduction index kk and the row (or column) r within the tile. An operand
  // contiguous along the reduction walks kk fastest, so neighbouring invocations read neighbouring
  // addresses.
  const split = (contiguousK: boolean) =>
    contiguousK
      ? `let kk = e % ${K}u;\n      let r = e / ${K}u;`
      : `let r = e % ${T}u;\n      let kk = e / ${T}u;`;
  return `${paramStruct(parts.fields)}
${parts.bindings}
var<workgroup> As: array<f32, ${T * K}>;
var<workgroup> Bs: array<f32, ${T * K}>;
${parts.functions}
@compute @workgroup_size(${W}, ${W}, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bz = wg.z + p.z0;
  let row0 = wg.y * ${T}u;
  let col0 = wg.x * ${T}u;
  let tid = lid.y * ${W}u + lid.x;
  var acc: array<f32, ${R * R}>;
  for (var i = 0u; i < ${R * R}u; i++) {
    acc[i] = 0.0;
  }
  for (var k0 = 0u; k0 < p.k; k0 += ${K}u) {
    for (var l = 0u; l < ${loads}u; l++) {
      let e = tid + l * ${threads}u;
      {
      ${split(parts.aContiguousK)}
      var a = 0.0;
      if (row0 + r < p.m && k0 + kk < p.k) {
        a = loadA(bz, row0 + r, k0 + kk);
      }
      As[kk * ${T}u + r] = a;
      }
      {
      ${split(parts.bContiguousK)}
      var b = 0.0;
      if (col0 + r < p.n && k0 + kk < p.k) {
        b = loadB(bz, k0 + kk, col0 + r);
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
  for (var i = 0u; i < ${R}u; i++) {
    let row = row0 + lid.y * ${R}u + i;
    for (var j = 0u; j < ${R}u; j++) {
      let col = col0 + lid.x * ${R}u + j;
      if (row < p.m && col < p.n) {
        storeC(bz, row, col, acc[i * ${R}u + j]);
      }
    }
  }
}
`;
}

/** The tiled matmul for the given operand layouts (a stored [k, m] when transA, b stored [n, k] when transB). */
export function matmulTiledKernel(transA: boolean, transB: boolean): KernelSource {
  const aIndex = transA ? "z * p.sa + kk * p.m + row" : "z * p.sa + row * p.k + kk";
  const bIndex = transB ? "z * p.sb + col * p.k + kk" : "z * p.sb + kk * p.n + col";
  const code = tiledGemmCode({
    fields: MATMUL_FIELDS,
    bindings: `@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;`,
    functions: `fn loadA(z: u32, row: u32, kk: u32) -> f32 {
  return A[${aIndex}];
}
fn loadB(z: u32, kk: u32, col: u32) -> f32 {
  return B[${bIndex}];
}
fn storeC(z: u32, row: u32, col: u32, v: f32) {
  C[(z * p.m + row) * p.n + col] = v;
}`,
    aContiguousK: !transA,
    bContiguousK: transB,
  });
  return { code, fields: MATMUL_FIELDS };
}

/** Uniform fields of {@link convTiledKernel}: the GEMM sizes and the convolution geometry. */
export const CONV_TILED_FIELDS: readonly ParamField[] = [
  ["m", "u32"],
  ["n", "u32"],
  ["k", "u32"],
  ["z0", "u32"],
  ["nb", "u32"],
  ["c", "u32"],
  ["h", "u32"],
  ["w", "u32"],
  ["o", "u32"],
  ["kh", "u32"],
  ["kw", "u32"],
  ["ho", "u32"],
  ["wo", "u32"],
  ["stride", "u32"],
  ["pad", "u32"],
];

/** The input value x[nn, ch, oh·stride + i − pad, ow·stride + j − pad], 0 in the padding. */
const X_AT = `fn xAt(nn: u32, ch: u32, oh: u32, ow: u32, i: u32, j: u32) -> f32 {
  let ih = i32(oh * p.stride + i) - i32(p.pad);
  let iw = i32(ow * p.stride + j) - i32(p.pad);
  if (ih < 0 || iw < 0 || ih >= i32(p.h) || iw >= i32(p.w)) {
    return 0.0;
  }
  return X[((nn * p.c + ch) * p.h + u32(ih)) * p.w + u32(iw)];
}`;

/**
 * One of the convolution's products as a tiled implicit GEMM (x [N, C, H, W], w [O, C, KH, KW],
 * y [N, O, HO, WO], cross-correlation with zero padding):
 * - "forward": y = conv(x, w); rows o, columns (n, pixel), reduction (c, i, j); bindings Y, X, Wt.
 * - "inputGrad": dx from dy and w; rows c, columns (n, input pixel), reduction (o, i, j); bindings DX, DY, Wt.
 * - "weightGrad": dw from x and dy; rows o, columns (c, i, j), reduction (n, pixel); bindings DW, X, DY.
 */
export function convTiledKernel(mode: "forward" | "inputGrad" | "weightGrad"): KernelSource {
  const out = (name: string) => `@group(0) @binding(1) var<storage, read_write> ${name}: array<f32>;`;
  const input = (b: number, name: string) =>
    `@group(0) @binding(${b}) var<storage, read> ${name}: array<f32>;`;
  let bindings: string, functions: string, aContiguousK: boolean, bContiguousK: boolean;
  if (mode === "forward") {
    bindings = [out("Y"), input(2, "X"), input(3, "Wt")].join("\n");
    functions = `${X_AT}
fn loadA(z: u32, row: u32, kk: u32) -> f32 {
  return Wt[row * p.k + kk];
}
fn loadB(z: u32, kk: u32, col: u32) -> f32 {
  let pix = col % (p.ho * p.wo);
  let r = kk % (p.kh * p.kw);
  return xAt(col / (p.ho * p.wo), kk / (p.kh * p.kw), pix / p.wo, pix % p.wo, r / p.kw, r % p.kw);
}
fn storeC(z: u32, row: u32, col: u32, v: f32) {
  let pix = col % (p.ho * p.wo);
  Y[((col / (p.ho * p.wo)) * p.o + row) * p.ho * p.wo + pix] = v;
}`;
    [aContiguousK, bContiguousK] = [true, false];
  } else if (mode === "inputGrad") {
    bindings = [out("DX"), input(2, "DY"), input(3, "Wt")].join("\n");
    functions = `fn loadA(z: u32, row: u32, kk: u32) -> f32 {
  let kk2 = p.kh * p.kw;
  return Wt[((kk / kk2) * p.c + row) * kk2 + kk % kk2];
}
fn loadB(z: u32, kk: u32, col: u32) -> f32 {
  let q = col % (p.h * p.w);
  let nn = col / (p.h * p.w);
  let och = kk / (p.kh * p.kw);
  let r = kk % (p.kh * p.kw);
  // y[oh, ow] used x[ih, iw] through tap (i, j) when oh·stride + i − pad = ih.
  let th = i32(q / p.w) + i32(p.pad) - i32(r / p.kw);
  let tw = i32(q % p.w) + i32(p.pad) - i32(r % p.kw);
  let s = i32(p.stride);
  if (th < 0 || tw < 0 || th % s != 0 || tw % s != 0) {
    return 0.0;
  }
  let oh = u32(th / s);
  let ow = u32(tw / s);
  if (oh >= p.ho || ow >= p.wo) {
    return 0.0;
  }
  return DY[((nn * p.o + och) * p.ho + oh) * p.wo + ow];
}
fn storeC(z: u32, row: u32, col: u32, v: f32) {
  let q = col % (p.h * p.w);
  DX[((col / (p.h * p.w)) * p.c + row) * p.h * p.w + q] = v;
}`;
    [aContiguousK, bContiguousK] = [true, false];
  } else {
    bindings = [out("DW"), input(2, "X"), input(3, "DY")].join("\n");
    functions = `${X_AT}
fn loadA(z: u32, row: u32, kk: u32) -> f32 {
  let pix = kk % (p.ho * p.wo);
  return DY[((kk / (p.ho * p.wo)) * p.o + row) * p.ho * p.wo + pix];
}
fn loadB(z: u32, kk: u32, col: u32) -> f32 {
  let pix = kk % (p.ho * p.wo);
  let r = col % (p.kh * p.kw);
  return xAt(kk / (p.ho * p.wo), col / (p.kh * p.kw), pix / p.wo, pix % p.wo, r / p.kw, r % p.kw);
}
fn storeC(z: u32, row: u32, col: u32, v: f32) {
  DW[row * p.n + col] = v;
}`;
    [aContiguousK, bContiguousK] = [true, true];
  }
  const code = tiledGemmCode({ fields: CONV_TILED_FIELDS, bindings, functions, aContiguousK, bContiguousK });
  return { code, fields: CONV_TILED_FIELDS };
}
