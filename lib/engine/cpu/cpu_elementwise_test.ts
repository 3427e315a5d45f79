/**
 * Tests of the CPU backend's unary, binary and where kernels against definition-level formulas
 * and a naive per-element broadcasting reference.
 * @module
 */
import { assertClose, assertEquals, type Tolerance } from "../../testing/asserts.ts";
import type { BinaryOp, Shape, UnaryOp } from "../backend.ts";
import { broadcastShapes } from "../backend.ts";
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

/** Unary functions by definition (no stability tricks) for moderate arguments. */
const UNARY_DEF: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  log1p: (x) => Math.log(1 + x),
  sqrt: (x) => Math.sqrt(x),
  abs: (x) => (x < 0 ? -x : x),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  softplus: (x) => Math.log(1 + Math.exp(x)),
  tanh: (x) => (Math.exp(x) - Math.exp(-x)) / (Math.exp(x) + Math.exp(-x)),
  elu: (x) => (x > 0 ? x : Math.exp(x) - 1),
  relu: (x) => (x > 0 ? x : 0),
  step: (x) => (x > 0 ? 1 : 0),
  recip: (x) => 1 / x,
  square: (x) => x * x,
};

/** Ops whose argument must be positive (log/sqrt) or away from -1 (log1p). */
const POSITIVE_ONLY = new Set<UnaryOp>(["log", "sqrt", "log1p", "recip"]);

/**
 * Definition formulas lose digits (log(1 + x) for small x, tanh's quotient); compare with a
 * tolerance a little looser than the summation tolerance.
 */
const DEF_TOL: Tolerance = { atol: 1e-12, rtol: 1e-11 };

const BINARY_DEF: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  max: (a, b) => (a > b ? a : b),
  min: (a, b) => (a < b ? a : b),
  gt: (a, b) => Number(a > b),
  ge: (a, b) => Number(a >= b),
  lt: (a, b) => Number(a < b),
  le: (a, b) => Number(a <= b),
  eq: (a, b) => Number(a === b),
  ne: (a, b) => Number(a !== b),
};

/** Naive broadcast: out[i] = f over inputs indexed by the out multi-index, size-1 axes pinned at 0. */
function naiveBroadcast(
  outShape: Shape,
  inputs: { data: number[]; shape: Shape }[],
  f: (...v: number[]) => number,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < count(outShape); i++) {
    const idx = unravel(i, outShape);
    const vals = inputs.map(({ data, shape }) => {
      const off = outShape.length - shape.length;
      const sub = shape.map((n, d) => (n === 1 ? 0 : idx[d + off]));
      return data[ravel(sub, shape)];
    });
    out.push(f(...vals));
  }
  return out;
}

/** Broadcasting cases: same shape, scalars, row, column, rank mismatch, both sides stretched. */
const BROADCAST_CASES: [Shape, Shape][] = [
  [[2, 3], [2, 3]],
  [[4, 5], []],
  [[], [4, 5]],
  [[1], [3, 2]],
  [[3, 4], [4]],
  [[3, 4], [1, 4]],
  [[3, 4], [3, 1]],
  [[3, 1], [1, 4]],
  [[2, 3, 4, 5], [3, 1, 1]],
  [[2, 1, 4], [5, 1, 3, 1]],
  [[1, 3, 1, 2], [4, 1, 5, 1]],
  [[2, 0, 3], [3]],
];

Deno.test("cpu unary: every op matches its definition", async (t) => {
  for (const dtype of DTYPES) {
    const tol = dtype === "float64" ? DEF_TOL : REF_TOL.float32;
    for (const op of Object.keys(UNARY_DEF) as UnaryOp[]) {
      await t.step(`${dtype} ${op}`, async () => {
        const r = rng(op.length * 31 + 7);
        const be = backend(dtype);
        const xs = randomValues(() => (POSITIVE_ONLY.has(op) ? r(0.05, 4) : r(-4, 4)), 50, dtype);
        xs.push(dtype === "float32" ? Math.fround(0.1) : 0.1);
        if (!POSITIVE_ONLY.has(op)) xs.push(0, -0.75, 2);
        const got = await readAll(be, be.unary(op, be.fromArray(xs)));
        assertClose(got, xs.map(UNARY_DEF[op]), tol, `${op}`);
      });
    }
  }
});

Deno.test("cpu unary: conventions and stability at the extremes", async (t) => {
  for (const dtype of DTYPES) {
    const be = backend(dtype);
    const run = async (op: UnaryOp, xs: number[]) => await readAll(be, be.unary(op, be.fromArray(xs)));
    await t.step(`${dtype}: sign(0) = 0, step(0) = 0, relu(0) = 0`, async () => {
      assertEquals(await run("sign", [0, -0, -3, 2]), [0, 0, -1, 1]);
      assertEquals(await run("step", [0, -1e-30, 1e-30]), [0, 0, 1]);
      assertEquals(await run("relu", [0, -2, 2]), [0, 0, 2]);
    });
    await t.step(`${dtype}: sigmoid saturates without NaN`, async () => {
      assertEquals(await run("sigmoid", [-1000, 1000, 0]), [0, 1, 0.5]);
    });
    await t.step(`${dtype}: softplus is stable for large |x|`, async () => {
      const got = await run("softplus", [1000, -1000, -50]);
      assertEquals(got.slice(0, 2), [1000, 0]);
      // softplus(-50) = log1p(e^-50) ≈ e^-50 to full relative precision.
      assertClose(got[2], Math.exp(-50), { atol: 0, rtol: 1e-6 }, "softplus(-50)");
    });
    await t.step(`${dtype}: elu uses expm1 near zero`, async () => {
      const got = await run("elu", [-1e-10]);
      assertClose(
        got[0],
        dtype === "float32" ? Math.fround(Math.expm1(Math.fround(-1e-10))) : Math.expm1(-1e-10),
        {
          atol: 0,
          rtol: 1e-7,
        },
        "elu(-1e-10)",
      );
    });
  }
});

Deno.test("cpu binary: every op, every broadcasting case, against a naive reference", async (t) => {
  for (const dtype of DTYPES) {
    for (const [aShape, bShape] of BROADCAST_CASES) {
      await t.step(`${dtype} [${aShape}] with [${bShape}]`, async () => {
        const be = backend(dtype);
        const r = rng(count(aShape) * 13 + count(bShape));
        // Small integers in part, so comparisons see ties; positive bases for pow.
        const gen = () => (r() < 0.3 ? Math.round(r(0.5, 3.5)) : r(0.1, 3));
        const a = randomValues(gen, count(aShape), dtype);
        const b = randomValues(gen, count(bShape), dtype);
        const outShape = broadcastShapes(aShape, bShape);
        const sa = be.fromArray(a), sb = be.fromArray(b);
        for (const op of Object.keys(BINARY_DEF) as BinaryOp[]) {
          const s = be.binary(op, sa, aShape, sb, bShape);
          assertEquals(s.size, count(outShape), `${op} size`);
          const want = naiveBroadcast(
            outShape,
            [{ data: a, shape: aShape }, { data: b, shape: bShape }],
            BINARY_DEF[op],
          );
          assertClose(await readAll(be, s), want, REF_TOL[dtype], `${op} [${aShape}] [${bShape}]`);
        }
      });
    }
  }
});

Deno.test("cpu binary: max/min propagate NaN, comparisons with NaN are 0 except ne", async () => {
  const be = backend("float64");
  const a = be.fromArray([NaN, 1]), b = be.fromArray([1, NaN]);
  const got = async (op: BinaryOp) => await readAll(be, be.binary(op, a, [2], b, [2]));
  assertEquals(await got("max"), [NaN, NaN]);
  assertEquals(await got("min"), [NaN, NaN]);
  assertEquals(await got("gt"), [0, 0]);
  assertEquals(await got("eq"), [0, 0]);
  assertEquals(await got("ne"), [1, 1]);
  assertEquals(
    await readAll(be, be.binary("pow", be.fromArray([-8, 0]), [2], be.fromArray([1 / 3, 0]), [2])),
    [
      NaN,
      1,
    ],
  );
});

Deno.test("cpu where: three-way broadcasting against a naive reference", async (t) => {
  const cases: [Shape, Shape, Shape][] = [
    [[2, 3], [2, 3], [2, 3]],
    [[2, 3], [], [1]],
    [[3, 1], [1, 4], [4]],
    [[], [2, 2], [2, 1]],
    [[2, 1, 3], [4, 1], [2, 4, 3]],
  ];
  for (const dtype of DTYPES) {
    for (const [cShape, aShape, bShape] of cases) {
      await t.step(`${dtype} cond [${cShape}] a [${aShape}] b [${bShape}]`, async () => {
        const be = backend(dtype);
        const r = rng(17);
        const outShape = broadcastShapes(broadcastShapes(cShape, aShape), bShape);
        const c = Array.from({ length: count(cShape) }, () => (r() < 0 ? 0 : r(0.5, 2)));
        const a = randomValues(r, count(aShape), dtype);
        const b = randomValues(r, count(bShape), dtype);
        const s = be.where(
          be.fromArray(c),
          cShape,
          be.fromArray(a),
          aShape,
          be.fromArray(b),
          bShape,
          outShape,
        );
        const want = naiveBroadcast(
          outShape,
          [{ data: c, shape: cShape }, { data: a, shape: aShape }, { data: b, shape: bShape }],
          (cv, av, bv) => (cv !== 0 ? av : bv),
        );
        assertEquals(await readAll(be, s), want);
      });
    }
  }
});
