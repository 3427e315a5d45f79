/**
 * Tests of the CPU backend's permute, slice, pad and concat against per-element index maps,
 * and their round trips (permute by the inverse, slice out of pad, slice out of concat).
 * @module
 */
import { assertEquals } from "../../testing/asserts.ts";
import type { Shape } from "../backend.ts";
import { backend, count, DTYPES, randomValues, ravel, readAll, rng, unravel } from "./cpu_test_util.ts";

function naivePermute(x: number[], shape: Shape, perm: readonly number[]): number[] {
  const outShape = perm.map((i) => shape[i]);
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const idx = unravel(i, outShape);
    const src = new Array<number>(shape.length);
    perm.forEach((p, d) => (src[p] = idx[d]));
    out.push(x[ravel(src, shape)]);
  }
  return out;
}

function naiveSlice(
  x: number[],
  shape: Shape,
  starts: readonly number[],
  sizes: readonly number[],
): number[] {
  const out: number[] = [];
  for (let i = 0; i < count(sizes); i++) {
    const idx = unravel(i, sizes).map((v, d) => v + starts[d]);
    out.push(x[ravel(idx, shape)]);
  }
  return out;
}

function naivePad(x: number[], shape: Shape, before: readonly number[], after: readonly number[], v: number) {
  const outShape = shape.map((n, d) => n + before[d] + after[d]);
  const out: number[] = [];
  for (let i = 0; i < count(outShape); i++) {
    const idx = unravel(i, outShape).map((k, d) => k - before[d]);
    out.push(idx.every((k, d) => k >= 0 && k < shape[d]) ? x[ravel(idx, shape)] : v);
  }
  return out;
}

function inverse(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, d) => (inv[p] = d));
  return inv;
}

const PERMS: [Shape, number[]][] = [
  [[], []],
  [[5], [0]],
  [[3, 4], [1, 0]],
  [[3, 4], [0, 1]],
  [[2, 3, 4], [2, 0, 1]],
  [[2, 3, 4, 5], [0, 2, 3, 1]],
  [[2, 3, 4, 5], [3, 1, 0, 2]],
  [[2, 1, 3, 1], [3, 2, 1, 0]],
  [[2, 0, 3], [2, 1, 0]],
];

Deno.test("cpu permute: index map and inverse round trip", async (t) => {
  for (const dtype of DTYPES) {
    for (const [shape, perm] of PERMS) {
      await t.step(`${dtype} [${shape}] by [${perm}]`, async () => {
        const be = backend(dtype);
        const x = randomValues(rng(shape.length + 1), count(shape), dtype);
        const p = be.permute(be.fromArray(x), shape, perm);
        assertEquals(await readAll(be, p), naivePermute(x, shape, perm));
        const back = be.permute(p, perm.map((i) => shape[i]), inverse(perm));
        assertEquals(await readAll(be, back), x);
      });
    }
  }
});

const SLICES: [Shape, number[], number[]][] = [
  [[6], [2], [3]],
  [[4, 5], [1, 0], [2, 5]],
  [[4, 5], [0, 2], [4, 2]],
  [[2, 3, 4], [1, 1, 1], [1, 2, 3]],
  [[2, 3, 4, 5], [0, 1, 0, 2], [2, 2, 4, 3]],
  [[3, 3], [1, 1], [0, 2]],
  [[3, 3], [0, 0], [3, 3]],
];

Deno.test("cpu slice and pad: index maps and pad-then-slice round trip", async (t) => {
  for (const dtype of DTYPES) {
    for (const [shape, starts, sizes] of SLICES) {
      await t.step(`${dtype} slice [${shape}] at [${starts}] size [${sizes}]`, async () => {
        const be = backend(dtype);
        const x = randomValues(rng(7), count(shape), dtype);
        const got = await readAll(be, be.slice(be.fromArray(x), shape, starts, sizes));
        assertEquals(got, naiveSlice(x, shape, starts, sizes));
      });
    }
    const pads: [Shape, number[], number[]][] = [
      [[4], [1], [2]],
      [[2, 3], [0, 1], [1, 0]],
      [[2, 3, 4, 5], [0, 0, 1, 1], [0, 0, 1, 1]],
      [[2, 3, 4], [1, 2, 0], [0, 1, 3]],
      [[], [], []],
      [[2, 0], [1, 1], [0, 1]],
    ];
    for (const [shape, before, after] of pads) {
      await t.step(`${dtype} pad [${shape}] before [${before}] after [${after}]`, async () => {
        const be = backend(dtype);
        const x = randomValues(rng(11), count(shape), dtype);
        const p = be.pad(be.fromArray(x), shape, before, after, -7.5);
        assertEquals(await readAll(be, p), naivePad(x, shape, before, after, -7.5));
        const padded = shape.map((n, d) => n + before[d] + after[d]);
        assertEquals(await readAll(be, be.slice(p, padded, before, shape)), x);
      });
    }
  }
});

Deno.test("cpu concat: layout and slice-back round trip on every axis", async (t) => {
  for (const dtype of DTYPES) {
    const base: Shape = [2, 3, 4];
    for (let axis = 0; axis < base.length; axis++) {
      await t.step(`${dtype} axis ${axis}`, async () => {
        const be = backend(dtype);
        const r = rng(axis + 3);
        const extents = [1, 3, 2];
        const shapes = extents.map((e) => base.map((n, d) => (d === axis ? e : n)));
        const parts = shapes.map((s) => randomValues(r, count(s), dtype));
        const outShape = base.map((n, d) => (d === axis ? 6 : n));
        const out = be.concat(parts.map((p) => be.fromArray(p)), shapes, axis);
        // Naive: output element at idx comes from the part whose range on `axis` holds idx[axis].
        const want: number[] = [];
        for (let i = 0; i < count(outShape); i++) {
          const idx = unravel(i, outShape);
          let k = idx[axis], j = 0;
          while (k >= extents[j]) k -= extents[j++];
          want.push(parts[j][ravel(idx.map((v, d) => (d === axis ? k : v)), shapes[j])]);
        }
        assertEquals(await readAll(be, out), want);
        let start = 0;
        for (let j = 0; j < parts.length; j++) {
          const starts = base.map((_, d) => (d === axis ? start : 0));
          assertEquals(await readAll(be, be.slice(out, outShape, starts, shapes[j])), parts[j]);
          start += extents[j];
        }
      });
    }
  }
  await t.step("a single input is a copy", async () => {
    const be = backend("float64");
    assertEquals(await readAll(be, be.concat([be.fromArray([1, 2])], [[2]], 0)), [1, 2]);
  });
});
