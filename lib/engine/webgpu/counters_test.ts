/**
 * Tests that the WebGPU backend's counters count: dispatches, submits, readbacks, uploads, bind groups and
 * bytes for known op sequences. Nothing here times anything (the millisecond counters are only checked
 * to be finite and non-negative). Skipped, with a printed reason, without a WebGPU adapter.
 * @module
 */
import { assertEquals, assertTrue } from "../../testing/asserts.ts";
import { createWebGpuBackend, requestWebGpuAdapter, type WebGpuStats } from "./webgpu_backend.ts";

const ignore = (await requestWebGpuAdapter()) === null;
if (ignore) console.log("Skipping the WebGPU counter tests: no WebGPU adapter");

/** after − before for every numeric counter. */
function delta(before: WebGpuStats, after: WebGpuStats): Record<keyof WebGpuStats, number> {
  const out = {} as Record<keyof WebGpuStats, number>;
  for (const k of Object.keys(after) as (keyof WebGpuStats)[]) out[k] = after[k] - before[k];
  return out;
}

Deno.test({ name: "webgpu counters", ignore }, async (t) => {
  await t.step("unfused: one dispatch and one bind group per op, a submit every submitEvery", async () => {
    const be = await createWebGpuBackend({ fuse: false, submitEvery: 2 });
    const s0 = be.stats();
    const x = be.fromArray(new Float32Array(100).fill(1)); // one upload, no dispatch
    const a = be.unary("exp", x);
    const b = be.unary("neg", a); // second dispatch: submit
    const c = be.binary("add", a, [100], b, [100]);
    const s1 = be.stats();
    const d1 = delta(s0, s1);
    assertEquals([d1.dispatches, d1.bindGroups, d1.submits, d1.uploads, d1.readbacks], [3, 3, 1, 1, 0]);
    assertEquals(d1.uploadBytes, 400);
    const v = await be.read(c); // submits the third dispatch and the copy
    assertEquals(v[0], 0);
    const d2 = delta(s1, be.stats());
    assertEquals([d2.dispatches, d2.submits, d2.readbacks, d2.readbackBytes], [0, 1, 1, 400]);
    assertTrue(d2.stagingBytes >= 400, `staging bytes ${d2.stagingBytes}`);
    const s = be.stats();
    for (const k of ["submitMs", "waitMs"] as const) {
      assertTrue(Number.isFinite(s[k]) && s[k] >= 0, `${k} = ${s[k]}`);
    }
    for (const st of [x, a, b, c]) be.free(st);
    be.destroy();
  });
  await t.step("fused: a chain of three element-wise ops is one dispatch", async () => {
    const be = await createWebGpuBackend({ fuse: true });
    const x = be.fromArray(new Float32Array(64).fill(2));
    const s0 = be.stats();
    const a = be.unary("exp", x);
    const b = be.unary("neg", a);
    const c = be.binary("add", a, [64], b, [64]);
    be.free(a);
    be.free(b);
    await be.read(c);
    const d = delta(s0, be.stats());
    assertEquals([d.dispatches, d.fusedKernels, d.fusedOps, d.readbacks], [1, 1, 3, 1]);
    be.free(c);
    be.free(x);
    be.destroy();
  });
  await t.step("a repeated dispatch on the same storages reuses its bind group", async () => {
    const be = await createWebGpuBackend({ fuse: false });
    const x = be.fromArray([1, 2, 3]);
    const s0 = be.stats();
    const a = be.unary("neg", x);
    await be.sync(); // submitted, so freeing returns its buffer to the pool at once
    be.free(a); // the next neg gets the same buffer
    const b = be.unary("neg", x);
    const d = delta(s0, be.stats());
    assertEquals([d.dispatches, d.bindGroups, d.bindGroupHits], [2, 1, 1]);
    assertEquals(Array.from(await be.read(b)), [-1, -2, -3]);
    be.setBindGroupReuse(false);
    be.free(be.unary("neg", b));
    assertEquals(delta(s0, be.stats()).bindGroups, 2);
    be.free(b);
    be.free(x);
    be.destroy();
  });
  await t.step("without the cache every dispatch creates a bind group", async () => {
    const be = await createWebGpuBackend({ fuse: false, bindGroupCache: false });
    const x = be.fromArray([1, 2, 3]);
    const s0 = be.stats();
    be.free(be.unary("neg", x));
    be.free(be.unary("neg", x));
    const d = delta(s0, be.stats());
    assertEquals([d.bindGroups, d.bindGroupHits], [2, 0]);
    be.free(x);
    be.destroy();
  });
  await t.step("new pool buffers count their bytes, reused ones do not", async () => {
    const be = await createWebGpuBackend({ fuse: false });
    const s0 = be.stats();
    const x = be.fromArray(new Float32Array(1024)); // 4096 bytes: a size class of its own
    const d1 = delta(s0, be.stats());
    assertEquals([d1.buffersCreated, d1.bytesAllocatedTotal], [1, 4096]);
    be.free(x);
    const y = be.fromArray(new Float32Array(1024));
    const d2 = delta(s0, be.stats());
    assertEquals([d2.buffersCreated, d2.bytesAllocatedTotal, d2.poolHits], [1, 4096, 1]);
    be.free(y);
    be.destroy();
  });
});
