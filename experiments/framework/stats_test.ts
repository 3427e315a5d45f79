import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { median, upperMedian } from "./stats.ts";

Deno.test("median", async (t) => {
  await t.step("odd count: the middle value, whatever the order", () => assertEquals(median([5, 1, 3]), 3));
  await t.step(
    "even count: the mean of the two middle values",
    () => assertEquals(median([4, 1, 3, 2]), 2.5),
  );
  await t.step("empty: NaN", () => assertTrue(Number.isNaN(median([]))));
  await t.step("the input is not reordered", () => {
    const xs = [3, 1, 2];
    median(xs);
    assertEquals(xs, [3, 1, 2]);
  });
});

Deno.test("upperMedian", async (t) => {
  await t.step("odd count: the middle value", () => assertEquals(upperMedian([5, 1, 3]), 3));
  await t.step("even count: the upper middle value", () => assertEquals(upperMedian([4, 1, 3, 2]), 3));
  await t.step("empty: 0", () => assertEquals(upperMedian([]), 0));
});
