/**
 * Tests of the batched power iteration: stacked updates of layers with the same operator give the
 * iteration counts, convergence and vectors of separate updates (float64, up to rounding), and use fewer
 * dispatches on WebGPU.
 * @module
 */
import { assertClose, assertEquals, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { Rng } from "../engine/random.ts";
import type { Device } from "../engine/tensor.ts";
import type { WebGpuBackend } from "../engine/webgpu/webgpu_backend.ts";
import { powerBatchOptions } from "./power_batch.ts";
import { rowOpsOptions } from "../engine/ops/rows.ts";
import {
  type InducedNormLayer,
  SpectralNormConv2d,
  SpectralNormLinear,
  updateLipschitzAll,
} from "./spectral_norm.ts";

const dev64 = await createDevice("cpu64");
/** Float64: the stacked products sum in another order than the single ones; differences are rounding. */
const TOL = { atol: 1e-10, rtol: 1e-8 };
/** Float32: the fused kernels sum squares in another order and take sqrt for pow(·, 0.5). */
const TOL32 = { atol: 1e-6, rtol: 1e-5 };

/** Three 3×3 convolutions 2→4 at 6×6, two 1×1 convolutions 4→4, two linear 5→7, one odd conv (3×3 3→2). */
function layers(device: Device): InducedNormLayer[] {
  const out: InducedNormLayer[] = [];
  const conv = (seed: number, c: number, o: number, k: number) => {
    const l = new SpectralNormConv2d({
      inChannels: c,
      outChannels: o,
      kernelSize: k,
      padding: k >> 1,
      rng: new Rng(seed),
      device,
      initIterations: 1,
    });
    l.initialize([6, 6]);
    out.push(l);
  };
  for (const seed of [1, 2, 3]) conv(seed, 2, 4, 3);
  for (const seed of [4, 5]) conv(seed, 4, 4, 1);
  for (const seed of [6, 7]) {
    out.push(
      new SpectralNormLinear({
        inFeatures: 5,
        outFeatures: 7,
        rng: new Rng(seed),
        device,
        initIterations: 1,
      }),
    );
  }
  conv(8, 3, 2, 3);
  return out;
}

async function update(device: Device, batched: boolean) {
  const ls = layers(device);
  powerBatchOptions.enabled = batched;
  try {
    const r = await updateLipschitzAll(ls);
    return { ls, r };
  } finally {
    powerBatchOptions.enabled = true;
  }
}

Deno.test("batched power iteration", async (t) => {
  await t.step("equals separate updates: iterations, convergence, u and v", async () => {
    const a = await update(dev64, true);
    const b = await update(dev64, false);
    assertEquals(a.r.map((r) => [r.iterations, r.converged]), b.r.map((r) => [r.iterations, r.converged]));
    // Members of one group stop at different iterations, so the per-member stop is exercised.
    assertTrue(new Set(a.r.slice(0, 3).map((r) => r.iterations)).size > 1, `${a.r.map((r) => r.iterations)}`);
    for (let i = 0; i < a.ls.length; i++) {
      assertClose(await a.ls[i].u.value!.read(), await b.ls[i].u.value!.read(), TOL, `layer ${i} u`);
      assertClose(await a.ls[i].v.value!.read(), await b.ls[i].v.value!.read(), TOL, `layer ${i} v`);
    }
  });

  let gpu: Device | null = null;
  try {
    gpu = await createDevice("webgpu");
  } catch {
    console.log("Skipping the dispatch-count step: no WebGPU adapter");
  }
  await t.step({
    name: "takes fewer dispatches on WebGPU",
    ignore: gpu === null,
    fn: async () => {
      const be = gpu!.backend as WebGpuBackend;
      const count = async (batched: boolean) => {
        const ls = layers(gpu!);
        await be.sync();
        const d0 = be.stats().dispatches;
        powerBatchOptions.enabled = batched;
        try {
          await updateLipschitzAll(ls, {});
        } finally {
          powerBatchOptions.enabled = true;
        }
        return be.stats().dispatches - d0;
      };
      const separate = await count(false);
      const stacked = await count(true);
      assertTrue(stacked < 0.7 * separate, `dispatches: stacked ${stacked}, separate ${separate}`);
    },
  });
  await t.step({
    name: "on WebGPU the fused row kernels give the composed ops' iterations and vectors",
    ignore: gpu === null,
    fn: async () => {
      const run = async (fused: boolean) => {
        rowOpsOptions.fused = fused;
        try {
          return await update(gpu!, true);
        } finally {
          rowOpsOptions.fused = true;
        }
      };
      const a = await run(true);
      const b = await run(false);
      assertEquals(a.r.map((r) => [r.iterations, r.converged]), b.r.map((r) => [r.iterations, r.converged]));
      for (let i = 0; i < a.ls.length; i++) {
        assertClose(await a.ls[i].u.value!.read(), await b.ls[i].u.value!.read(), TOL32, `layer ${i} u`);
        assertClose(await a.ls[i].v.value!.read(), await b.ls[i].v.value!.read(), TOL32, `layer ${i} v`);
      }
    },
  });
});
