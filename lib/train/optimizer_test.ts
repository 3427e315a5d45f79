/**
 * Adam (with warm-up, clipping and decoupled decay) and the EMA against plain host re-implementations.
 */
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Parameter } from "../flow/module.ts";
import { Ema } from "./ema.ts";
import { Adam, clipGradNorm } from "./optimizer.ts";

/** float64 device: the update rule must match the host formula almost exactly. */
const EXACT: Tolerance = { atol: 1e-12, rtol: 1e-10 };

Deno.test("Adam follows the official update with warm-up, clipping and decoupled weight decay", async () => {
  const d = await createDevice("cpu64");
  const w0 = [0.5, -1.5, 2];
  const p = new Parameter("w", tensor(w0, [3], d));
  const opt = new Adam([p], { lr: 0.1, warmupIters: 4, weightDecay: 0.01 });
  const grads = [[3, -4, 12], [0.1, 0.2, -0.3], [1, 1, 1]];
  // Host reference.
  const w = [...w0];
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  for (let t = 1; t <= grads.length; t++) {
    const norm = Math.hypot(...grads[t - 1]);
    const scale = Math.min(1, 1 / (norm + 1e-6));
    const g = grads[t - 1].map((x) => x * scale);
    const lr = 0.1 * Math.min(1, t / 4);
    for (let i = 0; i < 3; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.99 * v[i] + 0.01 * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.99 ** t) + 1e-8;
      w[i] = w[i] * (1 - lr * 0.01) - (lr / (1 - 0.9 ** t)) * (m[i] / denom);
    }
    const gt = tensor(grads[t - 1], [3], d);
    const clipped = clipGradNorm([gt], 1);
    assertClose(await clipped.norm.item(), norm, EXACT, "norm before clipping");
    opt.step(clipped.grads);
    assertClose(await p.value.read(), w, EXACT, `weights after step ${t}`);
    [gt, clipped.norm, ...clipped.grads].forEach((x) => x.dispose());
  }
  assertEquals(opt.stepCount, 3);
});

Deno.test("EMA: created on the first update, decays, swaps in for evaluation and back", async () => {
  const d = await createDevice("cpu64");
  const p = new Parameter("w", tensor([1, 2], [2], d));
  const ema = new Ema([p], 0.9);
  assertTrue(!ema.initialized);
  ema.update(); // shadow = [1, 2]
  p.set(tensor([3, 4], [2], d));
  ema.update(); // shadow = 0.9·[1,2] + 0.1·[3,4] = [1.2, 2.2]
  const seen = await ema.withShadow(async () => Array.from(await p.value.read()));
  assertClose(seen, [1.2, 2.2], EXACT, "shadow during evaluation");
  assertClose(await p.value.read(), [3, 4], EXACT, "training weights restored");
  assertTrue(p.value.requiresGrad);
});
