import { deflateSync } from "node:zlib";
import { assertEquals } from "../testing/asserts.ts";
import { encodeMat5, parseMat5 } from "./mat5.ts";
import { expectDatasetError, goldenFiles } from "./testing_util.ts";

Deno.test("mat5", async (t) => {
  const gold = await goldenFiles();

  await t.step("reads a file written by scipy.io.savemat: double, int16, uint8; skips a char array", () => {
    const mat = parseMat5(gold.mat_plain, "plain.mat");
    const a = mat.vars.get("a")!;
    assertEquals([a.className, a.dims], ["double", [2, 3]]);
    assertEquals(Array.from(a.data), [1.5, 4, 2, 5, 3, 6]); // column-major
    const b = mat.vars.get("b")!;
    assertEquals([b.className, b.dims, Array.from(b.data)], ["int16", [1, 3], [1, -2, 3]]);
    const c = mat.vars.get("c")!;
    assertEquals([c.className, c.dims, Array.from(c.data)], ["uint8", [1, 2], [1, 2]]);
    assertEquals(mat.skipped, ["s (char)"]);
  });

  await t.step("reads compressed (miCOMPRESSED) elements written by scipy", () => {
    const mat = parseMat5(gold.mat_svhn_z, "svhn.mat");
    const X = mat.vars.get("X")!;
    assertEquals([X.className, X.dims], ["uint8", [32, 32, 3, 2]]);
    for (let i = 0; i < X.data.length; i += 97) assertEquals(X.data[i], i % 251);
    assertEquals(Array.from(mat.vars.get("y")!.data), [10, 3]);
  });

  await t.step("round trip of the fixture writer, plain and compressed, with a big-endian copy", () => {
    const vars = [
      { name: "X", className: "uint8" as const, dims: [2, 3], data: [1, 2, 3, 4, 5, 255] },
      { name: "label", className: "double" as const, dims: [3, 1], data: [0.5, -1, 1e10] },
    ];
    for (const [compress, le] of [[false, true], [true, true], [false, false], [true, false]]) {
      const bytes = encodeMat5(vars, compress, le);
      assertEquals(String.fromCharCode(bytes[126], bytes[127]), le ? "IM" : "MI");
      const mat = parseMat5(bytes, "rt.mat");
      assertEquals(Array.from(mat.vars.get("X")!.data), vars[0].data);
      assertEquals(Array.from(mat.vars.get("label")!.data), vars[1].data);
      assertEquals(mat.vars.get("label")!.dims, [3, 1]);
    }
  });

  await t.step("wrong header, v7.3, truncation and damaged compression are DatasetErrors", async () => {
    const good = encodeMat5(
      [{ name: "X", className: "uint8", dims: [4, 4], data: new Array(16).fill(7) }],
      true,
    );
    await expectDatasetError(
      () => parseMat5(good.subarray(0, 60), "a.mat"),
      /a\.mat/,
      /60 bytes/,
      /128-byte header/,
    );
    const wrong = good.slice();
    wrong.set(new TextEncoder().encode("HELLO"), 0);
    await expectDatasetError(() => parseMat5(wrong, "b.mat"), /b\.mat/, /"HELLO/, /MATLAB 5\.0 MAT-file/);
    const v73 = good.slice();
    v73.set(new TextEncoder().encode("MATLAB 7.3 MAT-file"), 0);
    await expectDatasetError(() => parseMat5(v73, "c.mat"), /MATLAB 7\.3 \(HDF5\)/);
    await expectDatasetError(
      () => parseMat5(good.subarray(0, good.length - 5), "d.mat"),
      /d\.mat/,
      /truncated/,
    );
    const damaged = good.slice();
    for (let i = 140; i < 150; i++) damaged[i] ^= 0xff;
    await expectDatasetError(() => parseMat5(damaged, "e.mat"), /e\.mat/, /does not inflate|damaged/);
    const plain = encodeMat5([{ name: "X", className: "uint8", dims: [4, 4], data: new Array(16).fill(7) }]);
    await expectDatasetError(
      () => parseMat5(plain.subarray(0, plain.length - 8), "f.mat"),
      /f\.mat/,
      /truncated/,
    );
  });

  await t.step("the version field at byte 124 must be 0x0100", async () => {
    const good = encodeMat5([{ name: "X", className: "uint8", dims: [1, 1], data: [1] }]);
    const v2 = good.slice();
    v2[124] = 0x00;
    v2[125] = 0x02; // little-endian 0x0200
    await expectDatasetError(
      () => parseMat5(v2, "v.mat"),
      /v\.mat/,
      /MAT-file version 0x0200 at byte 124, expected 0x0100/,
    );
    const big = encodeMat5([{ name: "X", className: "uint8", dims: [1, 1], data: [1] }], false, false);
    big[124] = 0x00;
    big[125] = 0x00;
    await expectDatasetError(() => parseMat5(big, "w.mat"), /w\.mat: MAT-file version 0x0000/);
  });

  await t.step("compressed elements are inflated only up to what their inner tag declares", async () => {
    const header = encodeMat5([{ name: "X", className: "uint8", dims: [1, 1], data: [1] }]).subarray(0, 128);
    const bomb = (inner: Uint8Array, nbytes: number) => {
      new DataView(inner.buffer).setUint32(0, 14, true); // miMATRIX
      new DataView(inner.buffer).setUint32(4, nbytes, true);
      const z = new Uint8Array(deflateSync(inner));
      const out = new Uint8Array(128 + 8 + z.length);
      out.set(header);
      new DataView(out.buffer).setUint32(128, 15, true); // miCOMPRESSED
      new DataView(out.buffer).setUint32(132, z.length, true);
      out.set(z, 136);
      return out;
    };
    // The inner tag says 16 bytes; 32 MB of zeros follow.
    await expectDatasetError(
      () => parseMat5(bomb(new Uint8Array(32 << 20), 16), "bomb.mat"),
      /bomb\.mat \(compressed element at byte 128\)/,
      /decompresses to more than the 24 bytes its inner tag declares/,
    );
    // The inner tag says 4 GB: refused from the tag alone.
    await expectDatasetError(
      () => parseMat5(bomb(new Uint8Array(1 << 20), 0xfffffff0), "huge.mat"),
      /huge\.mat/,
      /declares 4,294,967,288 bytes once decompressed, more than the limit of 2,147,483,648 bytes/,
    );
  });
});
