/** The evaluation's summary: non-finite per-image values are counted, and left out of the mean and SE. */
import { assertClose, assertEquals, type Tolerance } from "../testing/asserts.ts";
import { evaluateBitsPerDim, meanAndStandardError } from "./evaluate.ts";
import { createDevice } from "../engine/devices.ts";
import { Rng } from "../engine/random.ts";
import { ResidualFlow } from "../flow/model.ts";
import { tinyConfig, tinyMnist } from "./testing_util.ts";

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

Deno.test("evaluateBitsPerDim: per-image values, shared noise and probes by seed", async (t) => {
  const device = await createDevice("cpu");
  const { test } = await tinyMnist();
  const a = new ResidualFlow(tinyConfig(), { rng: new Rng(1), device });
  const b = new ResidualFlow(tinyConfig(), { rng: new Rng(2), device });
  const opts = { seed: 5, limit: 6, batchSize: 4, keepPerImage: true };
  const ra = await evaluateBitsPerDim(a, test, device, opts);
  await t.step("the summary is the mean of the kept per-image values", () => {
    assertEquals(ra.perImage!.length, 6);
    assertClose(ra.bitsPerDim, ra.perImage!.reduce((s, v) => s + v, 0) / 6, EXACT);
  });
  await t.step("without keepPerImage nothing is kept", async () => {
    const r = await evaluateBitsPerDim(a, test, device, { ...opts, keepPerImage: false });
    assertEquals(r.perImage, undefined);
  });
  await t.step(
    "the same seed repeats every image's noise and probes exactly; another seed does not",
    async () => {
      const again = await evaluateBitsPerDim(a, test, device, opts);
      assertEquals(again.perImage, ra.perImage);
      const other = await evaluateBitsPerDim(a, test, device, { ...opts, seed: 6 });
      assertEquals(other.perImage!.some((v, i) => v !== ra.perImage![i]), true);
    },
  );
  await t.step("two models at one seed: their per-image differences are paired (and differ)", async () => {
    const rb = await evaluateBitsPerDim(b, test, device, opts);
    const rb2 = await evaluateBitsPerDim(b, test, device, opts);
    assertEquals(rb2.perImage, rb.perImage);
    assertEquals(rb.perImage!.some((v, i) => v !== ra.perImage![i]), true);
  });
  a.dispose();
  b.dispose();
});
