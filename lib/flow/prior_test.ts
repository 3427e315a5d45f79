/** The prior and bits/dim against model_tiny.json and model_tiny_factor_out.json (log p(z), discrete bound, bits/dim). */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { noGrad } from "../engine/tensor.ts";
import { fixtureFiles, fixtureTensor, flat, loadFixture } from "./layer_test_util.ts";
import {
  bitsPerDim,
  bitsPerDimHost,
  discreteLogLikelihood,
  HALF_LOG_2PI,
  samplePrior,
  standardNormalLogProb,
} from "./prior.ts";

/** Float64 vs the fixture. */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float32 log p(z) of a few dozen values (64 or 80 in the fixtures). */
const F32: Tolerance = { atol: 1e-4, rtol: 1e-5 };

for (const name of fixtureFiles("model_")) {
  Deno.test(`prior and bits/dim match ${name}`, async () => {
    const fx = await loadFixture(name);
    const opts = { dims: fx.D as number, nvals: fx.nvals as number };
    for (const [kind, tol] of [["cpu64", F64], ["cpu", F32]] as const) {
      const dev = await createDevice(kind);
      const lpz = noGrad(() => standardNormalLogProb(fixtureTensor(fx.z, dev)));
      assertEquals(lpz.shape, [flat(fx.log_pz).length]);
      assertClose(await lpz.read(), flat(fx.log_pz), tol, `${kind} log p(z)`);
      const lpx = fixtureTensor(fx.log_px_exact, dev);
      assertClose(
        await noGrad(() => discreteLogLikelihood(lpx, opts)).read(),
        flat(fx.log_px_discrete),
        tol,
        "discrete",
      );
      assertClose(
        await noGrad(() => bitsPerDim(lpx, opts)).read(),
        flat(fx.bits_per_dim_exact),
        tol,
        `${kind} bits/dim`,
      );
    }
    const host = Array.from(flat(fx.log_px_exact), (v) => bitsPerDimHost(v, opts));
    assertClose(host, flat(fx.bits_per_dim_exact), F64, "host bits/dim");
    assertClose(
      host.reduce((a, b) => a + b, 0) / host.length,
      fx.bits_per_dim_exact_batch_mean as number,
      F64,
      "batch mean",
    );
  });
}

Deno.test("prior: shapes, padding-channel divisor, temperature, errors", async () => {
  const dev = await createDevice("cpu64");
  const z = tensor([0, 1, -2, 0.5, 3, 0], [2, 3], dev);
  const lp = await noGrad(() => standardNormalLogProb(z)).read();
  assertClose(lp, [-3 * HALF_LOG_2PI - (1 + 4) / 2, -3 * HALF_LOG_2PI - (0.25 + 9) / 2], F64, "hand values");
  // With padding channels the log-likelihood covers D = H·W·(C + P) values, bits/dim divides by H·W·C.
  const opts = { dims: 8, nvals: 256, imageDims: 6 };
  assertClose(bitsPerDimHost(-10, opts), (10 + 8 * Math.log(256)) / (6 * Math.LN2), F64, "imageDims divisor");
  const s = samplePrior([4000], new Rng(1), dev, 0.5);
  const v = Array.from(await s.read());
  const sd = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
  assertTrue(Math.abs(sd - 0.5) < 0.03, `temperature 0.5 gives sd ${sd}`);
  assertThrows(() => bitsPerDimHost(0, { dims: 0, nvals: 256 }), /expected positive sizes/);
});
