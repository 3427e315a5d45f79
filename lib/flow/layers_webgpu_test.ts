/**
 * The flow layers on the WebGPU device (float32) against the fixtures and the float64 CPU reference:
 * LipSwish, the spectral-norm power iteration and forward, the adaptive update's contraction, ActNorm,
 * squeeze, logit, Normalize, the invertible 1×1 conv, coupling blocks, the classifier head and the
 * mixed-norm normalisers. Skipped (with a message) where no WebGPU adapter exists.
 */
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { grad } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, tidy } from "../engine/tensor.ts";
import { ActNorm2d } from "./actnorm.ts";
import { LipSwish } from "./activations.ts";
import { ClassifierHead } from "./classifier.ts";
import { ChannelCouplingBlock, MaskedCouplingBlock } from "./coupling.ts";
import { inverse, slogdet } from "./dense_test_util.ts";
import { inverseMatrix, InvertibleConv2d, logAbsDet } from "./invconv.ts";
import {
  fixtureTensor,
  flat,
  forwardHost,
  loadFixture,
  maxAbsDiff,
  normals,
  shapeOf,
  testContext,
} from "./layer_test_util.ts";
import { LogitTransform } from "./logit.ts";
import { normalizeU, normalizeV } from "./mixed_norm.ts";
import { Normalize } from "./normalize.ts";
import { operatorNorm } from "./norm_test_util.ts";
import { SpectralNormConv2d } from "./spectral_norm.ts";
import { Squeeze } from "./squeeze.ts";
import type { FlowLayer } from "./module.ts";

/** Float32 on the GPU vs float64 references (README: ~1e-5 relative on single layers). */
const GPU: Tolerance = { atol: 2e-5, rtol: 2e-5 };
/** Log-dets (sums of many float32 terms). */
const GPU_LOGDET: Tolerance = { atol: 2e-4, rtol: 1e-4 };
/** Power-iteration traces in float32. */
const GPU_TRACE: Tolerance = { atol: 0, rtol: 5e-5 };
/** Round trips in float32. */
const ROUND_TRIP = 1e-4;
/** ‖W_eff‖ excess after the official stop rule (see spectral_norm_test.ts). */
const CONTRACTION_SLACK_REL = 5e-3;

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU layer tests skipped: ${(e as Error).message.split("\n")[0]}`);
}
const dev64 = await createDevice("cpu64");
const ctx = testContext(false);
const ignore = gpu === null;

Deno.test({ name: "WebGPU: LipSwish values and derivatives match lipswish.json", ignore }, async () => {
  const fx = await loadFixture("lipswish.json");
  const c = (fx.lipswish as { beta_raw: number; y: unknown; dy_dz: unknown }[])[0];
  const act = new LipSwish({ device: gpu!, betaRaw: c.beta_raw });
  const x = requireGrad(tensor(flat(fx.z), [49], gpu!));
  const [y, dy] = tidy(() => {
    const y = act.apply(x);
    return [y, grad(sum(y), [x])[0]];
  });
  assertClose(await y.read(), flat(c.y), GPU, "y");
  assertClose(await dy.read(), flat(c.dy_dz), GPU, "dy/dz");
});

Deno.test(
  { name: "WebGPU: spectral norm trace, normalised weight, forward and contraction", ignore },
  async () => {
    const fx = await loadFixture("spectral_conv.json");
    type C = {
      in_channels: number;
      out_channels: number;
      kernel_size: number[];
      padding: number;
      input_hw: number[];
      coeff: number;
      weight: unknown;
      bias: unknown;
      power_iteration_start_v0: unknown;
      power_iteration_trace: { iterations: number; sigma: number }[];
      normalized_weight: unknown;
      conv_input: unknown;
      conv_output: unknown;
      sigma_exact_svd: number;
    };
    for (const c of fx.convs as C[]) {
      const make = () => {
        const l = new SpectralNormConv2d({
          inChannels: c.in_channels,
          outChannels: c.out_channels,
          kernelSize: c.kernel_size[0],
          padding: c.padding,
          rng: new Rng(3),
          device: gpu!,
        });
        l.weight.set(fixtureTensor(c.weight, gpu!));
        l.bias!.set(fixtureTensor(c.bias, gpu!));
        return l;
      };
      const layer = make();
      const v0 = flat(c.power_iteration_start_v0);
      if (!layer.isPointwise) layer.initialize([c.input_hw[0], c.input_hw[1]], { iterations: 0 });
      const uSize = layer.isPointwise ? c.out_channels : c.out_channels * c.input_hw[0] * c.input_hw[1];
      layer.v.set(tensor(v0, [v0.length], gpu!));
      layer.u.set(tensor(new Float64Array(uSize).fill(1 / Math.sqrt(uSize)), [uSize], gpu!));
      await layer.updateLipschitz({ nIterations: 10 });
      const s = noGrad(() => layer.sigma());
      assertClose(
        await s.item(),
        c.power_iteration_trace.find((e) => e.iterations === 10)!.sigma,
        GPU_TRACE,
        "σ(10)",
      );
      if (layer.isPointwise) {
        await layer.updateLipschitz({ nIterations: 200 });
        const w = tidy(() => layer.effectiveWeight());
        assertClose(await w.read(), flat(c.normalized_weight), GPU, "normalized_weight");
        const y = tidy(() => layer.apply(fixtureTensor(c.conv_input, gpu!)));
        assertClose(await y.read(), flat(c.conv_output), GPU, "conv_output");
      }
      const fresh = make();
      tidy(() => fresh.apply(fixtureTensor(c.conv_input, gpu!)));
      const r = await fresh.updateLipschitz();
      assertTrue(r.converged, `adaptive update converged (${r.iterations})`);
      const w = tidy(() => fresh.effectiveWeight());
      const w64 = tensor(await w.read(), [...w.shape], dev64);
      const inputHW = [c.input_hw[0], c.input_hw[1]] as [number, number];
      const norm = await operatorNorm(w64, { inputHW, padding: c.padding, iterations: 2000 });
      const bound = Math.min(c.coeff, c.sigma_exact_svd);
      assertTrue(norm <= bound * (1 + CONTRACTION_SLACK_REL), `‖W_eff‖ ${norm} vs ${bound}`);
    }
  },
);

/** Runs a layer on the GPU and on the float64 CPU (built by the same seeded factory) and compares. */
async function compareLayer(name: string, make: (d: Device) => FlowLayer, shape: number[], seed: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = normals(n, new Rng(seed));
  const l64 = make(dev64);
  const l32 = make(gpu!);
  const a = await forwardHost(l64, tensor(data, shape, dev64), ctx);
  const b = await forwardHost(l32, tensor(data, shape, gpu!), ctx);
  assertClose(b.y, a.y, GPU, `${name} y`);
  assertClose(b.logdet, a.logdet, GPU_LOGDET, `${name} log-det`);
  const back = await l32.inverse(tensor(b.y, b.shape, gpu!), ctx);
  const err = maxAbsDiff(await back.read(), data);
  assertTrue(err <= ROUND_TRIP, `${name} round trip ${err}`);
}

Deno.test({ name: "WebGPU: flow layers equal the float64 reference and invert", ignore }, async () => {
  await compareLayer("ActNorm2d", (d) => new ActNorm2d({ channels: 3, device: d }), [4, 3, 4, 4], 1);
  await compareLayer("Squeeze", () => new Squeeze(), [2, 2, 4, 4], 2);
  await compareLayer(
    "Normalize",
    (d) => new Normalize({ mean: [0.1, -0.2], std: [0.5, 2], device: d }),
    [2, 2, 3, 3],
    3,
  );
  await compareLayer(
    "InvertibleConv2d",
    (d) => {
      const l = new InvertibleConv2d({ channels: 4, rng: new Rng(1), device: d });
      l.weight.set(tensor(normals(16, new Rng(9), 0.3).map((v, i) => v + (i % 5 === 0 ? 1 : 0)), [4, 4], d));
      return l;
    },
    [2, 4, 3, 3],
    4,
  );
  await compareLayer(
    "MaskedCouplingBlock",
    (d) =>
      new MaskedCouplingBlock({ channels: 2, hidden: 8, mask: "checkerboard1", rng: new Rng(2), device: d }),
    [2, 2, 4, 4],
    5,
  );
  await compareLayer(
    "ChannelCouplingBlock",
    (d) => new ChannelCouplingBlock({ channels: 4, hidden: 8, mask: "channel0", rng: new Rng(2), device: d }),
    [2, 4, 2, 2],
    6,
  );
  const logitFx = (await loadFixture("actnorm_squeeze_logit.json")).logit as {
    x: unknown;
    cases: { alpha: number; y: unknown; logdet: unknown }[];
  };
  const c = logitFx.cases[0];
  const out = await forwardHost(new LogitTransform({ alpha: c.alpha }), fixtureTensor(logitFx.x, gpu!), ctx);
  assertClose(out.y, flat(c.y), GPU, "logit y (alpha 0.05)");
  assertClose(out.logdet, flat(c.logdet), GPU_LOGDET, "logit log-det");
  const an = (await loadFixture("actnorm_squeeze_logit.json")).actnorm as Record<string, unknown>;
  const layer = new ActNorm2d({ channels: shapeOf(an.init_batch)[1], device: gpu! });
  const first = await forwardHost(layer, fixtureTensor(an.init_batch, gpu!), ctx);
  assertClose(first.y, flat(an.init_batch_output), GPU, "ActNorm init_batch_output");
  assertClose(await layer.weight.value.read(), flat(an.log_scale), GPU, "ActNorm log_scale");
});

Deno.test(
  { name: "WebGPU: in-graph log|det|, inverse, classifier head, mixed-norm normalisers", ignore },
  async () => {
    const w = normals(25, new Rng(3), 0.3).map((v, i) => v + (i % 6 === 0 ? 1 : 0));
    const wt = tensor(w, [5, 5], gpu!);
    assertClose(await noGrad(() => logAbsDet(wt)).item(), slogdet(w, 5).logAbsDet, GPU, "log|det W|");
    assertClose(
      await noGrad(() => inverseMatrix(wt)).read(),
      inverse(w, 5),
      { atol: 1e-4, rtol: 1e-4 },
      "W⁻¹",
    );
    const feats = (d: Device) => [tensor(normals(2 * 3 * 4 * 4, new Rng(1)), [2, 3, 4, 4], d)];
    const h64 = new ClassifierHead({
      scaleChannels: [3],
      hidden: 6,
      classes: 4,
      rng: new Rng(5),
      device: dev64,
    });
    const h32 = new ClassifierHead({
      scaleChannels: [3],
      hidden: 6,
      classes: 4,
      rng: new Rng(5),
      device: gpu!,
    });
    const a = await noGrad(() => h64.apply(feats(dev64))).read();
    const b = await noGrad(() => h32.apply(feats(gpu!))).read();
    assertClose(b, a, { atol: 1e-4, rtol: 1e-4 }, "classifier logits");
    const v = normals(9, new Rng(2));
    for (const p of [1.5, 2, 3.5]) {
      const x64 = await noGrad(() => normalizeV(tensor(v, [9], dev64), p)).read();
      const x32 = await noGrad(() => normalizeV(tensor(v, [9], gpu!), p)).read();
      assertClose(x32, x64, GPU, `normalize_v p = ${p}`);
      const u64 = await noGrad(() => normalizeU(tensor(v, [9], dev64), p)).read();
      const u32 = await noGrad(() => normalizeU(tensor(v, [9], gpu!), p)).read();
      assertClose(u32, u64, GPU, `normalize_u q = ${p}`);
    }
    assertEquals(Array.from(await noGrad(() => normalizeU(tensor([0, -2, 0], [3], gpu!), 1)).read()), [
      1,
      -1,
      1,
    ]);
  },
);
