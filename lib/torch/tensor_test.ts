import { assertEquals, assertTrue } from "../testing/asserts.ts";
import {
  bfloat16ToFloat32,
  checkView,
  contiguousStrides,
  halfToFloat32,
  materialise,
  tensorToFloat32,
  tensorToFloat64,
} from "./tensor.ts";
import { expectTorchError } from "./testing_util.ts";
import type { TorchTensor } from "./values.ts";

function tensor(data: TorchTensor["data"], dtype: TorchTensor["dtype"], shape: number[]): TorchTensor {
  return {
    kind: "tensor",
    dtype,
    shape,
    strides: contiguousStrides(shape),
    data,
    fileStrides: contiguousStrides(shape),
    storageOffset: 0,
    storageKey: "0",
    requiresGrad: false,
    isParameter: false,
  };
}

Deno.test("tensor views and element types", async (t) => {
  await t.step("16-bit floats convert exactly (normal, subnormal, zero signs, infinities, NaN)", () => {
    const h = halfToFloat32(
      new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00]),
    );
    assertEquals(Array.from(h.subarray(0, 7)), [1, -2.5, 65504, 2 ** -24, -0, Infinity, -Infinity]);
    assertTrue(Number.isNaN(h[7]));
    const b = bfloat16ToFloat32(new Uint16Array([0x3f80, 0xc020, 0x0001, 0xff80]));
    assertEquals(Array.from(b), [1, -2.5, 2 ** -133, -Infinity]);
  });

  await t.step("a strided view with an offset is gathered row-major", () => {
    // Storage 0..11 as a 3x4 matrix; the view [1:, 1:3] transposed: sizes [2, 2], strides [1, 4], offset 5.
    const storage = new Uint8Array(new Int32Array([...Array(12).keys()]).buffer);
    const view = { dtype: "int32" as const, offset: 5, shape: [2, 2], strides: [1, 4] };
    const n = checkView(view, storage.length, 1 << 20, "v");
    assertEquals(Array.from(materialise(storage, view, n) as Int32Array), [5, 9, 6, 10]);
    // Stride 0 repeats; a size-0 dimension gives no elements whatever the strides.
    const rep = { dtype: "int32" as const, offset: 1, shape: [3, 2], strides: [0, 1] };
    assertEquals(Array.from(materialise(storage, rep, checkView(rep, 48, 1 << 20, "r")) as Int32Array), [
      1,
      2,
      1,
      2,
      1,
      2,
    ]);
    const empty = { dtype: "int32" as const, offset: 99, shape: [0, 3], strides: [3, 1] };
    assertEquals(checkView(empty, 48, 1 << 20, "e"), 0);
    assertEquals(materialise(storage, empty, 0), new Int32Array(0));
  });

  await t.step("views that are malformed or too large are errors naming the tensor", async () => {
    const v = (shape: number[], strides: number[], offset = 0) => ({
      dtype: "float32" as const,
      offset,
      shape,
      strides,
    });
    await expectTorchError(
      () => checkView(v([2], [1, 1]), 64, 1 << 20, "w1"),
      /^Cannot read w1: 1 sizes \[2\] but 2 strides/,
    );
    await expectTorchError(
      () => checkView(v([-1], [1]), 64, 1 << 20, "w2"),
      /^Cannot read w2: .*expected non-negative integers/,
    );
    await expectTorchError(
      () => checkView(v([4], [1], 13), 64, 1 << 20, "w3"),
      /reaches element 16 but its float32 storage holds 16/,
    );
    await expectTorchError(
      () => checkView(v([1000], [0]), 4, 400, "w4"),
      /make 1000 float32 elements \(4000 bytes\), more than the 400 bytes/,
    );
  });

  await t.step("tensorToFloat32/64 convert every dtype; int64 beyond 2^53 is an error", async () => {
    assertEquals(
      tensorToFloat64(tensor(new Float32Array([0.1]), "float32", [1])),
      new Float64Array([Math.fround(0.1)]),
    );
    assertEquals(
      tensorToFloat32(tensor(new Float64Array([0.1, 2]), "float64", [2])),
      new Float32Array([0.1, 2]),
    );
    assertEquals(
      tensorToFloat64(tensor(new BigInt64Array([-3n, 2n ** 53n - 1n]), "int64", [2])),
      new Float64Array([-3, 2 ** 53 - 1]),
    );
    assertEquals(tensorToFloat32(tensor(new Uint8Array([1, 0]), "bool", [2])), new Float32Array([1, 0]));
    assertEquals(tensorToFloat64(tensor(new Int8Array([-128]), "int8", [1])), new Float64Array([-128]));
    await expectTorchError(
      () => tensorToFloat64(tensor(new BigInt64Array([1n, 2n ** 60n]), "int64", [2])),
      /^Cannot convert an int64 tensor of shape \[2\] \(storage 0\) to numbers: element 1 is 1152921504606846976, beyond ±2\^53/,
    );
    // The result is a copy: changing it leaves the tensor alone.
    const src = tensor(new Float32Array([1, 2]), "float32", [2]);
    tensorToFloat32(src)[0] = 9;
    assertEquals(src.data, new Float32Array([1, 2]));
  });
});
