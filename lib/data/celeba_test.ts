import { assertEquals } from "../testing/asserts.ts";
import { celebaFromArray, loadCeleba5bit } from "./celeba.ts";
import { encodeNpy } from "./npy.ts";
import { loadDataset } from "./registry.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

Deno.test("celeba5bit", async (t) => {
  await t.step("N×H×W×C (as Flow++ writes it) becomes [N,C,H,W]; N×C×H×W is kept; nvals is 32", async () => {
    // 2 images 2×2×3, value = 10·y + 3·x + ch (all < 32).
    const nhwc: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 2; x++) for (let c = 0; c < 3; c++) nhwc.push(10 * y + 3 * x + c + n);
      }
    }
    const a = celebaFromArray(Uint8Array.from(nhwc), [2, 2, 2, 3], "a.npy");
    assertEquals(a.shape, [3, 2, 2]);
    for (let n = 0; n < 2; n++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 2; y++) {
          for (let x = 0; x < 2; x++) {
            assertEquals(a.images[n * 12 + c * 4 + y * 2 + x], 10 * y + 3 * x + c + n);
          }
        }
      }
    }
    const b = celebaFromArray(a.images, [2, 3, 2, 2], "b.npy");
    assertEquals([b.shape, b.images], [[3, 2, 2], a.images]);
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/celeba`);
      await Deno.writeFile(`${dir}/celeba/celeba_full_64x64_5bit.npy`, encodeNpy("|u1", [2, 2, 2, 3], nhwc));
      const ds = await loadDataset("celeba5bit", { dataDir: dir });
      assertEquals([ds.nvals, ds.count, ds.shape, ds.labels, ds.images], [32, 2, [3, 2, 2], null, a.images]);
    });
  });

  await t.step("test is the first 5000 images of the file; train is the whole file", async () => {
    await withTempDir(async (dir) => {
      const n = 5003;
      const values = new Uint8Array(n * 3);
      for (let i = 0; i < n; i++) values.fill(i % 32, 3 * i, 3 * i + 3);
      await Deno.writeFile(`${dir}/celeba_full_64x64_5bit.npy`, encodeNpy("|u1", [n, 1, 1, 3], values));
      const test = await loadCeleba5bit(dir, { split: "test" });
      const train = await loadCeleba5bit(dir, { split: "train" });
      assertEquals([test.count, train.count, test.images[3 * 4999], train.images[3 * 5002]], [
        5000,
        5003,
        4999 % 32,
        5002 % 32,
      ]);
    });
  });

  await t.step("wrong shape, values ≥ 32, wrong dtype and a missing file are DatasetErrors", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(() => loadCeleba5bit(dir), /no file celeba_full_64x64_5bit\.npy/, /flowpp/);
      const path = `${dir}/celeba_full_64x64_5bit.npy`;
      await Deno.writeFile(path, encodeNpy("|u1", [2, 5, 5], new Uint8Array(50)));
      await expectDatasetError(
        () => loadCeleba5bit(dir),
        /shape \(2, 5, 5\) is neither N×H×W×C .* nor N×C×H×W/,
      );
      await Deno.writeFile(path, encodeNpy("|u1", [1, 2, 2, 7], new Uint8Array(28)));
      await expectDatasetError(() => loadCeleba5bit(dir), /shape \(1, 2, 2, 7\) is neither/);
      await Deno.writeFile(path, encodeNpy("|u1", [1, 1, 1, 3], [1, 200, 3]));
      await expectDatasetError(
        () => loadCeleba5bit(dir),
        /value 200 at flat index 1, expected 5-bit values 0–31/,
      );
      await Deno.writeFile(path, encodeNpy("<f4", [1, 1, 1, 3], [1, 2, 3]));
      await expectDatasetError(() => loadCeleba5bit(dir), /dtype float32, expected uint8/);
    });
  });
});
