/**
 * Tests of the training benchmark's statistics and per-iteration figures (pure functions; nothing is
 * timed).
 * @module
 */
import { assertClose, assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import type { WebGpuStats } from "../../lib/engine/webgpu/webgpu_backend.ts";
import { finiteOrNull, ratioOfMeans, stepFigures, summarize } from "./bench_train.ts";
import { median } from "../framework/stats.ts";

/** Float64 arithmetic on a few values. */
const TOL = { atol: 1e-12, rtol: 1e-12 };

Deno.test("bench_train statistics", async (t) => {
  await t.step("summarize: mean, standard error sd/√n, median", () => {
    const s = summarize([1, 2, 3, 4]);
    assertEquals([s.n, s.mean, s.median], [4, 2.5, 2.5]);
    assertClose([s.se], [Math.sqrt(5 / 3 / 4)], TOL);
    assertTrue(Number.isNaN(summarize([1]).se), "one value has no standard error");
  });
  await t.step("finiteOrNull: NaN and infinities become null, the rest is kept", () => {
    assertEquals(
      finiteOrNull({ a: NaN, b: [1, Infinity], c: "x" }),
      { a: null, b: [1, null], c: "x" } as never,
    );
  });
  await t.step("median of an empty list is NaN", () => assertTrue(Number.isNaN(median([])), "NaN"));
  await t.step("ratioOfMeans: delta-method error from both relative errors", () => {
    const a = { n: 4, mean: 2, se: 0.2, median: 2 };
    const b = { n: 4, mean: 4, se: 0.4, median: 4 };
    const r = ratioOfMeans(a, b);
    assertClose([r.ratio, r.se], [0.5, 0.5 * Math.hypot(0.1, 0.1)], TOL);
  });
  await t.step("stepFigures: differences of counters, host = wall - submit - waits", () => {
    const zero = {
      bytesAllocatedTotal: 0,
      buffersCreated: 0,
      poolHits: 0,
      poolBytes: 0,
      dispatches: 0,
      submits: 0,
      pipelines: 0,
      submitMs: 0,
      readbacks: 0,
      readbackBytes: 0,
      stagingBytes: 0,
      uploads: 0,
      uploadBytes: 0,
      bindGroups: 0,
      bindGroupHits: 0,
      waitMs: 0,
      fusedOps: 0,
      fusedKernels: 0,
    } satisfies WebGpuStats;
    const after = {
      ...zero,
      dispatches: 10,
      submits: 2,
      readbacks: 1,
      bytesAllocatedTotal: 4096,
      stagingBytes: 16,
      bindGroups: 3,
      bindGroupHits: 7,
      submitMs: 300,
      waitMs: 100,
    };
    const f = stepFigures(1, zero, after, 42, 250);
    assertEquals(
      [f.dispatches, f.submits, f.readbacks, f.bytesAllocated, f.bindGroups, f.bindGroupHits, f.deviceMs],
      [10, 2, 1, 4112, 3, 7, 400],
    );
    assertEquals([f.hostMs, f.gradNodesVisited, f.mainThreadCpuMs], [600, 42, 250]);
  });
});
