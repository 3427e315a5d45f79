/** Uniform dequantisation: (k + u)/nvals stays in the bin of k, the noise is uniform, the fixture's x lies in its bins. */
import { assertClose, assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { dequantize, dequantizeHost, reduceBits } from "./dequantize.ts";
import { fixtureFiles, flat, loadFixture } from "./layer_test_util.ts";

Deno.test("dequantize: every value lies in [k/nvals, (k+1)/nvals) and the noise is U[0, 1)", async () => {
  const dev = await createDevice("cpu64");
  const rng = new Rng(4);
  const k = rng.fill(20000, (r) => Math.floor(r.uniform() * 256));
  const x = await dequantizeHost(k, [20000], new Rng(9), dev).read();
  const u = Array.from(x, (v, i) => v * 256 - k[i]);
  assertTrue(u.every((v) => v >= 0 && v < 1), "noise in [0, 1)");
  const m = u.reduce((a, b) => a + b, 0) / u.length;
  const varU = u.reduce((a, b) => a + (b - m) ** 2, 0) / u.length;
  // U[0, 1): mean 1/2 (sd of the mean 0.002), variance 1/12.
  assertTrue(Math.abs(m - 0.5) < 0.01 && Math.abs(varU - 1 / 12) < 0.005, `mean ${m}, variance ${varU}`);
  // Same seed, same noise, on every backend.
  const x32 = await dequantize(tensor(k.slice(0, 50), [50], await createDevice("cpu")), new Rng(9)).read();
  assertClose(x32, x.slice(0, 50), { atol: 1e-7, rtol: 0 }, "float32 equals float64 draws");
  const x5 = await dequantizeHost([0, 31, 7], [3], new Rng(1), dev, 32).read();
  assertTrue(
    x5[0] < 1 / 32 && x5[1] >= 31 / 32 && x5[1] < 1 && x5[2] >= 7 / 32 && x5[2] < 8 / 32,
    "5-bit bins",
  );
  assertThrows(() => dequantizeHost([256], [1], rng, dev), /expected an integer in \[0, 256\)/);
  assertThrows(() => dequantizeHost([1.5], [1], rng, dev), /pixel 1.5/);
});

Deno.test("the model fixtures' x are dequantised from their integer pixels", async () => {
  for (const name of fixtureFiles("model_")) {
    const fx = await loadFixture(name);
    const k = flat(fx.x_integer_pixels);
    const x = flat(fx.x);
    const n = fx.nvals as number;
    assertTrue(
      Array.from(x).every((v, i) => v * n - k[i] >= 0 && v * n - k[i] < 1),
      `${name}: x in the bins of k`,
    );
  }
  assertEquals(Array.from(reduceBits([0, 7, 8, 255, 128], 5)), [0, 0, 1, 31, 16]);
  assertThrows(() => reduceBits([300], 5), /expected 0..255/);
});
