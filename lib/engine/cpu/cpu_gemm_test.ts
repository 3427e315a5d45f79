/**
 * Tests of the CPU backend's batched matmul (all transpose combinations, batch broadcasting,
 * block edges) against a naive triple loop.
 * @module
 */
import { assertClose } from "../../testing/asserts.ts";
import type { MatmulDims } from "./cpu_gemm.ts";
import { backend, DTYPES, randomValues, readAll, REF_TOL, rng } from "./cpu_test_util.ts";

/** out[q, i, j] = Σ_p A_q(i, p) B_q(p, j), reading A and B by definition. */
function naiveMatmul(a: number[], b: number[], d: MatmulDims): number[] {
  const { batch, m, k, n } = d;
  const out: number[] = [];
  for (let q = 0; q < batch; q++) {
    const qa = d.aBatch === 1 ? 0 : q, qb = d.bBatch === 1 ? 0 : q;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = d.transA ? a[qa * k * m + p * m + i] : a[qa * m * k + i * k + p];
          const bv = d.transB ? b[qb * n * k + j * k + p] : b[qb * k * n + p * n + j];
          s += av * bv;
        }
        out.push(s);
      }
    }
  }
  return out;
}

/** [batch, aBatch, bBatch, m, k, n]: odd sizes, fewer than four rows, block edges (k > 128, n > 512). */
const SIZES: [number, number, number, number, number, number][] = [
  [1, 1, 1, 1, 1, 1],
  [1, 1, 1, 5, 7, 3],
  [1, 1, 1, 2, 9, 4],
  [1, 1, 1, 8, 4, 1],
  [3, 3, 3, 4, 5, 6],
  [3, 1, 3, 6, 2, 5],
  [3, 3, 1, 3, 6, 7],
  [2, 1, 1, 5, 3, 2],
  [1, 1, 1, 9, 130, 515],
  [2, 2, 2, 3, 4, 0],
  [1, 1, 1, 3, 0, 2],
];

Deno.test("cpu matmul: transposes and batch broadcasting against a naive triple loop", async (t) => {
  for (const dtype of DTYPES) {
    for (const [batch, aBatch, bBatch, m, k, n] of SIZES) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const d: MatmulDims = { batch, aBatch, bBatch, m, k, n, transA, transB };
          const name = `${dtype} b${batch}(${aBatch},${bBatch}) ${m}x${k}x${n} tA=${transA} tB=${transB}`;
          await t.step(name, async () => {
            const be = backend(dtype);
            const r = rng(m * 1000 + k * 10 + n);
            const a = randomValues(r, aBatch * m * k, dtype);
            const b = randomValues(r, bBatch * k * n, dtype);
            const got = await readAll(be, be.matmul(be.fromArray(a), be.fromArray(b), d));
            assertClose(got, naiveMatmul(a, b, d), REF_TOL[dtype], name);
          });
        }
      }
    }
  }
});
