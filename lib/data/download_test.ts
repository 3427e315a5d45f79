import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { encodeCifarBinary, parseCifarBinary } from "./cifar10.ts";
import {
  downloadDataset,
  type DownloadFile,
  downloadFile,
  extractCifar10,
  OFFICIAL_DOWNLOADS,
} from "./download.ts";
import { DatasetError } from "./errors.ts";
import { encodeNpy } from "./npy.ts";
import { encodeTar } from "./tar.ts";
import { expectDatasetError, withServer, withTempDir } from "./testing_util.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

function spec(name: string, bytes: Uint8Array, extra: Partial<DownloadFile> = {}): DownloadFile {
  return {
    url: `https://example.invalid/files/${name}`,
    dest: name,
    sha256: sha256(bytes),
    md5: null,
    size: bytes.length,
    note: "test fixture",
    ...extra,
  };
}

Deno.test("download", async (t) => {
  const good = new TextEncoder().encode("the real file contents\n".repeat(100));
  const corrupted = good.slice();
  corrupted[17] ^= 1;

  await t.step(
    "a file is fetched, checked by SHA-256 and renamed into place; no temporary file remains",
    async () => {
      await withServer({ "a.bin": good }, async (base) => {
        await withTempDir(async (dir) => {
          const how = await downloadFile(spec("a.bin", good), dir, { baseUrl: base });
          assertEquals(await Deno.readFile(`${dir}/a.bin`), good);
          assertEquals(await listDir(dir), ["a.bin"]);
          assertTrue(/verified by size, SHA-256/.test(how), how);
        });
      });
    },
  );

  await t.step(
    "a corrupted file is rejected by its checksum and leaves nothing at the final path",
    async () => {
      await withServer({ "a.bin": corrupted }, async (base) => {
        await withTempDir(async (dir) => {
          await expectDatasetError(
            () => downloadFile(spec("a.bin", good), dir, { baseUrl: base }),
            /a\.bin/,
            new RegExp(`SHA-256 ${sha256(corrupted)}, expected ${sha256(good)}`),
            /rejected and not kept/,
          );
          assertEquals(await listDir(dir), []);
          // A wrong MD5 and a wrong size are rejected the same way.
          const md5 = createHash("md5").update(good).digest("hex");
          await expectDatasetError(
            () => downloadFile(spec("a.bin", good, { sha256: null, md5 }), dir, { baseUrl: base }),
            /MD5 .* expected/,
          );
          await expectDatasetError(
            () => downloadFile(spec("a.bin", good, { size: good.length + 1 }), dir, { baseUrl: base }),
            /expected 2,301 bytes/,
          );
          assertEquals(await listDir(dir), []);
        });
      });
    },
  );

  await t.step("HTTP errors and an unreachable server are DatasetErrors naming the address", async () => {
    await withServer({}, async (base) => {
      await withTempDir(async (dir) => {
        await expectDatasetError(
          () => downloadFile(spec("x.bin", good), dir, { baseUrl: base }),
          /x\.bin: HTTP 404/,
        );
        assertEquals(await listDir(dir), []);
      });
    });
    // A port nobody listens on any more: the server above has closed.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    await withTempDir(async (dir) => {
      await expectDatasetError(
        () => downloadFile(spec("y.bin", good), dir, { baseUrl: `http://127.0.0.1:${port}` }),
        new RegExp(`Cannot download http://127\\.0\\.0\\.1:${port}/y\\.bin`),
      );
    });
  });

  await t.step(
    "CIFAR-10: the tar.gz is verified, unpacked to cifar-10-batches-bin/, and removed",
    async () => {
      const names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
      ];
      const members = names.map((n, k) => ({
        name: `cifar-10-batches-bin/${n}.bin`,
        data: encodeCifarBinary(new Uint8Array(2 * 3072).fill(k), [k, 9 - k]),
      }));
      members.push({ name: "../escape.bin", data: new Uint8Array(3) });
      const tgz = new Uint8Array(gzipSync(encodeTar(members)));
      const official = OFFICIAL_DOWNLOADS.cifar10.files[0];
      await withServer({ "cifar-10-binary.tar.gz": tgz }, async (base) => {
        await withTempDir(async (dir) => {
          // The official entry's size and checksums reject the fixture.
          await expectDatasetError(
            () => downloadDataset("cifar10", dir, { baseUrl: base }),
            /expected 170,052,171 bytes/,
          );
          assertEquals(await listDir(dir), []);
          const report = await downloadDataset("cifar10", dir, {
            baseUrl: base,
            files: [{ ...official, sha256: sha256(tgz), md5: null, size: tgz.length }],
          });
          assertEquals(await listDir(dir), ["cifar-10-batches-bin"]);
          assertEquals(await listDir(`${dir}/cifar-10-batches-bin`), names.map((n) => `${n}.bin`).sort());
          assertEquals(report.written.length, 6);
          const test = parseCifarBinary(
            await Deno.readFile(`${dir}/cifar-10-batches-bin/test_batch.bin`),
            "t",
          );
          assertEquals(Array.from(test.labels), [5, 4]);
          // The unsafe member "../escape.bin" was not written outside the data folder.
          await expectDatasetError(() =>
            Deno.stat(`${dir}/../escape.bin`).catch(() => {
              throw new DatasetError("absent");
            }), /absent/);
        });
      });
    },
  );

  await t.step("no checksum known: the format parser decides (CelebA 5-bit, official entry)", async () => {
    const goodNpy = encodeNpy("|u1", [2, 4, 4, 3], new Uint8Array(96).fill(31));
    const badNpy = encodeNpy("|u1", [2, 4, 4, 3], new Uint8Array(96).fill(200));
    for (const [bytes, ok] of [[badNpy, false], [goodNpy, true]] as const) {
      await withServer({ "celeba_full_64x64_5bit.npy": bytes }, async (base, hits) => {
        await withTempDir(async (dir) => {
          if (!ok) {
            await expectDatasetError(
              () => downloadDataset("celeba5bit", dir, { baseUrl: base }),
              /format check failed/,
              /value 200/,
            );
            assertEquals(await listDir(`${dir}/celeba`), []);
            return;
          }
          const r = await downloadDataset("celeba5bit", dir, { baseUrl: base });
          assertEquals(r.written, [`${dir}/celeba/celeba_full_64x64_5bit.npy`]);
          assertTrue(/verified by format parser/.test(r.verified[0]), r.verified[0]);
          // Present and valid: a second run fetches nothing.
          const again = await downloadDataset("celeba5bit", dir, { baseUrl: base });
          assertEquals([again.written.length, again.skipped.length, hits.get("celeba_full_64x64_5bit.npy")], [
            0,
            1,
            1,
          ]);
        });
      });
    }
  });

  await t.step("datasets that cannot be fetched say what to do instead", async () => {
    await withTempDir(async (dir) => {
      await expectDatasetError(
        () => downloadDataset("imagenet32", dir),
        /image-net\.org account/,
        /imagenet32\//,
      );
      await expectDatasetError(() => downloadDataset("mnist", dir), /embedded/);
      await expectDatasetError(() => downloadDataset("cifar10-exact", dir), /not downloaded/);
      await expectDatasetError(() => downloadDataset("lsun", dir), /unknown name/);
    });
  });

  await t.step("the table records checksums only where known, and a reason everywhere", () => {
    for (const entry of Object.values(OFFICIAL_DOWNLOADS)) {
      assertTrue(entry.files.length > 0 || entry.manual !== undefined, entry.name);
      for (const f of entry.files) {
        assertTrue(f.sha256 === null || /^[0-9a-f]{64}$/.test(f.sha256), f.url);
        assertTrue(f.md5 === null || /^[0-9a-f]{32}$/.test(f.md5), f.url);
        assertTrue(
          f.sha256 !== null || f.md5 !== null || f.check !== undefined,
          `${f.url} has no verification`,
        );
        assertTrue(f.note.length > 10, f.url);
      }
    }
  });

  await t.step("a server sending more than the expected size is stopped there, nothing kept", async () => {
    // An endless stream without a Content-Length: 64 kB chunks, up to 64 MB.
    let sent = 0;
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      () => {
        let n = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (n++ >= 1024) return c.close();
            sent += 65536;
            c.enqueue(new Uint8Array(65536));
          },
        });
        return new Response(body);
      },
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      await withTempDir(async (dir) => {
        await expectDatasetError(
          () => downloadFile(spec("big.bin", good), dir, { baseUrl: base }),
          /big\.bin: the server sends more than the expected 2,300 bytes; the transfer was stopped at 0 bytes/,
        );
        await expectDatasetError(
          () =>
            downloadFile({ ...spec("big.bin", good), size: null, maxSize: 200_000 }, dir, { baseUrl: base }),
          /more than the expected 200,000 bytes; the transfer was stopped at 196,608 bytes/,
        );
        assertEquals(await listDir(dir), []);
        assertTrue(sent < 8 << 20, `the server sent ${sent} bytes`);
      });
    } finally {
      ac.abort();
      await server.finished;
    }
    // An announced length beyond the expected size: refused before anything is written.
    await withServer({ "a.bin": new Uint8Array(5000) }, async (url) => {
      await withTempDir(async (dir) => {
        await expectDatasetError(
          () => downloadFile(spec("a.bin", good), dir, { baseUrl: url }),
          /the server announces 5,000 bytes, expected 2,300 bytes; nothing was written/,
        );
        assertEquals(await listDir(dir), []);
      });
    });
  });

  await t.step(
    "stale .part files of a killed download are removed on start; live ones are kept",
    async () => {
      await withServer({ "a.bin": good }, async (base) => {
        await withTempDir(async (dir) => {
          const dead = ["a.bin.4194305.0badf00d.part", "b.bin.4194305.part"];
          const live = "a.bin.4194306.0badf00d.part";
          const old = new Date(Date.now() - 60_000);
          for (const n of [...dead, live, "c.part"]) {
            await Deno.writeTextFile(`${dir}/${n}`, "x");
            await Deno.utime(`${dir}/${n}`, old, old);
          }
          // A download in progress in another process holds its .part's lock.
          const other = await Deno.open(`${dir}/${live}`, { write: true });
          await other.lock(true);
          try {
            await downloadFile(spec("a.bin", good), dir, { baseUrl: base });
          } finally {
            other.close();
          }
          assertEquals(await listDir(dir), ["a.bin", live, "c.part"]);
        });
      });
    },
  );

  await t.step("the CIFAR-10 archive inflates only up to its gzip trailer's size and the cap", async () => {
    await withTempDir(async (dir) => {
      const gz = new Uint8Array(gzipSync(new Uint8Array(32 << 20)));
      const v = new DataView(gz.buffer);
      v.setUint32(gz.length - 4, 1000, true);
      await Deno.writeFile(`${dir}/c.tar.gz`, gz);
      await expectDatasetError(
        () => extractCifar10(`${dir}/c.tar.gz`, dir),
        /c\.tar\.gz: it decompresses to more than the 1,000 bytes its gzip trailer declares/,
      );
      v.setUint32(gz.length - 4, 3e9, true);
      await Deno.writeFile(`${dir}/c.tar.gz`, gz);
      await expectDatasetError(
        () => extractCifar10(`${dir}/c.tar.gz`, dir),
        /declares 3,000,000,000 bytes once decompressed, more than the limit of 200,000,000 bytes/,
      );
    });
  });

  await t.step("a server that stops answering fails the transfer after the idle timeout", async () => {
    const ac = new AbortController();
    let answer!: (r: Response) => void;
    const never = new Promise<Response>((r) => (answer = r));
    const streams: ReadableStreamDefaultController<Uint8Array>[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      (req) => {
        if (req.url.endsWith("/silent.bin")) return never;
        // Two chunks, then silence.
        return new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              streams.push(c);
              c.enqueue(new Uint8Array(100));
              c.enqueue(new Uint8Array(100));
            },
          }),
        );
      },
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      await withTempDir(async (dir) => {
        await expectDatasetError(
          () => downloadFile(spec("silent.bin", good), dir, { baseUrl: base, idleTimeoutMs: 300 }),
          /Cannot download .*silent\.bin: no response or data for 0\.3 s \(is the network reachable\?\)/,
        );
        await expectDatasetError(
          () => downloadFile(spec("stalls.bin", good), dir, { baseUrl: base, idleTimeoutMs: 300 }),
          /stalls\.bin: the transfer failed after 200 bytes \(no response or data for 0\.3 s\)/,
        );
        assertEquals(await listDir(dir), []);
      });
    } finally {
      answer(new Response("late"));
      for (const c of streams) {
        try {
          c.close();
        } catch { /* already cancelled by the client */ }
      }
      ac.abort();
      await server.finished;
    }
  });
});
