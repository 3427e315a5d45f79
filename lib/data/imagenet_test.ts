import { assertEquals } from "../testing/asserts.ts";
import { loadImagenet } from "./imagenet.ts";
import { encodeNpy } from "./npy.ts";
import { encodeNpz } from "./npz.ts";
import { loadDataset } from "./registry.ts";
import { expectDatasetError, goldenFiles, withTempDir } from "./testing_util.ts";

function batch(n: number, size: number, first: number, compressed = false): Uint8Array {
  const d = 3 * size * size;
  const data = new Uint8Array(n * d);
  for (let i = 0; i < data.length; i++) data[i] = (i + first) & 255;
  const labels = Array.from({ length: n }, (_, i) => BigInt(((first + i) % 1000) + 1));
  return encodeNpz(
    { data: encodeNpy("|u1", [n, d], data), labels: encodeNpy("<i8", [n], labels) },
    compressed,
  );
}

Deno.test("imagenet", async (t) => {
  await t.step(
    "official-layout npz batches (stored and deflated) load as [N,3,S,S] with labels 0–999",
    async () => {
      await withTempDir(async (dir) => {
        const sub = `${dir}/imagenet32/Imagenet32_train_npz`;
        await Deno.mkdir(sub, { recursive: true });
        await Deno.writeFile(`${sub}/train_data_batch_1.npz`, batch(3, 32, 0));
        await Deno.writeFile(`${sub}/train_data_batch_2.npz`, batch(2, 32, 999, true));
        const ds = await loadImagenet(dir, 32, { batches: [1, 2] });
        assertEquals([ds.count, ds.shape, Array.from(ds.labels!)], [5, [3, 32, 32], [0, 1, 2, 999, 0]]);
        assertEquals([ds.images[3072], ds.images[3 * 3072], ds.name], [
          3072 & 255,
          999 & 255,
          "ImageNet 32×32",
        ]);
        const few = await loadDataset("imagenet32", { dataDir: dir, batches: [1, 2], limit: 2 });
        assertEquals([few.count, few.files.length], [2, 1]);
        await Deno.mkdir(`${dir}/imagenet64`);
        await Deno.writeFile(`${dir}/imagenet64/val_data.npz`, batch(2, 64, 5));
        const val = await loadDataset("imagenet64", { dataDir: dir, split: "test" });
        assertEquals([val.count, val.shape, Array.from(val.labels!)], [2, [3, 64, 64], [5, 6]]);
      });
    },
  );

  await t.step("a NumPy-written npz is read (labels 1 and 1000 → 0 and 999)", async () => {
    const gold = await goldenFiles();
    await withTempDir(async (dir) => {
      // The golden file holds data (2, 12): not 32×32 images, so the shape check must say so.
      await Deno.writeFile(`${dir}/val_data.npz`, gold.npz_stored);
      await expectDatasetError(
        () => loadImagenet(dir, 32, { split: "test" }),
        /uint8 of shape \(2, 12\), expected uint8 \(N, 3072\)/,
      );
    });
  });

  await t.step("missing files, missing keys, bad labels and truncation are DatasetErrors", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(
        () => loadImagenet(dir, 64, { split: "test" }),
        /no file val_data\.npz/,
        /image-net\.org/,
      );
      await Deno.writeFile(
        `${dir}/val_data.npz`,
        encodeNpz({ data: encodeNpy("|u1", [1, 3072], new Uint8Array(3072)) }),
      );
      await expectDatasetError(
        () => loadImagenet(dir, 32, { split: "test" }),
        /val_data\.npz/,
        /no array labels/,
      );
      const bad = encodeNpz({
        data: encodeNpy("|u1", [1, 3072], new Uint8Array(3072)),
        labels: encodeNpy("<i8", [1], [BigInt(0)]),
      });
      await Deno.writeFile(`${dir}/val_data.npz`, bad);
      await expectDatasetError(
        () => loadImagenet(dir, 32, { split: "test" }),
        /labels\[0\] = 0, expected 1–1000/,
      );
      const good = batch(2, 32, 0);
      await Deno.writeFile(`${dir}/val_data.npz`, good.subarray(0, good.length - 100));
      await expectDatasetError(() => loadImagenet(dir, 32, { split: "test" }), /val_data\.npz/, /truncated/);
    });
  });

  await t.step("a batch declaring more than 130,000 images' worth of data is refused unread", async () => {
    await withTempDir(async (dir) => {
      // A deflated batch whose directory claims 500 MB for data.npy: past the 32×32 cap of ~400 MB.
      const bytes = batch(2, 32, 0, true);
      const v = new DataView(bytes.buffer);
      let cd = bytes.length - 22;
      while (v.getUint32(cd, true) !== 0x02014b50 || bytes[cd + 46] !== "d".charCodeAt(0)) cd--;
      v.setUint32(cd + 24, 500e6, true);
      await Deno.writeFile(`${dir}/val_data.npz`, bytes);
      await expectDatasetError(
        () => loadImagenet(dir, 32, { split: "test" }),
        /val_data\.npz \(entry data\.npy\)/,
        /declares 500,000,000 bytes once decompressed, more than the limit of 399,425,536 bytes/,
      );
    });
  });
});
