import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { bitDifferences, hostState, tinyTrainer } from "./testing_util.ts";
import { driveTraining, type ExistingCheckpoint } from "./driver.ts";
import { loadSafetensors, saveSafetensors } from "../artifacts/safetensors.ts";

/** Drives a tiny MNIST run of `steps` steps (checkpoint every step); returns the final weights. */
async function drive(path: string, existing: ExistingCheckpoint, steps: number, hint?: string) {
  return await driveTraining({
    checkpointPath: path,
    existing,
    loadErrorHint: hint,
    steps,
    build: async () => {
      const trainer = await tinyTrainer();
      return { trainer, dispose: () => trainer.dispose() };
    },
    run: (_b, start) => ({ checkpointEvery: 1, checkpointInfo: { extra: { from: start.resumedFrom } } }),
    finish: async (b, result, start) => ({
      state: await hostState(b.trainer.model),
      steps: result.steps,
      resumedFrom: start.resumedFrom,
    }),
  });
}

Deno.test("driveTraining: checkpoint policy, bit-equal resume, errors naming the file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "resflow-driver-test-" });
  try {
    const straight = await drive(`${dir}/s.safetensors`, "refuse", 3);
    await t.step("refuse: an existing checkpoint is an error naming it and --resume", async () => {
      const e = await drive(`${dir}/s.safetensors`, "refuse", 3).then(() => null, (e: Error) => e);
      assertEquals(
        e?.message,
        `Cannot start training in ${dir}/s.safetensors: ${dir}/s.safetensors exists; pass --resume to continue it`,
      );
    });
    await t.step("resume: 2 steps, then 3 with resume ends bit-equal to 3 straight steps", async () => {
      const first = await drive(`${dir}/r.safetensors`, "resume", 2);
      assertEquals([first.steps, first.resumedFrom], [2, 0]);
      const second = await drive(`${dir}/r.safetensors`, "resume", 3);
      assertEquals([second.steps, second.resumedFrom], [3, 2]);
      assertEquals(bitDifferences(straight.state, second.state), []);
    });
    await t.step(
      "a checkpoint whose configuration spells backwardInForward memEff still resumes",
      async () => {
        const path = `${dir}/legacy.safetensors`;
        await drive(path, "resume", 2);
        const f = await loadSafetensors(path);
        const meta = { ...f.metadata, config: f.metadata.config.replace('"backwardInForward"', '"memEff"') };
        assertTrue(meta.config.includes('"memEff":true'), meta.config);
        await saveSafetensors(path, Object.fromEntries(f.tensors), meta);
        const resumed = await drive(path, "resume", 3);
        assertEquals(resumed.resumedFrom, 2);
        assertEquals(bitDifferences(straight.state, resumed.state), []);
      },
    );
    await t.step("restart: the checkpoint is discarded and the run starts at step 0", async () => {
      const again = await drive(`${dir}/r.safetensors`, "restart", 3);
      assertEquals([again.steps, again.resumedFrom], [3, 0]);
      assertEquals(bitDifferences(straight.state, again.state), []);
    });
    await t.step("a corrupt checkpoint: one line naming the file, with the hint", async () => {
      await Deno.writeTextFile(`${dir}/bad.safetensors`, "not a checkpoint");
      const e = await drive(`${dir}/bad.safetensors`, "resume", 3, "(delete it)").then(
        () => null,
        (e: Error) => e,
      );
      const msg = e?.message ?? "no error";
      assertTrue(msg.includes(`${dir}/bad.safetensors`) && msg.endsWith("(delete it)"), msg);
      assertEquals(msg.split("\n").length, 1, msg);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
