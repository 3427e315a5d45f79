/**
 * Tests of element-wise fusion in the WebGPU backend: fused runs give bit-for-bit the results of the
 * separate kernels, freed pending results are never written, groups split on size and binding budget,
 * and interleaved non-fused ops and uploads see program order. Skipped without a WebGPU adapter.
 * @module
 */
import type { Backend, Storage } from "../backend.ts";
import { assertEquals, assertTrue } from "../../testing/asserts.ts";
import { createWebGpuBackend, type WebGpuBackend } from "./webgpu_backend.ts";
import { MAX_FUSED_BINDINGS } from "./fusion.ts";
import { randomArray, rng } from "./webgpu_test_util.ts";

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter;
if (ignore) console.log("Skipping the fusion tests: no WebGPU adapter");

/** Bits of float32 values, so that equality is exact (also for -0; NaN compares equal to NaN). */
function bits(a: ArrayLike<number>): number[] {
  return Array.from(new Uint32Array(Float32Array.from(a).buffer));
}

/**
 * A chain mixing every kind of fused op, where a fusing compiler could otherwise contract or reorder
 * (a·b + c, a·b − a·c, x / s · t, sigmoid(x)·(1 − sigmoid(x)), ...). Returns every intermediate.
 */
function chain(be: Backend, x: Storage, y: Storage, s: Storage, n: number): Storage[] {
  const sh = [n], one = [1];
  const out: Storage[] = [];
  const push = (v: Storage) => (out.push(v), v);
  const ab = push(be.binary("mul", x, sh, y, sh));
  const abc = push(be.binary("add", ab, sh, x, sh)); // fma candidate
  const ac = push(be.binary("mul", x, sh, s, one));
  push(be.binary("sub", ab, sh, ac, sh)); // factoring candidate
  const q = push(be.binary("div", x, sh, s, one));
  push(be.binary("mul", q, sh, y, sh));
  const sg = push(be.unary("sigmoid", x));
  const om = push(be.binary("sub", s, one, sg, sh));
  push(be.binary("mul", sg, sh, om, sh));
  const e = push(be.unary("exp", abc));
  const l = push(be.unary("log1p", push(be.unary("abs", e))));
  push(be.binary("pow", push(be.unary("abs", y)), sh, q, sh));
  const c = push(be.binary("gt", x, sh, y, sh));
  push(be.where(c, sh, l, sh, push(be.unary("tanh", q)), sh, sh));
  push(be.unary("softplus", push(be.binary("max", x, sh, y, sh))));
  push(be.unary("elu", push(be.binary("min", q, sh, l, sh))));
  push(be.binary("mul", push(be.unary("square", y)), sh, s, one));
  push(be.where(s, [], s, [1, 1], x, sh, sh)); // single values splatted (an expand of a scalar)
  push(be.where(c, sh, s, [], y, sh, sh));
  return out;
}

Deno.test({ name: "webgpu fusion", ignore }, async (t) => {
  const fused = await createWebGpuBackend();
  const plain = await createWebGpuBackend({ fuse: false });
  const r = rng(5);
  const n = 1003;
  const xs = randomArray(r, n, -4, 4), ys = randomArray(r, n, -3, 3);

  async function run(be: WebGpuBackend, free: boolean): Promise<ArrayLike<number>[]> {
    const x = be.fromArray(xs), y = be.fromArray(ys), s = be.fromArray([1.1]);
    const outs = chain(be, x, y, s, n);
    if (free) { for (const v of [x, y, s]) be.free(v); // inputs freed while the group is pending
     }
    const vals = [];
    for (const o of outs) vals.push(await be.read(o));
    for (const o of outs) be.free(o);
    if (!free) { for (const v of [x, y, s]) be.free(v); }
    return vals;
  }

  await t.step("a fused chain equals the separate kernels bit for bit", async () => {
    const before = fused.stats();
    const a = await run(fused, false);
    const after = fused.stats();
    const b = await run(plain, false);
    assertEquals(a.length, b.length);
    a.forEach((v, i) => assertEquals(bits(v), bits(b[i]), `output ${i}`));
    assertTrue(
      after.fusedOps - before.fusedOps >= a.length,
      `ops deferred: ${after.fusedOps - before.fusedOps}`,
    );
    assertTrue(
      after.dispatches - before.dispatches < a.length / 2,
      `${after.dispatches - before.dispatches} dispatches for ${a.length} ops`,
    );
  });

  await t.step("inputs freed while the group is pending are still read correctly", async () => {
    const a = await run(fused, true);
    const b = await run(plain, false);
    a.forEach((v, i) => assertEquals(bits(v), bits(b[i]), `output ${i}`));
  });

  await t.step(
    "a pending result freed before the group runs is not written; its buffer is reused",
    async () => {
      const x = fused.fromArray([1, 2, 3, 4]);
      const t1 = fused.unary("neg", x);
      const t2 = fused.binary("mul", t1, [4], t1, [4]);
      const hits = fused.stats().poolHits;
      fused.free(t1); // never written: its buffer returns to the pool at once
      const t3 = fused.unary("exp", x); // same size class: gets t1's buffer
      assertEquals(fused.stats().poolHits, hits + 1);
      assertEquals(Array.from(await fused.read(t2)), [1, 4, 9, 16]);
      const px = plain.fromArray([1, 2, 3, 4]), pe = plain.unary("exp", px);
      assertEquals(bits(await fused.read(t3)), bits(await plain.read(pe)));
      for (const s of [x, t2, t3]) fused.free(s);
      for (const s of [px, pe]) plain.free(s);
    },
  );

  await t.step("a freed input is not handed to an upload before the group has run", async () => {
    const a = fused.fromArray([1, 2, 3, 4]);
    const b = fused.unary("neg", a);
    fused.free(a);
    const c = fused.fromArray([9, 9, 9, 9]);
    assertEquals(Array.from(await fused.read(b)), [-1, -2, -3, -4]);
    assertEquals(Array.from(await fused.read(c)), [9, 9, 9, 9]);
    for (const s of [b, c]) fused.free(s);
  });

  await t.step("a non-fused op between fused ones sees program order", async () => {
    const x = fused.fromArray([1, 2, 3, 4, 5, 6]);
    const y = fused.binary("mul", x, [6], x, [6]); // pending
    const s = fused.reduce("sum", y, [2, 3], [1]); // flushes y first
    const z = fused.binary("add", y, [6], x, [6]); // a new group reading y
    const w = fused.binary("mul", s, [2], s, [2]); // another size: flushes z's group
    assertEquals(Array.from(await fused.read(w)), [14 * 14, 77 * 77]);
    assertEquals(Array.from(await fused.read(z)), [2, 6, 12, 20, 30, 42]);
    for (const v of [x, y, s, z, w]) fused.free(v);
  });

  await t.step("groups split when they would exceed the binding budget", async () => {
    const k = MAX_FUSED_BINDINGS + 5;
    const ins = Array.from({ length: k }, (_, i) => fused.fromArray([i, i, i, i, i]));
    const before = fused.stats().fusedKernels;
    let acc = fused.binary("add", ins[0], [5], ins[1], [5]);
    const partials = [acc];
    for (let i = 2; i < k; i++) {
      acc = fused.binary("add", acc, [5], ins[i], [5]);
      partials.push(acc);
    }
    const total = (k * (k - 1)) / 2;
    assertEquals(Array.from(await fused.read(acc)), [total, total, total, total, total]);
    assertTrue(fused.stats().fusedKernels - before >= 2, "more than one kernel");
    for (const v of [...ins, ...partials]) fused.free(v);
  });

  fused.destroy();
  plain.destroy();
});
