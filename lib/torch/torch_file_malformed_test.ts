import { encodeZip, listZip, readZipEntry } from "../data/zip.ts";
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { unpickle } from "./pickle.ts";
import { CHECKPOINTS, concat, expectTorchError, PickleWriter, tensorPickle, u64 } from "./testing_util.ts";
import { parseTorchFile, readTorchFile } from "./torch_file.ts";
import type { TorchTensor, TorchValue } from "./values.ts";

const GOLDEN_ZIP = await Deno.readFile(CHECKPOINTS + "golden_zip_p2.pth");
const GOLDEN_LEGACY = await Deno.readFile(CHECKPOINTS + "golden_legacy_p2.pth");

/** Offsets of a legacy file's pickles: end of the sys info, object pickle and key list. */
function legacyLayout(bytes: Uint8Array) {
  let end = 0;
  const ends: number[] = [];
  for (let i = 0; i < 3; i++) ends.push(end = unpickle(bytes, { source: "x", start: end }).end);
  // The object pickle needs persistent ids resolved: any value will do to find its end.
  ends.push(end = unpickle(bytes, { source: "x", start: end, persistentLoad: () => null }).end);
  ends.push(unpickle(bytes, { source: "x", start: end }).end);
  return { prefixEnd: ends[2], objectEnd: ends[3], keysEnd: ends[4] };
}

/** A legacy file: the golden file's three header pickles, then `object`, a key list, and storages. */
function legacyFile(object: Uint8Array, keys: string[], storages: Uint8Array[]): Uint8Array {
  const prefix = GOLDEN_LEGACY.subarray(0, legacyLayout(GOLDEN_LEGACY).prefixEnd);
  const w = new PickleWriter().proto(2).raw(0x5d).mark(); // EMPTY_LIST MARK
  for (const k of keys) w.str(k);
  return concat(prefix, object, w.raw(0x65).stop().bytes(), ...storages); // APPENDS STOP
}

/** A ZIP checkpoint with `archive/data.pkl` = `pkl` and the given storages. */
function zipFile(pkl: Uint8Array, storages: Record<string, Uint8Array>, extra: Record<string, string> = {}) {
  return encodeZip([
    { name: "archive/data.pkl", data: pkl },
    ...Object.entries(extra).map(([k, v]) => ({ name: `archive/${k}`, data: new TextEncoder().encode(v) })),
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
  ]);
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

Deno.test("torch file: malformed and hostile inputs are clear errors", async (t) => {
  await t.step("hand-made files in both formats read (the helpers below are sound)", () => {
    const pkl = tensorPickle({ numel: 4, size: [2, 2], stride: [1, 2] });
    const z = parseTorchFile(zipFile(pkl, { "0": f32(1, 2, 3, 4) }), "ok.pth").root as Map<
      string,
      TorchValue
    >;
    assertEquals((z.get("t") as TorchTensor).data, new Float32Array([1, 3, 2, 4]));
    const legacy = legacyFile(pkl, ["0"], [u64(4n), f32(1, 2, 3, 4)]);
    const l = parseTorchFile(legacy, "ok_legacy.pth").root as Map<string, TorchValue>;
    assertEquals((l.get("t") as TorchTensor).data, new Float32Array([1, 3, 2, 4]));
  });

  await t.step("storages saved from a GPU (torch.cuda.HalfStorage, 'cuda:0') read as on the CPU", () => {
    const pkl = tensorPickle({
      storageModule: "torch.cuda",
      storageType: "HalfStorage",
      location: "cuda:0",
      numel: 2,
      size: [2],
      stride: [1],
    });
    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc100]).buffer); // 1, -2.5
    const z = parseTorchFile(zipFile(pkl, { "0": half }), "gpu.pth").root as Map<string, TorchValue>;
    const t = z.get("t") as TorchTensor;
    assertEquals([t.dtype, t.data], ["float16", new Float32Array([1, -2.5])]);
  });

  await t.step("a storage pickled by torch.storage._load_from_bytes is refused clearly", async () => {
    const pkl = new PickleWriter().proto(2).global("torch.storage", "_load_from_bytes").mark().raw(0x43, 1, 0)
      .tuple().reduce().stop().bytes();
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, {}), "lfb.pth"),
      /^Cannot read lfb\.pth \(archive\/data\.pkl\): it holds a storage pickled by torch\.storage\._load_from_bytes/,
    );
  });

  await t.step("empty, missing, non-checkpoint, tar and other ZIP files", async () => {
    await expectTorchError(
      () => parseTorchFile(new Uint8Array(0), "empty.pth"),
      /^Cannot read empty\.pth: the file is empty/,
    );
    await expectTorchError(
      () => readTorchFile("/nonexistent/model.pth"),
      /^Cannot read \/nonexistent\/model\.pth: no such file/,
    );
    await expectTorchError(
      () => parseTorchFile(new TextEncoder().encode("hello, world\n"), "notes.txt"),
      /^Cannot read notes\.txt: it starts with bytes \[68 65 6c 6c 6f 2c 20 77\].*not a checkpoint/,
    );
    const tar = new Uint8Array(1024);
    tar.set(new TextEncoder().encode("ustar"), 257);
    await expectTorchError(
      () => parseTorchFile(tar, "old.pth"),
      /^Cannot read old\.pth: it is a tar archive/,
    );
    const other = encodeZip([{ name: "a.txt", data: new Uint8Array(3) }]);
    await expectTorchError(
      () => parseTorchFile(other, "a.zip"),
      /^Cannot read a\.zip: .*0 data\.pkl entries \(a\.txt\)/,
    );
    const plain = new PickleWriter().proto(2).dict().stop().bytes();
    await expectTorchError(
      () => parseTorchFile(plain, "p.pkl"),
      /^Cannot read p\.pkl: .*a dict of 0 items, not the magic/,
    );
  });

  await t.step("truncated ZIP checkpoints, at several offsets, and a damaged byte", async () => {
    for (const n of [4, 100, 1000, GOLDEN_ZIP.length >> 1, GOLDEN_ZIP.length - 22, GOLDEN_ZIP.length - 1]) {
      await expectTorchError(
        () => parseTorchFile(GOLDEN_ZIP.subarray(0, n), "cut.pth"),
        /^Cannot read cut\.pth: it starts as a ZIP archive .* but has no end-of-central-directory record/,
        /the file is truncated/,
      );
    }
    const entry = listZip(GOLDEN_ZIP).find((e) => e.name.endsWith("/data/0"))!;
    const v = new DataView(GOLDEN_ZIP.buffer);
    const dataStart = entry.localOffset + 30 + v.getUint16(entry.localOffset + 26, true) +
      v.getUint16(entry.localOffset + 28, true);
    const bad = GOLDEN_ZIP.slice();
    bad[dataStart + 1] ^= 1; // one bit of storage 0
    await expectTorchError(
      () => parseTorchFile(bad, "bad.pth"),
      /^Cannot read bad\.pth \(entry golden_zip_p2\/data\/0\): CRC-32 \w+, expected \w+; the archive is damaged/,
    );
  });

  await t.step("truncated legacy checkpoints, at several offsets", async () => {
    const { prefixEnd, objectEnd, keysEnd } = legacyLayout(GOLDEN_LEGACY);
    const cuts = [
      1,
      5,
      12,
      prefixEnd - 1,
      prefixEnd + 10,
      objectEnd - 1,
      keysEnd - 1,
      keysEnd + 4,
      keysEnd + 12,
    ];
    for (const n of [...cuts, GOLDEN_LEGACY.length - 1]) {
      await expectTorchError(
        () => parseTorchFile(GOLDEN_LEGACY.subarray(0, n), "cut_legacy.pth"),
        /^Cannot read cut_legacy\.pth/,
        /truncated/,
      );
    }
  });

  await t.step("a storage missing or of the wrong size (ZIP)", async () => {
    const pkl = tensorPickle({ numel: 4, size: [4], stride: [1] });
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, { "1": f32(1, 2, 3, 4) }), "nokey.pth"),
      /^Cannot read nokey\.pth: storage 0 \(named at pickle byte \d+\) has no entry archive\/data\/0/,
    );
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, { "0": f32(1, 2, 3) }), "short.pth"),
      /^Cannot read short\.pth: storage 0 holds 12 bytes, expected 16 \(4 float32 elements\)/,
    );
  });

  await t.step("a view beyond its storage, and an unsupported storage type", async () => {
    const pkl = tensorPickle({ numel: 4, offset: 2, size: [3], stride: [1] });
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, { "0": f32(1, 2, 3, 4) }), "view.pth"),
      /^Cannot read view\.pth \(archive\/data\.pkl\) \(tensor over storage 0, pickle byte \d+\): its view \(offset 2, sizes \[3\], strides \[1\]\) reaches element 4 but its float32 storage holds 4 elements/,
    );
    const complex = tensorPickle({ storageType: "ComplexFloatStorage", numel: 1, size: [1], stride: [1] });
    await expectTorchError(
      () => parseTorchFile(zipFile(complex, { "0": f32(1, 2) }), "c.pth"),
      /storage type torch\.ComplexFloatStorage is not supported/,
    );
  });

  await t.step("counts claiming 2^40 elements fail fast without allocating", async () => {
    const before = Deno.memoryUsage().rss;
    const t0 = performance.now();
    // A persistent id claiming a 2^40-element storage.
    const pid = tensorPickle({ numel: 2n ** 40n, size: [4], stride: [1] });
    await expectTorchError(
      () => parseTorchFile(zipFile(pid, { "0": f32(1, 2, 3, 4) }), "huge.pth"),
      /^Cannot read huge\.pth \(archive\/data\.pkl\): storage 0 claims 1099511627776 float32 elements .*more than the whole file/,
    );
    // Sizes of 2^20 x 2^20 over a 4-element storage with stride 0.
    const expand = tensorPickle({ numel: 4, size: [1 << 20, 1 << 20], stride: [0, 0] });
    await expectTorchError(
      () => parseTorchFile(zipFile(expand, { "0": f32(1, 2, 3, 4) }), "expand.pth"),
      /make 1099511627776 float32 elements .* more than the \d+ bytes a tensor of this file may take/,
    );
    // The 8-byte element count of a legacy storage set to 2^40.
    const { keysEnd } = legacyLayout(GOLDEN_LEGACY);
    const legacy = GOLDEN_LEGACY.slice();
    legacy.set(u64(2n ** 40n), keysEnd);
    await expectTorchError(
      () => parseTorchFile(legacy, "huge_legacy.pth"),
      new RegExp(
        `^Cannot read huge_legacy\\.pth: storage \\S+ at byte ${keysEnd} claims 1099511627776 \\w+ elements`,
      ),
      /only \d+ bytes remain; the file is truncated or damaged/,
    );
    const ms = performance.now() - t0;
    assertTrue(ms < 2000, `took ${ms} ms`);
    assertTrue(Deno.memoryUsage().rss - before < 64 << 20, "no large allocation");
  });

  await t.step(
    "legacy: wrong element count, a key listed but never named, a storage named but absent",
    async () => {
      const pkl = tensorPickle({ key: "k1", numel: 4, size: [4], stride: [1] });
      await expectTorchError(
        () => parseTorchFile(legacyFile(pkl, ["k1"], [u64(3n), f32(1, 2, 3, 4)]), "count.pth"),
        /^Cannot read count\.pth: storage k1 at byte \d+ holds 3 elements, but the object pickle says 4/,
      );
      await expectTorchError(
        () => parseTorchFile(legacyFile(pkl, ["k2"], [u64(4n), f32(1, 2, 3, 4)]), "keys.pth"),
        /^Cannot read keys\.pth: storage k2 is listed at byte \d+ but the object pickle never names it/,
      );
      await expectTorchError(
        () => parseTorchFile(legacyFile(pkl, [], []), "absent.pth"),
        /^Cannot read absent\.pth: storage k1 \(named at pickle byte \d+\) has no data in the file/,
      );
    },
  );

  await t.step("big-endian files are refused in both formats", async () => {
    const pkl = tensorPickle({ numel: 1, size: [1], stride: [1] });
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, { "0": f32(1) }, { byteorder: "big" }), "be.pth"),
      /^Cannot read be\.pth: its archive\/byteorder says "big", expected "little"/,
    );
    const little = parseTorchFile(zipFile(pkl, { "0": f32(1) }, { byteorder: "little" }), "le.pth");
    assertEquals(little.format, "zip");
    const prefixEnd = legacyLayout(GOLDEN_LEGACY).prefixEnd;
    const protoEnd =
      unpickle(GOLDEN_LEGACY, { source: "x", start: unpickle(GOLDEN_LEGACY, { source: "x" }).end }).end;
    const info = new PickleWriter().proto(2).dict().str("little_endian").false().setitem().stop().bytes();
    const be = concat(GOLDEN_LEGACY.subarray(0, protoEnd), info, GOLDEN_LEGACY.subarray(prefixEnd));
    await expectTorchError(
      () => parseTorchFile(be, "be_legacy.pth"),
      /^Cannot read be_legacy\.pth: it was saved on a big-endian/,
    );
  });

  await t.step("a checkpoint whose pickle calls os.system is refused, naming the file", async () => {
    const evil = new PickleWriter().proto(2).global("os", "system").mark().str("rm -rf ~").tuple().reduce()
      .stop();
    await expectTorchError(
      () => parseTorchFile(zipFile(evil.bytes(), {}), "evil.pth"),
      /^Cannot read evil\.pth \(archive\/data\.pkl\): the pickle calls os\.system \(opcode REDUCE at byte \d+\), which this reader never executes/,
    );
    await expectTorchError(
      () => parseTorchFile(legacyFile(evil.bytes(), [], []), "evil_legacy.pth"),
      /^Cannot read evil_legacy\.pth \(object pickle\): the pickle calls os\.system/,
    );
  });

  await t.step("an unknown opcode inside a checkpoint names the file, the byte and the offset", async () => {
    const pkl = new Uint8Array([0x80, 0x02, 0x7d, 0xfe, 0x2e]);
    await expectTorchError(
      () => parseTorchFile(zipFile(pkl, {}), "op.pth"),
      /^Cannot read op\.pth \(archive\/data\.pkl\): unknown pickle opcode 0xfe at byte 3/,
    );
    // readZipEntry is what the ZIP path uses: the helper archive is itself readable.
    assertEquals(readZipEntry(zipFile(pkl, {}), listZip(zipFile(pkl, {}))[0]), pkl);
  });
});
