/**
 * Dense matrix-product kernels of the CPU backend, accumulating into float64 arrays, and the
 * batched `matmul` built on them. Loops are i-k-j (a scalar of A times a contiguous row of B)
 * or row-by-row dot products, so the innermost loop always walks contiguous memory.
 * @module
 */
import type { Backend } from "../backend.ts";
import type { CpuArray } from "./cpu_storage.ts";

/** Block sizes: a KB x JB block of B (float64) stays within a typical L2 cache. */
const KB = 128;
const JB = 512;

/**
 * C += A B where A(i, p) = a[aOff + i ars + p acs] (any strides) and B is row-major [k, n] at
 * `bOff`; C is row-major [m, n] at `cOff`.
 */
export function gemmRowB(
  a: CpuArray,
  aOff: number,
  ars: number,
  acs: number,
  b: CpuArray,
  bOff: number,
  c: Float64Array,
  cOff: number,
  m: number,
  k: number,
  n: number,
): void {
  for (let j0 = 0; j0 < n; j0 += JB) {
    const j1 = Math.min(n, j0 + JB);
    for (let p0 = 0; p0 < k; p0 += KB) {
      const p1 = Math.min(k, p0 + KB);
      let i = 0;
      // Four rows of C at a time: each element of B is loaded once per four updates.
      for (; i + 3 < m; i += 4) {
        const c0 = cOff + i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
        const a0 = aOff + i * ars;
        for (let p = p0; p < p1; p++) {
          const ap = a0 + p * acs;
          const v0 = a[ap], v1 = a[ap + ars], v2 = a[ap + 2 * ars], v3 = a[ap + 3 * ars];
          const bi = bOff + p * n;
          for (let j = j0; j < j1; j++) {
            const bv = b[bi + j];
            c[c0 + j] += v0 * bv;
            c[c1 + j] += v1 * bv;
            c[c2 + j] += v2 * bv;
            c[c3 + j] += v3 * bv;
          }
        }
      }
      for (; i < m; i++) {
        const ci = cOff + i * n;
        const ai = aOff + i * ars;
        for (let p = p0; p < p1; p++) {
          const av = a[ai + p * acs];
          const bi = bOff + p * n;
          for (let j = j0; j < j1; j++) c[ci + j] += av * b[bi + j];
        }
      }
    }
  }
}

/**
 * C += A B^T where A is row-major [m, k] at `aOff` with row stride `lda` and B is row-major
 * [n, k] at `bOff` with row stride `ldb`: every entry is a dot product of two contiguous rows.
 */
export function gemmDot(
  a: CpuArray,
  aOff: number,
  lda: number,
  b: CpuArray,
  bOff: number,
  ldb: number,
  c: Float64Array,
  cOff: number,
  m: number,
  k: number,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const ai = aOff + i * lda;
    const ci = cOff + i * n;
    for (let j = 0; j < n; j++) {
      const bj = bOff + j * ldb;
      let s0 = 0, s1 = 0;
      let p = 0;
      for (; p + 1 < k; p += 2) {
        s0 += a[ai + p] * b[bj + p];
        s1 += a[ai + p + 1] * b[bj + p + 1];
      }
      if (p < k) s0 += a[ai + p] * b[bj + p];
      c[ci + j] += s0 + s1;
    }
  }
}

/** Dimensions of a batched matmul, exactly the `dims` argument of {@link Backend.matmul}. */
export type MatmulDims = Parameters<Backend["matmul"]>[2];

/** Rows of A below which C += A B^T uses dot products instead of transposing B first. */
const DOT_ROWS = 4;

/** Writes the transpose of the row-major [rows, cols] matrix at `off` of `src` into `dst` ([cols, rows]). */
export function transposeInto(
  src: CpuArray,
  off: number,
  rows: number,
  cols: number,
  dst: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const s = off + r * cols;
    for (let q = 0; q < cols; q++) dst[q * rows + r] = src[s + q];
  }
}

/**
 * C += A B^T where A(i, p) = a[aOff + i ars + p acs] and B is row-major [n, k] at `bOff`.
 * Few rows use dot products (when A rows are contiguous); otherwise B is transposed into
 * `scratch` (length >= k n) and the row kernel runs.
 */
export function gemmTransB(
  a: CpuArray,
  aOff: number,
  ars: number,
  acs: number,
  b: CpuArray,
  bOff: number,
  c: Float64Array,
  cOff: number,
  m: number,
  k: number,
  n: number,
  scratch: Float64Array,
): void {
  if (m < DOT_ROWS && acs === 1) {
    gemmDot(a, aOff, ars, b, bOff, k, c, cOff, m, k, n);
    return;
  }
  transposeInto(b, bOff, n, k, scratch);
  gemmRowB(a, aOff, ars, acs, scratch, 0, c, cOff, m, k, n);
}

/** Batched matmul into `out` ([batch, m, n]); size-1 batches of a or b are broadcast. */
export function matmulInto(a: CpuArray, b: CpuArray, d: MatmulDims, out: CpuArray): void {
  const { batch, m, k, n, transA, transB } = d;
  const aStep = d.aBatch === 1 ? 0 : m * k;
  const bStep = d.bBatch === 1 ? 0 : k * n;
  const direct = out instanceof Float64Array;
  const c = direct ? out : new Float64Array(m * n);
  const scratch = transB ? new Float64Array(k * n) : c;
  const ars = transA ? 1 : k;
  const acs = transA ? m : 1;
  for (let q = 0; q < batch; q++) {
    const aOff = q * aStep;
    const bOff = q * bStep;
    const cOff = direct ? q * m * n : 0;
    if (!direct) c.fill(0);
    if (transB) gemmTransB(a, aOff, ars, acs, b, bOff, c, cOff, m, k, n, scratch);
    else gemmRowB(a, aOff, ars, acs, b, bOff, c, cOff, m, k, n);
    if (!direct) out.set(c, q * m * n);
  }
}
