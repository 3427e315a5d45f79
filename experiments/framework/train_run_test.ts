/**
 * The run cache refuses what it cannot trust: with `--resume`, a corrupt result file or an unloadable
 * checkpoint in a run's folder is an error naming the file, never a silent retrain.
 */
import { createDevice } from "../../lib/engine/devices.ts";
import { assertRejects } from "../../lib/testing/asserts.ts";
import { densitySpec } from "../density/density_presets.ts";
import { removeTestContext, testContext } from "./test_util.ts";
import { RUN_CHECKPOINT, RUN_RESULT, runDir, trainRun } from "./train_run.ts";

Deno.test("trainRun: corrupt run files are errors that name them", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  try {
    const spec = densitySpec("mnist", "resflow-lipswish", "smoke", ctx.seed, undefined);
    const dir = await runDir(ctx.outDir, spec);
    await Deno.mkdir(dir, { recursive: true });
    await t.step("a result file that is not JSON", async () => {
      await Deno.writeTextFile(`${dir}/${RUN_RESULT}`, '{"format": 1, "ha');
      await assertRejects(
        () => trainRun(spec, { ...ctx, resume: true }),
        new RegExp(`Cannot read run result ${dir}/${RUN_RESULT}: not JSON`),
      );
      await Deno.remove(`${dir}/${RUN_RESULT}`);
    });
    await t.step("a checkpoint that cannot be loaded", async () => {
      await Deno.writeFile(`${dir}/${RUN_CHECKPOINT}`, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]));
      await assertRejects(
        () => trainRun(spec, { ...ctx, resume: true }),
        new RegExp(`Cannot load checkpoint ${dir}/${RUN_CHECKPOINT}.*delete ${dir} to train this run again`),
      );
    });
  } finally {
    await removeTestContext(ctx);
  }
});
