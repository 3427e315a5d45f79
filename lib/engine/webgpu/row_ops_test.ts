/**
 * Tests of the fused row kernels (kernels/rows.ts through ops/rows.ts): normalizeRows, rowsConverged and
 * normalizeRowsConverged on WebGPU against the composed ops on the CPU reference, one dispatch each, rows folded into a 2-D
 * grid, and gradients still recorded through the composed ops. Skipped without a WebGPU adapter.
 * @module
 */
import { assertClose, assertEquals, assertTrue } from "../../testing/asserts.ts";
import { createDevice } from "../devices.ts";
import { Device, noGrad } from "../tensor.ts";
import { requireGrad, tensor } from "../ops/creation.ts";
import { normalizeRows, normalizeRowsConverged, rowOpsOptions, rowsConverged } from "../ops/rows.ts";
import { grad } from "../autograd.ts";
import { sum } from "../ops/reduce.ts";
import { mul } from "../ops/elementwise.ts";
import { createWebGpuBackend, requestWebGpuAdapter, type WebGpuBackend } from "./webgpu_backend.ts";
import { randomArray, rng } from "./webgpu_test_util.ts";

const ignore = (await requestWebGpuAdapter()) === null;
if (ignore) console.log("Skipping the row kernel tests: no WebGPU adapter");

/**
 * Float32 normalisation: a sum of up to 3,000 squares in another order than the reduction kernel's
 * (relative error about n·2⁻²⁴ at worst, far less in practice) and sqrt against pow(·, 0.5).
 */
const NORMALIZE_TOL = { atol: 1e-7, rtol: 2e-5 };
/** Gradients through the composed ops on both devices: the same float32 ops, other summation orders. */
const GRAD_TOL = { atol: 1e-6, rtol: 1e-4 };

Deno.test({ name: "fused row kernels", ignore }, async (t) => {
  const cpu = await createDevice("cpu");
  const be = await createWebGpuBackend();
  const gpu = new Device(be);
  const r = rng(7);

  await t.step("normalizeRows equals the composed ops on the CPU, in one dispatch", async () => {
    for (const [rows, cols] of [[3, 5], [4, 1000], [1, 3000], [9, 128], [2, 129]]) {
      const data = randomArray(r, rows * cols, -2, 2);
      if (rows > 2) data.fill(0, cols, 2 * cols); // a zero row: the norm is floored at eps, the row stays 0
      const want = await normalizeRows(tensor(data, [rows, cols], cpu)).read();
      const x = tensor(data, [rows, cols], gpu);
      const s0 = be.stats().dispatches;
      const y = normalizeRows(x);
      const got = await y.read();
      assertEquals(be.stats().dispatches - s0, 1, `dispatches for [${rows}, ${cols}]`);
      assertClose(got, want, NORMALIZE_TOL, `normalizeRows [${rows}, ${cols}]`);
      x.dispose();
      y.dispose();
    }
  });

  await t.step("rowsConverged gives the composed flags, in one dispatch", async () => {
    const [rows, colsA, colsC, atol, rtol] = [6, 700, 300, 1e-3, 1e-2];
    const a = randomArray(r, rows * colsA, 0, 1);
    const c = randomArray(r, rows * colsC, -1, 0.5);
    const b = new Float32Array(a.length), d = new Float32Array(c.length);
    // Row i's differences have rms = factor × its threshold: factors away from 1 make the flags exact.
    const factors = [[0.5, 0.5], [2, 0.5], [0.5, 2], [2, 2], [0, 0.9], [1.1, 0]];
    const fill = (src: Float32Array, dst: Float32Array, cols: number, k: number) => {
      for (let i = 0; i < rows; i++) {
        let m = -Infinity;
        for (let j = 0; j < cols; j++) m = Math.max(m, src[i * cols + j]);
        const e = factors[i][k] * (atol + rtol * m);
        for (let j = 0; j < cols; j++) dst[i * cols + j] = src[i * cols + j] - (j % 2 ? e : -e);
      }
    };
    fill(a, b, colsA, 0);
    fill(c, d, colsC, 1);
    const run = (dev: Device) =>
      rowsConverged(
        tensor(a, [rows, colsA], dev),
        tensor(b, [rows, colsA], dev),
        tensor(c, [rows, colsC], dev),
        tensor(d, [rows, colsC], dev),
        atol,
        rtol,
      );
    const want = await noGrad(() => run(cpu)).read();
    assertEquals(Array.from(want), [1, 0, 0, 0, 1, 0]);
    const s0 = be.stats().dispatches;
    const got = noGrad(() => run(gpu));
    const s1 = be.stats().dispatches;
    assertEquals(Array.from(await got.read()), Array.from(want));
    assertEquals(s1 - s0, 1, "dispatches");
    assertEquals(got.shape, [rows]);
  });

  await t.step("normalizeRowsConverged gives the composed y and flags, in one dispatch", async () => {
    const [rows, cols, colsA, atol, rtol] = [5, 500, 200, 1e-3, 1e-2];
    const x = randomArray(r, rows * cols, -1, 3);
    // y is x normalised; v = y shifted by factor × threshold (computed in float64 here; the factors keep
    // far enough from 1 that float32 rounding cannot flip a flag), and likewise b from a.
    const v = new Float32Array(x.length);
    const a = randomArray(r, rows * colsA, 0, 2), b = new Float32Array(a.length);
    const factors = [[0.5, 0.5], [2, 0.5], [0.5, 2], [0, 0], [3, 3]];
    for (let i = 0; i < rows; i++) {
      let n2 = 0;
      for (let j = 0; j < cols; j++) n2 += x[i * cols + j] ** 2;
      const y = (j: number) => x[i * cols + j] / Math.sqrt(n2);
      let m = -Infinity;
      for (let j = 0; j < cols; j++) m = Math.max(m, y(j));
      const e = factors[i][0] * (atol + rtol * m);
      for (let j = 0; j < cols; j++) v[i * cols + j] = y(j) - (j % 2 ? e : -e);
      let ma = -Infinity;
      for (let j = 0; j < colsA; j++) ma = Math.max(ma, a[i * colsA + j]);
      const ea = factors[i][1] * (atol + rtol * ma);
      for (let j = 0; j < colsA; j++) b[i * colsA + j] = a[i * colsA + j] - (j % 2 ? ea : -ea);
    }
    const run = (dev: Device) =>
      noGrad(() =>
        normalizeRowsConverged(
          tensor(x, [rows, cols], dev),
          tensor(v, [rows, cols], dev),
          tensor(a, [rows, colsA], dev),
          tensor(b, [rows, colsA], dev),
          1e-12,
          atol,
          rtol,
        )
      );
    const [wantY, wantF] = run(cpu);
    assertEquals(Array.from(await wantF.read()), [1, 0, 0, 1, 0]);
    const s0 = be.stats().dispatches;
    const [y, f] = run(gpu);
    assertEquals(be.stats().dispatches - s0, 1, "dispatches");
    assertClose(await y.read(), await wantY.read(), NORMALIZE_TOL, "y");
    assertEquals(Array.from(await f.read()), [1, 0, 0, 1, 0], "flags");
  });

  await t.step("rows beyond the grid limit fold into a second grid dimension", async () => {
    const small = await createWebGpuBackend({ testLimits: { maxComputeWorkgroupsPerDimension: 4 } });
    const dev = new Device(small as WebGpuBackend);
    const [rows, cols] = [11, 40];
    const data = randomArray(r, rows * cols);
    const want = await normalizeRows(tensor(data, [rows, cols], cpu)).read();
    assertClose(await normalizeRows(tensor(data, [rows, cols], dev)).read(), want, NORMALIZE_TOL, "folded");
    const flags = rowsConverged(
      ...[0, 1, 2, 3].map(() => tensor(data, [rows, cols], dev)) as [never, never, never, never],
      0,
      0.1,
    );
    assertEquals(Array.from(await flags.read()), new Array(rows).fill(1), "equal rows converge");
    small.destroy();
  });

  await t.step("with a gradient to record, the composed ops run and differentiate (also twice)", async () => {
    const data = randomArray(r, 2 * 7);
    const w = randomArray(r, 2 * 7);
    const grads = async (dev: Device) => {
      const x = requireGrad(tensor(data, [2, 7], dev));
      const y = sum(mul(normalizeRows(x), tensor(w, [2, 7], dev)));
      const [g] = grad(y, [x], { createGraph: true });
      assertTrue(g.node !== null, "the first gradient is differentiable");
      const [gg] = grad(sum(mul(g, g)), [x]);
      return [await g.read(), await gg.read()];
    };
    const [g0, gg0] = await grads(cpu);
    const [g1, gg1] = await grads(gpu);
    assertClose(g1, g0, GRAD_TOL, "first gradient");
    assertClose(gg1, gg0, GRAD_TOL, "second gradient");
  });

  await t.step("the switch off runs the composed ops on WebGPU with the same results", async () => {
    const data = randomArray(r, 5 * 300);
    const on = await normalizeRows(tensor(data, [5, 300], gpu)).read();
    rowOpsOptions.fused = false;
    try {
      const s0 = be.stats().dispatches;
      const off = await normalizeRows(tensor(data, [5, 300], gpu)).read();
      assertTrue(be.stats().dispatches - s0 > 1, "composed: several dispatches");
      assertClose(on, off, NORMALIZE_TOL, "fused against composed on WebGPU");
    } finally {
      rowOpsOptions.fused = true;
    }
  });
  be.destroy();
});
