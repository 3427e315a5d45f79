import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { encodeIdx } from "./idx.ts";
import { gzipSync } from "node:zlib";
import { loadMnist } from "./mnist.ts";
import { loadDataset } from "./registry.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

Deno.test("mnist", async (t) => {
  await t.step(
    "the embedded MNIST loads: 60000 train / 10000 test, 28×28, first labels as published",
    async () => {
      const train = await loadMnist({ split: "train" });
      assertEquals([train.count, train.images.length, train.labels!.length], [60000, 60000 * 784, 60000]);
      assertEquals(train.shape, [1, 28, 28]);
      assertEquals(Array.from(train.labels!.subarray(0, 4)), [5, 0, 4, 1]);
      const test = await loadMnist({ split: "test" });
      assertEquals([test.count, test.images.length], [10000, 10000 * 784]);
      assertEquals(Array.from(test.labels!.subarray(0, 4)), [7, 2, 1, 0]);
      // Real digits: the first training image (a 5) has ink; its border row is blank.
      const first = train.images.subarray(0, 784);
      assertTrue(first.some((v) => v > 200), "the first image has no bright pixels");
      assertTrue(
        first.subarray(0, 28).every((v) => v === 0),
        "the first row of the first image is not blank",
      );
      // The label counts of the test set are the published ones (980 zeros … 1009 nines).
      const counts = new Array(10).fill(0);
      for (const l of test.labels!) counts[l]++;
      assertEquals(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    },
  );

  await t.step("limit keeps the first images", async () => {
    const ds = await loadMnist({ split: "test", limit: 3 });
    assertEquals([ds.count, ds.images.length, Array.from(ds.labels!)], [3, 3 * 784, [7, 2, 1]]);
  });

  await t.step(
    "a folder of official IDX files (plain or gzipped) is read; damage is a DatasetError",
    async () => {
      await withTempDir(async (dir) => {
        await expectDatasetError(
          () => loadMnist({ split: "test", dir }),
          /no file t10k-images-idx3-ubyte/,
          /yann\.lecun\.com/,
        );
        const labels = Array.from({ length: 10000 }, (_, i) => i % 10);
        await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, encodeIdx("uint8", [10000], labels));
        const images = encodeIdx("uint8", [10000, 28, 28], new Uint8Array(10000 * 784).fill(3));
        await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, images.subarray(0, 5000));
        await expectDatasetError(
          () => loadMnist({ split: "test", dir }),
          /t10k-images-idx3-ubyte/,
          /5,000 bytes, expected 7,840,016 bytes/,
          /truncated/,
        );
        await Deno.writeFile(
          `${dir}/t10k-images-idx3-ubyte`,
          encodeIdx("uint8", [9, 28, 28], new Uint8Array(9 * 784)),
        );
        await expectDatasetError(
          () => loadMnist({ split: "test", dir }),
          /9 images .* 10000 labels .* expected as many labels as images/,
        );
        await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, images);
        const ds = await loadMnist({ split: "test", dir });
        assertEquals([ds.count, ds.images[0], ds.labels![13]], [10000, 3, 3]);
      });
    },
  );

  await t.step(
    "<data-dir>/mnist/ with MNIST-format files (raw or gzip) is used instead of the embedded copy",
    async () => {
      await withTempDir(async (dir) => {
        const embedded = await loadDataset("mnist", { dataDir: dir, split: "test" });
        assertEquals(embedded.count, 10000, "no mnist folder: the embedded copy");
        await Deno.mkdir(`${dir}/mnist`);
        // A 5-image "Fashion-MNIST": gzipped images, plain labels.
        const pixels = new Uint8Array(5 * 784).map((_, i) => i % 251);
        await Deno.writeFile(
          `${dir}/mnist/t10k-images-idx3-ubyte.gz`,
          gzipSync(encodeIdx("uint8", [5, 28, 28], pixels)),
        );
        await Deno.writeFile(`${dir}/mnist/t10k-labels-idx1-ubyte`, encodeIdx("uint8", [5], [9, 8, 7, 6, 5]));
        const ds = await loadDataset("mnist", { dataDir: dir, split: "test" });
        assertEquals([ds.count, Array.from(ds.labels!), ds.images[783]], [5, [9, 8, 7, 6, 5], 783 % 251]);
        assertTrue(ds.description.includes(`${dir}/mnist`), ds.description);
        // The same checks as the embedded files: the train split's files are missing here.
        await expectDatasetError(
          () => loadDataset("mnist", { dataDir: dir, split: "train" }),
          /no file train-images-idx3-ubyte \(or train-images-idx3-ubyte\.gz\) in .*\/mnist/,
        );
        await Deno.writeFile(
          `${dir}/mnist/t10k-labels-idx1-ubyte`,
          encodeIdx("uint8", [5], [1, 2, 3, 4, 10]),
        );
        await expectDatasetError(
          () => loadDataset("mnist", { dataDir: dir, split: "test" }),
          /label 10 at index 4 of .*t10k-labels-idx1-ubyte, expected 0–9/,
        );
      });
    },
  );
});
