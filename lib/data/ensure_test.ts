import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { CIFAR10_FILES, encodeCifarBinary, parseCifarBinary } from "./cifar10.ts";
import { type DownloadFile, OFFICIAL_DOWNLOADS } from "./download.ts";
import { type DataStatus, ensureData, fetchCommand, hasDataset, obtainHint } from "./ensure.ts";
import { loadDataset } from "./registry.ts";
import { encodeTar } from "./tar.ts";
import { closedPortUrl, withServer, withTempDir } from "./testing_util.ts";

const ARCHIVE = "cifar-10-binary.tar.gz";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** `n` records with labels cycling from `seed` and a pixel pattern of `seed`. */
function records(n: number, seed: number): Uint8Array {
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7 + seed * 13) & 255;
  return encodeCifarBinary(images, Array.from({ length: n }, (_, i) => (i + seed) % 10));
}

/**
 * A small archive in the official layout (`cifar-10-batches-bin/<batch>.bin`, tar.gz): data_batch_1
 * holds 4,001 records and test_batch 1,001 (enough for the subset), the other batches one each.
 */
function syntheticArchive(): { tgz: Uint8Array; batches: Record<string, Uint8Array> } {
  const batches: Record<string, Uint8Array> = {};
  for (const [k, name] of [...CIFAR10_FILES.train, ...CIFAR10_FILES.test].entries()) {
    const n = name === "data_batch_1.bin" ? 4001 : name === "test_batch.bin" ? 1001 : 1;
    batches[name] = records(n, k);
  }
  const members = Object.entries(batches).map(([name, data]) => ({
    name: `cifar-10-batches-bin/${name}`,
    data,
  }));
  members.push({
    name: "cifar-10-batches-bin/batches.meta.txt",
    data: new TextEncoder().encode("airplane\n"),
  });
  return { tgz: new Uint8Array(gzipSync(encodeTar(members))), batches };
}

/** Runs `fn` with the working folder set to an empty temporary folder (no `../shared` subset there). */
async function inEmptyCwd<T>(fn: () => Promise<T>): Promise<T> {
  const here = Deno.cwd();
  const dir = await Deno.makeTempDir({ prefix: "resflow-ensure-cwd-" });
  Deno.chdir(dir);
  try {
    return await fn();
  } finally {
    Deno.chdir(here);
    await Deno.remove(dir, { recursive: true });
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

function only(statuses: DataStatus[]): DataStatus {
  assertEquals(statuses.length, 1);
  return statuses[0];
}

Deno.test("ensureData", async (t) => {
  const { tgz, batches } = syntheticArchive();
  const official = OFFICIAL_DOWNLOADS.cifar10.files[0];
  // The fixture's own checksums replace the official archive's (and the subset's) for these tests.
  const files: Partial<Record<"cifar10", DownloadFile[]>> = {
    cifar10: [{ ...official, sha256: sha256(tgz), md5: null, size: tgz.length }],
  };
  const exactSha256 = {
    train: sha256(batches["data_batch_1.bin"].subarray(0, 4000 * 3073)),
    test: sha256(batches["test_batch.bin"].subarray(0, 1000 * 3073)),
  };

  await t.step(
    "a missing exact subset: the archive is downloaded, checked, unpacked and the subset derived",
    async () => {
      await inEmptyCwd(() =>
        withServer({ [ARCHIVE]: tgz }, async (base, hits) => {
          await withTempDir(async (dir) => {
            const progress: number[] = [];
            const s = only(
              await ensureData(["cifar10-exact"], {
                dataDir: dir,
                download: true,
                baseUrl: base,
                files,
                exactSha256,
                onProgress: (_f, received) => progress.push(received),
              }),
            );
            assertEquals(s.state, "derived", s.line);
            assertTrue(/derived train_exact_4000\.bin, test_exact_1000\.bin/.test(s.line), s.line);
            assertTrue(/verified by size, SHA-256/.test(s.line), s.line);
            assertEquals(hits.get(ARCHIVE), 1);
            assertEquals(progress.at(-1), tgz.length);
            // The archive is unpacked and removed; the subset holds the first records of the batches.
            assertEquals(await listDir(dir), ["cifar-10-batches-bin", "cifar10-exact"]);
            assertEquals(await listDir(`${dir}/cifar10-exact`), [
              "batches.meta.txt",
              "test_exact_1000.bin",
              "train_exact_4000.bin",
            ]);
            const test = await Deno.readFile(`${dir}/cifar10-exact/test_exact_1000.bin`);
            assertEquals(test, batches["test_batch.bin"].subarray(0, 1000 * 3073));
            const ds = await loadDataset("cifar10-exact", { dataDir: dir, split: "train" });
            assertEquals(ds.count, 4000);
            assertEquals(Array.from(ds.labels!.slice(0, 3)), [0, 1, 2]);

            // Present now: a second call fetches nothing.
            const again = only(
              await ensureData(["cifar10-exact"], { dataDir: dir, download: true, baseUrl: base, files }),
            );
            assertEquals([again.state, hits.get(ARCHIVE)], ["present", 1]);

            // Batches present but the subset gone: it is derived again without any request.
            await Deno.remove(`${dir}/cifar10-exact`, { recursive: true });
            const derived = only(
              await ensureData(["cifar10-exact"], {
                dataDir: dir,
                download: true,
                baseUrl: base,
                files,
                exactSha256,
              }),
            );
            assertEquals([derived.state, hits.get(ARCHIVE)], ["derived", 1]);
            assertTrue(/from the official batches in/.test(derived.line), derived.line);
          });
        })
      );
    },
  );

  await t.step("batches that are not the official ones: no subset, and the line says why", async () => {
    await inEmptyCwd(() =>
      withServer({ [ARCHIVE]: tgz }, async (base) => {
        await withTempDir(async (dir) => {
          // The reference SHA-256 of the real subset rejects the synthetic batches.
          const s = only(
            await ensureData(["cifar10-exact"], { dataDir: dir, download: true, baseUrl: base, files }),
          );
          assertEquals(s.state, "missing");
          assertTrue(
            /could not be fetched \(Cannot derive .*SHA-256 .* expected 0993cf8b/.test(s.line),
            s.line,
          );
          assertEquals(await listDir(`${dir}/cifar10-exact`), []);
          assertTrue(!s.line.includes("\n"), "one line");
        });
      })
    );
  });

  await t.step("downloads off: nothing is requested and the line names the one command", async () => {
    await inEmptyCwd(() =>
      withServer({ [ARCHIVE]: tgz }, async (base, hits) => {
        await withTempDir(async (dir) => {
          const out = await ensureData(["mnist", "cifar10-exact", "cifar10", "mnist"], {
            dataDir: dir,
            download: false,
            baseUrl: base,
            files,
          });
          assertEquals(out.map((s) => [s.name, s.state]), [
            ["mnist", "embedded"],
            ["cifar10-exact", "missing"],
            ["cifar10", "missing"],
          ]);
          assertEquals(
            out[1].line,
            `CIFAR-10 exact subset: not in ${dir}/cifar10-exact and downloading is off; ` +
              `fetch it with \`deno task data cifar10-exact --data-dir ${dir}\``,
          );
          assertTrue(
            out[2].line.endsWith(`fetch it with \`deno task data cifar10 --data-dir ${dir}\``),
            out[2].line,
          );
          assertEquals(hits.size, 0);
          assertEquals(await listDir(dir), []);
        });
      })
    );
  });

  await t.step("an unreachable server: the line names the address, the network and the command", async () => {
    await inEmptyCwd(async () => {
      const base = closedPortUrl();
      await withTempDir(async (dir) => {
        const s = only(
          await ensureData(["cifar10-exact"], { dataDir: dir, download: true, baseUrl: base, files }),
        );
        assertEquals(s.state, "missing");
        assertTrue(
          s.line.startsWith(
            `CIFAR-10 exact subset: not in ${dir}/cifar10-exact and could not be fetched (Cannot download ${base}/${ARCHIVE}: `,
          ),
          s.line,
        );
        assertTrue(/is the network reachable\?/.test(s.line), s.line);
        assertTrue(
          s.line.endsWith(`fetch it with \`deno task data cifar10-exact --data-dir ${dir}\``),
          s.line,
        );
        assertEquals(await listDir(dir), []);
      });
    });
  });

  await t.step("ImageNet is never fetched: the line says where to get it", async () => {
    await withServer({}, async (base, hits) => {
      await withTempDir(async (dir) => {
        const out = await ensureData(["imagenet32", "imagenet64"], {
          dataDir: dir,
          download: true,
          baseUrl: base,
        });
        for (const s of out) {
          assertEquals(s.state, "missing");
          assertTrue(/never downloaded automatically: .*image-net\.org account/.test(s.line), s.line);
          assertTrue(s.line.includes(`Put the .npz files in <data-dir>/${s.name}/`), s.line);
        }
        assertEquals(hits.size, 0);
        assertEquals(fetchCommand("imagenet32", dir), null);
      });
    });
  });

  await t.step("the command names --data-dir only for a folder other than the default, quoted", () => {
    assertEquals(fetchCommand("cifar10-exact", "data"), "deno task data cifar10-exact");
    assertEquals(fetchCommand("svhn", "/my data/x"), "deno task data svhn --data-dir '/my data/x'");
    assertEquals(fetchCommand("mnist", "data"), null);
    assertTrue(/embedded/.test(obtainHint("mnist")), obtainHint("mnist"));
  });

  await t.step("presence: the official batches count as CIFAR-10 only when all six are there", async () => {
    await withTempDir(async (dir) => {
      assertEquals(await hasDataset("cifar10", dir), false);
      await Deno.mkdir(`${dir}/cifar-10-batches-bin`);
      for (const [name, bytes] of Object.entries(batches)) {
        parseCifarBinary(bytes, name);
        await Deno.writeFile(`${dir}/cifar-10-batches-bin/${name}`, bytes);
      }
      assertEquals(await hasDataset("cifar10", dir), true);
      await Deno.remove(`${dir}/cifar-10-batches-bin/data_batch_3.bin`);
      assertEquals(await hasDataset("cifar10", dir), false);
      assertEquals(await hasDataset("mnist", dir), true);
    });
  });
});
