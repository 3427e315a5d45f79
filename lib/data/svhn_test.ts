import { assertEquals } from "../testing/asserts.ts";
import { encodeMat5 } from "./mat5.ts";
import { loadDataset } from "./registry.ts";
import { loadSvhn } from "./svhn.ts";
import { expectDatasetError, goldenFiles, withTempDir } from "./testing_util.ts";

Deno.test("svhn", async (t) => {
  const gold = await goldenFiles();

  await t.step(
    "a scipy-written compressed .mat in the official layout: X transposed to [N,3,32,32], label 10 → 0",
    async () => {
      await withTempDir(async (dir) => {
        await Deno.mkdir(`${dir}/svhn`);
        await Deno.writeFile(`${dir}/svhn/test_32x32.mat`, gold.mat_svhn_z);
        const ds = await loadSvhn(dir, { split: "test", anyCount: true });
        assertEquals([ds.count, ds.shape, Array.from(ds.labels!)], [2, [3, 32, 32], [0, 3]]);
        // The fixture's X[r, c, ch, n] is (r + 32c + 1024ch + 3072n) mod 251 (its column-major flat index).
        for (const [n, ch, r, c] of [[0, 0, 0, 1], [0, 0, 1, 0], [0, 2, 5, 7], [1, 1, 31, 30]]) {
          assertEquals(
            ds.images[n * 3072 + ch * 1024 + r * 32 + c],
            (r + 32 * c + 1024 * ch + 3072 * n) % 251,
          );
        }
      });
    },
  );

  await t.step("the official image count is required by default, through the registry too", async () => {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/test_32x32.mat`, gold.mat_svhn_z);
      await expectDatasetError(
        () => loadDataset("svhn", { dataDir: dir, split: "test" }),
        /test_32x32\.mat/,
        /holds 2 images, expected 26032/,
        /ufldl\.stanford\.edu\/housenumbers/,
      );
    });
  });

  await t.step("missing file, wrong variables, wrong dims and bad labels are DatasetErrors", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(() => loadSvhn(dir), /no file .*svhn\/train_32x32\.mat/, /housenumbers/);
      const write = (vars: Parameters<typeof encodeMat5>[0]) =>
        Deno.writeFile(`${dir}/train_32x32.mat`, encodeMat5(vars, true));
      await write([{ name: "Z", className: "uint8", dims: [1, 1], data: [0] }]);
      await expectDatasetError(() => loadSvhn(dir), /variables \[Z\], expected X/);
      await write([
        { name: "X", className: "uint8", dims: [32, 32, 1, 1], data: new Uint8Array(1024) },
        { name: "y", className: "double", dims: [1, 1], data: [1] },
      ]);
      await expectDatasetError(
        () => loadSvhn(dir, { anyCount: true }),
        /X has dims \[32, 32, 1, 1\], expected \[32, 32, 3, N\]/,
      );
      await write([
        { name: "X", className: "uint8", dims: [32, 32, 3, 1], data: new Uint8Array(3072) },
        { name: "y", className: "double", dims: [1, 1], data: [11] },
      ]);
      await expectDatasetError(
        () => loadSvhn(dir, { anyCount: true }),
        /y\[0\] = 11, expected an integer 1–10/,
      );
      await Deno.writeFile(`${dir}/train_32x32.mat`, gold.mat_svhn_z.subarray(0, 300));
      await expectDatasetError(
        () => loadSvhn(dir, { anyCount: true }),
        /train_32x32\.mat/,
        /truncated|damaged/,
      );
    });
  });
});
