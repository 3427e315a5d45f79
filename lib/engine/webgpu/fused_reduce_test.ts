/**
 * Tests of reductions that evaluate a pending element-wise chain themselves (kernels/fused_reduce.ts via
 * reduce_ops.ts): bit for bit the results of the fused kernel plus the separate reduction (results and
 * the chain's stored values), on the CPU reference's values within float32 rounding, one dispatch instead
 * of two, across the vec4 and scalar paths, kept inner axes, long reductions (one workgroup per output,
 * kernels/reduce_wg.ts) and results freed while pending; and long reductions with few outputs in one
 * dispatch instead of two passes. Skipped without a WebGPU adapter.
 * @module
 */
import type { Backend, ReduceOp, Shape, Storage } from "../backend.ts";
import { sizeOf } from "../backend.ts";
import { assertClose, assertEquals, assertTrue } from "../../testing/asserts.ts";
import { createDevice } from "../devices.ts";
import { createWebGpuBackend, requestWebGpuAdapter } from "./webgpu_backend.ts";
import { reduceFusionOptions } from "./reduce_ops.ts";
import { randomArray, rng } from "./webgpu_test_util.ts";

const ignore = (await requestWebGpuAdapter()) === null;
if (ignore) console.log("Skipping the fused reduction tests: no WebGPU adapter");

/** Float32 sums of up to 100,000 terms of size about 10 against the float32 CPU reference's order. */
const CPU_TOL = { atol: 1e-3, rtol: 1e-4 };

function bits(a: ArrayLike<number>): number[] {
  return Array.from(new Uint32Array(Float32Array.from(a).buffer));
}

/** A case: input shape, reduced axes, op, and whether an intermediate is freed while pending. */
interface Case {
  readonly shape: Shape;
  readonly axes: readonly number[];
  readonly op: ReduceOp;
  readonly freeIntermediate: boolean;
}

const CASES: readonly Case[] = [
  { shape: [8, 1003], axes: [1], op: "sum", freeIntermediate: false }, // scalar path
  { shape: [4, 64, 28], axes: [0, 2], op: "sum", freeIntermediate: false }, // vec4, R1 and K2
  { shape: [2, 50000], axes: [1], op: "sum", freeIntermediate: true }, // chunked: two passes
  { shape: [6, 7, 5], axes: [0, 1, 2], op: "max", freeIntermediate: false }, // all axes, scalar
  { shape: [16, 3, 12], axes: [1], op: "max", freeIntermediate: true }, // vec4, kept inner axis
];

/**
 * x·y + s, then sigmoid of it times x (the reduced value); returns [reduced, stored intermediates...].
 * With `freeIntermediate` the product is freed before the reduction (never written).
 */
function run(be: Backend, c: Case, x: Storage, y: Storage, s: Storage): Storage[] {
  const sh = c.shape, one = [1];
  const p = be.binary("mul", x, sh, y, sh);
  const q = be.binary("add", p, sh, s, one);
  const r = be.binary("mul", be.unary("sigmoid", q), sh, x, sh);
  const kept = [q, r];
  if (c.freeIntermediate) be.free(p);
  else kept.push(p);
  return [be.reduce(c.op, r, sh, c.axes), ...kept];
}

Deno.test({ name: "fused reductions", ignore }, async (t) => {
  const gpu = await createWebGpuBackend();
  const cpu = (await createDevice("cpu")).backend;
  const r = rng(11);
  for (const c of CASES) {
    await t.step(`${c.op} over axes [${c.axes}] of [${c.shape}]`, async () => {
      const n = sizeOf(c.shape);
      const xs = randomArray(r, n, -3, 3), ys = randomArray(r, n, -2, 2);
      const go = async (be: Backend, fuse: boolean) => {
        reduceFusionOptions.enabled = fuse;
        try {
          const ins = [be.fromArray(xs), be.fromArray(ys), be.fromArray([0.25])];
          const d0 = "stats" in be ? (be as typeof gpu).stats().dispatches : 0;
          const outs = run(be, c, ins[0], ins[1], ins[2]);
          const d1 = "stats" in be ? (be as typeof gpu).stats().dispatches : 0;
          const vals = [];
          for (const o of outs) vals.push(Float32Array.from(await be.read(o)));
          for (const o of [...outs, ...ins]) be.free(o);
          return { vals, dispatches: d1 - d0 };
        } finally {
          reduceFusionOptions.enabled = true;
        }
      };
      const on = await go(gpu, true);
      const off = await go(gpu, false);
      on.vals.forEach((v, i) =>
        assertEquals(bits(v), bits(off.vals[i]), `output ${i}: fused against separate`)
      );
      assertEquals(on.dispatches, off.dispatches - 1, "one dispatch fewer");
      const ref = await go(cpu, true);
      on.vals.forEach((v, i) => assertClose(v, ref.vals[i], CPU_TOL, `output ${i} against the CPU`));
      assertTrue(on.vals[0].length === ref.vals[0].length);
    });
  }

  await t.step("long reductions with few outputs run in one pass, on the CPU's values", async () => {
    const cases: [Shape, number[], ReduceOp][] = [
      [[3, 5000, 6], [1], "sum"], // scalar terms, K2 > 1
      [[4, 8, 2000], [1, 2], "sum"], // vec4 terms
      [[2, 9001], [1], "max"],
      [[60000], [0], "sum"], // one output (longer ones keep two passes: webgpu_backend_test.ts)
    ];
    for (const [shape, axes, op] of cases) {
      const xs = randomArray(r, sizeOf(shape), -2, 2);
      const go = async (be: Backend, onePass: boolean) => {
        reduceFusionOptions.onePass = onePass;
        try {
          const x = be.fromArray(xs);
          const d0 = "stats" in be ? (be as typeof gpu).stats().dispatches : 0;
          const y = be.reduce(op, x, shape, axes);
          const d1 = "stats" in be ? (be as typeof gpu).stats().dispatches : 0;
          const v = Float32Array.from(await be.read(y));
          be.free(x);
          be.free(y);
          return { v, dispatches: d1 - d0 };
        } finally {
          reduceFusionOptions.onePass = true;
        }
      };
      const one = await go(gpu, true);
      const two = await go(gpu, false);
      const what = `${op} over [${axes}] of [${shape}]`;
      assertEquals([one.dispatches, two.dispatches], [1, 2], `${what}: dispatches one-pass, two-pass`);
      const ref = await go(cpu, true);
      assertClose(one.v, ref.v, CPU_TOL, `${what}: one pass against the CPU`);
      assertClose(two.v, ref.v, CPU_TOL, `${what}: two passes against the CPU`);
    }
  });
  gpu.destroy();
});
