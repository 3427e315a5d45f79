/**
 * WGSL generators for register-blocked matrix products whose operands are `rgba32float` textures, the
 * fastest layout measured on Mesa's llvmpipe (see shared/notes/webgpu-on-llvmpipe.md).
 *
 * Every kernel computes C = A·B with each invocation owning a TM×TN block of C held in vec4 accumulators;
 * there is no workgroup memory and no barrier. One step of the reduction loop consumes 4 values of k:
 * TM texels of A (4 consecutive k of one row each) and 4·TN/4 texels of B (4 consecutive columns of one
 * k each). Operand textures are zero-padded by the packing kernels of `pack_tex.ts`, so loads need no
 * guard; only stores are guarded.
 *
 * Texture layout of a matrix operand ("row lines"): a logical row of T texels lies inside one texture line;
 * `rpl` (a power of two) rows share a line, so row r starts at texel ((r % rpl)·T, r / rpl). This keeps
 * tall, thin operands (e.g. 50176 rows of 144 texels) within the texture size limit.
 *
 * Three kernels share the same inner block:
 * - {@link gemmTexWgsl}: batched C[b] = A[b]·B[b], C row-major.
 * - {@link convTexWgsl}: direct convolution; A is read from a zero-padded NHWC image texture (no im2col),
 *   the result is stored NCHW.
 * - {@link convWgradTexWgsl}: convolution weight gradient, split over the batch, partial sums out.
 *
 * Sizes travel in a uniform buffer (`Dims` structs below), so one pipeline serves every shape of a
 * blocking. llvmpipe runs 8 invocations of a workgroup row as one SIMD vector, so wgx should be 8: the
 * lanes then walk 8 column blocks (sharing the A texels) or, with `rowsOnX`, 8 row blocks.
 * @module
 */

/** Register blocking and workgroup shape of a generated kernel. */
export interface Blocking {
  /** Rows of C per invocation, 1 to 32 (32 measured best for tall products, 16 otherwise). */
  readonly tm: number;
  /** Columns of C per invocation, a multiple of 4 up to 32 (16 measured best). */
  readonly tn: number;
  /** Workgroup size along column blocks (8 fills one llvmpipe SIMD vector). */
  readonly wgx: number;
  /** Workgroup size along row blocks. */
  readonly wgy: number;
  /**
   * When true, global id x walks row blocks and y walks column blocks (so the 8 SIMD lanes of llvmpipe share
   * the B texels instead of the A texels); wgx then counts row blocks. Lets narrow products (64 columns)
   * use 16-wide column blocks with a full SIMD vector.
   */
  readonly rowsOnX?: boolean;
}

/** The block measured fastest for tall products with many columns (1024³: ~40 GFLOP/s). */
export const BLOCK_32X16: Blocking = { tm: 32, tn: 16, wgx: 8, wgy: 1 };
/** The block measured fastest for tall products with 64 columns (the 64→64 convolution: ~35-38 GFLOP/s). */
export const BLOCK_32X16_ROWS: Blocking = { tm: 32, tn: 16, wgx: 8, wgy: 1, rowsOnX: true };

function checkBlocking(b: Blocking): void {
  const ok = Number.isInteger(b.tm) && b.tm >= 1 && b.tm <= 32 && Number.isInteger(b.tn) &&
    b.tn >= 4 && b.tn <= 32 && b.tn % 4 === 0 && b.wgx >= 1 && b.wgy >= 1 && b.wgx * b.wgy <= 256;
  if (!ok) {
    throw new Error(
      `Cannot generate GEMM kernel: blocking ${JSON.stringify(b)} must have 1 <= tm <= 32, ` +
        `tn a multiple of 4 in [4, 32], and wgx·wgy <= 256`,
    );
  }
}

/**
 * The shared inner block: loads TM texels of A and, for each of the 4 k sub-steps, TN/4 texels of B, and
 * accumulates. `aCoord(i)` and `bCoord(r, j)` are WGSL `vec2u` expressions (row i of the block; k sub-step
 * r, column texel j).
 */
function innerBlock(
  b: Blocking,
  aCoord: (i: number) => string,
  bCoord: (r: number, j: number) => string,
  ind: string,
): string {
  const tn4 = b.tn / 4;
  const out: string[] = [];
  for (let i = 0; i < b.tm; i++) out.push(`${ind}let a${i} = textureLoad(A, ${aCoord(i)}, 0);`);
  for (let r = 0; r < 4; r++) {
    for (let j = 0; j < tn4; j++) out.push(`${ind}let b${r}_${j} = textureLoad(B, ${bCoord(r, j)}, 0);`);
    for (let i = 0; i < b.tm; i++) {
      for (let j = 0; j < tn4; j++) {
        out.push(`${ind}acc${i}_${j} = fma(vec4f(a${i}[${r}]), b${r}_${j}, acc${i}_${j});`);
      }
    }
  }
  return out.join("\n");
}

/** WGSL lines defining col4 (first column texel), rb (row block) and row (first row) from the global id. */
function ids(b: Blocking): string {
  const cb = b.rowsOnX ? "g.y" : "g.x";
  const rb = b.rowsOnX ? "g.x" : "g.y";
  return `  let col4 = ${cb} * ${b.tn / 4}u;\n  let rb = ${rb};\n  let row = rb * ${b.tm}u;`;
}

function accumulators(b: Blocking): string {
  const out: string[] = [];
  for (let i = 0; i < b.tm; i++) {
    for (let j = 0; j < b.tn / 4; j++) out.push(`  var acc${i}_${j} = vec4f(0.0);`);
  }
  return out.join("\n");
}

/** WGSL prologue: row-line texture coordinates (ax_i, ay_i) of the first texel of rows r0 + i, i < tm. */
function rowBases(tm: number, r0: string, mask: string, texels: string, lg: string): string {
  const out: string[] = [];
  for (let i = 0; i < tm; i++) {
    out.push(`  let ax${i} = ((${r0} + ${i}u) & ${mask}) * ${texels};`);
    out.push(`  let ay${i} = (${r0} + ${i}u) >> ${lg};`);
  }
  return out.join("\n");
}

/**
 * Uniform block of {@link gemmTexWgsl}, 12 u32 in this order: m, n, k4 (reduction steps = padded k / 4),
 * aRowsPerBatch (padded rows of A per batch in its texture, 0 when A is broadcast), aTexels (texels per A
 * row = k4), aLg (log2 of A rows per texture line), bRowsPerBatch (padded k rows of B per batch, 0 when
 * broadcast), bTexels (texels per B row), bLg, cBatchStride (m·n, elements), mBlocks (row blocks per batch,
 * for the z-folded dispatch), accum (1: add into C instead of overwriting, for k chunks).
 */
export const GEMM_DIMS_U32 = 12;

/**
 * Batched C[b] = A[b]·B[b]. A is an `rgba32float` texture whose logical rows are the rows of A (4
 * consecutive k per texel; rows padded to a multiple of TM per batch, k padded to a multiple of 4 with
 * zeros); B's logical rows are the k rows of B (4 consecutive columns per texel, padded to a multiple of TN
 * with zeros). C is a row-major storage buffer [batch, m, n]; `vec4Out` stores vec4s and needs n % 4 == 0.
 * Dispatch: (ceil(n / tn / wgx), ceil(mBlocks / wgy), batch) with mBlocks = ceil(m / tm), or with rowsOnX
 * (ceil(mBlocks / wgx), ceil(n / tn / wgy), batch).
 */
export function gemmTexWgsl(b: Blocking, vec4Out: boolean): string {
  checkBlocking(b);
  const tn4 = b.tn / 4;
  const stores: string[] = [];
  for (let i = 0; i < b.tm; i++) {
    stores.push(`  if (row + ${i}u < d.m) {`);
    stores.push(`    let o${i} = cBase + (row + ${i}u) * d.n;`);
    for (let j = 0; j < tn4; j++) {
      if (vec4Out) {
        stores.push(
          `    if (col4 + ${j}u < n4) { let ix = (o${i} >> 2u) + col4 + ${j}u; C[ix] = acc${i}_${j} + select(vec4f(0.0), C[ix], accum); }`,
        );
      } else {
        for (let e = 0; e < 4; e++) {
          stores.push(
            `    if ((col4 + ${j}u) * 4u + ${e}u < d.n) { let ix = o${i} + (col4 + ${j}u) * 4u + ${e}u; C[ix] = acc${i}_${j}[${e}] + select(0.0, C[ix], accum); }`,
          );
        }
      }
    }
    stores.push(`  }`);
  }
  return `// gemm_tex: C = A·B, tm ${b.tm}, tn ${b.tn}, workgroup ${b.wgx}x${b.wgy}, ${
    vec4Out ? "vec4" : "scalar"
  } stores.
struct Dims {
  m: u32, n: u32, k4: u32, aRowsPerBatch: u32,
  aTexels: u32, aLg: u32, bRowsPerBatch: u32, bTexels: u32,
  bLg: u32, cBatchStride: u32, mBlocks: u32, accum: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var A: texture_2d<f32>;
@group(0) @binding(2) var B: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<${vec4Out ? "vec4f" : "f32"}>;
@compute @workgroup_size(${b.wgx}, ${b.wgy})
fn main(@builtin(global_invocation_id) g: vec3u) {
${ids(b)}
  let n4 = (d.n + 3u) / 4u;
  if (col4 >= n4 || rb >= d.mBlocks) { return; }
  let bz = g.z;
  let cBase = bz * d.cBatchStride;
  let accum = d.accum != 0u;
  let ar = bz * d.aRowsPerBatch + row;
  let aMask = (1u << d.aLg) - 1u;
${rowBases(b.tm, "ar", "aMask", "d.aTexels", "d.aLg")}
  let bRow0 = bz * d.bRowsPerBatch;
  let bMask = (1u << d.bLg) - 1u;
${accumulators(b)}
  for (var k = 0u; k < d.k4; k += 1u) {
    let kr = bRow0 + k * 4u;
${
    [0, 1, 2, 3].map((r) =>
      `    let bx${r} = ((kr + ${r}u) & bMask) * d.bTexels + col4;\n    let by${r} = (kr + ${r}u) >> d.bLg;`
    ).join("\n")
  }
${
    innerBlock(
      b,
      (i) => `vec2u(ax${i} + k, ay${i})`,
      (r, j) => `vec2u(bx${r} + ${j}u, by${r})`,
      "    ",
    )
  }
  }
${stores.join("\n")}
}
`;
}

/**
 * Uniform block of {@link convTexWgsl}, 16 u32: m (= N·HO·WO output positions), o (output channels = columns
 * of C), kh, kw, c4 (input channel texels), stride, ho, wo, t (texels per image row in the image texture),
 * lgI (log2 images per texture line), hp (image rows per image in the texture), bTexels (texels per B row),
 * bLg (log2 B rows per line), mBlocks (= ceil(m / tm)), yOff (element offset of the first output image in
 * Y, for batch chunks), pad1.
 */
export const CONV_DIMS_U32 = 16;

/**
 * Direct convolution y = conv(x, w) as C[m, o] = Σ_k A[m, k]·B[k, o] with m = (n, oh, ow), k = (kh, kw, c),
 * without im2col: A texels are read straight from the image texture written by `packImageWgsl` (zero
 * padded NHWC rows, 4 channels per texel, `2^lgI` images side by side per line), B is the packed weight
 * (rows k = ((kh·KW + kw)·C4 + c4)·4 + e, texels along o). The result is stored NCHW into `Y`
 * [N, o, ho, wo]; `vec4Out` stores 4 positions at once and needs ho·wo % 4 == 0, tm % 4 == 0 and a
 * vec4-sized Y. Dispatch (ceil(o / tn / wgx), ceil(mBlocks / wgy), 1), or with rowsOnX (ceil(mBlocks / wgx),
 * ceil(o / tn / wgy), 1).
 */
export function convTexWgsl(b: Blocking, vec4Out: boolean): string {
  checkBlocking(b);
  if (vec4Out && b.tm % 4 !== 0) {
    throw new Error(`Cannot generate conv kernel: vec4 stores need tm % 4 == 0, got tm ${b.tm}`);
  }
  const tn4 = b.tn / 4;
  // Row coordinates by incrementing (image, oh, ow) counters: divisions only for the first row.
  const pro: string[] = [
    `  let nMax = d.m / p - 1u;`,
    `  var cn = row / p;`,
    `  var cp = row % p;`,
    `  var coh = cp / d.wo;`,
    `  var cow = cp % d.wo;`,
  ];
  for (let i = 0; i < b.tm; i++) {
    pro.push(`  let n${i} = cn; let p${i} = cp; let nc${i} = min(cn, nMax);`);
    pro.push(`  let ax${i} = (nc${i} & iMask) * d.t + cow * sc4;`);
    pro.push(`  let ay${i} = (nc${i} >> d.lgI) * d.hp + coh * d.stride;`);
    if (i < b.tm - 1) {
      pro.push(`  cp += 1u; cow += 1u;`);
      pro.push(`  if (cow == d.wo) { cow = 0u; coh += 1u; }`);
      pro.push(`  if (cp == p) { cp = 0u; coh = 0u; cn += 1u; }`);
    }
  }
  const stores: string[] = [];
  if (vec4Out) {
    // Rows i..i+3 are 4 consecutive positions of one image (p % 4 == 0, row % 4 == 0): one vec4 per channel.
    for (let i = 0; i < b.tm; i += 4) {
      stores.push(`  if (row + ${i}u < d.m) {`);
      stores.push(`    let yb${i} = (d.yOff + (n${i} * d.o) * p + p${i}) >> 2u;`);
      for (let j = 0; j < tn4; j++) {
        for (let e = 0; e < 4; e++) {
          const oc = `(col4 + ${j}u) * 4u + ${e}u`;
          const v = [0, 1, 2, 3].map((u) => `acc${i + u}_${j}[${e}]`).join(", ");
          stores.push(`    if (${oc} < d.o) { Y[yb${i} + (${oc}) * pq] = vec4f(${v}); }`);
        }
      }
      stores.push(`  }`);
    }
  } else {
    for (let i = 0; i < b.tm; i++) {
      stores.push(`  if (row + ${i}u < d.m) {`);
      stores.push(`    let yb${i} = d.yOff + (n${i} * d.o) * p + p${i};`);
      for (let j = 0; j < tn4; j++) {
        for (let e = 0; e < 4; e++) {
          const oc = `(col4 + ${j}u) * 4u + ${e}u`;
          stores.push(`    if (${oc} < d.o) { Y[yb${i} + (${oc}) * p] = acc${i}_${j}[${e}]; }`);
        }
      }
      stores.push(`  }`);
    }
  }
  return `// conv_tex: direct convolution from an NHWC image texture, tm ${b.tm}, tn ${b.tn}, workgroup ${b.wgx}x${b.wgy}${
    b.rowsOnX ? ", rows on x" : ""
  }, ${vec4Out ? "vec4" : "scalar"} stores.
struct Dims {
  m: u32, o: u32, kh: u32, kw: u32,
  c4: u32, stride: u32, ho: u32, wo: u32,
  t: u32, lgI: u32, hp: u32, bTexels: u32,
  bLg: u32, mBlocks: u32, yOff: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var A: texture_2d<f32>;
@group(0) @binding(2) var B: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<${vec4Out ? "vec4f" : "f32"}>;
@compute @workgroup_size(${b.wgx}, ${b.wgy})
fn main(@builtin(global_invocation_id) g: vec3u) {
${ids(b)}
  if (col4 * 4u >= d.o || rb >= d.mBlocks) { return; }
  let p = d.ho * d.wo;
  let pq = p >> 2u;
  let iMask = (1u << d.lgI) - 1u;
  let sc4 = d.stride * d.c4;
  let bMask = (1u << d.bLg) - 1u;
${pro.join("\n")}
${accumulators(b)}
  var kr = 0u;
  for (var kh = 0u; kh < d.kh; kh += 1u) {
    for (var kw = 0u; kw < d.kw; kw += 1u) {
      let ox = kw * d.c4;
      for (var c = 0u; c < d.c4; c += 1u) {
        let x = ox + c;
${
    [0, 1, 2, 3].map((r) =>
      `        let bx${r} = ((kr + ${r}u) & bMask) * d.bTexels + col4;\n        let by${r} = (kr + ${r}u) >> d.bLg;`
    ).join("\n")
  }
${
    innerBlock(b, (i) =>
      `vec2u(ax${i} + x, ay${i} + kh)`, (r, j) =>
      `vec2u(bx${r} + ${j}u, by${r})`, "        ")
  }
        kr += 4u;
      }
    }
  }
${stores.join("\n")}
}
`;
}

/**
 * Uniform block of {@link convWgradTexWgsl}, 16 u32: o (rows of C = output channels), q4 (column texels =
 * kh·kw·c4), kw, c4, stride, ho, wo4 (= ceil(wo / 4), texels per dy row), aLg (log2 dy rows per texture
 * line), t (texels per image row of the image texture), lgI, hp, nPer (images per split), n (images in
 * this chunk), oBlocks (= ceil(o / tm)), zBase (first partial slot of this chunk), pad0.
 */
export const WGRAD_DIMS_U32 = 16;

/**
 * Convolution weight gradient, split over images: partial slot z (one per group of `nPer` images) gets
 * P[z, o, q] = Σ_{n in group, oh, ow} dy[n, o, oh, ow]·x̃[n, oh·s + kh, ow·s + kw, c] with q = (kh·KW + kw)·
 * c4·4 + c. A is dy packed by `packMatrixWgsl` as rows (n·o + oc)·ho + oh of wo4 texels (4 consecutive ow);
 * B is the zero-padded image texture of `packImageWgsl` (the same one the forward pass reads). Partials
 * are vec4s: P[(zBase + z)·o·q4 + oc·q4 + qt]. Reduce them with {@link convWgradReduceWgsl}. Dispatch
 * (ceil(q4 / (tn / 4) / wgx), ceil(oBlocks / wgy), splits) or, with rowsOnX, (ceil(oBlocks / wgx),
 * ceil(q4 / (tn / 4) / wgy), splits).
 */
export function convWgradTexWgsl(b: Blocking): string {
  checkBlocking(b);
  const tn4 = b.tn / 4;
  const pro: string[] = [];
  for (let j = 0; j < tn4; j++) {
    pro.push(`  let q${j} = min(col4 + ${j}u, d.q4 - 1u);`);
    pro.push(`  let bxo${j} = ((q${j} / d.c4) % d.kw) * d.c4 + q${j} % d.c4;`);
    pro.push(`  let byo${j} = (q${j} / d.c4) / d.kw;`);
  }
  const rows: string[] = [];
  for (let i = 0; i < b.tm; i++) {
    rows.push(`      let lr${i} = (n * d.o + o${i}) * d.ho + oh;`);
    rows.push(`      let ax${i} = (lr${i} & aMask) * d.wo4;`);
    rows.push(`      let ay${i} = lr${i} >> d.aLg;`);
  }
  const oRows: string[] = [];
  for (let i = 0; i < b.tm; i++) oRows.push(`  let o${i} = min(row + ${i}u, d.o - 1u);`);
  const stores: string[] = [];
  for (let i = 0; i < b.tm; i++) {
    stores.push(`  if (row + ${i}u < d.o) {`);
    for (let j = 0; j < tn4; j++) {
      stores.push(
        `    if (col4 + ${j}u < d.q4) { P[pBase + (row + ${i}u) * d.q4 + col4 + ${j}u] = acc${i}_${j}; }`,
      );
    }
    stores.push(`  }`);
  }
  return `// conv_wgrad_tex: weight gradient partials, tm ${b.tm}, tn ${b.tn}, workgroup ${b.wgx}x${b.wgy}${
    b.rowsOnX ? ", rows on x" : ""
  }.
struct Dims {
  o: u32, q4: u32, kw: u32, c4: u32,
  stride: u32, ho: u32, wo4: u32, aLg: u32,
  t: u32, lgI: u32, hp: u32, nPer: u32,
  n: u32, oBlocks: u32, zBase: u32, pad0: u32,
}
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var A: texture_2d<f32>;
@group(0) @binding(2) var B: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> P: array<vec4f>;
@compute @workgroup_size(${b.wgx}, ${b.wgy})
fn main(@builtin(global_invocation_id) g: vec3u) {
${ids(b)}
  if (col4 >= d.q4 || rb >= d.oBlocks) { return; }
  let aMask = (1u << d.aLg) - 1u;
  let iMask = (1u << d.lgI) - 1u;
  let sc4 = d.stride * d.c4;
  let pBase = (d.zBase + g.z) * d.o * d.q4;
${pro.join("\n")}
${oRows.join("\n")}
${accumulators(b)}
  let n0 = g.z * d.nPer;
  let n1 = min(n0 + d.nPer, d.n);
  for (var n = n0; n < n1; n += 1u) {
    let xi = (n & iMask) * d.t;
    let yi = (n >> d.lgI) * d.hp;
    for (var oh = 0u; oh < d.ho; oh += 1u) {
${rows.join("\n")}
      let ys = yi + oh * d.stride;
      for (var k = 0u; k < d.wo4; k += 1u) {
        let xs = xi + k * 4u * sc4;
${
    innerBlock(
      b,
      (i) => `vec2u(ax${i} + k, ay${i})`,
      (r, j) => `vec2u(xs + ${r}u * sc4 + bxo${j}, ys + byo${j})`,
      "        ",
    )
  }
      }
    }
  }
${stores.join("\n")}
}
`;
}

/**
 * Uniform block of {@link convWgradReduceWgsl}, 8 u32: o, c, kh, kw, c4, splits (partial slots to sum),
 * q4, pad0.
 */
export const WGRAD_REDUCE_DIMS_U32 = 8;

/**
 * Sums the partial slots of {@link convWgradTexWgsl} into dW [o, c, kh, kw] (OIHW, row-major). One
 * invocation per weight element; dispatch (ceil(o·c·kh·kw / 64)).
 */
export function convWgradReduceWgsl(): string {
  return `// conv_wgrad_reduce: sum weight-gradient partials into OIHW.
struct Dims { o: u32, c: u32, kh: u32, kw: u32, c4: u32, splits: u32, q4: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> W: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let total = d.o * d.c * d.kh * d.kw;
  let idx = g.x + g.y * 65535u * 64u;
  if (idx >= total) { return; }
  let j = idx % d.kw;
  let i = (idx / d.kw) % d.kh;
  let c = (idx / (d.kw * d.kh)) % d.c;
  let oc = idx / (d.kw * d.kh * d.c);
  let q = (i * d.kw + j) * d.c4 * 4u + c;
  let stride = d.o * d.q4 * 4u;
  var s = 0.0;
  for (var z = 0u; z < d.splits; z += 1u) { s += P[z * stride + oc * d.q4 * 4u + q]; }
  W[idx] = s;
}
`;
}
