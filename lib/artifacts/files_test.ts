/** pathExists, isFile and isFileSync on a file, a folder, a missing path and (unless root) an unreadable one. */
import { assertEquals, assertRejects } from "../testing/asserts.ts";
import { isFile, isFileSync, pathExists } from "./files.ts";

Deno.test("files: pathExists, isFile, isFileSync", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a.txt`;
    await Deno.writeTextFile(file, "x");
    await t.step("a file, a folder and a missing path", async () => {
      assertEquals(await Promise.all([pathExists(file), pathExists(dir), pathExists(`${dir}/none`)]), [
        true,
        true,
        false,
      ]);
      assertEquals(await Promise.all([isFile(file), isFile(dir), isFile(`${dir}/none`)]), [
        true,
        false,
        false,
      ]);
      assertEquals([isFileSync(file), isFileSync(dir), isFileSync(`${dir}/none`)], [true, false, false]);
    });
    await t.step("a path that cannot be checked is an error for pathExists, false for isFile", async () => {
      const locked = `${dir}/locked`;
      await Deno.mkdir(locked);
      await Deno.writeTextFile(`${locked}/b.txt`, "y");
      await Deno.chmod(locked, 0o000);
      try {
        let readable = true;
        try {
          Deno.statSync(`${locked}/b.txt`);
        } catch {
          readable = false;
        }
        if (readable) return; // running as root: permissions do not apply
        await assertRejects(() => pathExists(`${locked}/b.txt`), /Permission denied|EACCES/);
        assertEquals([await isFile(`${locked}/b.txt`), isFileSync(`${locked}/b.txt`)], [false, false]);
      } finally {
        await Deno.chmod(locked, 0o755);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
