/**
 * Tests of the kernel benchmark's helpers (the benchmark itself is run by `deno task bench`; its
 * peers' outputs are checked in `bench_peers_test.ts`). Times nothing.
 * @module
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { median, relativeError } from "./bench_kernels.ts";

Deno.test("median", async (t) => {
  await t.step("odd count: the middle value, whatever the order", () => assertEquals(median([5, 1, 3]), 3));
  await t.step(
    "even count: the mean of the two middle values",
    () => assertEquals(median([4, 1, 3, 2]), 2.5),
  );
});

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
