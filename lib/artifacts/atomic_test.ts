import { assertEquals, assertRejects, assertThrows, assertTrue } from "../testing/asserts.ts";
import {
  findNonFinite,
  removeStaleTemps,
  STALE_TEMP_AGE_MS,
  tempNameFor,
  writeFileAtomic,
  writeFileAtomicSync,
  writeJsonAtomic,
} from "./atomic.ts";

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("writeFileAtomic", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "atomic_test_" });
  try {
    await t.step("writes bytes and text, creating parent directories", async () => {
      const p = `${dir}/a/b/c.bin`;
      await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
      assertEquals([...await Deno.readFile(p)], [1, 2, 3]);
      await writeFileAtomic(p, "héllo");
      assertEquals(await Deno.readTextFile(p), "héllo");
      assertEquals(listDir(`${dir}/a/b`), ["c.bin"]);
    });

    await t.step("writes chunks from a generator", async () => {
      const p = `${dir}/gen.bin`;
      async function* chunks() {
        yield new Uint8Array([1]);
        yield new Uint8Array([2, 3]);
      }
      await writeFileAtomic(p, chunks());
      assertEquals([...await Deno.readFile(p)], [1, 2, 3]);
    });

    await t.step("a generator that throws mid-write keeps the old file and leaves no temp file", async () => {
      const p = `${dir}/keep.txt`;
      await writeFileAtomic(p, "old content");
      function* failing() {
        yield new TextEncoder().encode("new con");
        throw new Error("simulated crash");
      }
      await assertRejects(() => writeFileAtomic(p, failing()), /Cannot write .*keep\.txt: simulated crash/);
      assertEquals(await Deno.readTextFile(p), "old content");
      assertEquals(listDir(dir).filter((n) => n.endsWith(".tmp")), []);
    });

    await t.step("an unreplaceable target (a directory) keeps it and leaves no temp file", async () => {
      const p = `${dir}/target_is_dir`;
      await Deno.mkdir(`${p}/inner`, { recursive: true });
      await assertRejects(() => writeFileAtomic(p, "x"), /Cannot write .*target_is_dir/);
      assertTrue((await Deno.stat(`${p}/inner`)).isDirectory);
      assertEquals(listDir(dir).filter((n) => n.endsWith(".tmp")), []);
    });

    await t.step("a parent that is a file gives a clear error", async () => {
      await writeFileAtomic(`${dir}/plain`, "x");
      await assertRejects(
        () => writeFileAtomic(`${dir}/plain/child.json`, "y"),
        /Cannot write .*cannot create its directory/,
      );
    });

    await t.step("sync variant: writes, and keeps the old file on failure", () => {
      const p = `${dir}/sync.txt`;
      writeFileAtomicSync(p, "one");
      assertEquals(Deno.readTextFileSync(p), "one");
      Deno.mkdirSync(`${dir}/sync_dir/x`, { recursive: true });
      assertThrows(() => writeFileAtomicSync(`${dir}/sync_dir`, "two"), /Cannot write .*sync_dir/);
      assertEquals(listDir(dir).filter((n) => n.endsWith(".tmp")), []);
    });

    await t.step("writeJsonAtomic writes pretty JSON and refuses non-finite numbers", async () => {
      const p = `${dir}/v.json`;
      await writeJsonAtomic(p, { a: 1, b: [1, 2] });
      assertEquals(await Deno.readTextFile(p), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}\n');
      await assertRejects(
        () => writeJsonAtomic(p, { a: 1, list: [0, NaN] }),
        /\$\.list\[1\] is not a finite number/,
      );
      assertEquals(JSON.parse(await Deno.readTextFile(p)), { a: 1, b: [1, 2] });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findNonFinite", async (t) => {
  await t.step("finds the path of NaN and Infinity, null when all finite", () => {
    assertEquals(findNonFinite({ a: [1, { b: Infinity }] }), "$.a[1].b");
    assertEquals(findNonFinite({ "odd key": -Infinity }), '$["odd key"]');
    assertEquals(findNonFinite({ a: [1, 2], s: "NaN", n: null }), null);
  });
});

Deno.test("removeStaleTemps", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "atomic_stale_test_" });
  try {
    await t.step(
      "removes unlocked temporaries of other processes; keeps locked, fresh, ours, others",
      async () => {
        const old = new Date(Date.now() - 2 * STALE_TEMP_AGE_MS);
        const dead = `${dir}/.checkpoint.safetensors.4194305.1a2b3c.tmp`; // its writer was killed
        const live = `${dir}/.summary.json.4194306.ff00.tmp`; // its writer holds the lock
        const fresh = `${dir}/.fresh.json.4194307.abc.tmp`; // just closed, about to be renamed
        const ours = tempNameFor(`${dir}/x.json`);
        const other = `${dir}/notes.4194305.tmp`; // not of our naming (no leading dot)
        for (const p of [dead, live, fresh, ours, other]) await Deno.writeTextFile(p, "x");
        for (const p of [dead, live, ours, other]) await Deno.utime(p, old, old);
        const writer = await Deno.open(live, { write: true });
        await writer.lock(true);
        try {
          assertEquals(await removeStaleTemps(dir), [dead]);
        } finally {
          writer.close();
        }
        assertEquals(listDir(dir), [ours, live, fresh, other].map((p) => p.slice(dir.length + 1)).sort());
        assertEquals(await removeStaleTemps(`${dir}/missing`), []);
      },
    );

    await t.step("a write in progress holds its temporary file's lock", async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      async function* slow() {
        yield new Uint8Array([1]);
        await gate;
        yield new Uint8Array([2]);
      }
      const writing = writeFileAtomic(`${dir}/slow.bin`, slow());
      await new Promise((r) => setTimeout(r, 50));
      const tmp = listDir(dir).find((n) => n.startsWith(".slow.bin."))!;
      const f = await Deno.open(`${dir}/${tmp}`, { read: true });
      try {
        assertEquals(await f.tryLock(true), false);
      } finally {
        f.close();
      }
      release();
      await writing;
      assertEquals(Array.from(await Deno.readFile(`${dir}/slow.bin`)), [1, 2]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
