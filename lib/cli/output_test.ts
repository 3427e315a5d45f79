import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { prepareOutputDir } from "./output.ts";

Deno.test("prepareOutputDir", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "output_test_" });
  try {
    await t.step("creates the folder and removes a dead run's temporary files", async () => {
      await Deno.mkdir(`${dir}/run`);
      const stale = `${dir}/run/.checkpoint.safetensors.4194305.abc.tmp`; // its writer is gone: unlocked, a minute old
      await Deno.writeTextFile(stale, "half a checkpoint");
      const old = new Date(Date.now() - 60_000);
      await Deno.utime(stale, old, old);
      assertEquals(await prepareOutputDir(`${dir}/run`), [stale]);
      assertEquals(await prepareOutputDir(`${dir}/new/deeper`), []);
      assertEquals([...Deno.readDirSync(`${dir}/run`)].length, 0, "the write check leaves nothing");
    });

    await t.step("with a depth, the folders below are cleaned too", async () => {
      await Deno.mkdir(`${dir}/res/units/a`, { recursive: true });
      const deep = `${dir}/res/units/a/.checkpoint.safetensors.4194305.abc.tmp`;
      await Deno.writeTextFile(deep, "x");
      await Deno.utime(deep, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      assertEquals(await prepareOutputDir(`${dir}/res`, "--results"), []);
      assertEquals(await prepareOutputDir(`${dir}/res`, "--results", 2), [deep]);
    });

    await t.step("a folder under a regular file, or the file itself, is one clear error", async () => {
      await Deno.writeTextFile(`${dir}/file`, "x");
      await assertRejects(
        () => prepareOutputDir(`${dir}/file/sub`),
        new RegExp(`Cannot use --out ${dir}/file/sub: it, or a folder above it, is a regular file`),
      );
      await assertRejects(
        () => prepareOutputDir(`${dir}/file`, "--results"),
        /Cannot use --results .*regular file/,
      );
    });

    await t.step("a folder that cannot be created (in /proc) is one clear error", async () => {
      let msg = "";
      try {
        await prepareOutputDir("/proc/resflow-out");
      } catch (e) {
        msg = (e as Error).message;
      }
      assertTrue(/^Cannot use --out \/proc\/resflow-out: /.test(msg), msg);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
