/**
 * Tests of the kernel benchmark's helpers (the benchmark itself is run by `deno task bench`; its
 * peers' outputs are checked in `bench_peers_test.ts`). Times nothing.
 * @module
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { relativeError } from "./bench_kernels.ts";

Deno.test("relativeError", async (t) => {
  await t.step("is max |out - ref| / max |ref|", () => {
    assertEquals(relativeError([1, 2, -4.5], [1, 2, -4]), 0.125);
  });
  await t.step("is 0 for equal arrays", () => assertEquals(relativeError([1, -2], [1, -2]), 0));
  await t.step("is infinite when the lengths differ", () => {
    assertEquals(relativeError([1, 2], [1, 2, 3]), Number.POSITIVE_INFINITY);
  });
  await t.step("NaN in the output fails a tolerance check", () => {
    assertTrue(!(relativeError([Number.NaN], [1]) <= 1e-3));
  });
});
