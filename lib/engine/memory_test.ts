/**
 * Ownership and memory accounting: a training step leaks nothing, the meta backend reports the same
 * live and peak bytes as a real device, and backward frees saved tensors as it goes.
 */
import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { grad } from "./autograd.ts";
import { createDevice } from "./devices.ts";
import { requireGrad, tensor, zeros } from "./ops/creation.ts";
import { add, div, mul, softplus, sqrt, sub, tanh } from "./ops/elementwise.ts";
import { conv2d } from "./ops/conv.ts";
import { mean, sum } from "./ops/reduce.ts";
import { Rng } from "./random.ts";
import { type Device, type Tensor, tidy } from "./tensor.ts";

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch {
  gpu = null;
}

interface Model {
  w1: Tensor;
  w2: Tensor;
  m: Tensor[];
  v: Tensor[];
}

function makeModel(d: Device): Model {
  const r = new Rng(3);
  const w = (shape: number[]) =>
    requireGrad(
      tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, () => 0.2 * r.normal()), shape, d),
    ).keep();
  const w1 = w([4, 2, 3, 3]);
  const w2 = w([2, 4, 3, 3]);
  return {
    w1,
    w2,
    m: [zeros(w1.shape, d).keep(), zeros(w2.shape, d).keep()],
    v: [zeros(w1.shape, d).keep(), zeros(w2.shape, d).keep()],
  };
}

/** A residual-flow-like step: a loss with a vector-Jacobian term differentiated again, then an Adam-like update. */
function step(model: Model, x: Tensor, probe: Tensor): Tensor {
  const params = [model.w1, model.w2];
  return tidy(() => {
    const xg = requireGrad(x.detach());
    const g = conv2d(tanh(conv2d(xg, model.w1, null, { pad: 1 })), model.w2, null, { pad: 1 });
    const [vjp] = grad(g, [xg], { gradOutputs: [probe], createGraph: true });
    const loss = add(mean(softplus(g)), mean(mul(vjp, probe)));
    const gs = grad(loss, params);
    params.forEach((p, i) => {
      const m = add(mul(model.m[i], 0.9), mul(gs[i], 0.1));
      const v = add(mul(model.v[i], 0.99), mul(mul(gs[i], gs[i]), 0.01));
      const upd = sub(p.detach(), mul(div(m, add(sqrt(v), 1e-8)), 1e-3));
      replace(model.m, i, m);
      replace(model.v, i, v);
      replaceParam(p === model.w1 ? "w1" : "w2", model, upd);
    });
    return loss.detach();
  });
}

function replace(list: Tensor[], i: number, t: Tensor) {
  list[i].dispose();
  list[i] = t.keep();
}

function replaceParam(name: "w1" | "w2", model: Model, t: Tensor) {
  model[name].dispose();
  model[name] = requireGrad(t).keep();
}

Deno.test("ownership", async (t) => {
  const devices: Device[] = [await createDevice("cpu"), await createDevice("meta")];
  if (gpu) devices.push(gpu);
  for (const d of devices) {
    await t.step(`${d.name}: a training step with a double backward leaks nothing`, async () => {
      const model = makeModel(d);
      const r = new Rng(1);
      const x = tensor(Array.from({ length: 2 * 2 * 5 * 5 }, () => r.normal()), [2, 2, 5, 5], d);
      const probe = tensor(Array.from({ length: 2 * 2 * 5 * 5 }, () => r.normal()), [2, 2, 5, 5], d);
      step(model, x, probe).dispose(); // warm-up: scalar constants get cached
      const before = d.memoryStats();
      const loss = step(model, x, probe);
      const after = d.memoryStats();
      // Live after = live before + the returned loss (one scalar); parameters and state were replaced in place.
      assertEquals(
        after.storagesLive,
        before.storagesLive + 1,
        `storages before ${before.storagesLive}, after ${after.storagesLive}`,
      );
      assertEquals(after.bytesLive, before.bytesLive + d.bytesPerElement);
      if (d.name !== "meta") assertTrue(Number.isFinite(await loss.item()));
      loss.dispose();
      assertEquals(d.memoryStats().bytesLive, before.bytesLive);
    });
  }
});

Deno.test("meta and real devices report identical live and peak bytes for the same computation", async () => {
  const results: [string, number, number][] = [];
  const devices: Device[] = [await createDevice("cpu"), await createDevice("meta")];
  if (gpu) devices.push(gpu);
  for (const d of devices) {
    const model = makeModel(d);
    const r = new Rng(1);
    const x = tensor(Array.from({ length: 2 * 2 * 5 * 5 }, () => r.normal()), [2, 2, 5, 5], d);
    const probe = tensor(Array.from({ length: 2 * 2 * 5 * 5 }, () => r.normal()), [2, 2, 5, 5], d);
    step(model, x, probe).dispose();
    d.resetPeak();
    const base = d.memoryStats().bytesLive;
    step(model, x, probe).dispose();
    results.push([d.name, d.memoryStats().peakBytes - base, d.memoryStats().bytesLive - base]);
  }
  for (const [name, peak, live] of results.slice(1)) {
    assertEquals([peak, live], [results[0][1], results[0][2]], `${name} vs ${results[0][0]}`);
  }
  assertTrue(results[0][1] > 0);
});

Deno.test("backward frees saved tensors as it goes, and a second backward through a freed graph is refused", async () => {
  const d = await createDevice("cpu");
  // Warm the cached scalar constants the backward rules use, then count from a clean state.
  const x0 = requireGrad(tensor([0.5], [1], d));
  grad(sum(tanh(x0)), [x0])[0].dispose();
  x0.dispose();
  const startStorages = d.memoryStats().storagesLive;
  const x = requireGrad(tensor(new Float32Array(1000).fill(0.5), [1000], d));
  // A chain of 20 ops: each saves its input (4 kB).
  let y: Tensor = x;
  const chain: Tensor[] = [];
  for (let i = 0; i < 20; i++) {
    y = tanh(y);
    chain.push(y);
  }
  const loss = sum(y);
  chain.forEach((c) => c.dispose()); // only the graph holds them now
  const held = d.memoryStats().bytesLive;
  d.resetPeak();
  const [g] = grad(loss, [x]);
  const afterBytes = d.memoryStats().bytesLive;
  // Saved inputs of the 20 tanh nodes (19 intermediate 4 kB tensors) are gone after backward.
  assertTrue(held - afterBytes >= 18 * 4000 - 4000, `held ${held}, after ${afterBytes}`);
  // While running, the peak stays far below keeping every intermediate gradient alive.
  assertTrue(d.memoryStats().peakBytes - held < 8 * 4000, `peak grew by ${d.memoryStats().peakBytes - held}`);
  assertThrows(() => grad(loss, [x]), /a second time/);
  g.dispose();
  loss.dispose();
  x.dispose();
  assertEquals(d.memoryStats().storagesLive, startStorages);
});
