/** Squeeze against actnorm_squeeze_logit.json (the 4c + 2i + j order and pixel_shuffle), any factor, the flow contract. */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { noGrad } from "../engine/tensor.ts";
import {
  checkFlowLayer,
  fixtureTensor,
  flat,
  loadFixture,
  normals,
  shapeOf,
  testContext,
} from "./layer_test_util.ts";
import { Squeeze, squeeze2d, unsqueeze2d } from "./squeeze.ts";

/** A permutation is exact. */
const EXACT: Tolerance = { atol: 0, rtol: 0 };
/** Brute-force log-det of a permutation Jacobian. */
const BRUTE: Tolerance = { atol: 1e-12, rtol: 0 };

const fx = (await loadFixture("actnorm_squeeze_logit.json")).squeeze as Record<string, unknown>;
const ctx = testContext(false);

for (const kind of ["cpu64", "cpu"] as const) {
  Deno.test(`squeeze matches actnorm_squeeze_logit.json on ${kind}`, async () => {
    const dev = await createDevice(kind);
    const layer = new Squeeze({ factor: fx.factor as number });
    const out = noGrad(() => layer.forward(fixtureTensor(fx.x, dev), ctx));
    assertEquals(out.y.shape, shapeOf(fx.y));
    assertClose(await out.y.read(), flat(fx.y), EXACT, "y");
    assertEquals(out.logdet, null);
    const back = noGrad(() => layer.inverse(fixtureTensor(fx.y, dev), ctx));
    assertClose(await back.read(), flat(fx.inverse_of_y), EXACT, "pixel_shuffle(y)");
  });
}

Deno.test("squeeze index rule y[4c + 2i + j, h, w] = x[c, 2h + i, 2w + j], and factor 3", async () => {
  const dev = await createDevice("cpu64");
  const [c, h, w] = [3, 6, 4];
  const x = Float64Array.from({ length: 2 * c * h * w }, (_, i) => i);
  const y = await noGrad(() => squeeze2d(tensor(x, [2, c, h, w], dev))).read();
  for (let b = 0; b < 2; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          for (let hh = 0; hh < h / 2; hh++) {
            for (let ww = 0; ww < w / 2; ww++) {
              const yi = ((b * 4 * c + 4 * ch + 2 * i + j) * (h / 2) + hh) * (w / 2) + ww;
              const xi = ((b * c + ch) * h + 2 * hh + i) * w + 2 * ww + j;
              assertEquals(y[yi], x[xi], `b ${b} c ${ch} i ${i} j ${j} h ${hh} w ${ww}`);
            }
          }
        }
      }
    }
  }
  const s3 = noGrad(() => squeeze2d(tensor(x.slice(0, 72), [1, 2, 6, 6], dev), 3));
  assertEquals(s3.shape, [1, 18, 2, 2]);
  // Channel 9c + 3i + j at (h, w) = (0, 1) holds x[c, i, 3 + j]; here c 1, i 2, j 1.
  assertEquals((await s3.read())[(9 * 1 + 3 * 2 + 1) * 4 + 1], x[(1 * 6 + 2) * 6 + 3 + 1]);
  assertClose(await noGrad(() => unsqueeze2d(s3, 3)).read(), x.slice(0, 72), EXACT, "factor-3 inverse");
  assertThrows(() => squeeze2d(tensor(x.slice(0, 6), [1, 1, 2, 3], dev)), /divisible by 2/);
});

Deno.test("Squeeze flow contract: round trip, zero log-det by brute force, no parameters", async () => {
  const dev = await createDevice("cpu64");
  const x = tensor(normals(2 * 2 * 4 * 2, new Rng(1)), [2, 2, 4, 2], dev);
  const r = await checkFlowLayer(new Squeeze(), x, ctx);
  assertEquals(r.roundTrip, 0);
  assertClose(r.bruteForward, [0, 0], BRUTE, "log|det| of a permutation");
  assertClose(r.bruteInverse, [0, 0], BRUTE, "inverse");
  assertTrue(new Squeeze().parameters().length === 0 && new Squeeze().buffers().length === 0, "stateless");
});
