import { assertEquals } from "../testing/asserts.ts";
import { readDataFile } from "./errors.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

Deno.test("readDataFile", async (t) => {
  await t.step("reads a regular file", async () => {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
      assertEquals(Array.from(await readDataFile(`${dir}/a.bin`, "bytes")), [1, 2, 3]);
    });
  });

  await t.step(
    "devices (read forever), folders and missing files are DatasetErrors naming them",
    async () => {
      await expectDatasetError(
        () => readDataFile("/dev/null", "an IDX file"),
        /^Cannot read \/dev\/null: it is not a regular file \(a device, FIFO or socket\), expected an IDX file\.$/,
      );
      await withTempDir(async (dir) => {
        // A symbolic link to a device is followed to it, and refused the same way.
        await Deno.symlink("/dev/zero", `${dir}/train-images-idx3-ubyte`);
        await expectDatasetError(
          () => readDataFile(`${dir}/train-images-idx3-ubyte`, "the images"),
          /train-images-idx3-ubyte: it is not a regular file/,
        );
        await expectDatasetError(() => readDataFile(dir, "a file"), /it is a folder, expected a file/);
        await expectDatasetError(() => readDataFile(`${dir}/none`, "a file"), /none: no such file/);
      });
    },
  );
});
