/**
 * Tests of the dispatcher's per-kernel profiling (timestamp queries). Skipped, with a printed reason,
 * when no WebGPU adapter or no "timestamp-query" feature exists.
 * @module
 */
import { assertEquals, assertTrue } from "../../testing/asserts.ts";
import { createWebGpuBackend } from "./webgpu_backend.ts";

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter || !adapter.features.has("timestamp-query");
if (ignore) console.log("Skipping the dispatcher profiling tests: no WebGPU adapter with timestamp-query");

Deno.test({ name: "dispatcher: kernel profile", ignore }, async (t) => {
  await t.step("sums GPU time and counts per kind of dispatch, and resets", async () => {
    const be = await createWebGpuBackend({ profile: true, submitEvery: 3, fuse: false });
    const x = be.fromArray(new Float32Array(1000).fill(0.5));
    const outs = [be.unary("exp", x), be.unary("exp", x), be.binary("add", x, [1000], x, [1000])];
    assertEquals(Array.from((await be.read(outs[2])).slice(0, 3)), [1, 1, 1]);
    const prof = await be.kernelProfile(true);
    const exp = prof.find((e) => e.key.startsWith("unary:exp n=1000 "));
    assertTrue(exp !== undefined, `an entry for unary:exp in ${prof.map((e) => e.key).join("; ")}`);
    assertEquals(exp!.count, 2);
    assertTrue(prof.every((e) => e.ms >= 0 && Number.isFinite(e.ms)), "finite non-negative times");
    assertEquals(prof.reduce((a, e) => a + e.count, 0), 3);
    assertEquals((await be.kernelProfile()).length, 0);
    for (const s of [x, ...outs]) be.free(s);
    be.destroy();
  });
  await t.step("is empty without profile", async () => {
    const be = await createWebGpuBackend();
    const x = be.fromArray([1, 2]);
    be.free(be.unary("neg", x));
    assertEquals((await be.kernelProfile()).length, 0);
    be.free(x);
    be.destroy();
  });
});
