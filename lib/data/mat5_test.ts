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
});
