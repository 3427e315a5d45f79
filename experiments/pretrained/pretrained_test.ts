/**
 * The pretrained experiment's smoke unit: with an authors' checkpoint in `<data-dir>/pretrained/` under
 * an arbitrary file name (recognised by its pickled args.data), and without any (the section says where
 * to get them and where to put them).
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { publishedValue } from "../published.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import {
  PRETRAINED_RELEASES_URL,
  PRETRAINED_ROWS,
  PRETRAINED_SUBDIR,
  pretrainedClaims,
  pretrainedExperiment,
} from "./pretrained.ts";
import { unitNamed } from "../framework/experiment.ts";

const FIXTURE = new URL("../../testdata/checkpoints/checkpoint_legacy.pth", import.meta.url).pathname;

Deno.test("pretrained experiment (smoke): a checkpoint found by its args, and none", async (t) => {
  const device = await createDevice("cpu");
  const [unit] = pretrainedExperiment.units("smoke", { dataDir: undefined }).map((u) => u.name);
  await t.step("with the authors' MNIST checkpoint under another name", async () => {
    const ctx0 = await testContext("smoke", device);
    const dataDir = await Deno.makeTempDir({ prefix: "resflow-pretrained-" });
    await Deno.mkdir(`${dataDir}/${PRETRAINED_SUBDIR}`);
    await Deno.copyFile(FIXTURE, `${dataDir}/${PRETRAINED_SUBDIR}/some_model.bin`);
    await Deno.writeTextFile(`${dataDir}/${PRETRAINED_SUBDIR}/notes.txt`, "not a checkpoint");
    const ctx = { ...ctx0, dataDir };
    try {
      const r = await unitNamed(pretrainedExperiment, "smoke", unit).run(ctx);
      await checkUnitResult("pretrained", "smoke", r, ctx.outDir);
      const bpd = r.figures.find((f) => f.row === PRETRAINED_ROWS.bpd)!;
      assertEquals(bpd.column, "mnist");
      assertEquals(bpd.published, publishedValue("density_bpd", "Residual Flow", "mnist"));
      assertTrue(bpd.value! > 1 && bpd.value! < 5, `bits/dim ${bpd.value}`);
      assertEquals(r.figures.find((f) => f.row === PRETRAINED_ROWS.found)!.value, 1);
      assertTrue(r.notes!.some((n) => n.startsWith("notes.txt: skipped")), "the text file is skipped");
      assertEquals(r.files!.length, 2);
      const claims = pretrainedClaims(r.figures);
      assertEquals(claims.length, 1);
      assertTrue(claims[0].holds === true, claims[0].detail);
    } finally {
      await removeTestContext(ctx);
      await Deno.remove(dataDir, { recursive: true });
    }
  });
  await t.step("without checkpoints: where to get them and where to put them", async () => {
    const ctx0 = await testContext("smoke", device);
    const dataDir = await Deno.makeTempDir({ prefix: "resflow-pretrained-" });
    const ctx = { ...ctx0, dataDir };
    try {
      const r = await unitNamed(pretrainedExperiment, "smoke", unit).run(ctx);
      await checkUnitResult("pretrained", "smoke", r, ctx.outDir);
      assertEquals(r.figures.length, 1);
      assertEquals(r.figures[0].value, 0);
      const text = r.notes!.join("\n");
      assertTrue(text.includes(PRETRAINED_RELEASES_URL), text);
      assertTrue(text.includes(`${dataDir}/${PRETRAINED_SUBDIR}`), text);
    } finally {
      await removeTestContext(ctx);
      await Deno.remove(dataDir, { recursive: true });
    }
  });
});
