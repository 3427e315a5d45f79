/**
 * A short example: train a tiny Residual Flow (2 scales of 2 residual blocks, hidden width 32,
 * LipSwish, the paper's unbiased estimator with Neumann gradients and backward-in-forward) on a few
 * real MNIST batches with Adam, running the power iteration after every step, then report the test
 * bits/dim with the evaluation estimator (20 exact terms plus Russian roulette) on a couple of test
 * batches, with its standard error over the test images.
 *
 * Usage: deno run -A experiments/examples/example_tiny_mnist.ts [--device webgpu|wasm|cpu|auto] [--steps 30] [--batch 32]
 * @module
 */
import { grad } from "../../lib/engine/autograd.ts";
import { createDevice, type DeviceKind } from "../../lib/engine/devices.ts";
import { tensor } from "../../lib/engine/ops/creation.ts";
import { mean } from "../../lib/engine/ops/reduce.ts";
import { Rng } from "../../lib/engine/random.ts";
import { type Device, noGrad, tidy } from "../../lib/engine/tensor.ts";
import { Batcher, loadDataset } from "../../lib/data/mod.ts";
import { makeConfig } from "../../lib/flow/config.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { Adam, clipGradNorm } from "../../lib/train/mod.ts";
import { parseOptions } from "../../lib/cli/args.ts";

const OPTIONS = {
  device: {
    type: "string",
    default: "webgpu",
    help: "webgpu (falls back to cpu without an adapter), wasm, cpu or auto",
  },
  steps: { type: "string", default: "30", help: "training steps" },
  batch: { type: "string", default: "32", help: "training batch size" },
  "test-batches": { type: "string", default: "2", help: "test batches" },
  "test-batch": { type: "string", default: "50", help: "test batch size" },
  seed: { type: "string", default: "0", help: "seed of weights, batches and estimator draws" },
} as const;

const args = parseOptions(
  "deno run -A experiments/examples/example_tiny_mnist.ts",
  "Trains a tiny Residual Flow on a few MNIST batches and prints its test bits/dim.",
  OPTIONS,
  Deno.args,
);
if (args === null) Deno.exit(0);
const positive = (name: string) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < 1) {
    throw new Error(`Cannot run the example: --${name} ${args[name]}, expected a positive integer`);
  }
  return v;
};
const steps = positive("steps");
const batchSize = positive("batch");
const testBatches = positive("test-batches");
const testBatchSize = positive("test-batch");
const seed = Number(args.seed);
const kind = String(args.device);
if (!["cpu", "webgpu", "wasm", "auto"].includes(kind)) {
  throw new Error(`Cannot run the example on device "${kind}": expected cpu, webgpu, wasm or auto`);
}
let device: Device;
try {
  device = await createDevice(kind as DeviceKind);
} catch (e) {
  if (kind !== "webgpu") throw e;
  console.log(`No WebGPU adapter (${(e as Error).message.split("\n")[0]}): using the CPU backend`);
  device = await createDevice("cpu");
}

const t0 = performance.now();
const train = await loadDataset("mnist", { split: "train", limit: steps * batchSize });
const test = await loadDataset("mnist", { split: "test", limit: testBatches * testBatchSize });
const batcher = new Batcher(train, { batchSize, seed });
const testBatcher = new Batcher(test, { batchSize: testBatchSize, seed: seed + 1, shuffle: false });

// MNIST at 28×28: scales 1×28×28 → 4×14×14; the paper's alpha (1e-5), ActNorm after every block.
const config = makeConfig({
  inputShape: [1, 28, 28],
  nBlocks: [2, 2],
  hiddenChannels: 32,
  activation: "lipswish",
  fcEnd: false,
  logitAlpha: 1e-5,
});
const model = new ResidualFlow(config, { rng: new Rng(seed), device });
// First use of the spectral norms: iterate every σ to tolerance before the first step (Lip(g) <= coeff).
await model.convergeLipschitz();
const params = model.parameters();
const opt = new Adam(params, { lr: 1e-3 });
const nParams = params.reduce((n, p) => n + p.value.size, 0);
console.log(
  `Residual Flow: ${
    config.nBlocks.join("-")
  } blocks, hidden ${config.hiddenChannels}, ${nParams} parameters, ` +
    `${device.name} (${device.backend.dtype}); ${steps} steps of batch ${batchSize}`,
);

for (let step = 0; step < steps; step++) {
  const b = batcher.batch(0, step);
  const x = tensor(b.x, [b.size, ...config.inputShape], device);
  const ctx = { training: true, rng: new Rng(seed * 1_000_003 + 1 + step) };
  const [loss, grads] = tidy(() => {
    const out = model.forward(x, ctx);
    const l = mean(model.bitsPerDim(out.logpx!));
    return [l.detach(), grad(l, params.map((p) => p.value))] as const;
  });
  const clipped = clipGradNorm(grads, 1);
  opt.step(clipped.grads);
  grads.forEach((g) => g.dispose());
  clipped.grads.forEach((g) => g.dispose());
  // The first step also initialises ActNorm from the data; the power iteration follows every step.
  await model.updateLipschitz();
  const bpd = await loss.item();
  loss.dispose();
  clipped.norm.dispose();
  x.dispose();
  if (step === 0 || (step + 1) % 5 === 0 || step === steps - 1) {
    const t = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`step ${String(step + 1).padStart(3)}  train bits/dim ${bpd.toFixed(3)}  (${t} s)`);
  }
}

const tTrain = performance.now();
// Evaluation: the eval estimator (20 exact terms + roulette per block), no graph.
const values: number[] = [];
for (let i = 0; i < testBatches; i++) {
  const b = testBatcher.batch(0, i);
  const x = tensor(b.x, [b.size, ...config.inputShape], device);
  const bpd = noGrad(() =>
    tidy(() =>
      model.bitsPerDim(
        model.forward(x, { training: false, rng: new Rng(seed * 1_000_003 + 500_000 + i) }).logpx!,
      )
    )
  );
  values.push(...await bpd.read());
  bpd.dispose();
  x.dispose();
}
const m = values.reduce((a, v) => a + v, 0) / values.length;
const sd = Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
console.log(
  `test bits/dim ${m.toFixed(3)} ± ${
    (sd / Math.sqrt(values.length)).toFixed(3)
  } (standard error over ${values.length} test images)`,
);
const sec = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
console.log(
  `wall time ${sec(t0, performance.now())} s (training ${sec(t0, tTrain)} s, test ${
    sec(tTrain, performance.now())
  } s)`,
);
