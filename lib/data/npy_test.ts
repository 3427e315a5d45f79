import { assertEquals } from "../testing/asserts.ts";
import { encodeNpy, npyToNumbers, parseNpy } from "./npy.ts";
import { encodeNpz, parseNpz } from "./npz.ts";
import { expectDatasetError, goldenFiles } from "./testing_util.ts";
import { listZip } from "./zip.ts";

/** A version 1.0 .npy file with a hand-written header dict. */
function rawNpy(dict: string, data: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(dict + "\n");
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  out.set(header, 10);
  out.set(data, 10 + header.length);
  return out;
}

Deno.test("npy and npz", async (t) => {
  const gold = await goldenFiles();

  await t.step(
    "reads .npy files written by NumPy: float32, Fortran-order uint8, int64, big-endian float64",
    () => {
      const f4 = parseNpy(gold.f4_c, "f4.npy");
      assertEquals([f4.dtype, f4.shape, Array.from(npyToNumbers(f4))], ["float32", [2, 3], [
        0,
        0.25,
        0.5,
        0.75,
        1,
        1.25,
      ]]);
      // np.asfortranarray(np.arange(12).reshape(2,3,2)) read back in C order is 0…11 again.
      const u1 = parseNpy(gold.u1_f, "u1.npy");
      assertEquals([u1.dtype, u1.shape, u1.fortranOrder], ["uint8", [2, 3, 2], true]);
      assertEquals(Array.from(npyToNumbers(u1)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      const i8 = parseNpy(gold.i8, "i8.npy");
      assertEquals([i8.dtype, Array.from(npyToNumbers(i8))], ["int64", [-3, 0, 1000]]);
      const be = parseNpy(gold.be_f8, "be.npy");
      assertEquals([be.dtype, Array.from(npyToNumbers(be))], ["float64", [1.5, -2.25]]);
    },
  );

  await t.step("reads format versions 2.0 and 3.0", () => {
    for (const key of ["v2_u1", "v3_u1"]) {
      const a = parseNpy(gold[key], `${key}.npy`);
      assertEquals([a.shape, Array.from(npyToNumbers(a))], [[4], [0, 1, 2, 3]]);
    }
  });

  await t.step("an object (pickled) array is refused, never unpickled", async () => {
    await expectDatasetError(
      () => parseNpy(gold.obj, "obj.npy"),
      /obj\.npy/,
      /object array/,
      /pickles are never executed/,
    );
  });

  await t.step("round trip of the writer: every dtype, both orders, versions 1–3", () => {
    const cases: [string, number[]][] = [
      ["|u1", [0, 255, 3, 4, 5, 6]],
      ["|i1", [-128, 127, 3, 4, 5, 6]],
      ["<u2", [0, 65535, 3, 4, 5, 6]],
      [">i2", [-32768, 32767, 3, 4, 5, 6]],
      ["<i4", [-5, 7, 3, 4, 5, 6]],
      ["<f4", [0.5, -0.25, 3, 4, 5, 6]],
      [">f8", [Math.E, -1e-300, 3, 4, 5, 6]],
    ];
    for (const [descr, values] of cases) {
      for (const version of [1, 2, 3] as const) {
        const a = parseNpy(encodeNpy(descr, [2, 3], values, false, version), "rt.npy");
        assertEquals(Array.from(npyToNumbers(a)), values, `${descr} v${version}`);
      }
    }
    // Fortran order: the file holds columns first; the reader returns C order.
    const f = parseNpy(encodeNpy("|u1", [2, 3], [1, 4, 2, 5, 3, 6], true), "f.npy");
    assertEquals(Array.from(npyToNumbers(f)), [1, 2, 3, 4, 5, 6]);
    const big = parseNpy(encodeNpy("<i8", [2], [BigInt(2) ** BigInt(40), BigInt(-1)]), "i8.npy");
    assertEquals(Array.from(npyToNumbers(big)), [2 ** 40, -1]);
  });

  await t.step("bad magic, truncation, bad header and unsupported dtypes are DatasetErrors", async () => {
    const good = encodeNpy("<f4", [10], new Array(10).fill(1));
    const bad = good.slice();
    bad[1] = 0x41;
    await expectDatasetError(() => parseNpy(bad, "m.npy"), /m\.npy/, /\\x93NUMPY/);
    await expectDatasetError(
      () => parseNpy(good.subarray(0, good.length - 4), "t.npy"),
      /36 bytes of data .* expected 40 bytes/,
      /truncated/,
    );
    await expectDatasetError(
      () => parseNpy(good.subarray(0, 30), "h.npy"),
      /h\.npy/,
      /header; the file is truncated/,
    );
    const v9 = good.slice();
    v9[6] = 9;
    await expectDatasetError(() => parseNpy(v9, "v.npy"), /version 9\.0, expected 1\.0, 2\.0 or 3\.0/);
    const u = rawNpy("{'descr': '<U1', 'fortran_order': False, 'shape': (10,), }", new Uint8Array(40));
    await expectDatasetError(() => parseNpy(u, "u.npy"), /u\.npy/, /dtype '<U1' is not supported/);
    const rec = rawNpy(
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (10,), }",
      new Uint8Array(40),
    );
    await expectDatasetError(() => parseNpy(rec, "s.npy"), /structured dtype/);
    const noShape = rawNpy("{'descr': '<f4', 'fortran_order': False}", new Uint8Array(40));
    await expectDatasetError(() => parseNpy(noShape, "n.npy"), /lacks 'descr', 'fortran_order' or 'shape'/);
  });

  await t.step("reads .npz written by np.savez (ZIP64 local headers) and np.savez_compressed", () => {
    const stored = parseNpz(gold.npz_stored, "s.npz");
    assertEquals([...stored.keys()].sort(), ["data", "labels"]);
    assertEquals(stored.get("data")!.shape, [2, 12]);
    assertEquals(Array.from(npyToNumbers(stored.get("data")!)), Array.from({ length: 24 }, (_, i) => i));
    assertEquals(Array.from(npyToNumbers(stored.get("labels")!)), [1, 1000]);
    const deflated = parseNpz(gold.npz_deflated, "d.npz", ["labels"]);
    assertEquals([[...deflated.keys()], Array.from(npyToNumbers(deflated.get("labels")!))], [["labels"], [
      7,
      2,
    ]]);
    assertEquals(listZip(gold.npz_deflated).map((e) => e.method), [8, 8]);
  });

  await t.step("round trip of the npz writer, stored and deflated", () => {
    for (const compressed of [false, true]) {
      const bytes = encodeNpz(
        { a: encodeNpy("|u1", [3], [1, 2, 3]), b: encodeNpy("<f8", [1], [0.5]) },
        compressed,
      );
      const m = parseNpz(bytes, "rt.npz");
      assertEquals([Array.from(npyToNumbers(m.get("a")!)), Array.from(npyToNumbers(m.get("b")!))], [
        [1, 2, 3],
        [0.5],
      ]);
    }
  });

  await t.step("missing keys, truncation, corruption (CRC) and non-ZIP data are DatasetErrors", async () => {
    const bytes = encodeNpz({ data: encodeNpy("|u1", [64], new Array(64).fill(9)) });
    await expectDatasetError(
      () => parseNpz(bytes, "k.npz", ["data", "labels"]),
      /k\.npz/,
      /no array labels/,
      /holds \[data\]/,
    );
    await expectDatasetError(
      () => parseNpz(bytes.subarray(0, bytes.length - 30), "t.npz"),
      /t\.npz/,
      /truncated or not a ZIP/,
    );
    const flipped = bytes.slice();
    flipped[150] ^= 1; // a data byte of the stored entry
    await expectDatasetError(
      () => parseNpz(flipped, "c.npz"),
      /c\.npz \(entry data\.npy\)/,
      /CRC-32/,
      /damaged/,
    );
    await expectDatasetError(
      () => parseNpz(new Uint8Array(100), "z.npz"),
      /z\.npz/,
      /end-of-central-directory/,
    );
    const deflated = encodeNpz({ data: encodeNpy("|u1", [64], new Array(64).fill(9)) }, true);
    const cut = deflated.slice();
    for (let i = 40; i < 60; i++) cut[i] = 0xff;
    await expectDatasetError(() => parseNpz(cut, "d.npz"), /d\.npz/, /damaged/);
  });

  await t.step("zip bombs are refused by the declared size and the cap, before being inflated", async () => {
    // 32 MB of zeros deflate to ~32 kB; the central directory then claims 1,000 bytes, or 3 GB.
    const bomb = encodeNpz({ data: new Uint8Array(32 << 20) }, true);
    const central = listZip(bomb)[0];
    const cdAt = bomb.length - 22 - (46 + "data.npy".length);
    const v = new DataView(bomb.buffer);
    assertEquals([v.getUint32(cdAt, true), central.size], [0x02014b50, 32 << 20]);
    v.setUint32(cdAt + 24, 1000, true);
    await expectDatasetError(
      () => parseNpz(bomb, "bomb.npz"),
      /bomb\.npz \(entry data\.npy\)/,
      /decompresses to more than the 1,000 bytes its ZIP directory declares/,
    );
    v.setUint32(cdAt + 24, 3e9, true);
    await expectDatasetError(
      () => parseNpz(bomb, "huge.npz"),
      /huge\.npz \(entry data\.npy\)/,
      /declares 3,000,000,000 bytes once decompressed, more than the limit of 2,147,483,648 bytes/,
    );
    const ok = encodeNpz({ a: encodeNpy("|u1", [1000], new Array(1000).fill(1)) }, true);
    await expectDatasetError(
      () => parseNpz(ok, "cap.npz", undefined, 500),
      /more than the limit of 500 bytes/,
    );
  });
});
