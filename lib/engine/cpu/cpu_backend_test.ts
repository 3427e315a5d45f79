/**
 * Tests of the CPU backend's storage handling: creation, reading, freeing, dtypes and the
 * size checks that stop out-of-bounds reads. The kernels have their own test files.
 * @module
 */
import { assertEquals, assertRejects, assertThrows, assertTrue } from "../../testing/asserts.ts";
import { createCpuBackend } from "./cpu_backend.ts";
import { backend, DTYPES, readAll } from "./cpu_test_util.ts";

Deno.test("cpu backend: identity and storage basics", async (t) => {
  for (const dtype of DTYPES) {
    await t.step(`${dtype}: name, description, dtype, pool`, () => {
      const be = createCpuBackend(dtype);
      assertEquals(be.name, "cpu");
      assertEquals(be.dtype, dtype);
      assertEquals(be.description, `CPU reference (${dtype})`);
      assertEquals(be.poolBytes(), 0);
    });

    await t.step(`${dtype}: fromArray / read round trip returns the dtype's array`, async () => {
      const be = backend(dtype);
      const s = be.fromArray([1, -2.5, 3, 0]);
      assertEquals(s.size, 4);
      const got = await be.read(s);
      assertTrue(got instanceof (dtype === "float64" ? Float64Array : Float32Array));
      assertEquals(Array.from(got), [1, -2.5, 3, 0]);
    });

    await t.step(`${dtype}: read returns a copy`, async () => {
      const be = backend(dtype);
      const s = be.fromArray([1, 2, 3]);
      const a = await be.read(s);
      a[0] = 99;
      assertEquals(await readAll(be, s), [1, 2, 3]);
    });

    await t.step(`${dtype}: fromArray copies its input`, async () => {
      const be = backend(dtype);
      const src = new Float64Array([4, 5]);
      const s = be.fromArray(src);
      src[0] = -1;
      assertEquals(await readAll(be, s), [4, 5]);
    });

    await t.step(`${dtype}: fill, including empty`, async () => {
      const be = backend(dtype);
      assertEquals(await readAll(be, be.fill(3, 0.5)), [0.5, 0.5, 0.5]);
      assertEquals(be.fill(0, 1).size, 0);
      assertThrows(() => be.fill(-1, 0), /Cannot fill: size -1/);
      assertThrows(() => be.fill(1.5, 0), /Cannot fill: size 1.5/);
    });

    await t.step(`${dtype}: flush and sync`, async () => {
      const be = backend(dtype);
      be.flush();
      assertEquals(await be.sync(), undefined);
    });

    await t.step(`${dtype}: free counts storages and later use throws`, async () => {
      const be = backend(dtype);
      const a = be.fromArray([1, 2]);
      const b = be.unary("neg", a);
      assertEquals(be.liveStorages(), 2);
      be.free(a);
      assertEquals(be.liveStorages(), 1);
      assertThrows(() => be.unary("exp", a), /Cannot apply exp: x was freed/);
      assertThrows(() => be.free(a), /Cannot free: storage was freed/);
      await assertRejects(() => be.read(a), /Cannot read: storage was freed/);
      assertEquals(await readAll(be, b), [-1, -2]);
    });
  }
});

Deno.test("cpu backend: float32 rounds once, float64 keeps doubles", async (t) => {
  const third = 1 / 3;
  await t.step("float32 stores fround of the input", async () => {
    const be = backend("float32");
    assertEquals(await readAll(be, be.fromArray([third])), [Math.fround(third)]);
  });
  await t.step("float64 stores the input exactly", async () => {
    const be = backend("float64");
    assertEquals(await readAll(be, be.fromArray([third])), [third]);
  });
  await t.step("float32 add is the rounded double sum", async () => {
    const be = backend("float32");
    const a = Math.fround(0.1), b = Math.fround(1e-8);
    const s = be.binary("add", be.fromArray([a]), [1], be.fromArray([b]), [1]);
    assertEquals(await readAll(be, s), [Math.fround(a + b)]);
  });
});

Deno.test("cpu backend: size checks name the op and refuse out-of-bounds reads", async (t) => {
  const be = backend("float64");
  const s6 = be.fromArray([1, 2, 3, 4, 5, 6]);
  await t.step("binary with a shape larger than the storage", () => {
    assertThrows(() => be.binary("add", s6, [2, 4], s6, [1]), /Cannot apply add: a \[2, 4\] has 6 elements/);
  });
  await t.step("reduce, permute, slice, pad with wrong sizes", () => {
    assertThrows(() => be.reduce("sum", s6, [7], [0]), /Cannot reduce \(sum\): x \[7\] has 6 elements/);
    assertThrows(() => be.permute(s6, [3, 3], [1, 0]), /Cannot permute/);
    assertThrows(() => be.pad(s6, [5], [1], [1], 0), /Cannot pad/);
    assertThrows(() => be.slice(s6, [2, 3], [1, 1], [1, 3]), /Cannot slice: box at \[1, 1\]/);
  });
  await t.step("matmul with too few elements", () => {
    const dims = { batch: 1, aBatch: 1, bBatch: 1, m: 2, k: 4, n: 1, transA: false, transB: false };
    assertThrows(() => be.matmul(s6, s6, dims), /Cannot matmul: a \(batch 1, 2x4\) has 6 elements/);
  });
  await t.step("conv2d with a short weight", () => {
    const g = { x: [1, 1, 2, 3], w: [1, 1, 3, 3], stride: 1, pad: 1 };
    assertThrows(() => be.conv2d(s6, s6, g), /Cannot convolve: w \[1, 1, 3, 3\] has 6 elements/);
  });
  await t.step("concat with disagreeing shapes", () => {
    assertThrows(() => be.concat([s6, s6], [[2, 3], [3, 2]], 0), /Cannot concat: shapes/);
  });
  await t.step("a foreign object is not a storage", () => {
    assertThrows(() => be.unary("neg", { size: 1 }), /Cannot apply neg: x is not a CPU storage/);
  });
  await t.step("an unknown dtype", () => {
    assertThrows(() => createCpuBackend("int8" as "float32"), /Cannot create CPU backend: dtype "int8"/);
  });
});
