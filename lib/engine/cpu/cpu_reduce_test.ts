/**
 * Tests of the CPU backend's sum/max reductions against a naive per-element reference.
 * @module
 */
import { assertClose, assertEquals, type Tolerance } from "../../testing/asserts.ts";
import type { ReduceOp, Shape } from "../backend.ts";
import {
  backend,
  count,
  DTYPES,
  randomValues,
  ravel,
  readAll,
  REF_TOL,
  rng,
  unravel,
} from "./cpu_test_util.ts";

/** Naive reduction: every input element goes to the output index with `axes` deleted. */
function naiveReduce(op: ReduceOp, x: number[], shape: Shape, axes: readonly number[]): number[] {
  const keptShape = shape.filter((_, d) => !axes.includes(d));
  const out = new Array<number>(count(keptShape)).fill(op === "sum" ? 0 : -Infinity);
  for (let i = 0; i < x.length; i++) {
    const idx = unravel(i, shape).filter((_, d) => !axes.includes(d));
    const o = ravel(idx, keptShape);
    out[o] = op === "sum" ? out[o] + x[i] : Math.max(out[o], x[i]);
  }
  return out;
}

/** assertClose, except that non-finite expected entries (max over nothing) must match exactly. */
function assertCloseOrSame(got: number[], want: number[], tol: Tolerance, what: string): void {
  const same = (i: number) => !Number.isFinite(want[i]) && Object.is(got[i], want[i]);
  assertClose(got.map((v, i) => (same(i) ? 0 : v)), want.map((v, i) => (same(i) ? 0 : v)), tol, what);
}

const CASES: [Shape, number[]][] = [
  [[7], [0]],
  [[3, 4], [0]],
  [[3, 4], [1]],
  [[3, 4], [0, 1]],
  [[2, 3, 4], [1]],
  [[2, 3, 4], [0, 2]],
  [[2, 3, 4, 5], [0, 2, 3]],
  [[2, 3, 4, 5], [1, 2]],
  [[3, 2, 3, 4], [1, 2]],
  [[3, 4, 2, 5], [1, 3]],
  [[4, 3, 2, 3, 2], [0, 2, 4]],
  [[2, 3, 4, 5], [0, 1, 2, 3]],
  [[4, 1, 3], [1]],
  [[1, 5, 1], [0, 2]],
  [[1, 1], [0]],
  [[3, 1, 2, 1], [0, 3]],
  [[2, 0, 3], [1]],
  [[2, 0, 3], [0]],
];

Deno.test("cpu reduce: sum and max over single, multiple and all axes", async (t) => {
  for (const dtype of DTYPES) {
    for (const [shape, axes] of CASES) {
      await t.step(`${dtype} [${shape}] over [${axes}]`, async () => {
        const be = backend(dtype);
        const x = randomValues(rng(count(shape) + axes.length), count(shape), dtype);
        const s = be.fromArray(x);
        for (const op of ["sum", "max"] as const) {
          const got = await readAll(be, be.reduce(op, s, shape, axes));
          assertCloseOrSame(got, naiveReduce(op, x, shape, axes), REF_TOL[dtype], `${op}`);
        }
      });
    }
  }
});

Deno.test("cpu reduce: max of negatives and NaN", async () => {
  const be = backend("float64");
  assertEquals(await readAll(be, be.reduce("max", be.fromArray([-5, -2, -9]), [3], [0])), [-2]);
  assertEquals(await readAll(be, be.reduce("max", be.fromArray([1, NaN, 3, 0]), [2, 2], [1])), [NaN, 3]);
});

Deno.test("cpu reduce: float32 sums accumulate in double", async () => {
  // 1 + 2^-24 (many times) is lost by a float32 accumulator but not by a double one.
  const be = backend("float32");
  const n = 4096;
  const x = new Array<number>(n).fill(2 ** -24);
  x[0] = 1;
  const got = await readAll(be, be.reduce("sum", be.fromArray(x), [n], [0]));
  assertEquals(got, [Math.fround(1 + (n - 1) * 2 ** -24)]);
});
