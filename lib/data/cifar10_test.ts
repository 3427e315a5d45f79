import { assertEquals, assertTrue } from "../testing/asserts.ts";
import {
  CIFAR10_EXACT_NAME,
  encodeCifarBinary,
  loadCifar10,
  loadCifar10Exact,
  parseCifarBinary,
} from "./cifar10.ts";
import { loadDataset } from "./registry.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

/** Where the project's shared exact subset lives on developer machines (absent in a user's clone). */
const EXACT_DIR = new URL("../../../shared/data/cifar10-exact", import.meta.url).pathname;
/** SHA-256 of the subset files as recorded in its SOURCE.md. */
const EXACT_SHA256: Record<string, string> = {
  "train_exact_4000.bin": "0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330",
  "test_exact_1000.bin": "8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5",
};

function fakeImages(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n * 3072);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + seed * 13) & 255;
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("cifar10", async (t) => {
  await t.step("binary records round trip: label byte, then R, G, B planes", () => {
    const images = fakeImages(3, 1);
    const bytes = encodeCifarBinary(images, [0, 9, 4]);
    assertEquals(bytes.length, 3 * 3073);
    assertEquals([bytes[0], bytes[3073], bytes[1], bytes[1 + 1024]], [0, 9, images[0], images[1024]]);
    const rec = parseCifarBinary(bytes, "x.bin");
    assertEquals(Array.from(rec.labels), [0, 9, 4]);
    assertEquals(rec.images, images);
  });

  await t.step("a fixture folder in the official layout loads both splits, with limit", async () => {
    await withTempDir(async (dir) => {
      const folder = `${dir}/cifar-10-batches-bin`;
      await Deno.mkdir(folder);
      const names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
      ];
      for (const [k, name] of names.entries()) {
        const labels = Array.from({ length: 10000 }, (_, i) => (i + k) % 10);
        await Deno.writeFile(`${folder}/${name}.bin`, encodeCifarBinary(fakeImages(10000, k), labels));
      }
      const train = await loadCifar10(dir);
      assertEquals([train.count, train.shape, train.labels![0], train.labels![10000]], [
        50000,
        [3, 32, 32],
        0,
        1,
      ]);
      assertEquals(train.images.subarray(40000 * 3072, 40001 * 3072), fakeImages(1, 4));
      const test = await loadDataset("cifar10", { dataDir: dir, split: "test" });
      assertEquals([test.count, test.labels![0], test.name], [10000, 5, "CIFAR-10"]);
      // The folder itself may be given, and limit stops early.
      const few = await loadCifar10(folder, { limit: 10001 });
      assertEquals([few.count, few.files.length], [10001, 2]);
    });
  });

  await t.step("empty folder, truncated batch, wrong size and bad labels are DatasetErrors", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(
        () => loadCifar10(dir),
        /no folder .*cifar-10-batches-bin/,
        /cs\.toronto\.edu\/~kriz\/cifar\.html/,
      );
      const folder = `${dir}/cifar-10-batches-bin`;
      await Deno.mkdir(folder);
      await expectDatasetError(
        () => loadCifar10(dir, { split: "test" }),
        /test_batch\.bin: no such file/,
        /cifar\.html/,
      );
      const full = encodeCifarBinary(fakeImages(10000, 0), new Array(10000).fill(3));
      await Deno.writeFile(`${folder}/test_batch.bin`, full.subarray(0, 3073 * 9999 + 100));
      await expectDatasetError(
        () => loadCifar10(dir, { split: "test" }),
        /test_batch\.bin/,
        /expected 30,730,000 bytes \(10000 records of 3073 bytes\)/,
        /truncated/,
      );
      await Deno.writeFile(`${folder}/test_batch.bin`, full.subarray(0, 3073 * 5000));
      await expectDatasetError(
        () => loadCifar10(dir, { split: "test" }),
        /15,365,000 bytes, expected 30,730,000/,
      );
      const bad = full.slice();
      bad[3073 * 7] = 42;
      await Deno.writeFile(`${folder}/test_batch.bin`, bad);
      await expectDatasetError(
        () => loadCifar10(dir, { split: "test" }),
        /record 7 .* label 42, expected 0–9/,
      );
      await Deno.remove(`${folder}/test_batch.bin`);
      await Deno.mkdir(`${folder}/test_batch.bin`);
      await expectDatasetError(() => loadCifar10(dir, { split: "test" }), /is a folder/);
    });
  });

  await t.step("the exact subset: explicit folder, record counts, errors", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(
        () => loadCifar10Exact(dir),
        /train_exact_4000\.bin: no such file/,
        /cifar\.html/,
      );
      await Deno.writeFile(
        `${dir}/train_exact_4000.bin`,
        encodeCifarBinary(fakeImages(3999, 0), new Array(3999).fill(1)),
      );
      await expectDatasetError(
        () => loadCifar10Exact(dir),
        /expected 12,292,000 bytes \(4000 records/,
        /truncated/,
      );
      await Deno.writeFile(
        `${dir}/test_exact_1000.bin`,
        encodeCifarBinary(fakeImages(1000, 2), new Array(1000).fill(8)),
      );
      const ds = await loadDataset("cifar10-exact", { dir, split: "test" });
      assertEquals([ds.count, ds.name, ds.labels![999]], [1000, CIFAR10_EXACT_NAME, 8]);
    });
  });

  await t.step("the real exact subset loads and matches SOURCE.md (skipped without ../shared)", async () => {
    if (!(await exists(EXACT_DIR))) {
      console.log(`skipped: ${EXACT_DIR} is absent (a user's clone has no ../shared)`);
      return;
    }
    for (const [file, sum] of Object.entries(EXACT_SHA256)) {
      assertEquals(await sha256(await Deno.readFile(`${EXACT_DIR}/${file}`)), sum, `SHA-256 of ${file}`);
    }
    const train = await loadCifar10Exact(EXACT_DIR, { split: "train" });
    const test = await loadCifar10Exact(EXACT_DIR, { split: "test" });
    assertEquals([train.count, test.count], [4000, 1000]);
    assertEquals(train.name, "CIFAR-10 exact subset (4k train / 1k test)");
    // The published first labels of data_batch_1 and test_batch.
    assertEquals(Array.from(train.labels!.subarray(0, 10)), [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    assertEquals(Array.from(test.labels!.subarray(0, 10)), [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    const counts = new Array(10).fill(0);
    for (const l of test.labels!) counts[l]++;
    assertTrue(counts.every((c) => c > 70 && c < 130), `test class counts ${counts}`);
  });
});
