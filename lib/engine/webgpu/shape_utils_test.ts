/**
 * Tests of the WebGPU backend's host-side shape arithmetic (no GPU needed).
 * @module
 */
import { assertEquals } from "../../testing/asserts.ts";
import { broadcastStrides, contiguousStrides, reduceForm, simplifyStrided } from "./shape_utils.ts";
import { roundBufferBytes } from "./buffer_pool.ts";
import { reduceChunks } from "./reduce_ops.ts";

Deno.test("contiguousStrides and broadcastStrides", () => {
  assertEquals(contiguousStrides([2, 3, 4]), [12, 4, 1]);
  assertEquals(contiguousStrides([]), []);
  assertEquals(broadcastStrides([3, 1], [2, 3, 5]), [0, 1, 0]);
  assertEquals(broadcastStrides([], [2, 2]), [0, 0]);
});

Deno.test("simplifyStrided drops unit axes and merges contiguous ones", () => {
  assertEquals(simplifyStrided([2, 3, 4], [[12, 4, 1], [12, 4, 1]]), { dims: [24], strides: [[1], [1]] });
  assertEquals(simplifyStrided([2, 1, 4], [[4, 4, 1], [0, 0, 1]]), {
    dims: [2, 4],
    strides: [[4, 1], [0, 1]],
  });
  assertEquals(simplifyStrided([1, 1], [[1, 1]]), { dims: [1], strides: [[0]] });
  // A transpose cannot merge.
  assertEquals(simplifyStrided([3, 2], [[2, 1], [1, 3]]), { dims: [3, 2], strides: [[2, 1], [1, 3]] });
});

Deno.test("reduceForm puts any axis set with at most two reduced groups in 4-group form", () => {
  assertEquals(reduceForm([6], [0]), { k1: 1, r1: 1, k2: 1, r2: 6 });
  assertEquals(reduceForm([2, 3, 4], [2]), { k1: 6, r1: 1, k2: 1, r2: 4 });
  assertEquals(reduceForm([2, 3, 4], [0]), { k1: 1, r1: 2, k2: 12, r2: 1 });
  assertEquals(reduceForm([2, 3, 4, 5], [0, 2, 3]), { k1: 1, r1: 2, k2: 3, r2: 20 });
  assertEquals(reduceForm([2, 3, 4, 5], [1]), { k1: 2, r1: 3, k2: 20, r2: 1 });
  assertEquals(reduceForm([2, 3, 4, 5], [1, 3]), { k1: 2, r1: 3, k2: 4, r2: 5 });
  assertEquals(reduceForm([2, 1, 4], [1]), { k1: 8, r1: 1, k2: 1, r2: 1 });
  assertEquals(reduceForm([2, 3, 4, 5, 6], [0, 2, 4]), null);
});

Deno.test("reduceChunks splits long reductions with few outputs only", () => {
  assertEquals(reduceChunks({ k1: 4096, r1: 1, k2: 1, r2: 100000 }), { c1: 1, ch1: 1, c2: 1, ch2: 100000 });
  assertEquals(reduceChunks({ k1: 1, r1: 1, k2: 1, r2: 1000 }), { c1: 1, ch1: 1, c2: 1, ch2: 1000 });
  const c = reduceChunks({ k1: 1, r1: 1, k2: 1, r2: 1 << 20 });
  assertEquals([c.c1, c.ch2 % 4, c.c2 * c.ch2 >= 1 << 20, (c.c2 - 1) * c.ch2 < 1 << 20], [1, 0, true, true]);
  const d = reduceChunks({ k1: 1, r1: 100000, k2: 3, r2: 1 });
  assertEquals([d.c2, d.c1 * d.ch1 >= 100000, d.c1 > 1], [1, true, true]);
});

Deno.test("roundBufferBytes uses 16-byte steps, then quarter octaves", () => {
  assertEquals([0, 1, 16, 17, 256, 257, 4000, 4096, 4097].map(roundBufferBytes), [
    16,
    16,
    16,
    32,
    256,
    320,
    4096,
    4096,
    5120,
  ]);
});
