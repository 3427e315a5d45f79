/**
 * WGSL generators for the packing kernels that turn row-major float32 storage buffers into the
 * `rgba32float` texture layouts read by `gemm_tex.ts`. They are compute shaders writing a
 * `texture_storage_2d<rgba32float, write>`, so packing is recorded in the same compute pass as the GEMM
 * (no copyBufferToTexture). One invocation writes one texel; texels outside the logical data are zeros.
 *
 * Sizes travel in uniform buffers; the field order of each `Dims` struct is documented on its exported
 * length constant.
 * @module
 */

/**
 * Uniform block of {@link packMatrixWgsl}, 12 u32: texels (per logical row), lg (log2 of logical rows per
 * texture line), rowsPerBatch (padded logical rows per batch), rows (valid rows), cols (valid columns),
 * batches, batchStride (source elements per batch), ld (source leading dimension), trans (1: logical
 * element (r, c) is src[c·ld + r], else src[r·ld + c]), linRow (texels per grid row in the `linear`
 * variant: 64 · the x grid size), pad1, srcOffset (elements).
 */
export const PACK_MATRIX_DIMS_U32 = 12;

/** Logical rows per dispatch row of {@link packMatrixWgsl} (the y grid limit; z counts the rest). */
export const PACK_ROWS_PER_Z = 65535;
/** Most texels per dispatch row of the `linear` {@link packMatrixWgsl} (x grid of 1024 workgroups of 64). */
export const PACK_LINEAR_PER_ROW = 65536;

/**
 * Packs a batched matrix [batches, rows, cols] (or its transpose) into row lines: logical row
 * b·rowsPerBatch + r holds columns 4t..4t+3 in texel t, zeros outside rows × cols. One invocation per
 * texel, 64 along a row (measured fastest on llvmpipe). With `vec4Src` the source is read as vec4s, which
 * needs trans = 0, srcOffset, batchStride and ld multiples of 4 and the buffer size a multiple of 16 bytes
 * covering the data. Dispatch (ceil(texels / 64), min(R, 65535), ceil(R / 65535)), R = batches·rowsPerBatch.
 * With `linear` (for rows narrower than 64 texels, which would idle most lanes) the texels of all rows are
 * numbered consecutively: dispatch (linRow / 64, min(Q, 65535), ceil(Q / 65535)), Q = ceil(R·texels /
 * linRow), linRow = min(65536, R·texels rounded up to 64).
 */
export function packMatrixWgsl(vec4Src: boolean, linear = false): string {
  const load = vec4Src
    ? `      let keep = vec4f(vec4<bool>(true, c0 + 1u < d.cols, c0 + 2u < d.cols, c0 + 3u < d.cols));
      v = src[(base + r * d.ld + c0) >> 2u] * keep;`
    : `      for (var e = 0u; e < 4u; e += 1u) {
        let c = c0 + e;
        if (c < d.cols) {
          if (d.trans != 0u) { v[e] = src[base + c * d.ld + r]; } else { v[e] = src[base + r * d.ld + c]; }
        }
      }`;
  return `// pack_tex: batched matrix -> row-line rgba32float texture, ${
    vec4Src ? "vec4" : "scalar"
  } source reads.
struct Dims {
  texels: u32, lg: u32, rowsPerBatch: u32, rows: u32,
  cols: u32, batches: u32, batchStride: u32, ld: u32,
  trans: u32, linRow: u32, pad1: u32, srcOffset: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> src: array<${vec4Src ? "vec4f" : "f32"}>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(64, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
${
    linear
      ? `  let q = g.x + (g.y + g.z * ${PACK_ROWS_PER_Z}u) * d.linRow;
  let lr = q / d.texels;
  let tx = q % d.texels;`
      : `  let lr = g.y + g.z * ${PACK_ROWS_PER_Z}u;
  let tx = g.x;`
  }
  if (tx >= d.texels || lr >= d.batches * d.rowsPerBatch) { return; }
  let b = lr / d.rowsPerBatch;
  let r = lr % d.rowsPerBatch;
  let c0 = tx * 4u;
  var v = vec4f(0.0);
  if (r < d.rows && c0 < d.cols) {
    let base = d.srcOffset + b * d.batchStride;
${load}
  }
  textureStore(dst, vec2u((lr & ((1u << d.lg) - 1u)) * d.texels + tx, lr >> d.lg), v);
}
`;
}

/**
 * Uniform block of {@link packImageWgsl}, 16 u32: n, c, h, w (source NCHW), c4 (= ceil(c / 4)), hp (texture
 * rows per image), wt (pixels per image row in the texture), padT, padL (zeros before the first source
 * row / column), dil (source pixel spacing: 1, or the stride for a transposed convolution), lgI (log2
 * images per line), width, height (texture), srcOffset (elements), pad0, pad1.
 */
export const PACK_IMAGE_DIMS_U32 = 16;

/**
 * Packs an NCHW image batch into the NHWC image texture read by `convTexWgsl`: image n, padded row ih,
 * padded column iw, channel texel c4 lives at x = (n % 2^lgI)·wt·c4 + iw·c4 + c4, y = (n >> lgI)·hp + ih.
 * Padded pixel (ih, iw) holds source pixel ((ih - padT) / dil, (iw - padL) / dil) when both are whole and
 * inside the source, else zeros; channels past c are zeros. Dispatch (ceil(width / 8), ceil(height / 8)).
 */
export function packImageWgsl(): string {
  return `// pack_tex: NCHW image batch -> zero-padded NHWC image texture.
struct Dims {
  n: u32, c: u32, h: u32, w: u32,
  c4: u32, hp: u32, wt: u32, padT: i32,
  padL: i32, dil: u32, lgI: u32, width: u32,
  height: u32, srcOffset: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= d.width || g.y >= d.height) { return; }
  let t = d.wt * d.c4;
  let n = ((g.y / d.hp) << d.lgI) + g.x / t;
  let ihp = g.y % d.hp;
  let rem = g.x % t;
  let iwp = rem / d.c4;
  let c0 = (rem % d.c4) * 4u;
  var v = vec4f(0.0);
  let ihs = i32(ihp) - d.padT;
  let iws = i32(iwp) - d.padL;
  if (n < d.n && ihs >= 0 && iws >= 0) {
    let ihd = u32(ihs);
    let iwd = u32(iws);
    let ih = ihd / d.dil;
    let iw = iwd / d.dil;
    if (ihd % d.dil == 0u && iwd % d.dil == 0u && ih < d.h && iw < d.w) {
      let hw = d.h * d.w;
      let base = d.srcOffset + (n * d.c + c0) * hw + ih * d.w + iw;
      for (var e = 0u; e < 4u; e += 1u) {
        if (c0 + e < d.c) { v[e] = src[base + e * hw]; }
      }
    }
  }
  textureStore(dst, vec2u(g.x, g.y), v);
}
`;
}

/**
 * Interior-only variant of {@link packImageWgsl} with vec4 source reads (same uniform block): each
 * invocation reads 4 consecutive pixels of 4 channels and writes their 4 texels. Texels outside the
 * source image (padding, slack columns, unused images) are not written, so the texture must hold zeros
 * there, e.g. a fresh texture used only with this layout. Needs w % 4 == 0, dil == 1, padT, padL >= 0,
 * srcOffset % 4 == 0 and a source buffer of whole vec4s. Dispatch (ceil(w / 32), h·c4, n).
 */
export function packImageInteriorWgsl(): string {
  const stores = [0, 1, 2, 3].map((u) =>
    `  textureStore(dst, vec2u(x0 + ${u}u * d.c4, y), vec4f(t0[${u}], t1[${u}], t2[${u}], t3[${u}]));`
  ).join("\n");
  return `// pack_tex: NCHW image batch -> interior of an NHWC image texture, vec4 reads.
struct Dims {
  n: u32, c: u32, h: u32, w: u32,
  c4: u32, hp: u32, wt: u32, padT: i32,
  padL: i32, dil: u32, lgI: u32, width: u32,
  height: u32, srcOffset: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(8, 1, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let w4 = d.w >> 2u;
  let ih = g.y % d.h;
  let c4 = g.y / d.h;
  let n = g.z;
  if (g.x >= w4 || c4 >= d.c4 || n >= d.n) { return; }
  let plane = (d.h * d.w) >> 2u;
  let c0 = c4 * 4u;
  let base = (d.srcOffset >> 2u) + ((n * d.c + c0) * d.h + ih) * w4 + g.x;
  var t0 = vec4f(0.0); var t1 = vec4f(0.0); var t2 = vec4f(0.0); var t3 = vec4f(0.0);
  t0 = src[base];
  if (c0 + 1u < d.c) { t1 = src[base + plane]; }
  if (c0 + 2u < d.c) { t2 = src[base + 2u * plane]; }
  if (c0 + 3u < d.c) { t3 = src[base + 3u * plane]; }
  let x0 = (n & ((1u << d.lgI) - 1u)) * d.wt * d.c4 + (u32(d.padL) + g.x * 4u) * d.c4 + c4;
  let y = (n >> d.lgI) * d.hp + u32(d.padT) + ih;
${stores}
}
`;
}

/**
 * Uniform block of {@link packConvWeightWgsl}, 12 u32: q (output channels of the product), r (reduction
 * channels), kh, kw, r4 (= ceil(r / 4)), flip (0: forward, B[k, q] = w[q, r, kh, kw] with w of shape
 * [q, r, kh, kw]; 1: input gradient, B[k, q] = w[r, q, KH-1-kh, KW-1-kw] with w of shape [r, q, kh, kw]),
 * texels (per B row, ≥ ceil(q / 4)), lg (log2 B rows per line), rows (= kh·kw·r4·4), width, height,
 * srcOffset.
 */
export const PACK_WEIGHT_DIMS_U32 = 12;

/**
 * Packs a convolution weight into the B operand of `convTexWgsl`: row k = ((kh·KW + kw)·r4 + r4i)·4 + e
 * (reduction channel r4i·4 + e), texels along the output channel q. Dispatch (ceil(width / 8), ceil(height
 * / 8)).
 */
export function packConvWeightWgsl(): string {
  return `// pack_tex: convolution weight -> B operand texture.
struct Dims {
  q: u32, r: u32, kh: u32, kw: u32,
  r4: u32, flip: u32, texels: u32, lg: u32,
  rows: u32, width: u32, height: u32, srcOffset: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= d.width || g.y >= d.height) { return; }
  let k = (g.y << d.lg) + g.x / d.texels;
  let q0 = (g.x % d.texels) * 4u;
  var v = vec4f(0.0);
  if (k < d.rows) {
    let e = k % 4u;
    let r = ((k / 4u) % d.r4) * 4u + e;
    let tap = k / (4u * d.r4);
    let i = tap / d.kw;
    let j = tap % d.kw;
    if (r < d.r) {
      for (var u = 0u; u < 4u; u += 1u) {
        let q = q0 + u;
        if (q < d.q) {
          if (d.flip != 0u) {
            v[u] = src[d.srcOffset + ((r * d.q + q) * d.kh + (d.kh - 1u - i)) * d.kw + (d.kw - 1u - j)];
          } else {
            v[u] = src[d.srcOffset + ((q * d.r + r) * d.kh + i) * d.kw + j];
          }
        }
      }
    }
  }
  textureStore(dst, vec2u(g.x, g.y), v);
}
`;
}
