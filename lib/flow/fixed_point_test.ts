/**
 * The fixed-point inverse's stopping rules on branches with a known answer: a contraction whose
 * evaluations carry rounding-like noise above the tolerance stops at the rounding floor (not at the
 * cap), while a slow but genuine contraction is never stopped that way and runs to the cap; the
 * "official" criterion has no floor rule. (The inverse against the authors' fixtures is tested in
 * iresblock_test.ts.)
 */
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { add, mul } from "../engine/ops/elementwise.ts";
import type { Tensor } from "../engine/tensor.ts";
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import type { ResidualBranch } from "./estimators.ts";
import {
  fixedPointInverse,
  fixedPointInverseSync,
  type FixedPointOptions,
  type FixedPointReport,
  FLOOR_RATIO,
  FLOOR_WINDOW,
} from "./fixed_point.ts";

const dev = await createDevice("cpu64");
const D = 64;

/** g(x) = slope·x (+ noise of ± `noise` that changes on every call, as rounding does). */
function branch(slope: number, noise = 0): ResidualBranch {
  let calls = 0;
  return {
    parameters: () => [],
    buffers: () => [],
    apply(x: Tensor): Tensor {
      calls++;
      const n = Array.from({ length: D }, (_, i) => noise * Math.sin(1.7 * calls + 0.37 * i * i));
      return add(mul(x, slope), tensor(n, [1, D], dev));
    },
  };
}

const y = tensor(Array.from({ length: D }, (_, i) => Math.cos(i)), [1, D], dev);

/** The report of an inverse that reports at the cap instead of throwing (rtol 0); x is freed. */
async function capped(g: ResidualBranch, opts: FixedPointOptions): Promise<FixedPointReport> {
  const r = await fixedPointInverse(g, y, { rtol: 0, onUnconverged: "report", ...opts });
  r.x.dispose();
  return r.report;
}

Deno.test("fixed-point inverse: the rounding floor", async (t) => {
  await t.step("noise 1e-5 above a 1e-6 tolerance: stops at the floor, not the cap", async () => {
    const r = await fixedPointInverse(branch(0.5, 1e-5), y, { atol: 1e-6, rtol: 0 });
    // The exact iteration would reach 1e-6 in about 20 updates; the noise keeps the change near 1e-5.
    assertTrue(r.report.atFloor && r.report.converged, JSON.stringify(r.report));
    assertTrue(r.report.iterations < 20 + 2 * FLOOR_WINDOW, `${r.report.iterations} iterations`);
    assertTrue(r.report.lastChange < 3e-5 && r.report.residual < 3e-5, JSON.stringify(r.report));
    r.x.dispose();
    const sync = fixedPointInverseSync(branch(0.5, 1e-5), y, { atol: 1e-6, rtol: 0 });
    assertEquals([sync.report.atFloor, sync.report.iterations], [true, r.report.iterations]);
    sync.x.dispose();
  });
  await t.step("a slow genuine contraction (slope 0.995) runs to the cap: no floor", async () => {
    const r = await capped(branch(-0.995), { atol: 1e-9, maxIterations: 600 });
    assertEquals([r.converged, r.atFloor, r.iterations], [false, false, 600]);
  });
  await t.step("noise far above the floor ratio is not a floor: the cap", async () => {
    // Noise 1e-3 against a tolerance of 1e-6: ratios about 1000 > FLOOR_RATIO.
    assertTrue(1e-3 / 1e-6 > FLOOR_RATIO);
    const r = await capped(branch(0.5, 1e-3), { atol: 1e-6, maxIterations: 300 });
    assertEquals([r.converged, r.atFloor], [false, false]);
  });
  await t.step("the official criterion keeps the official behaviour (no floor rule)", async () => {
    const r = await capped(branch(0.5, 1e-5), { criterion: "official", atol: 1e-12, maxIterations: 300 });
    assertEquals([r.converged, r.atFloor, r.iterations], [false, false, 300]);
  });
  await t.step("without noise the tolerance test stops it as before", async () => {
    const r = await fixedPointInverse(branch(0.5), y, { atol: 1e-6, rtol: 0 });
    assertEquals([r.report.converged, r.report.atFloor], [true, false]);
    assertTrue(r.report.iterations <= 22, `${r.report.iterations}`);
    r.x.dispose();
  });
});
