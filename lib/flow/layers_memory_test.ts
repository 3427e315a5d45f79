/**
 * The layers free everything they create: a training-like step (forward, log-dets, gradients of every
 * parameter, inverses, the Lipschitz update) leaves the live bytes where they were, on the CPU and on
 * the meta backend (shapes only), and the meta backend accounts the same bytes as the CPU one.
 */
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { grad } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { full } from "../engine/ops/creation.ts";
import { add } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { ActNorm2d } from "./actnorm.ts";
import { LipSwish } from "./activations.ts";
import { ClassifierHead } from "./classifier.ts";
import { ChannelCouplingBlock, MaskedCouplingBlock } from "./coupling.ts";
import { InvertibleConv2d } from "./invconv.ts";
import { LogitTransform } from "./logit.ts";
import type { FlowLayer } from "./module.ts";
import { Normalize } from "./normalize.ts";
import { SpectralNormConv2d, SpectralNormLinear, updateLipschitzAll } from "./spectral_norm.ts";
import { Squeeze } from "./squeeze.ts";
import { syncInverse } from "./layer_test_util.ts";

async function liveBytesAfterSteps(device: Device): Promise<number[]> {
  const ctx = { training: true, rng: new Rng(1) };
  const rng = new Rng(1);
  const sn = new SpectralNormConv2d({
    inChannels: 2,
    outChannels: 4,
    kernelSize: 3,
    padding: 1,
    rng,
    device,
  });
  const lin = new SpectralNormLinear({ inFeatures: 4, outFeatures: 3, rng, device });
  const act = new LipSwish({ device });
  const flows: FlowLayer[] = [
    new ActNorm2d({ channels: 2, device }),
    new MaskedCouplingBlock({ channels: 2, hidden: 4, mask: "checkerboard0", rng, device }),
    new InvertibleConv2d({ channels: 2, rng, device }),
    new LogitTransform({ alpha: 0.05 }),
    new Normalize({ mean: [0, 0], std: [1, 2], device }),
    new Squeeze(),
    new ChannelCouplingBlock({ channels: 8, hidden: 4, mask: "channel1", rng, device }),
  ];
  const head = new ClassifierHead({ scaleChannels: [2], hidden: 4, rng, device });
  const x = full([2, 2, 4, 4], 0.3, device);
  const v = full([2, 4], 0.1, device);
  const modules = [sn, lin, act, head, ...flows];
  const live: number[] = [];
  for (let step = 0; step < 3; step++) {
    tidy(() => {
      let total: Tensor = add(sum(act.apply(sn.apply(x))), sum(lin.apply(v)));
      total = add(total, sum(head.apply([x])));
      let z = x;
      for (const l of flows) {
        const o = l.forward(z, ctx);
        z = o.y;
        if (o.logdet) total = add(total, sum(o.logdet));
      }
      total = add(total, sum(z));
      grad(total, modules.flatMap((m) => m.parameters().map((p) => p.value)));
      for (const l of [...flows].reverse()) z = syncInverse(l, z, ctx);
    });
    await updateLipschitzAll([sn, lin]);
    live.push(device.memoryStats().bytesLive);
  }
  return live;
}

Deno.test("layers leak nothing across steps; meta accounts the same bytes as the CPU", async () => {
  const cpu = await liveBytesAfterSteps(await createDevice("cpu"));
  const meta = await liveBytesAfterSteps(await createDevice("meta"));
  assertEquals(cpu[1], cpu[0], `live bytes after step 1 and 2: ${cpu}`);
  assertEquals(cpu[2], cpu[0], `live bytes after step 1 and 3: ${cpu}`);
  assertEquals(meta, cpu);
  assertTrue(cpu[0] > 0, "parameters and buffers are live");
});
