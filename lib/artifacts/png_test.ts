import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { decodePng, ensureSharp, imageGrid, imageGridPng, pngInfo, svgToPng, upscale } from "./png.ts";

const SHARP_WORKS = await ensureSharp().then(() => true, (e) => {
  console.error(`png_test: sharp is unavailable, PNG steps are ignored: ${(e as Error).message}`);
  return false;
});

Deno.test("imageGrid layout (no sharp needed)", async (t) => {
  await t.step("size follows torchvision's make_grid: nrow tiles per row, padding around and between", () => {
    const g = imageGrid(new Float32Array(5 * 1 * 4 * 3), [5, 1, 4, 3], { nrow: 2, padding: 1 });
    assertEquals([g.width, g.height, g.channels], [2 * (3 + 1) + 1, 3 * (4 + 1) + 1, 1]);
    const one = imageGrid(new Float32Array(3 * 2 * 2), [1, 3, 2, 2], { padding: 0 });
    assertEquals([one.width, one.height, one.channels], [2, 2, 3]);
  });

  await t.step("pixels land in their tile, channels interleaved, padding filled", () => {
    // Two 1×2 RGB images: image k, channel c, pixel x has value (k*100 + c*10 + x) / 255.
    const data = new Float32Array(2 * 3 * 1 * 2);
    for (let k = 0; k < 2; k++) {
      for (let c = 0; c < 3; c++) {
        for (let x = 0; x < 2; x++) data[(k * 3 + c) * 2 + x] = (k * 100 + c * 10 + x) / 255;
      }
    }
    const g = imageGrid(data, [2, 3, 1, 2], { nrow: 2, padding: 1, padValue: 1 });
    assertEquals([g.width, g.height], [7, 3]);
    const px = (x: number, y: number) => [...g.pixels.subarray((y * 7 + x) * 3, (y * 7 + x) * 3 + 3)];
    assertEquals(px(0, 0), [255, 255, 255]);
    assertEquals(px(1, 1), [0, 10, 20]);
    assertEquals(px(2, 1), [1, 11, 21]);
    assertEquals(px(3, 1), [255, 255, 255]);
    assertEquals(px(4, 1), [100, 110, 120]);
    assertEquals(px(5, 1), [101, 111, 121]);
  });

  await t.step("values are clamped to [0, 1] and rounded; NaN becomes 0", () => {
    const g = imageGrid(new Float32Array([-0.5, 0.5, 1.5, NaN]), [1, 1, 2, 2], { padding: 0 });
    assertEquals([...g.pixels], [0, 128, 255, 0]);
  });

  await t.step("integer upscaling repeats pixels", () => {
    const u = upscale({ pixels: new Uint8Array([1, 2, 3, 4]), width: 2, height: 2, channels: 1 }, 2);
    assertEquals([...u.pixels], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  await t.step("bad shapes are refused with the shape in the message", () => {
    assertThrows(() => imageGrid(new Float32Array(8), [2, 2, 2]), /shape \[2, 2, 2\] is not \[N, C, H, W\]/);
    assertThrows(() => imageGrid(new Float32Array(16), [1, 4, 2, 2]), /4 channels, expected 1 or 3/);
    assertThrows(() => imageGrid(new Float32Array(7), [2, 1, 2, 2]), /needs 8 values, got 7/);
  });
});

Deno.test({
  name: "PNG encoding through sharp",
  ignore: !SHARP_WORKS,
  fn: async (t) => {
    await t.step("a grid PNG decodes to the expected size and channel count", async () => {
      const gray = await imageGridPng(new Float32Array(10 * 28 * 28).fill(0.5), [10, 1, 28, 28], { nrow: 4 });
      assertEquals(await pngInfo(gray), { width: 4 * 30 + 2, height: 3 * 30 + 2, channels: 1 });
      const rgb = await imageGridPng(new Float32Array(3 * 3 * 8 * 8), [3, 3, 8, 8], { padding: 0, scale: 2 });
      assertEquals(await pngInfo(rgb), { width: 48, height: 16, channels: 3 });
    });

    await t.step("pixel values round-trip exactly for a tiny grid", async () => {
      const data = new Float32Array([0, 0.25, 0.5, 1, 0.1, 0.9]);
      const png = await imageGridPng(data, [2, 1, 1, 3], { nrow: 1, padding: 1, padValue: 0.2 });
      const back = await decodePng(png);
      const expected = imageGrid(data, [2, 1, 1, 3], { nrow: 1, padding: 1, padValue: 0.2 });
      assertEquals([back.width, back.height, back.channels], [5, 5, 1]);
      assertEquals([...back.pixels], [...expected.pixels]);
      assertEquals([...back.pixels.subarray(6, 9)], [0, 64, 128]);
    });

    await t.step("an SVG rasterises at its own size", async () => {
      const svg =
        `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="#ff0000"/></svg>`;
      const img = await decodePng(await svgToPng(svg));
      assertEquals([img.width, img.height], [40, 30]);
      assertTrue(img.channels >= 3);
      assertEquals([...img.pixels.subarray(0, 3)], [255, 0, 0]);
    });
  },
});
