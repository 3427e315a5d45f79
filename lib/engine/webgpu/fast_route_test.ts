/**
 * The texture-GEMM route of the WebGPU backend: large matmuls and convolutions go through fast_gemm.ts
 * (seen in the kernel profile), match the CPU reference, keep the deferred-release (writeBuffer hazard)
 * guarantee, and `fastGemm: false` turns the route off. Skipped without a WebGPU adapter.
 * @module
 */
import type { Backend, Conv2dGeometry, Storage } from "../backend.ts";
import { conv2dOutputShape, sizeOf } from "../backend.ts";
import { createCpuBackend } from "../cpu/cpu_backend.ts";
import { assertEquals, assertTrue, type Tolerance } from "../../testing/asserts.ts";
import { createWebGpuBackend, type WebGpuBackend } from "./webgpu_backend.ts";
import { assertCloseRows, randomArray, rng } from "./webgpu_test_util.ts";
import { fastConvWorthIt, fastMatmulWorthIt } from "./fast_route.ts";

/** Matmul and convolutions, relative to the L2 norm of each output row (summation order differs). */
const PRODUCT: Tolerance = { atol: 1e-6, rtol: 1e-4 };

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter;
if (ignore) console.log("Skipping the fast-route tests: no WebGPU adapter");
const cpu = createCpuBackend("float32");

/** Large enough to be routed: 2·4·128·256·1600 ≈ 4.2e8 FLOP. */
const MM = { batch: 4, aBatch: 4, bBatch: 1, m: 128, k: 1600, n: 256, transA: false, transB: true };
/** 2·10·32·16·16·16·9 ≈ 2.4e7 FLOP per product. */
const G: Conv2dGeometry = { x: [10, 16, 16, 16], w: [32, 16, 3, 3], stride: 1, pad: 1 };

type Op = (be: Backend, xs: Storage[]) => Storage;
const CASES: { name: string; inputs: number[]; rowLength: number; op: Op; key: string }[] = [
  {
    name: "matmul",
    inputs: [MM.aBatch * MM.m * MM.k, MM.bBatch * MM.n * MM.k],
    rowLength: MM.n,
    op: (be, [a, b]) => be.matmul(a, b, MM),
    key: "fast:matmul",
  },
  {
    name: "conv2d",
    inputs: [sizeOf(G.x), sizeOf(G.w)],
    rowLength: 16 * 16,
    op: (be, [x, w]) => be.conv2d(x, w, G),
    key: "fast:conv2d",
  },
  {
    name: "conv2dInputGrad",
    inputs: [sizeOf(conv2dOutputShape(G)), sizeOf(G.w)],
    rowLength: 16 * 16,
    op: (be, [dy, w]) => be.conv2dInputGrad(dy, w, G),
    key: "fast:conv2dInputGrad",
  },
  {
    name: "conv2dWeightGrad",
    inputs: [sizeOf(G.x), sizeOf(conv2dOutputShape(G))],
    rowLength: 16 * 9,
    op: (be, [x, dy]) => be.conv2dWeightGrad(x, dy, G),
    key: "fast:conv2dWeightGrad",
  },
];

/** Runs `op` on `be`, freeing the inputs before the result is read (before any submit). */
async function run(be: Backend, inputs: Float32Array[], op: Op): Promise<Float32Array> {
  const xs = inputs.map((a) => be.fromArray(a));
  const y = op(be, xs);
  for (const x of xs) be.free(x);
  // Same sizes as the freed inputs: an upload into one of their buffers would corrupt the product.
  const junk = inputs.map((a) => be.fromArray(new Float32Array(a.length).fill(1e6)));
  const out = Float32Array.from(await be.read(y));
  for (const s of [...junk, y]) be.free(s);
  return out;
}

Deno.test({ name: "fast route: thresholds", ignore }, () => {
  assertTrue(fastMatmulWorthIt(MM.batch, MM.m, MM.n, MM.k));
  assertTrue(!fastMatmulWorthIt(1, 1024, 1024, 8), "k below 16 is not routed");
  assertTrue(!fastMatmulWorthIt(1, 256, 256, 256), "3.4e7 FLOP is not routed");
  assertTrue(fastConvWorthIt(G));
  assertTrue(!fastConvWorthIt({ ...G, w: [8, 16, 3, 3] }), "8 output channels are not routed");
});

Deno.test({ name: "fast route: large products match the CPU reference", ignore }, async (t) => {
  const be: WebGpuBackend = await createWebGpuBackend({ submitEvery: 1000 });
  try {
    for (const [i, c] of CASES.entries()) {
      await t.step(c.name, async () => {
        const r = rng(100 + i);
        const inputs = c.inputs.map((n) => randomArray(r, n));
        const want = await run(cpu, inputs, c.op);
        const got = await run(be, inputs, c.op);
        assertCloseRows(got, want, c.rowLength, PRODUCT, `fast ${c.name}`);
      });
    }
  } finally {
    be.destroy();
  }
});

Deno.test({ name: "fast route: taken when on, not when off", ignore }, async (t) => {
  for (const fastGemm of [true, false]) {
    await t.step(`fastGemm: ${fastGemm}`, async () => {
      const be = await createWebGpuBackend({ profile: true, fastGemm });
      try {
        for (const [i, c] of CASES.entries()) {
          const r = rng(200 + i);
          const inputs = c.inputs.map((n) => randomArray(r, n));
          const want = await run(cpu, inputs, c.op);
          assertCloseRows(await run(be, inputs, c.op), want, c.rowLength, PRODUCT, `${c.name} (profiled)`);
          const keys = (await be.kernelProfile(true)).map((k) => k.key);
          const fast = keys.filter((k) => k.startsWith(`${c.key} `));
          assertEquals(fast.length > 0, fastGemm, `${c.name}: fast route in ${keys.join("; ")}`);
          assertTrue(!fast.some((k) => k.includes("declined")), `${c.name}: the hook declined`);
        }
      } finally {
        be.destroy();
      }
    });
  }
});
