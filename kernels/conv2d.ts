/**
 * Convolution kernels as implicit GEMMs over storage buffers (NCHW images, OIHW weights, zero padding),
 * register-blocked without workgroup memory or barriers; no im2col buffer is formed, the image is
 * indexed on the fly.
 *
 * {@link convGemmKernel} computes, for each output image pixel column j = (n, y, x) and row r:
 *   out[n, r, y, x] = sum over (ci, kh, kw) of Wp[(ci, kh, kw), r] * src[n, ci, sy, sx]
 * - "forward": rows are output channels, src is x, (sy, sx) = (y s - pad + kh, x s - pad + kw);
 * - "inputGrad": rows are input channels, src is dy, s·(sy, sx) = (y + pad - kh, x + pad - kw) when that
 *   divides evenly (the transposed convolution).
 * Wp is the weight repacked by `transposePadKernel` ([K, RP], rows padded to a multiple of TM) so it is
 * read as vec4s. Each invocation owns TM rows × TN pixel columns in vec4 accumulators.
 *
 * {@link convWeightGradKernel} computes partial weight gradients over a chunk of the batch:
 *   part[s, o, (c, kh, kw)] = sum over n in chunk s, (oh, ow) of dy[n, o, oh, ow] x[n, c, oh s - pad + kh, ow s - pad + kw].
 * @module
 */
import { type KernelSource, paramStruct } from "./common.ts";

/** Workgroup size (along pixel-column blocks) of the conv kernels. */
export const CONV_WG = 16;

/** Static shape of a generated implicit-GEMM convolution kernel. */
export interface ConvGemmSpec {
  /** Which product: the convolution or its adjoint in x. */
  readonly mode: "forward" | "inputGrad";
  /** Kernel height. */
  readonly kh: number;
  /** Kernel width. */
  readonly kw: number;
  /** Stride (both axes). */
  readonly stride: number;
  /** Rows per invocation, a multiple of 4. */
  readonly tm: number;
  /** Pixel columns per invocation, a multiple of 4. */
  readonly tn: number;
  /** Store vec4s: the output image's pixel count is a multiple of 4. */
  readonly vecStore: boolean;
}

/** Uniform fields of {@link convGemmKernel}. */
export const CONV_GEMM_FIELDS = [
  ["ncol", "u32"], // N · YH · YW pixel columns
  ["rm", "u32"], // real rows (channels of the result)
  ["rp4", "u32"], // padded rows / 4 (Wp row length in vec4s)
  ["rc", "u32"], // reduction channels (C forward, O inputGrad)
  ["sh", "u32"], // source image height
  ["sw", "u32"], // source image width
  ["yw", "u32"], // result width
  ["yp", "u32"], // result pixels per channel
  ["simg", "u32"], // source floats per image (rc · sh · sw)
  ["pad", "i32"],
] as const;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function checkBlock(what: string, tm: number, tn: number, thinRows = false): void {
  const thin = thinRows && (tm === 1 || tm === 2);
  if ((!thin && (tm % 4 !== 0 || tm < 4)) || tn % 4 !== 0 || tn < 4) {
    throw new Error(
      `Cannot generate ${what} kernel: block ${tm}x${tn} must be positive multiples of 4${
        thinRows ? " (or 1-2 rows by a multiple of 4)" : ""
      }`,
    );
  }
}

/** The implicit-GEMM convolution kernel (forward or input gradient); see the module doc. */
export function convGemmKernel(s: ConvGemmSpec): KernelSource {
  const { mode, kh: KH, kw: KW, stride: S, tm, tn, vecStore } = s;
  checkBlock("conv", tm, tn);
  const T = range(tn), G = range(tn / 4), Q = range(tm / 4), R = range(tm);
  const L: string[] = [];
  L.push(`  let col0 = (g.x + g.y * nwg.x * ${CONV_WG}u) * ${tn}u;`);
  L.push("  if (col0 >= p.ncol) {\n    return;\n  }");
  L.push(`  let row0 = g.z * ${tm}u;`, "  let plane = p.sh * p.sw;");
  for (const t of T) {
    L.push(
      `  let j${t} = min(col0 + ${t}u, p.ncol - 1u);`,
      `  let n${t} = j${t} / p.yp;`,
      `  let px${t} = j${t} - n${t} * p.yp;`,
      `  let y${t} = px${t} / p.yw;`,
      `  let x${t} = px${t} - y${t} * p.yw;`,
      `  let sb${t} = n${t} * p.simg;`,
    );
    if (mode === "forward") {
      L.push(`  let iy${t} = i32(y${t} * ${S}u) - p.pad;`, `  let ix${t} = i32(x${t} * ${S}u) - p.pad;`);
    } else {
      L.push(`  let ty${t} = i32(y${t}) + p.pad;`, `  let tx${t} = i32(x${t}) + p.pad;`);
    }
  }
  for (const r of R) for (const g of G) L.push(`  var acc${r}_${g} = vec4f(0.0);`);
  L.push("  for (var ci = 0u; ci < p.rc; ci++) {");
  L.push(`    let wb = ci * ${KH * KW}u * p.rp4 + row0 / 4u;`);
  for (let kh = 0; kh < KH; kh++) {
    for (const t of T) {
      if (mode === "forward") {
        L.push(
          `    let sy${t}_${kh} = iy${t} + ${kh};`,
          `    let vy${t}_${kh} = u32(sy${t}_${kh}) < p.sh;`,
          `    let ro${t}_${kh} = sb${t} + ci * plane + u32(sy${t}_${kh}) * p.sw;`,
        );
      } else {
        const div = S === 1 ? `ty${t} - ${kh}` : `(ty${t} - ${kh}) / ${S}`;
        const even = S === 1 ? "" : ` && ((ty${t} - ${kh}) % ${S}) == 0`;
        L.push(
          `    let sy${t}_${kh} = ${div};`,
          `    let vy${t}_${kh} = ty${t} >= ${kh}${even} && u32(sy${t}_${kh}) < p.sh;`,
          `    let ro${t}_${kh} = sb${t} + ci * plane + u32(sy${t}_${kh}) * p.sw;`,
        );
      }
    }
    for (let kw = 0; kw < KW; kw++) {
      L.push("    {");
      const wrow = kh * KW + kw;
      for (const q of Q) L.push(`      let w${q} = Wp[wb + ${wrow}u * p.rp4 + ${q}u];`);
      for (const t of T) {
        if (mode === "forward") {
          L.push(
            `      let sx${t} = ix${t} + ${kw};`,
            `      let v${t} = vy${t}_${kh} && u32(sx${t}) < p.sw;`,
          );
        } else {
          const div = S === 1 ? `tx${t} - ${kw}` : `(tx${t} - ${kw}) / ${S}`;
          const even = S === 1 ? "" : ` && ((tx${t} - ${kw}) % ${S}) == 0`;
          L.push(
            `      let sx${t} = ${div};`,
            `      let v${t} = vy${t}_${kh} && tx${t} >= ${kw}${even} && u32(sx${t}) < p.sw;`,
          );
        }
        L.push(`      let e${t} = select(0.0, src[select(0u, ro${t}_${kh} + u32(sx${t}), v${t})], v${t});`);
      }
      for (const g of G) {
        L.push(`      let xg${g} = vec4f(${range(4).map((j) => `e${4 * g + j}`).join(", ")});`);
      }
      for (const r of R) {
        for (const g of G) {
          L.push(`      acc${r}_${g} = fma(vec4f(w${r >> 2}.${"xyzw"[r & 3]}), xg${g}, acc${r}_${g});`);
        }
      }
      L.push("    }");
    }
  }
  L.push("  }");
  for (const r of R) {
    L.push(`  if (row0 + ${r}u < p.rm) {`);
    if (vecStore) {
      for (const g of G) {
        const t = 4 * g;
        L.push(
          `    if (col0 + ${t}u < p.ncol) {`,
          `      out[((n${t} * p.rm + row0 + ${r}u) * p.yp + px${t}) / 4u] = acc${r}_${g};`,
          "    }",
        );
      }
    } else {
      for (const t of T) {
        L.push(
          `    if (col0 + ${t}u < p.ncol) {`,
          `      out[(n${t} * p.rm + row0 + ${r}u) * p.yp + px${t}] = acc${r}_${t >> 2}[${t & 3}];`,
          "    }",
        );
      }
    }
    L.push("  }");
  }
  const code = `${paramStruct(CONV_GEMM_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${vecStore ? "vec4f" : "f32"}>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> Wp: array<vec4f>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${L.join("\n")}
}
`;
  return { code, fields: CONV_GEMM_FIELDS };
}

/** Static shape of a generated row-strip convolution kernel (stride 1). */
export interface ConvStripSpec {
  /** Which product: the convolution or its adjoint in x. */
  readonly mode: "forward" | "inputGrad";
  /** Kernel height. */
  readonly kh: number;
  /** Kernel width. */
  readonly kw: number;
  /**
   * Rows (result channels) per invocation: a multiple of 4, or 1 or 2 for a result with that many channels
   * (dispatched as a single row block).
   */
  readonly tm: number;
  /** Consecutive result pixels of one image row per invocation, a multiple of 4. */
  readonly tn: number;
  /** Store vec4s: the result width is a multiple of 4. */
  readonly vecStore: boolean;
  /**
   * Load the source as aligned vec4s (each row segment in about (TN + KW − 1) / 4 + 1 loads instead of
   * TN + KW − 1): the source width must be a multiple of 4, and the padding is then fixed in the kernel
   * (this value; the uniform `pad` must equal it). Null: scalar loads, any width and padding.
   */
  readonly vecLoadPad: number | null;
}

/** Uniform fields of {@link convStripKernel}. */
export const CONV_STRIP_FIELDS = [
  ["ns", "u32"], // strips: N · YH · xs
  ["xs", "u32"], // strips per result row
  ["rm", "u32"], // real rows (channels of the result)
  ["rp4", "u32"], // padded rows / 4 (Wp row length in vec4s)
  ["rc", "u32"], // reduction channels (C forward, O inputGrad)
  ["sh", "u32"], // source image height
  ["sw", "u32"], // source image width
  ["yh", "u32"], // result height
  ["yw", "u32"], // result width
  ["simg", "u32"], // source floats per image (rc · sh · sw)
  ["pad", "i32"],
] as const;

/**
 * The stride-1 convolution (forward or input gradient) for results with few channels, where loading the
 * source dominates: each invocation owns TM rows × TN consecutive pixels of one result row, so for each
 * (ci, kh) it loads the TN + KW − 1 source values of one source row once and reuses them for every kw
 * (the implicit-GEMM kernel loads TN · KW). The accumulation order per output, fma over (ci, kh, kw), is
 * that of {@link convGemmKernel}, so both give the same bits. Wp is packed as for {@link convGemmKernel}.
 */
export function convStripKernel(s: ConvStripSpec): KernelSource {
  const { mode, kh: KH, kw: KW, tm, tn, vecStore, vecLoadPad } = s;
  // tm 1 or 2 (results with 1 or 2 channels, dispatched as one row block) skips the zero rows' FMAs.
  checkBlock("conv strip", tm, tn, true);
  if (vecLoadPad !== null && (!Number.isInteger(vecLoadPad) || vecLoadPad < 0)) {
    throw new Error(
      `Cannot generate conv strip kernel: vecLoadPad ${vecLoadPad} is not a non-negative integer`,
    );
  }
  const T = range(tn), G = range(tn / 4), Q = range(Math.ceil(tm / 4)), R = range(tm), J = range(tn + KW - 1);
  const fwd = mode === "forward";
  const L: string[] = [];
  L.push(`  let sidx = g.x + g.y * nwg.x * ${CONV_WG}u;`);
  L.push("  if (sidx >= p.ns) {\n    return;\n  }");
  L.push(`  let row0 = g.z * ${tm}u;`, "  let plane = p.sh * p.sw;");
  L.push("  let yrow = sidx / p.xs;", "  let strip = sidx - yrow * p.xs;");
  L.push("  let n = yrow / p.yh;", "  let y = yrow - n * p.yh;", `  let x0 = strip * ${tn}u;`);
  L.push("  let sb = n * p.simg;");
  // Source column j of the strip: forward x0 - pad + j (tap kw of column t is j = t + kw); inputGrad
  // x0 + pad - (KW - 1) + j (tap kw of column t is j = t + KW - 1 - kw).
  // With vec4 loads, source column j (x0 + off + j) lies in vec4 block x0 / 4 + fo + b, b = (off + j - 4 fo) >> 2.
  const off = vecLoadPad === null ? 0 : fwd ? -vecLoadPad : vecLoadPad - (KW - 1);
  const fo = Math.floor(off / 4);
  const B = range(Math.floor((off + tn + KW - 2) / 4) - fo + 1);
  if (vecLoadPad === null) {
    L.push(fwd ? "  let bx = i32(x0) - p.pad;" : `  let bx = i32(x0) + p.pad - ${KW - 1};`);
    for (const j of J) L.push(`  let sx${j} = bx + ${j};`, `  let vx${j} = u32(sx${j}) < p.sw;`);
  } else {
    L.push("  let sw4 = p.sw / 4u;");
    for (const b of B) {
      L.push(`  let kb${b} = i32(x0 / 4u) + ${fo + b};`, `  let vb${b} = u32(kb${b}) < sw4;`);
    }
  }
  for (const r of R) for (const g of G) L.push(`  var acc${r}_${g} = vec4f(0.0);`);
  L.push("  for (var ci = 0u; ci < p.rc; ci++) {");
  L.push(`    let wb = ci * ${KH * KW}u * p.rp4 + row0 / 4u;`);
  L.push("    let cb = sb + ci * plane;");
  for (let kh = 0; kh < KH; kh++) {
    L.push("    {");
    L.push(fwd ? `      let sy = i32(y) - p.pad + ${kh};` : `      let sy = i32(y) + p.pad - ${kh};`);
    L.push("      let vy = u32(sy) < p.sh;", "      let ro = cb + u32(sy) * p.sw;");
    if (vecLoadPad === null) {
      for (const j of J) {
        L.push(
          `      let v${j} = vy && vx${j};`,
          `      let e${j} = select(0.0, src[select(0u, ro + u32(sx${j}), v${j})], v${j});`,
        );
      }
    } else {
      L.push("      let ro4 = ro / 4u;");
      for (const b of B) {
        L.push(
          `      let v${b} = vy && vb${b};`,
          `      let q${b} = select(vec4f(0.0), src[select(0u, ro4 + u32(kb${b}), v${b})], v${b});`,
        );
      }
      for (const j of J) {
        const idx = off + j - 4 * fo;
        L.push(`      let e${j} = q${idx >> 2}.${"xyzw"[idx & 3]};`);
      }
    }
    for (let kw = 0; kw < KW; kw++) {
      L.push("      {");
      const wrow = kh * KW + kw;
      for (const q of Q) L.push(`        let w${q} = Wp[wb + ${wrow}u * p.rp4 + ${q}u];`);
      const tap = (t: number) => (fwd ? t + kw : t + KW - 1 - kw);
      for (const g of G) {
        L.push(`        let xg${g} = vec4f(${range(4).map((j) => `e${tap(4 * g + j)}`).join(", ")});`);
      }
      for (const r of R) {
        for (const g of G) {
          L.push(`        acc${r}_${g} = fma(vec4f(w${r >> 2}.${"xyzw"[r & 3]}), xg${g}, acc${r}_${g});`);
        }
      }
      L.push("      }");
    }
    L.push("    }");
  }
  L.push("  }");
  L.push("  let yp = p.yh * p.yw;", "  let pix = y * p.yw + x0;");
  for (const r of R) {
    L.push(`  if (row0 + ${r}u < p.rm) {`, `    let ob = (n * p.rm + row0 + ${r}u) * yp + pix;`);
    if (vecStore) {
      for (const g of G) {
        L.push(`    if (x0 + ${4 * g}u < p.yw) {`, `      out[ob / 4u + ${g}u] = acc${r}_${g};`, "    }");
      }
    } else {
      for (const t of T) {
        L.push(
          `    if (x0 + ${t}u < p.yw) {`,
          `      out[ob + ${t}u] = acc${r}_${t >> 2}[${t & 3}];`,
          "    }",
        );
      }
    }
    L.push("  }");
  }
  const code = `${paramStruct(CONV_STRIP_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${vecStore ? "vec4f" : "f32"}>;
@group(0) @binding(2) var<storage, read> src: array<${vecLoadPad === null ? "f32" : "vec4f"}>;
@group(0) @binding(3) var<storage, read> Wp: array<vec4f>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${L.join("\n")}
}
`;
  return { code, fields: CONV_STRIP_FIELDS };
}

/** Static shape of a generated weight-gradient kernel. */
export interface ConvWeightGradSpec {
  /** Kernel height. */
  readonly kh: number;
  /** Kernel width. */
  readonly kw: number;
  /** Stride (both axes). */
  readonly stride: number;
  /** Output channels per invocation, a multiple of 4, or 1 or 2. */
  readonly tm: number;
  /** Weight columns (c, kh, kw) per invocation, a multiple of 4. */
  readonly tn: number;
  /** Read dy as vec4s along the output width (WO % 4 == 0). */
  readonly dyVec: boolean;
  /** Store vec4s (C·KH·KW % 4 == 0). */
  readonly vecStore: boolean;
}

/** Uniform fields of {@link convWeightGradKernel}. */
export const CONV_WGRAD_FIELDS = [
  ["kc", "u32"], // C · KH · KW weight columns
  ["o", "u32"], // output channels
  ["h", "u32"],
  ["w", "u32"],
  ["ho", "u32"],
  ["wo", "u32"],
  ["ximg", "u32"], // C · H · W
  ["dimg", "u32"], // O · HO · WO
  ["nb", "u32"], // batch
  ["chunk", "u32"], // images per batch chunk
  ["rb", "u32"], // row blocks (ceil(O / tm)); grid z = chunk index · rb + row block
  ["pad", "i32"],
] as const;

/** The weight-gradient kernel; see the module doc. Writes partials [chunks, O, C·KH·KW]. */
export function convWeightGradKernel(s: ConvWeightGradSpec): KernelSource {
  const { kh: KH, kw: KW, stride: S, tm, tn, dyVec, vecStore } = s;
  // tm 1 or 2 serves weights with that many output channels without FMAs on zero rows.
  checkBlock("conv weight-gradient", tm, tn, true);
  const T = range(tn), G = range(tn / 4), R = range(tm);
  const KK = KH * KW;
  const L: string[] = [];
  L.push(`  let col0 = (g.x + g.y * nwg.x * ${CONV_WG}u) * ${tn}u;`);
  L.push("  if (col0 >= p.kc) {\n    return;\n  }");
  L.push("  let chunkIndex = g.z / p.rb;", `  let row0 = (g.z - chunkIndex * p.rb) * ${tm}u;`);
  L.push("  let nStart = chunkIndex * p.chunk;", "  let nEnd = min(p.nb, nStart + p.chunk);");
  L.push("  let plane = p.h * p.w;", "  let opix = p.ho * p.wo;");
  for (const t of T) {
    L.push(
      `  let q${t} = min(col0 + ${t}u, p.kc - 1u);`,
      `  let c${t} = q${t} / ${KK}u;`,
      `  let rr${t} = q${t} - c${t} * ${KK}u;`,
      `  let kh${t} = rr${t} / ${KW}u;`,
      `  let kw${t} = rr${t} - kh${t} * ${KW}u;`,
      `  let xo${t} = c${t} * plane;`,
      `  let oy${t} = i32(kh${t}) - p.pad;`,
      `  let ox${t} = i32(kw${t}) - p.pad;`,
    );
  }
  for (const r of R) L.push(`  let dr${r} = min(row0 + ${r}u, p.o - 1u) * opix;`);
  for (const r of R) for (const g of G) L.push(`  var acc${r}_${g} = vec4f(0.0);`);
  L.push("  for (var n = nStart; n < nEnd; n++) {");
  L.push("    let xb = n * p.ximg;", "    let db = n * p.dimg;");
  L.push("    for (var oh = 0u; oh < p.ho; oh++) {");
  for (const t of T) {
    L.push(
      `      let sy${t} = i32(oh * ${S}u) + oy${t};`,
      `      let vy${t} = u32(sy${t}) < p.h;`,
      `      let ro${t} = xb + xo${t} + u32(sy${t}) * p.w;`,
    );
  }
  L.push("      let dyRow = db + oh * p.wo;");
  const step = (owExpr: string, dyOf: (r: number) => string) => {
    const S2: string[] = [];
    S2.push("        {", `        let ow = ${owExpr};`);
    for (const t of T) {
      S2.push(
        `        let sx${t} = i32(ow * ${S}u) + ox${t};`,
        `        let v${t} = vy${t} && u32(sx${t}) < p.w;`,
        `        let e${t} = select(0.0, X[select(0u, ro${t} + u32(sx${t}), v${t})], v${t});`,
      );
    }
    for (const g of G) {
      S2.push(`        let xg${g} = vec4f(${range(4).map((j) => `e${4 * g + j}`).join(", ")});`);
    }
    for (const r of R) {
      for (const g of G) S2.push(`        acc${r}_${g} = fma(vec4f(${dyOf(r)}), xg${g}, acc${r}_${g});`);
    }
    S2.push("        }");
    return S2.join("\n");
  };
  if (dyVec) {
    L.push("      for (var ow4 = 0u; ow4 < p.wo / 4u; ow4++) {");
    for (const r of R) L.push(`        let d${r} = DY[(dyRow + dr${r}) / 4u + ow4];`);
    for (let j = 0; j < 4; j++) L.push(step(`ow4 * 4u + ${j}u`, (r) => `d${r}.${"xyzw"[j]}`));
    L.push("      }");
  } else {
    L.push("      for (var ow = 0u; ow < p.wo; ow++) {");
    for (const r of R) L.push(`        let d${r} = DY[dyRow + dr${r} + ow];`);
    L.push(step("ow", (r) => `d${r}`).replace("let ow = ow;", ""));
    L.push("      }");
  }
  L.push("    }", "  }");
  L.push("  let partBase = chunkIndex * p.o * p.kc;");
  for (const r of R) {
    L.push(`  if (row0 + ${r}u < p.o) {`, `    let ob = partBase + (row0 + ${r}u) * p.kc + col0;`);
    if (vecStore) {
      for (const g of G) {
        L.push(`    if (col0 + ${4 * g}u < p.kc) {`, `      out[ob / 4u + ${g}u] = acc${r}_${g};`, "    }");
      }
    } else {
      for (const t of T) {
        L.push(
          `    if (col0 + ${t}u < p.kc) {`,
          `      out[ob + ${t}u] = acc${r}_${t >> 2}[${t & 3}];`,
          "    }",
        );
      }
    }
    L.push("  }");
  }
  const code = `${paramStruct(CONV_WGRAD_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<${vecStore ? "vec4f" : "f32"}>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> DY: array<${dyVec ? "vec4f" : "f32"}>;
@compute @workgroup_size(${CONV_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${L.join("\n")}
}
`;
  return { code, fields: CONV_WGRAD_FIELDS };
}
