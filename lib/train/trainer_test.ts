/**
 * The training loop on a tiny Residual Flow over real MNIST (CPU backend): the loss falls, nothing
 * leaks across steps, non-finite steps are rejected with a report and leave every tensor as it was,
 * repeated failures end the run as incomplete, and evaluation swaps the EMA in and everything back.
 */
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { full } from "../engine/ops/creation.ts";
import { add } from "../engine/ops/elementwise.ts";
import { crossEntropy } from "../engine/ops/nn.ts";
import { Rng } from "../engine/random.ts";
import { ClassifierHead } from "../flow/classifier.ts";
import type { Tensor } from "../engine/tensor.ts";
import { ActNorm2d } from "../flow/actnorm.ts";
import { bitDifferences, hostState, tinyMnist, tinyTrainer } from "./testing_util.ts";
import { densityLoss, Trainer } from "./trainer.ts";
import { evaluateBitsPerDim } from "./evaluate.ts";

/** Minimum fall of the mean loss (bits/dim) between the first and last five of 30 steps. */
const MIN_LOSS_DROP = 0.3;

async function emaState(t: Trainer): Promise<Map<string, Float32Array | Float64Array>> {
  const out = new Map<string, Float32Array | Float64Array>();
  for (const [n, s] of t.ema.shadow()) out.set(n, (await s.read()).slice());
  return out;
}

async function adamState(t: Trainer): Promise<Map<string, Float32Array | Float64Array>> {
  const out = new Map<string, Float32Array | Float64Array>();
  const s = t.optimizer.state();
  for (const [n, m] of s.m) out.set(`m.${n}`, (await m.read()).slice());
  for (const [n, v] of s.v) out.set(`v.${n}`, (await v.read()).slice());
  return out;
}

Deno.test("trainer: the loss falls on a fixed batch of 8 MNIST digits over 30 steps", async () => {
  const { train } = await tinyMnist();
  const fixed = { ...train, count: 8, images: train.images.subarray(0, 8 * 784), labels: null };
  const t = await tinyTrainer({ data: fixed, adam: { lr: 1e-2 } });
  const losses: number[] = [];
  const r = await t.run({ steps: 30, onStep: (s) => losses.push(s.loss) });
  assertTrue(r.complete && r.steps === 30 && r.optimizerSteps === 30, "every step accepted");
  assertTrue(losses.every(Number.isFinite), "finite losses");
  const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
  assertTrue(tail < head - MIN_LOSS_DROP, `mean loss of the last 5 steps ${tail} vs the first 5 ${head}`);
  assertTrue(t.ema.initialized, "EMA shadow created");
  assertEquals(r.history.logs.map((l) => l.step), [10, 20, 30]);
  const last = r.history.logs[2];
  assertEquals(last.blocks.map((b) => b.name), ["block 2 (scale 0)", "block 5 (scale 1)"]);
  assertTrue(last.blocks.every((b) => Number.isFinite(b.firmom) && b.secmom >= b.firmom ** 2 * 0.999));
  t.dispose();
});

Deno.test("trainer: nothing leaks across steps (live storages constant after warm-up)", async () => {
  const t = await tinyTrainer();
  const device = t.device;
  await t.trainStep();
  await t.trainStep();
  const after2 = device.memoryStats();
  for (let i = 0; i < 5; i++) {
    await t.trainStep();
    const s = device.memoryStats();
    assertEquals(s.storagesLive, after2.storagesLive, `live storages after step ${t.step}`);
    assertEquals(s.bytesLive, after2.bytesLive, `live bytes after step ${t.step}`);
  }
  t.dispose();
});

Deno.test("trainer: a NaN in the batch is rejected with a report; the state stays the last good one", async (ctx) => {
  const poisoned = new Set([3]);
  const t = await tinyTrainer({
    hooks: { batch: (step, x) => void (poisoned.has(step) && (x[100] = NaN)) },
  });
  for (let i = 0; i < 3; i++) assertTrue((await t.trainStep()).accepted);
  const before = await hostState(t.module);
  const ema = await emaState(t);
  const adam = await adamState(t);
  const r = await t.trainStep();
  await ctx.step("the step is rejected and the report names step, quantity, input and first block", () => {
    assertTrue(!r.accepted && r.failure !== undefined);
    const f = r.failure!;
    assertEquals([f.step, f.quantity, f.inputNonFinite], [3, "loss", 1]);
    assertEquals(f.blocks[0], "block 2 (scale 0)");
    assertTrue(/^Step 3 rejected: the loss is NaN/.test(f.message), f.message);
    assertTrue(/input batch holds 1 non-finite/.test(f.message), f.message);
  });
  await ctx.step("parameters, buffers, optimizer and EMA are bit-identical to before the step", async () => {
    assertEquals(bitDifferences(before, await hostState(t.module)), []);
    assertEquals(bitDifferences(ema, await emaState(t)), []);
    assertEquals(bitDifferences(adam, await adamState(t)), []);
    assertEquals(t.optimizer.stepCount, 3);
    assertEquals(t.step, 4);
  });
  await ctx.step("training goes on with the next step", async () => {
    const next = await t.trainStep();
    assertTrue(next.accepted && next.step === 4 && t.optimizer.stepCount === 4);
    assertEquals(t.consecutiveFailures, 0);
    assertEquals(t.history.failures.length, 1);
  });
  t.dispose();
});

Deno.test("trainer: a rejected first step rolls back ActNorm's data-dependent initialisation", async () => {
  const t = await tinyTrainer({ hooks: { batch: (step, x) => void (step === 0 && (x[0] = Infinity)) } });
  const actnorms = t.model.stages.flatMap((
    s,
  ) => (s.kind === "layer" && s.layer instanceof ActNorm2d ? [s.layer] : []));
  assertTrue(actnorms.length === 3, "three ActNorm layers");
  const r = await t.trainStep();
  assertTrue(!r.accepted, "step 0 rejected");
  assertTrue(actnorms.every((a) => !a.isInitialized), "ActNorm not initialised from the poisoned batch");
  assertTrue(!t.ema.initialized && t.optimizer.stepCount === 0);
  assertTrue((await t.trainStep()).accepted, "step 1 accepted");
  assertTrue(actnorms.every((a) => a.isInitialized), "ActNorm initialised from step 1's batch");
  t.dispose();
});

Deno.test("trainer: a non-finite gradient is rejected naming the parameter", async () => {
  const target = "2.nnet.0.weight";
  const t = await tinyTrainer({
    hooks: {
      gradients: (step, grads, params) =>
        grads.map((g, i): Tensor | null =>
          step === 1 && params[i].name === target && g ? full(g.shape, NaN, g.device) : g
        ),
    },
  });
  assertTrue((await t.trainStep()).accepted);
  const before = await hostState(t.module);
  const r = await t.trainStep();
  assertTrue(!r.accepted && r.failure !== undefined);
  assertEquals(r.failure!.quantity, "gradient");
  assertEquals(r.failure!.parameters, [target]);
  assertEquals(r.failure!.blocks, []);
  assertTrue(Number.isFinite(r.loss) && !Number.isFinite(r.gradNorm));
  assertTrue(
    r.failure!.message.includes(`non-finite gradient of 1 parameter (${target})`),
    r.failure!.message,
  );
  assertEquals(bitDifferences(before, await hostState(t.module)), []);
  t.dispose();
});

Deno.test("trainer: K consecutive failures end the run cleanly, marked incomplete", async () => {
  const t = await tinyTrainer({
    maxConsecutiveFailures: 3,
    hooks: { batch: (step, x) => void (step >= 2 && (x[5] = NaN)) },
  });
  const r = await t.run({ steps: 20 });
  assertTrue(!r.complete, "incomplete");
  assertEquals([r.steps, r.optimizerSteps, r.history.failures.map((f) => f.step)], [5, 2, [2, 3, 4]]);
  assertTrue(
    /^3 consecutive non-finite steps \(the limit is 3\); last: Step 4 rejected/.test(r.incompleteReason!),
  );
  t.dispose();
});

Deno.test("trainer: evaluation uses the EMA weights and leaves the training state bit-identical", async () => {
  const { test } = await tinyMnist();
  const t = await tinyTrainer();
  for (let i = 0; i < 3; i++) await t.trainStep();
  const before = await hostState(t.module);
  const e1 = await t.evaluate(test, { batchSize: 8 });
  assertEquals(bitDifferences(before, await hostState(t.module)), []);
  assertTrue(Number.isFinite(e1.bitsPerDim) && e1.standardError > 0 && e1.count === 16 && e1.step === 3);
  const e2 = await t.evaluate(test, { batchSize: 8 });
  assertEquals(e2.bitsPerDim, e1.bitsPerDim, "same seed: same dequantisation noise, N and probes");
  // The training weights (not the EMA's) give another figure.
  const plain = await evaluateBitsPerDim(t.model, test, t.device, { seed: t.seed, batchSize: 8 });
  assertTrue(
    plain.bitsPerDim !== e1.bitsPerDim,
    `EMA ${e1.bitsPerDim} vs training weights ${plain.bitsPerDim}`,
  );
  t.dispose();
});

Deno.test("trainer: a hybrid loss trains an extra classifier head through the loss hook", async () => {
  const probe = await tinyTrainer();
  const model = probe.model;
  const head = new ClassifierHead({
    scaleChannels: model.scaleShapes.map((s) => s.end[0]),
    hidden: 8,
    rng: new Rng(3),
    device: probe.device,
  });
  probe.dispose();
  const t = new Trainer({
    model,
    device: model.parameters()[0].value.device,
    data: (await tinyMnist()).train,
    batchSize: 8,
    seed: 7,
    extra: head,
    loss: (out, batch, m) =>
      add(densityLoss(out, batch, m), crossEntropy(head.apply(out.features), batch.labels!)),
  });
  const w0 = Array.from(await head.logitLayer.parameters()[0].value.read());
  const r = await t.run({ steps: 3 });
  assertTrue(r.complete && r.optimizerSteps === 3);
  const w1 = Array.from(await head.logitLayer.parameters()[0].value.read());
  assertTrue(w0.some((v, i) => v !== w1[i]), "the head's weights moved");
  assertTrue(t.params.some((p) => p.name === "logit_layer.weight"), "head parameters are trained");
  assertTrue(t.ema.shadow().has("classification_heads.0.0.weight"), "and averaged");
  t.dispose();
});

Deno.test("trainer: a run whose every step is rejected is incomplete, even below the failure limit", async () => {
  const t = await tinyTrainer({
    maxConsecutiveFailures: 10,
    hooks: { batch: (_step, x) => void (x[5] = NaN) },
  });
  const r = await t.run({ steps: 3 });
  assertTrue(!r.complete, "incomplete");
  assertEquals([r.steps, r.optimizerSteps], [3, 0]);
  assertTrue(/^all 3 steps of this run were rejected; last: Step 2 rejected/.test(r.incompleteReason!));
  t.dispose();
});

Deno.test("trainer: a fresh run iterates every σ to tolerance before step 0; a resumed one does not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const events: string[] = [];
    const spy = (t: Trainer) => {
      const original = t.model.convergeLipschitz.bind(t.model);
      t.model.convergeLipschitz = async () => {
        events.push("converge");
        const r = await original();
        assertTrue(r.length > 0 && r.every((u) => u.converged), JSON.stringify(r));
        return r;
      };
    };
    const a = await tinyTrainer({ hooks: { batch: (step) => void events.push(`batch ${step}`) } });
    spy(a);
    await a.run({ steps: 2 });
    assertEquals(events, ["converge", "batch 0", "batch 1"]);
    await a.saveCheckpoint(`${dir}/ck.safetensors`);
    events.length = 0;
    const b = await tinyTrainer({ hooks: { batch: (step) => void events.push(`batch ${step}`) } });
    spy(b);
    await b.loadCheckpoint(`${dir}/ck.safetensors`);
    await b.run({ steps: 3 });
    assertEquals(events, ["batch 2"], "the checkpoint's vectors are kept");
    a.dispose();
    b.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
