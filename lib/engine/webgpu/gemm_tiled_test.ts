/**
 * The workgroup-memory tiled matmul (kernels/gemm_tiled.ts), forced with `gemmKernel: "tiled"` on
 * whatever adapter runs the tests (llvmpipe here), against the CPU reference: shapes that are and are
 * not multiples of the tile and of its depth, both transposes, batches with broadcast operands.
 */
import type { Tolerance } from "../../testing/asserts.ts";
import { assertEquals } from "../../testing/asserts.ts";
import { createCpuBackend } from "../cpu/cpu_backend.ts";
import type { MatmulDims } from "./matmul_ops.ts";
import { type Conv2dGeometry, conv2dOutputShape } from "../backend.ts";
import { createWebGpuBackend, requestWebGpuAdapter } from "./webgpu_backend.ts";
import { selectGemmKernel } from "./gemm_select.ts";
import { assertCloseRows, randomArray, rng, runBoth } from "./webgpu_test_util.ts";

const adapter = await requestWebGpuAdapter();
if (!adapter) console.log("gemm_tiled_test: skipped, no WebGPU adapter");

/**
 * Relative to each result row's norm: float32 dot products of up to 300 terms (matmul) or 600 (the
 * weight gradients) in another order.
 */
const TILED: Tolerance = { atol: 1e-6, rtol: 2e-5 };

/** [batch, aBatch, bBatch, m, k, n]: exact tiles, ragged edges, k below and above the slice depth. */
const SHAPES: readonly (readonly [number, number, number, number, number, number])[] = [
  [1, 1, 1, 64, 16, 64],
  [1, 1, 1, 1, 1, 1],
  [1, 1, 1, 65, 17, 63],
  [1, 1, 1, 100, 300, 7],
  [3, 3, 3, 33, 40, 70],
  [4, 1, 4, 20, 9, 130],
  [2, 2, 1, 129, 5, 31],
];

Deno.test({ name: "tiled matmul matches the CPU reference", ignore: !adapter }, async (t) => {
  const gpu = await createWebGpuBackend({ gemmKernel: "tiled" });
  const cpu = createCpuBackend("float32");
  assertEquals(gpu.gemmKernel, "tiled", "the forced kernel family");
  const r = rng(5);
  try {
    for (const [batch, aBatch, bBatch, m, k, n] of SHAPES) {
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
        const dims: MatmulDims = { batch, aBatch, bBatch, m, k, n, transA, transB };
        const name = `[${batch}] ${m}x${k}x${n} (a batch ${aBatch}, b batch ${bBatch}) ${transA ? "T" : "N"}${
          transB ? "T" : "N"
        }`;
        await t.step(name, async () => {
          const a = randomArray(r, aBatch * m * k), b = randomArray(r, bBatch * k * n);
          const before = gpu.stats().dispatches;
          const [g, c] = await runBoth(gpu, cpu, [a, b], (be, [x, y]) => be.matmul(x, y, dims));
          assertEquals(gpu.stats().dispatches - before, 1, "one tiled dispatch");
          assertCloseRows(g, c, n, TILED, name);
        });
      }
    }
  } finally {
    gpu.destroy();
  }
});

/** Convolutions: odd sizes, channels across a tile edge (70 > 64), strides 1 and 2, 1x1 and 3x1 taps. */
const CONVS: readonly Conv2dGeometry[] = [
  { x: [2, 3, 7, 9], w: [5, 3, 3, 3], stride: 1, pad: 1 },
  { x: [2, 17, 10, 10], w: [70, 17, 3, 3], stride: 1, pad: 1 },
  { x: [3, 4, 9, 8], w: [6, 4, 3, 3], stride: 2, pad: 1 },
  { x: [1, 8, 7, 7], w: [4, 8, 3, 3], stride: 2, pad: 0 },
  { x: [2, 20, 6, 5], w: [9, 20, 1, 1], stride: 1, pad: 0 },
  { x: [2, 3, 6, 6], w: [4, 3, 3, 1], stride: 1, pad: 1 },
];

Deno.test({ name: "tiled convolution products match the CPU reference", ignore: !adapter }, async (t) => {
  const gpu = await createWebGpuBackend({ gemmKernel: "tiled" });
  const cpu = createCpuBackend("float32");
  const r = rng(11);
  try {
    for (const g of CONVS) {
      const y = conv2dOutputShape(g);
      const name = `x [${g.x}] w [${g.w}] stride ${g.stride} pad ${g.pad}`;
      const nx = g.x.reduce((a, b) => a * b),
        nw = g.w.reduce((a, b) => a * b),
        ny = y.reduce((a, b) => a * b);
      await t.step(name, async () => {
        const x = randomArray(r, nx), w = randomArray(r, nw), dy = randomArray(r, ny);
        const before = gpu.stats().dispatches;
        const [f, fc] = await runBoth(gpu, cpu, [x, w], (be, [a, b]) => be.conv2d(a, b, g));
        const [i, ic] = await runBoth(gpu, cpu, [dy, w], (be, [a, b]) => be.conv2dInputGrad(a, b, g));
        const [k, kc] = await runBoth(gpu, cpu, [x, dy], (be, [a, b]) => be.conv2dWeightGrad(a, b, g));
        assertEquals(gpu.stats().dispatches - before, 3, "one tiled dispatch per product");
        assertCloseRows(f, fc, y[3], TILED, `${name}: forward`);
        assertCloseRows(i, ic, g.x[3], TILED, `${name}: input gradient`);
        assertCloseRows(k, kc, g.w[3], TILED, `${name}: weight gradient`);
      });
    }
  } finally {
    gpu.destroy();
  }
});

Deno.test(
  { name: "the default backend uses the kernels chosen for its adapter", ignore: !adapter },
  async () => {
    const gpu = await createWebGpuBackend();
    try {
      assertEquals(gpu.gemmKernel, selectGemmKernel(adapter!.info).kernel, `adapter ${gpu.description}`);
    } finally {
      gpu.destroy();
    }
  },
);
