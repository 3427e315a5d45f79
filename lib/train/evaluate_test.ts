/** The evaluation's summary: non-finite per-image values are counted, and left out of the mean and SE. */
import { assertClose, assertEquals, type Tolerance } from "../testing/asserts.ts";
import { meanAndStandardError } from "./evaluate.ts";

/** Sums of a handful of doubles: exact to rounding. */
const EXACT: Tolerance = { atol: 1e-12, rtol: 0 };

Deno.test("meanAndStandardError counts non-finite values and leaves them out", () => {
  const r = meanAndStandardError([1, NaN, 3, Infinity, -Infinity, 2]);
  assertEquals([r.count, r.nonFinite], [3, 3]);
  assertClose(r.bitsPerDim, 2, EXACT);
  assertClose(r.standardError, 1 / Math.sqrt(3), EXACT);
  const none = meanAndStandardError([NaN]);
  assertEquals([none.count, none.nonFinite, Number.isNaN(none.bitsPerDim)], [0, 1, true]);
});
