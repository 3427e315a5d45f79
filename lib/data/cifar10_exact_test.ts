import { createHash } from "node:crypto";
import { assertEquals } from "../testing/asserts.ts";
import { CIFAR10_BATCH_RECORDS, CIFAR10_RECORD_BYTES, encodeCifarBinary } from "./cifar10.ts";
import {
  CIFAR10_EXACT_META,
  CIFAR10_EXACT_SHA256,
  CIFAR10_EXACT_SOURCE_BATCH,
  deriveCifar10Exact,
} from "./cifar10_exact.ts";
import { resolveDataDir } from "./registry.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

/** The project's reference copy of the subset (absent in a user's clone). */
const SHARED_EXACT = new URL("../../../shared/data/cifar10-exact", import.meta.url).pathname;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort();
}

/** `records` filler records (labels cycle 0–9, pixels a pattern), distinct from any real image run. */
function filler(records: number, seed: number): Uint8Array {
  const images = new Uint8Array(records * 3072);
  for (let i = 0; i < images.length; i++) images[i] = (i * 31 + seed) & 255;
  return encodeCifarBinary(images, Array.from({ length: records }, (_, i) => (i + seed) % 10));
}

/** A full official-size batch (10,000 records) whose first records are `head`. */
function batchWithHead(head: Uint8Array, seed: number): Uint8Array {
  const out = new Uint8Array(CIFAR10_BATCH_RECORDS * CIFAR10_RECORD_BYTES);
  out.set(head);
  out.set(filler(CIFAR10_BATCH_RECORDS - head.length / CIFAR10_RECORD_BYTES, seed), head.length);
  return out;
}

Deno.test("cifar10 exact subset derivation", async (t) => {
  const sharedTrain = await readOrNull(`${SHARED_EXACT}/train_exact_4000.bin`);
  const sharedTest = await readOrNull(`${SHARED_EXACT}/test_exact_1000.bin`);
  const sharedMeta = await readOrNull(`${SHARED_EXACT}/batches.meta.txt`);

  await t.step("the recorded SHA-256 values are those of the reference copy", () => {
    if (!sharedTrain || !sharedTest || !sharedMeta) {
      console.log(`  skipped: no reference copy at ${SHARED_EXACT} (a user's clone has none)`);
      return;
    }
    assertEquals([sha256(sharedTrain), sha256(sharedTest)], [
      CIFAR10_EXACT_SHA256.train,
      CIFAR10_EXACT_SHA256.test,
    ]);
    assertEquals(new TextDecoder().decode(sharedMeta), CIFAR10_EXACT_META);
  });

  await t.step(
    "official-layout batches holding the real records at indices 0.. give bit-identical files",
    async () => {
      if (!sharedTrain || !sharedTest || !sharedMeta) {
        console.log(`  skipped: no reference copy at ${SHARED_EXACT} to build the batches from`);
        return;
      }
      await withTempDir(async (dir) => {
        const folder = `${dir}/cifar-10-batches-bin`;
        await Deno.mkdir(folder);
        await Deno.writeFile(`${folder}/${CIFAR10_EXACT_SOURCE_BATCH.train}`, batchWithHead(sharedTrain, 1));
        await Deno.writeFile(`${folder}/${CIFAR10_EXACT_SOURCE_BATCH.test}`, batchWithHead(sharedTest, 2));
        const written = await deriveCifar10Exact(dir);
        assertEquals(written.map((p) => p.slice(dir.length + 1)), [
          "cifar10-exact/train_exact_4000.bin",
          "cifar10-exact/test_exact_1000.bin",
          "cifar10-exact/batches.meta.txt",
        ]);
        assertEquals(await Deno.readFile(`${dir}/cifar10-exact/train_exact_4000.bin`), sharedTrain);
        assertEquals(await Deno.readFile(`${dir}/cifar10-exact/test_exact_1000.bin`), sharedTest);
        assertEquals(await Deno.readFile(`${dir}/cifar10-exact/batches.meta.txt`), sharedMeta);
        // No temporary file is left beside them.
        assertEquals(await listDir(`${dir}/cifar10-exact`), [
          "batches.meta.txt",
          "test_exact_1000.bin",
          "train_exact_4000.bin",
        ]);
      });
    },
  );

  await t.step(
    "the real official batches, when the data folder holds them, give bit-identical files",
    async () => {
      const dataDir = resolveDataDir();
      const batch = `${dataDir}/cifar-10-batches-bin/${CIFAR10_EXACT_SOURCE_BATCH.train}`;
      if ((await readOrNull(batch)) === null) {
        console.log(
          `  skipped: the official CIFAR-10 batches are not in ${dataDir}/cifar-10-batches-bin ` +
            "(fetch them with `deno task data cifar10`, or set RESFLOW_DATA_DIR)",
        );
        return;
      }
      await withTempDir(async (out) => {
        await deriveCifar10Exact(dataDir, { outDir: out });
        assertEquals(sha256(await Deno.readFile(`${out}/train_exact_4000.bin`)), CIFAR10_EXACT_SHA256.train);
        assertEquals(sha256(await Deno.readFile(`${out}/test_exact_1000.bin`)), CIFAR10_EXACT_SHA256.test);
        if (sharedTrain) assertEquals(await Deno.readFile(`${out}/train_exact_4000.bin`), sharedTrain);
        if (sharedTest) assertEquals(await Deno.readFile(`${out}/test_exact_1000.bin`), sharedTest);
      });
    },
  );

  await t.step("batches that are not the official ones are refused and nothing is written", async () => {
    await withTempDir(async (dir) => {
      const folder = `${dir}/cifar-10-batches-bin`;
      await Deno.mkdir(folder);
      const train = filler(4000, 3);
      const test = filler(1000, 4);
      await Deno.writeFile(`${folder}/data_batch_1.bin`, train);
      await Deno.writeFile(`${folder}/test_batch.bin`, test);
      await expectDatasetError(
        () => deriveCifar10Exact(dir),
        /Cannot derive .*train_exact_4000\.bin/,
        new RegExp(`SHA-256 ${sha256(train)}, expected ${CIFAR10_EXACT_SHA256.train}`),
        /not the official batch \(nothing was written\)/,
      );
      assertEquals(await listDir(`${dir}/cifar10-exact`), []);
      // The expected values are injectable: the same batches pass with their own hashes.
      const own = { train: sha256(train), test: sha256(test) };
      await deriveCifar10Exact(dir, { sha256: own });
      assertEquals(await Deno.readFile(`${dir}/cifar10-exact/test_exact_1000.bin`), test);
      // A batch shorter than the subset is named with its size.
      await Deno.writeFile(`${folder}/test_batch.bin`, filler(999, 4));
      await expectDatasetError(
        () => deriveCifar10Exact(dir, { outDir: `${dir}/other`, sha256: own }),
        /test_batch\.bin holds 3,069,927 bytes, expected at least 3,073,000 bytes \(1000 records\)/,
      );
      assertEquals(await listDir(`${dir}/other`), []);
      // No batches at all: the official source is named.
      await Deno.remove(folder, { recursive: true });
      await expectDatasetError(() => deriveCifar10Exact(dir), /cifar-10-batches-bin/, /cifar\.html/);
    });
  });
});
