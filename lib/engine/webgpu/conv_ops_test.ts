/**
 * Tests of the stride-1 row-strip convolution kernel: it gives the same bits as the implicit GEMM (same
 * fma order per output), with vec4 or scalar source loads, for both the convolution and its input
 * gradient, over widths (multiples of 4 or not) that need one or
 * several strips, padding 0-2 and non-square kernels (few channels, so the kernels stay small to compile). Skipped without a WebGPU adapter.
 * @module
 */
import type { Conv2dGeometry } from "../backend.ts";
import { conv2dOutputShape, sizeOf } from "../backend.ts";
import { assertEquals, assertTrue } from "../../testing/asserts.ts";
import { Dispatcher } from "./dispatcher.ts";
import { conv2dDispatch, conv2dInputGradDispatch, type ConvStrategy, stripWidth } from "./conv_ops.ts";
import { randomArray, rng } from "./webgpu_test_util.ts";

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter;
if (ignore) console.log("Skipping the conv strip tests: no WebGPU adapter");

Deno.test("stripWidth picks the fewest source loads per row within the register budget", () => {
  assertEquals(stripWidth(28, 3, 4), 28);
  assertEquals(stripWidth(14, 3, 4), 16);
  assertEquals(stripWidth(7, 3, 8), 8);
  assertTrue(stripWidth(100, 3, 32) <= 16, "32 rows: at most 16 pixels");
});

Deno.test({ name: "conv strip kernel equals the implicit GEMM bit for bit", ignore }, async (t) => {
  const device = await adapter!.requestDevice();
  const d = new Dispatcher(device, {
    maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    minUniformBufferOffsetAlignment: device.limits.minUniformBufferOffsetAlignment,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
  }, { submitEvery: 64 });
  const r = rng(3);
  const upload = (n: number) => {
    const s = d.alloc(n, "test input");
    d.upload(s, randomArray(r, n));
    return s;
  };
  const cases: [string, Conv2dGeometry][] = [
    ["1 channel out, 3x3 pad 1, width 28", { x: [2, 6, 28, 28], w: [1, 6, 3, 3], stride: 1, pad: 1 }],
    ["4 out, width 14 (scalar stores)", { x: [3, 5, 14, 14], w: [4, 5, 3, 3], stride: 1, pad: 1 }],
    ["7 out, width 37 (two strips)", { x: [1, 3, 6, 37], w: [7, 3, 3, 3], stride: 1, pad: 1 }],
    ["2 out, pad 0, width 9", { x: [2, 4, 9, 9], w: [2, 4, 3, 3], stride: 1, pad: 0 }],
    ["3 out, pad 2, width 8", { x: [2, 3, 8, 8], w: [3, 3, 3, 3], stride: 1, pad: 2 }],
    ["5 out, 3x1 / 1x3 kernels", { x: [2, 4, 7, 12], w: [5, 4, 1, 3], stride: 1, pad: 0 }],
    ["2 out, pad 3, width 16", { x: [1, 3, 5, 16], w: [2, 3, 3, 3], stride: 1, pad: 3 }],
    ["1 channel in (1-row input gradient), width 28", {
      x: [2, 1, 28, 28],
      w: [9, 1, 3, 3],
      stride: 1,
      pad: 1,
    }],
    ["2 channels in (2-row input gradient), width 10", {
      x: [2, 2, 6, 10],
      w: [5, 2, 3, 3],
      stride: 1,
      pad: 1,
    }],
  ];
  for (const [name, g] of cases) {
    await t.step(name, async () => {
      const x = upload(sizeOf(g.x)), w = upload(sizeOf(g.w)), dy = upload(sizeOf(conv2dOutputShape(g)));
      const run = async (s: ConvStrategy) => {
        const y = conv2dDispatch(d, x, w, g, s), dx = conv2dInputGradDispatch(d, dy, w, g, s);
        const out = [await d.read(y), await d.read(dx)];
        d.release(y);
        d.release(dx);
        return out;
      };
      const [a, b, c] = [await run("gemm"), await run("strip"), await run("strip-scalar")];
      const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer));
      assertEquals(bits(b[0]), bits(a[0]), "conv2d");
      assertEquals(bits(b[1]), bits(a[1]), "conv2dInputGrad");
      assertEquals(bits(c[0]), bits(a[0]), "conv2d, scalar loads");
      assertEquals(bits(c[1]), bits(a[1]), "conv2dInputGrad, scalar loads");
      assertTrue(a[0].some((v) => v !== 0) && a[1].some((v) => v !== 0), "non-trivial results");
      for (const s of [x, w, dy]) d.release(s);
    });
  }
  await t.step("a weight is repacked once per layout while it lives", async () => {
    const g: Conv2dGeometry = { x: [1, 3, 6, 6], w: [4, 3, 3, 3], stride: 1, pad: 1 };
    const x = upload(sizeOf(g.x)), w = upload(sizeOf(g.w));
    const y1 = conv2dDispatch(d, x, w, g);
    const n1 = d.dispatches;
    const y2 = conv2dDispatch(d, x, w, g);
    assertEquals(d.dispatches - n1, 1, "the second convolution only dispatches the product");
    assertEquals(Array.from(await d.read(y2)), Array.from(await d.read(y1)));
    const before = d.pool.poolBytes();
    d.release(w);
    assertTrue(d.pool.poolBytes() > before + sizeOf(g.w) * 4, "the repack is freed with the weight");
    for (const s of [x, y1, y2]) d.release(s);
  });
  device.destroy();
});
