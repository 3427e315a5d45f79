/**
 * Checkpoints: the safetensors layout and metadata, an exact round trip, resuming equal to an
 * uninterrupted run (float32 bit-equal on the CPU backend), and one error listing every mismatch.
 */
import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { Rng } from "../engine/random.ts";
import { loadSafetensors, saveSafetensors } from "../artifacts/safetensors.ts";
import { makeConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import { CHECKPOINT_FORMAT, decodeMetaJson, encodeMetaJson, readCheckpoint } from "./checkpoint.ts";
import { Trainer } from "./trainer.ts";
import { bitDifferences, hostState, tinyConfig, tinyMnist, tinyTrainer } from "./testing_util.ts";

async function fileTensors(path: string): Promise<Map<string, ArrayLike<number>>> {
  const f = await loadSafetensors(path);
  return new Map([...f.tensors].map(([n, t]) => [n, t.data as Float32Array]));
}

Deno.test("checkpoint: safetensors names, metadata and an exact round trip", async (ctx) => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ck.safetensors`;
    const a = await tinyTrainer();
    for (let i = 0; i < 3; i++) await a.trainStep();
    await a.saveCheckpoint(path, { suiteVersion: "9.9.9", extra: { note: "test" } });
    await ctx.step("tensor names and metadata", async () => {
      const f = await loadSafetensors(path);
      const names = [...f.tensors.keys()];
      const params = a.params.map((p) => p.name);
      for (const n of params) {
        for (const pre of ["param.", "adam.m.", "adam.v.", "ema."]) {
          assertTrue(names.includes(pre + n), `${pre}${n} saved`);
        }
      }
      assertTrue(names.includes("buffer.2.nnet.0.u") && names.includes("buffer.1.initialized"));
      assertEquals(names.length, params.length * 4 + a.module.buffers().filter((b) => b.value).length);
      assertEquals(f.metadata.format, CHECKPOINT_FORMAT);
      assertEquals(JSON.parse(f.metadata.config), JSON.parse(JSON.stringify(tinyConfig())));
      assertEquals(JSON.parse(f.metadata.step), 3);
      assertEquals(JSON.parse(f.metadata.suiteVersion), "9.9.9");
      assertEquals(JSON.parse(f.metadata.data), { epoch: 0, index: 3, batchSize: 8, count: 64 });
      assertTrue(JSON.parse(f.metadata.rng).rule.includes("fork"));
      const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name);
      assertEquals(leftovers, ["ck.safetensors"], "no temporary file left");
    });
    await ctx.step("a fresh model and trainer restore every tensor and the step", async () => {
      const b = await tinyTrainer({ seed: 7 });
      // Different initial weights: everything must come from the file.
      const other = new ResidualFlow(tinyConfig(), { rng: new Rng(12345), device: b.device });
      const c = new Trainer({
        model: other,
        device: b.device,
        data: (await tinyMnist()).train,
        batchSize: 8,
        seed: 7,
        adam: { lr: 5e-3 },
      });
      await c.loadCheckpoint(path);
      assertEquals(bitDifferences(await hostState(a.module), await hostState(c.module)), []);
      assertEquals([c.step, c.optimizer.stepCount, c.ema.initialized], [3, 3, true]);
      for (const [n, t] of a.ema.shadow()) {
        assertEquals(Array.from(await t.read()), Array.from(await c.ema.shadow().get(n)!.read()), `ema.${n}`);
      }
      b.dispose();
      c.dispose();
    });
    a.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: a run resumed from its checkpoint ends bit-equal to an uninterrupted run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { test } = await tinyMnist();
    const device = await createDevice("cpu");
    // A: 6 steps straight, checkpoints every 2, evaluations at 3 and 6 (they must not disturb training).
    const a = await tinyTrainer({}, device);
    const ra = await a.run({
      steps: 6,
      checkpointPath: `${dir}/a.safetensors`,
      checkpointEvery: 2,
      evalData: test,
      evalEvery: 3,
      evalBatchSize: 16,
    });
    assertTrue(ra.complete && ra.steps === 6);
    assertEquals(ra.history.evals.map((e) => e.step), [3, 6]);
    // B: killed after 4 steps (its last checkpoint is at step 4).
    const b = await tinyTrainer({}, device);
    await b.run({ steps: 4, checkpointPath: `${dir}/b.safetensors`, checkpointEvery: 2 });
    b.dispose();
    // C: a new process-equivalent (new model with other initial weights) resumes B's checkpoint to 6.
    const model = new ResidualFlow(tinyConfig(), { rng: new Rng(999), device });
    const c = new Trainer({
      model,
      device,
      data: (await tinyMnist()).train,
      batchSize: 8,
      seed: 7,
      adam: { lr: 5e-3 },
    });
    const meta = await c.loadCheckpoint(`${dir}/b.safetensors`);
    assertEquals(meta.step, 4);
    await c.run({ steps: 6, checkpointPath: `${dir}/c.safetensors`, checkpointEvery: 2 });
    assertEquals(bitDifferences(await hostState(a.module), await hostState(c.module)), []);
    const fa = await fileTensors(`${dir}/a.safetensors`);
    const fc = await fileTensors(`${dir}/c.safetensors`);
    assertTrue(fa.size > 40, `${fa.size} tensors in the checkpoint`);
    assertEquals(bitDifferences(fa, fc), [], "final checkpoints: parameters, buffers, Adam moments, EMA");
    assertEquals((await readCheckpoint(`${dir}/c.safetensors`)).meta.optimizerStep, 6);
    a.dispose();
    c.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: loading a mismatched model or setting reports every difference in one error", async (ctx) => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ck.safetensors`;
    const a = await tinyTrainer();
    await a.trainStep();
    await a.saveCheckpoint(path);
    const { train } = await tinyMnist();
    const device = a.device;
    await ctx.step(
      "other widths and block counts: missing, unexpected, misshapen tensors and config",
      async () => {
        const cfg = makeConfig({
          inputShape: [1, 28, 28],
          nBlocks: [2, 1],
          hiddenChannels: 16,
          fcEnd: false,
        });
        const model = new ResidualFlow(cfg, { rng: new Rng(1), device });
        const t = new Trainer({ model, device, data: train, batchSize: 8, seed: 7, adam: { lr: 5e-3 } });
        const err = await assertRejectsWith(() => t.loadCheckpoint(path));
        assertTrue(err.startsWith(`Cannot load checkpoint ${path}: `), err);
        for (
          const part of [
            "missing tensors (",
            "unexpected tensors (",
            "with the wrong shape (",
            "param.2.nnet.0.weight: expected [16, 1, 3, 3], found [8, 1, 3, 3]",
            "the model configuration differs (hiddenChannels: file 8, expected 16; nBlocks: file [1,1], expected [2,1])",
          ]
        ) assertTrue(err.includes(part), `${part} in: ${err}`);
        t.dispose();
      },
    );
    await ctx.step("other training settings", async () => {
      const t = await tinyTrainer({ batchSize: 4, adam: { lr: 1e-3 } });
      const err = await assertRejectsWith(() => t.loadCheckpoint(path));
      assertTrue(
        err.includes(
          "the training settings differ (batchSize: file 8, expected 4; lr: file 0.005, expected 0.001)",
        ),
        err,
      );
      assertEquals(t.step, 0, "nothing applied");
      t.dispose();
    });
    await ctx.step("a safetensors file that is not a checkpoint", async () => {
      await saveSafetensors(`${dir}/plain.safetensors`, { w: { shape: [1], data: new Float32Array([1]) } });
      const t = await tinyTrainer();
      await assertRejects(
        () => t.loadCheckpoint(`${dir}/plain.safetensors`),
        /Cannot load checkpoint .*plain.safetensors: metadata "format" is null, expected "resflow-checkpoint"/,
      );
      t.dispose();
    });
    a.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function assertRejectsWith(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a rejection");
}

Deno.test("checkpoint: a rejected step's report (NaN loss) survives the metadata round trip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(decodeMetaJson(encodeMetaJson({ a: NaN, b: [Infinity, -Infinity, 1.5], c: "x" })), {
      a: NaN,
      b: [Infinity, -Infinity, 1.5],
      c: "x",
    });
    const a = await tinyTrainer({ hooks: { batch: (step, x) => void (step === 1 && (x[0] = NaN)) } });
    await a.trainStep();
    assertTrue(!(await a.trainStep()).accepted);
    await a.saveCheckpoint(`${dir}/ck.safetensors`);
    const b = await tinyTrainer();
    await b.loadCheckpoint(`${dir}/ck.safetensors`);
    assertEquals(b.history.failures.length, 1);
    assertTrue(Number.isNaN(b.history.failures[0].loss), "NaN kept");
    assertEquals(b.history.failures[0].message, a.history.failures[0].message);
    assertEquals([b.step, b.optimizer.stepCount], [2, 1]);
    a.dispose();
    b.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint: a file whose state tensors hold NaN or Infinity is refused, naming them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ck.safetensors`;
    const a = await tinyTrainer();
    for (let i = 0; i < 2; i++) await a.trainStep();
    await a.saveCheckpoint(path, { suiteVersion: "9.9.9" });
    const f = await loadSafetensors(path);
    const poisoned = new Map(
      [...f.tensors].map(([n, t]) => [n, { shape: t.shape, data: (t.data as Float32Array).slice() }]),
    );
    poisoned.get("param.2.nnet.0.weight")!.data[3] = NaN;
    poisoned.get("adam.v.2.nnet.0.bias")!.data[0] = Infinity;
    await saveSafetensors(path, Object.fromEntries(poisoned), f.metadata);
    const b = await tinyTrainer();
    const before = await hostState(b.module);
    await assertRejects(
      () => b.loadCheckpoint(path),
      /^Error: Cannot load checkpoint .*ck\.safetensors: 2 tensors hold NaN or Infinity \(.*adam\.v\.2\.nnet\.0\.bias: 1 of \d+ values.*param\.2\.nnet\.0\.weight: 1 of \d+ values/,
    );
    assertEquals(bitDifferences(before, await hostState(b.module)), [], "nothing applied");
    a.dispose();
    b.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
