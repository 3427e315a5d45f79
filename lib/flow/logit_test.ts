/**
 * LogitTransform against actnorm_squeeze_logit.json for α = 0.05 and 1e-6 (float64; float32 with the
 * cancellation allowance the fixtures README describes), brute-force log-dets, inverse round trips.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import {
  checkFlowLayer,
  fixtureTensor,
  flat,
  forwardHost,
  loadFixture,
  testContext,
} from "./layer_test_util.ts";
import { LogitTransform } from "./logit.ts";

/** Float64 values vs the fixture. */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float64 sums over 16 elements including one ~1e-10-accurate cancellation element (README: 4.8e-11). */
const F64_LOGDET: Tolerance = { atol: 1e-9, rtol: 1e-10 };
/** Float32 values away from the cancellation. */
const F32: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Float32 near x → 1 with α = 1e-6: 1 − s is resolved only to ~6e-8, so y is off by ~6e-8/(1 − s). */
const F32_EDGE_ALPHA_1E6: Tolerance = { atol: 0.1, rtol: 0 };
/** Float32 round trip of sigmoid(logit(s)). */
const ROUND_TRIP_F32 = 1e-6;
/** Log-det vs brute-force Jacobian (float64, interior points). */
const BRUTE: Tolerance = { atol: 1e-10, rtol: 1e-10 };

const fx = (await loadFixture("actnorm_squeeze_logit.json")).logit as {
  x: unknown;
  cases: { alpha: number; y: unknown; logdet_per_element: unknown; logdet: unknown }[];
};
const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");
const ctx = testContext(false);
const xs = flat(fx.x);

Deno.test("logit transform matches actnorm_squeeze_logit.json in float64", async () => {
  for (const c of fx.cases) {
    const layer = new LogitTransform({ alpha: c.alpha });
    const out = await forwardHost(layer, fixtureTensor(fx.x, dev64), ctx);
    assertClose(out.y, flat(c.y), F64, `y, alpha ${c.alpha}`);
    const per = await noGrad(() => layer.logdetPerElement(fixtureTensor(fx.x, dev64))).read();
    assertClose(per, flat(c.logdet_per_element), F64, `logdet per element, alpha ${c.alpha}`);
    assertClose(out.logdet, flat(c.logdet), F64_LOGDET, `logdet, alpha ${c.alpha}`);
    const back = noGrad(() => layer.inverse(fixtureTensor(c.y, dev64), ctx));
    assertClose(await back.read(), xs, F64, `inverse, alpha ${c.alpha}`);
  }
});

Deno.test("logit transform in float32: tight away from x → 1, loose at the α = 1e-6 edge", async () => {
  // Element 1 is (255 + 1 − 2^−20)/256, the largest dequantised value: 1 − s ≈ 1e-6 there.
  const edge = Array.from(xs, (v) => v > 0.999);
  assertTrue(edge.filter(Boolean).length >= 1, "the fixture has an edge element");
  for (const c of fx.cases) {
    const out = await forwardHost(new LogitTransform({ alpha: c.alpha }), fixtureTensor(fx.x, dev32), ctx);
    const want = flat(c.y);
    const pick = (a: ArrayLike<number>, keep: boolean) => Array.from(a).filter((_, i) => edge[i] === keep);
    assertClose(pick(out.y, false), pick(want, false), F32, `float32 y away from the edge, alpha ${c.alpha}`);
    const edgeTol = c.alpha < 1e-3 ? F32_EDGE_ALPHA_1E6 : F32;
    assertClose(pick(out.y, true), pick(want, true), edgeTol, `float32 y at the edge, alpha ${c.alpha}`);
  }
});

Deno.test("LogitTransform flow contract on interior points (float64 and float32)", async () => {
  const x = tensor(new Rng(3).fill(2 * 2 * 2 * 2, (r) => 0.05 + 0.9 * r.uniform()), [2, 2, 2, 2], dev64);
  for (const alpha of [0.05, 1e-6]) {
    const r = await checkFlowLayer(new LogitTransform({ alpha }), x, ctx);
    assertTrue(r.roundTrip <= 1e-13, `round trip ${r.roundTrip}`);
    assertClose(r.logdet, r.bruteForward, BRUTE, `alpha ${alpha} log-det vs brute force`);
    assertClose(r.bruteInverse, r.logdet.map((v) => -v), BRUTE, `alpha ${alpha} inverse log-det`);
  }
  const x32 = tensor(await x.read(), x.shape, dev32);
  const layer = new LogitTransform({ alpha: 0.05 });
  const back = tidy(() => noGrad(() => layer.inverse(layer.forward(x32, ctx).y, ctx)));
  const a = await back.read();
  const b = await x32.read();
  assertTrue(a.every((v, i) => Math.abs(v - b[i]) <= ROUND_TRIP_F32), "float32 round trip");
  assertEquals(noGrad(() => layer.forward(x32, { ...ctx, skipLogdet: true })).logdet, null);
  assertThrows(() => new LogitTransform({ alpha: 0.5 }), /expected 0 <= alpha < 0.5/);
});
