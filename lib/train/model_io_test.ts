/**
 * saveModel / loadModel: a round trip gives bit-identical outputs (forward with the same draws, exact
 * log-det, inverse, samples), the EMA weights come back when asked for, and bad files or options give
 * one-line errors naming the file.
 */
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { mul } from "../engine/ops/elementwise.ts";
import { rand, Rng } from "../engine/random.ts";
import { noGrad, type Tensor } from "../engine/tensor.ts";
import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { makeConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import { saveSafetensors } from "../artifacts/safetensors.ts";
import { Ema } from "./ema.ts";
import { loadModel, saveModel } from "./model_io.ts";
import { readCheckpoint } from "./checkpoint.ts";

const CONFIG = makeConfig({
  inputShape: [1, 8, 8],
  nBlocks: [1, 1],
  hiddenChannels: 6,
  fcEnd: false,
  activation: "elu",
  coeff: 0.9,
});

async function host(t: Tensor): Promise<number[]> {
  const v = Array.from(await t.read());
  t.dispose();
  return v;
}

/** z, log p(x) (eval estimator, fixed draws), the exact log-det, x from z, and 3 samples. */
async function outputs(model: ResidualFlow, x: Tensor): Promise<number[][]> {
  const out = noGrad(() => model.forward(x, { training: false, rng: new Rng(5) }));
  const z = await host(out.z);
  const logpx = await host(out.logpx!);
  [out.logdet!, out.logpz, ...out.features].forEach((t) => t.dispose());
  const exact = await model.forwardExact(x);
  const exactLogdet = await host(exact.logdet!);
  [exact.z, exact.logpz, exact.logpx!, ...exact.features].forEach((t) => t.dispose());
  const zt = noGrad(() => model.forward(x, { training: false, rng: new Rng(5), skipLogdet: true }));
  const back = await host(await model.inverse(zt.z, { training: false, rng: new Rng(6) }));
  [zt.z, zt.logpz, ...zt.features].forEach((t) => t.dispose());
  const samples = await host(await model.sample(3, { training: false, rng: new Rng(7) }));
  return [z, logpx, exactLogdet, back, samples];
}

Deno.test("saveModel / loadModel", async (t) => {
  const dir = await Deno.makeTempDir();
  const device = await createDevice("cpu64");
  const model = new ResidualFlow(CONFIG, { rng: new Rng(3), device });
  const x = rand([2, 1, 8, 8], new Rng(4), device);
  // One training-mode pass initialises ActNorm from data; the power iteration then moves u, v.
  const init = noGrad(() => model.forward(x, { training: true, rng: new Rng(1) }));
  [init.z, init.logpz, init.logdet!, init.logpx!, ...init.features].forEach((v) => v.dispose());
  await model.updateLipschitz();
  try {
    await t.step("a round trip gives identical outputs, and the configuration is stored", async () => {
      const path = `${dir}/m.safetensors`;
      await saveModel(model, path, { seed: 3, extra: { note: "test" } });
      const loaded = await loadModel(path, { device });
      assertEquals(loaded.config, model.config);
      const ck = await readCheckpoint(path);
      assertEquals([ck.meta.seed, ck.meta.emaInitialized, ck.meta.extra], [3, false, { note: "test" }]);
      const [a, b] = [await outputs(model, x), await outputs(loaded, x)];
      assertEquals(b, a);
      assertTrue(a.every((v) => v.every(Number.isFinite)), "finite outputs");
    });

    await t.step("on another device (float32) the loaded model gives close outputs", async () => {
      const dev32 = await createDevice("cpu");
      const loaded = await loadModel(`${dir}/m.safetensors`, { device: dev32 });
      const x32 = Array.from(await x.read());
      const out = noGrad(() =>
        loaded.forward(tensor(x32, [2, 1, 8, 8], dev32), { training: false, rng: new Rng(5) })
      );
      const z32 = await host(out.z);
      const z64 = (await outputs(model, x))[0];
      assertTrue(z32.every((v, i) => Math.abs(v - z64[i]) < 1e-4), "float32 z within 1e-4 of float64");
    });

    await t.step('weights: "ema" loads the moving average (and refuses a file without one)', async () => {
      const ema = new Ema(model.parameters(), 0.5);
      ema.update(); // first update copies the weights
      const p0 = model.parameters()[0];
      const before = Array.from(await p0.value.read());
      p0.set(noGrad(() => mul(p0.value, 3)));
      ema.update(); // shadow = 0.5·w + 0.5·3w = 2w for the first parameter
      const path = `${dir}/ema.safetensors`;
      await saveModel(model, path, { ema });
      const averaged = await loadModel(path, { device, weights: "ema" });
      const got = Array.from(await averaged.parameters()[0].value.read());
      assertEquals(got, before.map((v) => 2 * v));
      const trained = await loadModel(path, { device });
      assertEquals(Array.from(await trained.parameters()[0].value.read()), before.map((v) => 3 * v));
      await assertRejects(
        () => loadModel(`${dir}/m.safetensors`, { device, weights: "ema" }),
        /Cannot load model .*m\.safetensors with EMA weights: the file holds no EMA/,
      );
      ema.dispose();
    });

    await t.step("errors name the file", async () => {
      await assertRejects(() => loadModel(`${dir}/none.safetensors`, { device }), /none\.safetensors/);
      const other = `${dir}/other.safetensors`;
      await saveSafetensors(
        other,
        new Map([["w", { dtype: "F32", shape: [1], data: new Float32Array([1]) }]]),
      );
      await assertRejects(
        () => loadModel(other, { device }),
        /Cannot load checkpoint .*other\.safetensors: metadata "format"/,
      );
      await assertRejects(
        () => loadModel(`${dir}/m.safetensors`, { device, weights: "best" as "ema" }),
        /Cannot load model .*: weights is "best", expected "train" or "ema"/,
      );
    });
  } finally {
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
