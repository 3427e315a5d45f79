/**
 * Register-blocked batched matrix products over storage buffers, without workgroup memory or barriers
 * (the tiled kernel is ~40x slower on llvmpipe; see shared/notes/webgpu-on-llvmpipe.md).
 *
 * C[b] = op(A[b]) · op(B[b]) with op = transpose or not; A's batch offset is `b * p.sa`, B's `b * p.sb`
 * (0 broadcasts a single matrix), C is [batch, m, n] row-major. Batches run along grid z, starting at
 * `p.z0` (the host splits batches beyond the grid limit).
 *
 * - {@link matmulVec4Kernel}: each invocation owns a TM×TN block held in vec4 accumulators and reads
 *   vec4s only; needs m, n, k multiples of 4.
 * - {@link matmulScalarKernel}: 4×4 blocks with scalar loads, for any shape.
 * @module
 */
import { type KernelSource, paramStruct } from "./common.ts";

/** Uniform fields shared by both matmul kernels. */
export const MATMUL_FIELDS = [
  ["m", "u32"],
  ["n", "u32"],
  ["k", "u32"],
  ["sa", "u32"],
  ["sb", "u32"],
  ["z0", "u32"],
] as const;

/** Shape of a vec4 matmul kernel. */
export interface MatmulBlocking {
  /** Rows per invocation, a multiple of 4. */
  readonly tm: number;
  /** Columns per invocation, a multiple of 4. */
  readonly tn: number;
  /** Workgroup size along column blocks. */
  readonly wgx: number;
  /** Workgroup size along row blocks. */
  readonly wgy: number;
}

/** Default blocking of {@link matmulVec4Kernel}. */
export const MATMUL_BLOCK: MatmulBlocking = { tm: 8, tn: 16, wgx: 8, wgy: 8 };

/**
 * Blocking for tall products (m >= 512): on llvmpipe at 1024³, 32x16 ran at ~28.5 GFLOP/s against
 * ~24 for 8x16 (fewer loads per FMA), but it wastes lanes when m is small.
 */
export const MATMUL_BLOCK_TALL: MatmulBlocking = { tm: 32, tn: 16, wgx: 8, wgy: 8 };

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function header(vec: boolean): string {
  const t = vec ? "vec4f" : "f32";
  return `${paramStruct(MATMUL_FIELDS)}
@group(0) @binding(1) var<storage, read_write> C: array<${t}>;
@group(0) @binding(2) var<storage, read> A: array<${t}>;
@group(0) @binding(3) var<storage, read> B: array<${t}>;
`;
}

/** Vec4 kernel: C block rows [g.y·tm, +tm), columns [g.x·tn, +tn). Needs m, n, k % 4 == 0. */
export function matmulVec4Kernel(
  transA: boolean,
  transB: boolean,
  bl: MatmulBlocking = MATMUL_BLOCK,
): KernelSource {
  const { tm, tn, wgx, wgy } = bl;
  if (tm % 4 !== 0 || tn % 4 !== 0 || tm < 4 || tn < 4) {
    throw new Error(`Cannot generate matmul kernel: block ${tm}x${tn} must be multiples of 4`);
  }
  const R = range(tm), G = range(tn / 4), Q = range(tm / 4), K4 = range(4), T = range(tn);
  const L: string[] = [];
  L.push(`  let row0 = g.y * ${tm}u;`, `  let col0 = g.x * ${tn}u;`);
  L.push("  if (row0 >= p.m || col0 >= p.n) {\n    return;\n  }");
  L.push("  let bz = g.z + p.z0;", "  let m4 = p.m / 4u;", "  let n4 = p.n / 4u;", "  let k4 = p.k / 4u;");
  L.push("  let aOff = bz * (p.sa / 4u);", "  let bOff = bz * (p.sb / 4u);", "  let cOff = bz * p.m * n4;");
  if (transA) {
    for (const q of Q) L.push(`  let ag${q} = aOff + min(row0 / 4u + ${q}u, m4 - 1u);`);
  } else {
    for (const r of R) L.push(`  let ar${r} = aOff + min(row0 + ${r}u, p.m - 1u) * k4;`);
  }
  if (transB) {
    for (const t of T) L.push(`  let bc${t} = bOff + min(col0 + ${t}u, p.n - 1u) * k4;`);
  } else {
    for (const g of G) L.push(`  let bg${g} = bOff + min(col0 / 4u + ${g}u, n4 - 1u);`);
  }
  for (const r of R) for (const g of G) L.push(`  var acc${r}_${g} = vec4f(0.0);`);
  L.push("  for (var kq = 0u; kq < k4; kq++) {");
  // Loads.
  if (transA) {
    for (const kk of K4) {
      L.push(`    let kr${kk} = (kq * 4u + ${kk}u) * m4;`);
      for (const q of Q) L.push(`    let a${kk}_${q} = A[ag${q} + kr${kk}];`);
    }
  } else {
    for (const r of R) L.push(`    let a${r} = A[ar${r} + kq];`);
  }
  if (transB) {
    for (const t of T) L.push(`    let bt${t} = B[bc${t} + kq];`);
  } else {
    for (const kk of K4) {
      L.push(`    let kb${kk} = (kq * 4u + ${kk}u) * n4;`);
      for (const g of G) L.push(`    let b${kk}_${g} = B[bg${g} + kb${kk}];`);
    }
  }
  const comp = "xyzw";
  for (const kk of K4) {
    if (transB) {
      for (const g of G) {
        const parts = K4.map((j) => `bt${4 * g + j}.${comp[kk]}`).join(", ");
        L.push(`    let b${kk}_${g} = vec4f(${parts});`);
      }
    }
    for (const r of R) {
      const av = transA ? `a${kk}_${r >> 2}.${comp[r & 3]}` : `a${r}.${comp[kk]}`;
      for (const g of G) L.push(`    acc${r}_${g} = fma(vec4f(${av}), b${kk}_${g}, acc${r}_${g});`);
    }
  }
  L.push("  }");
  // Stores.
  for (const r of R) {
    L.push(`  if (row0 + ${r}u < p.m) {`, `    let cr = cOff + (row0 + ${r}u) * n4 + col0 / 4u;`);
    for (const g of G) {
      L.push(`    if (col0 + ${4 * g}u < p.n) {`, `      C[cr + ${g}u] = acc${r}_${g};`, "    }");
    }
    L.push("  }");
  }
  const code = `${header(true)}
@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(global_invocation_id) g: vec3u) {
${L.join("\n")}
}
`;
  return { code, fields: MATMUL_FIELDS };
}

/** Rows and columns per invocation of {@link matmulScalarKernel}. */
export const SCALAR_BLOCK = 4;

/** Scalar-load kernel for any m, n, k: each invocation owns a 4×4 block (workgroup 8×8). */
export function matmulScalarKernel(transA: boolean, transB: boolean): KernelSource {
  const R = range(SCALAR_BLOCK);
  const L: string[] = [];
  L.push(`  let row0 = g.y * ${SCALAR_BLOCK}u;`, `  let col0 = g.x * ${SCALAR_BLOCK}u;`);
  L.push("  if (row0 >= p.m || col0 >= p.n) {\n    return;\n  }");
  L.push("  let bz = g.z + p.z0;", "  let aOff = bz * p.sa;", "  let bOff = bz * p.sb;");
  L.push("  let cOff = bz * p.m * p.n;");
  for (const r of R) {
    L.push(`  let ar${r} = min(row0 + ${r}u, p.m - 1u);`, `  let bc${r} = min(col0 + ${r}u, p.n - 1u);`);
    L.push(`  var acc${r} = vec4f(0.0);`);
  }
  L.push("  for (var kk = 0u; kk < p.k; kk++) {");
  for (const r of R) {
    L.push(`    let a${r} = A[aOff + ${transA ? `kk * p.m + ar${r}` : `ar${r} * p.k + kk`}];`);
  }
  const bs = R.map((c) => `B[bOff + ${transB ? `bc${c} * p.k + kk` : `kk * p.n + bc${c}`}]`);
  L.push(`    let b = vec4f(${bs.join(", ")});`);
  for (const r of R) L.push(`    acc${r} = fma(vec4f(a${r}), b, acc${r});`);
  L.push("  }");
  for (const r of R) {
    L.push(`  if (row0 + ${r}u < p.m) {`);
    for (const c of R) {
      L.push(
        `    if (col0 + ${c}u < p.n) {`,
        `      C[cOff + (row0 + ${r}u) * p.n + col0 + ${c}u] = acc${r}[${c}];`,
        "    }",
      );
    }
    L.push("  }");
  }
  const code = `${header(false)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) g: vec3u) {
${L.join("\n")}
}
`;
  return { code, fields: MATMUL_FIELDS };
}
