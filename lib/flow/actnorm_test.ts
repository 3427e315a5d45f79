/**
 * ActNorm against actnorm_squeeze_logit.json (initialisation, outputs, log-dets, frozen second call),
 * the initialisation's zero mean / unit variance, the flow-layer contract (round trip, brute-force
 * log-dets, gradients) for ActNorm2d and ActNorm1d, checkpoint restore through the buffer, float32.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { full, tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, tidy } from "../engine/tensor.ts";
import { ActNorm1d, ActNorm2d } from "./actnorm.ts";
import {
  checkFlowLayer,
  fixtureTensor,
  flat,
  forwardHost,
  loadFixture,
  normals,
  shapeOf,
  testContext,
} from "./layer_test_util.ts";

/** Float64 vs the fixture (README: 1e-10 relative, 1e-12 absolute). */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float32 vs the fixture (README: 1e-5 relative on single layers). */
const F32: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Float32 log-dets are sums of ~16·C terms. */
const F32_LOGDET: Tolerance = { atol: 1e-4, rtol: 1e-5 };
/** Round trip in float64 / float32. */
const ROUND_TRIP_F64 = 1e-12;
const ROUND_TRIP_F32 = 1e-5;
/** Log-dets vs brute-force Jacobians (float64). */
const BRUTE: Tolerance = { atol: 1e-10, rtol: 1e-10 };
/** Zero mean / unit variance of the initialised output (float64). */
const MOMENTS: Tolerance = { atol: 1e-12, rtol: 1e-10 };

const fx = (await loadFixture("actnorm_squeeze_logit.json")).actnorm as Record<string, unknown>;
const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");
const train = testContext(true);
const evalCtx = testContext(false);

for (const [device, tol, ldTol] of [[dev64, F64, F64], [dev32, F32, F32_LOGDET]] as const) {
  Deno.test(`ActNorm2d matches actnorm_squeeze_logit.json on ${device.backend.description}`, async () => {
    const an = new ActNorm2d({ channels: shapeOf(fx.init_batch)[1], device });
    assertTrue(!an.isInitialized, "not initialised before the first forward");
    const first = await forwardHost(an, fixtureTensor(fx.init_batch, device), train);
    assertTrue(an.isInitialized, "initialised by the first forward");
    assertClose(await an.bias.value.read(), flat(fx.bias), tol, "bias = -mean");
    assertClose(
      await an.weight.value.read(),
      flat(fx.log_scale),
      tol,
      "log_scale (variance floor on channel 1)",
    );
    assertClose(first.y, flat(fx.init_batch_output), tol, "init_batch_output");
    assertClose(first.logdet, flat(fx.init_batch_logdet), ldTol, "init_batch_logdet");
    const second = await forwardHost(an, fixtureTensor(fx.x_after_init, device), evalCtx);
    assertClose(second.y, flat(fx.y_after_init), tol, "y_after_init (parameters frozen)");
    assertClose(second.logdet, flat(fx.logdet_after_init), ldTol, "logdet_after_init");
    assertClose(await an.bias.value.read(), flat(fx.bias), tol, "the second call does not re-initialise");
  });
}

Deno.test("ActNorm2d initialisation gives zero mean and unit variance when the variance exceeds the floor", async () => {
  const rng = new Rng(3);
  const [b, c, h, w] = [5, 4, 3, 3];
  // Channel c has scale 1 + c and shift 2c − 3: every variance is well above 0.2.
  const data = new Float64Array(b * c * h * w).map((_, i) => {
    const ch = Math.floor(i / (h * w)) % c;
    return (1 + ch) * rng.normal() + 2 * ch - 3;
  });
  const an = new ActNorm2d({ channels: c, device: dev64 });
  const { y } = await forwardHost(an, tensor(data, [b, c, h, w], dev64), train);
  for (let ch = 0; ch < c; ch++) {
    const vals: number[] = [];
    for (let e = 0; e < b; e++) for (let k = 0; k < h * w; k++) vals.push(y[(e * c + ch) * h * w + k]);
    const m = vals.reduce((s, v) => s + v, 0) / vals.length;
    const v = vals.reduce((s, x) => s + (x - m) ** 2, 0) / (vals.length - 1);
    assertClose(m, 0, MOMENTS, `channel ${ch} mean`);
    assertClose(v, 1, MOMENTS, `channel ${ch} unbiased variance`);
  }
});

Deno.test("ActNorm flow contract: round trip, brute-force log-dets, inverse consistency, gradients", async (t) => {
  for (const device of [dev64, dev32]) {
    await t.step(`ActNorm2d on ${device.backend.description}`, async () => {
      const an = new ActNorm2d({ channels: 2, device });
      tidy(() => an.apply(tensor(normals(2 * 2 * 3 * 3, new Rng(1), 2, 1), [2, 2, 3, 3], device)));
      const x = tensor(normals(2 * 2 * 2 * 3, new Rng(2)), [2, 2, 2, 3], device);
      await checkContract(an, x, device);
    });
    await t.step(`ActNorm1d on ${device.backend.description}`, async () => {
      const an = new ActNorm1d({ channels: 6, device });
      tidy(() => an.apply(tensor(normals(4 * 6, new Rng(4), 3), [4, 6], device)));
      await checkContract(an, tensor(normals(3 * 6, new Rng(5)), [3, 6], device), device);
      // Image-shaped input is flattened per example (the official FCWrapper).
      await checkContract(an, tensor(normals(2 * 6, new Rng(6)), [2, 6, 1, 1], device), device);
    });
  }
});

async function checkContract(layer: ActNorm1d | ActNorm2d, x: ReturnType<typeof tensor>, device: Device) {
  const r = await checkFlowLayer(layer, x, evalCtx);
  assertTrue(
    r.roundTrip <= (device === dev64 ? ROUND_TRIP_F64 : ROUND_TRIP_F32),
    `round trip ${r.roundTrip}`,
  );
  if (device === dev64) {
    assertClose(r.logdet, r.bruteForward, BRUTE, "log-det vs brute force");
    assertClose(r.bruteInverse, r.logdet.map((v) => -v), BRUTE, "inverse log-det = −forward");
  }
  assertEquals(r.nonFinite, []);
  assertEquals(r.zeroGrad, []);
}

Deno.test("ActNorm: checkpoint restore through the buffer, skipLogdet, errors", async () => {
  const channels = shapeOf(fx.init_batch)[1];
  const a = new ActNorm2d({ channels, device: dev64 });
  noGrad(() => a.forward(fixtureTensor(fx.init_batch, dev64), train));
  assertEquals(a.parameters().map((p) => p.name), ["weight", "bias"]);
  assertEquals(a.buffers().map((b) => b.name), ["initialized"]);
  // A fresh layer given the stored tensors is initialised and does not re-initialise on new data.
  const b = new ActNorm2d({ channels, device: dev64 });
  b.weight.set(tensor(await a.weight.value.read(), [channels], dev64));
  b.bias.set(tensor(await a.bias.value.read(), [channels], dev64));
  b.initialized.set(full([], 1, dev64));
  const out = await forwardHost(b, fixtureTensor(fx.x_after_init, dev64), train);
  assertClose(out.y, flat(fx.y_after_init), F64, "restored layer output");
  const skipped = noGrad(() =>
    b.forward(fixtureTensor(fx.x_after_init, dev64), { ...train, skipLogdet: true })
  );
  assertEquals(skipped.logdet, null);
  assertThrows(
    () =>
      new ActNorm2d({ channels: 3, device: dev64 }).inverse(tensor([1, 2, 3], [1, 3, 1, 1], dev64), evalCtx),
    /not initialised/,
  );
  assertThrows(
    () => a.apply(tensor([1, 2], [1, 2, 1, 1], dev64)),
    /Cannot apply ActNorm2d\(3\) to input \[1, 2, 1, 1\]/,
  );
  assertThrows(
    () => new ActNorm1d({ channels: 2, device: dev64 }).apply(tensor([1, 2], [1, 2], dev64)),
    /at least 2 values/,
  );
});
