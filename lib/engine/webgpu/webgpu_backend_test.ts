/**
 * Tests of the WebGPU backend against the CPU reference backend (float32). Skipped, with a printed
 * reason, when no WebGPU adapter exists.
 * @module
 */
import type { Backend, BinaryOp, Conv2dGeometry, Shape, UnaryOp } from "../backend.ts";
import { conv2dOutputShape, sizeOf } from "../backend.ts";
import { createCpuBackend } from "../cpu/cpu_backend.ts";
import { assertClose, assertEquals, assertRejects, assertThrows, assertTrue } from "../../testing/asserts.ts";
import type { Tolerance } from "../../testing/asserts.ts";
import { createWebGpuBackend, NO_ADAPTER_MESSAGE, type WebGpuBackend } from "./webgpu_backend.ts";
import { assertCloseRows, assertSameAsCpu, randomArray, rng, runBoth } from "./webgpu_test_util.ts";

/** Exactly rounded ops (arithmetic, comparisons, copies) and simple functions. */
const ELEMENTWISE: Tolerance = { atol: 1e-7, rtol: 1e-6 };
/** exp/log-based functions: llvmpipe's float32 exp and log are a few ulp off. */
const TRANSCENDENTAL: Tolerance = { atol: 1e-6, rtol: 4e-6 };
/** pow goes through exp2(b log2 |a|), whose error grows with |b log2 a|. */
const POW: Tolerance = { atol: 1e-6, rtol: 2e-5 };
/** Sums: float32 accumulation in a different order than the reference. */
const REDUCE: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Matmul and convolutions, relative to the L2 norm of each output row. */
const PRODUCT: Tolerance = { atol: 1e-6, rtol: 1e-4 };
/** Pure copies and max reductions must be exact. */
const EXACT: Tolerance = { atol: 0, rtol: 0 };

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter;
if (ignore) {
  console.log("Skipping the WebGPU backend tests: no WebGPU adapter (navigator.gpu missing or no adapter)");
}

const gpu: WebGpuBackend | null = ignore ? null : await createWebGpuBackend();
const cpu = createCpuBackend("float32");

function g(): WebGpuBackend {
  if (!gpu) throw new Error("Cannot run a WebGPU test: no backend");
  return gpu;
}

Deno.test("createWebGpuBackend throws a clear error without navigator.gpu", async () => {
  Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
  try {
    await assertRejects(() => createWebGpuBackend(), /no adapter.*mesa-vulkan-drivers.*CPU backend/s);
  } finally {
    delete (navigator as unknown as Record<string, unknown>).gpu;
  }
  assertTrue(NO_ADAPTER_MESSAGE.startsWith("Cannot create the WebGPU backend: no adapter"));
});

Deno.test({ name: "webgpu: storages, fill, read, free, errors", ignore }, async (t) => {
  const be = g();
  await t.step("fromArray/read round trip and empty storages", async () => {
    const s = be.fromArray([1.5, -2, 3e-8, 7]);
    assertEquals(Array.from(await be.read(s)), [1.5, -2, Math.fround(3e-8), 7]);
    const e = be.fromArray([]);
    assertEquals((await be.read(e)).length, 0);
    be.free(s);
    be.free(e);
  });
  await t.step("fill of odd sizes", async () => {
    for (const n of [1, 5, 1001]) {
      const s = be.fill(n, -0.25);
      const v = await be.read(s);
      assertEquals(v.length, n);
      assertTrue(v.every((x) => x === -0.25), `fill(${n}) values`);
      be.free(s);
    }
  });
  await t.step("double free and use after free throw", () => {
    const s = be.fromArray([1, 2]);
    be.free(s);
    assertThrows(() => be.free(s), /already freed/);
    assertThrows(() => be.unary("neg", s), /freed/);
  });
  await t.step("a CPU storage is rejected", () => {
    assertThrows(() => be.unary("neg", cpu.fromArray([1])), /does not belong to the WebGPU backend/);
  });
});

const UNARY_DOMAINS: Record<UnaryOp, [number, number, Tolerance]> = {
  neg: [-3, 3, ELEMENTWISE],
  exp: [-10, 10, TRANSCENDENTAL],
  log: [1e-3, 100, TRANSCENDENTAL],
  log1p: [-0.99, 10, TRANSCENDENTAL],
  sqrt: [0, 100, ELEMENTWISE],
  abs: [-3, 3, ELEMENTWISE],
  sign: [-3, 3, ELEMENTWISE],
  sigmoid: [-20, 20, TRANSCENDENTAL],
  softplus: [-20, 20, TRANSCENDENTAL],
  tanh: [-10, 10, TRANSCENDENTAL],
  elu: [-5, 5, TRANSCENDENTAL],
  relu: [-3, 3, ELEMENTWISE],
  step: [-3, 3, ELEMENTWISE],
  recip: [0.1, 10, ELEMENTWISE],
  square: [-3, 3, ELEMENTWISE],
};

Deno.test({ name: "webgpu: unary ops match the CPU reference", ignore }, async (t) => {
  const r = rng(1);
  for (
    const [op, [lo, hi, tol]] of Object.entries(UNARY_DOMAINS) as [UnaryOp, [number, number, Tolerance]][]
  ) {
    await t.step(op, async () => {
      const x = randomArray(r, 1003, lo, hi);
      // Small magnitudes, zeros and exact special points.
      x.set([0, -0, 1e-5, -1e-5, 1e-3, -1e-3].map((v) => Math.min(hi, Math.max(lo, v))), 0);
      await assertSameAsCpu(g(), cpu, [x], (be, [a]) => be.unary(op, a), tol, `unary ${op}`);
    });
  }
});

const BINARY_OPS: BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "max",
  "min",
  "gt",
  "ge",
  "lt",
  "le",
  "eq",
  "ne",
];

function binaryInputs(op: BinaryOp, r: ReturnType<typeof rng>, n: number, which: "a" | "b"): Float32Array {
  if (op === "pow" && which === "a") return randomArray(r, n, 0.1, 4);
  if (op === "pow") return randomArray(r, n, -3, 3);
  if (op === "div" && which === "b") return randomArray(r, n, 0.5, 2);
  // Quantized values so comparisons see ties.
  return randomArray(r, n, -3, 3).map((v) => Math.round(v * 4) / 4);
}

Deno.test({ name: "webgpu: binary ops with broadcasting match the CPU reference", ignore }, async (t) => {
  const r = rng(2);
  const cases: [Shape, Shape][] = [
    [[7, 9], [7, 9]], // same shape (vec4 path, odd size)
    [[3, 5], []], // scalar b
    [[1], [2, 3, 4]], // scalar a
    [[3, 1, 5], [4, 1]], // general broadcast on both sides
    [[2, 3, 4, 5], [3, 1, 5]],
    [[6, 1], [1, 6]],
    [[2, 3, 8], [3, 1]], // 4 outputs per invocation: a as vec4s, b splatted
    [[4], [3, 4]], // both as vec4s, a repeated
    [[2, 1, 8], [2, 3, 1]], // a as vec4s repeated, b splatted
  ];
  for (const op of BINARY_OPS) {
    await t.step(op, async () => {
      for (const [as, bs] of cases) {
        const a = binaryInputs(op, r, sizeOf(as), "a"), b = binaryInputs(op, r, sizeOf(bs), "b");
        const tol = op === "pow" ? POW : ELEMENTWISE;
        await assertSameAsCpu(
          g(),
          cpu,
          [a, b],
          (be, [x, y]) => be.binary(op, x, as, y, bs),
          tol,
          `${op} ${as}|${bs}`,
        );
      }
    });
  }
  await t.step("pow of negative bases and special exponents", async () => {
    const a = [-2, -2, -2, 0, 0, 0, 4, -4, 3, -3, 0];
    const b = [2, 3, 0.5, 0, 2, -1, 0.5, 1, 0, -2, 0.5];
    const [gv, cv] = await runBoth(g(), cpu, [a, b], (be, [x, y]) => be.binary("pow", x, [11], y, [11]));
    const special = (v: Float32Array) => Array.from(v).map((x) => Number.isFinite(x) ? "finite" : String(x));
    assertEquals(special(gv), special(cv), "NaN and infinity positions");
    const finite = (v: Float32Array) => Array.from(v).map((x) => Number.isFinite(x) ? x : 0);
    assertClose(finite(gv), finite(cv), POW, "pow special cases");
  });
});

Deno.test({ name: "webgpu: where with and without broadcasting", ignore }, async (t) => {
  const r = rng(3);
  const cases: [Shape, Shape, Shape, Shape][] = [
    [[5, 7], [5, 7], [5, 7], [5, 7]],
    [[5, 1], [1, 7], [], [5, 7]],
    [[2, 1, 4], [3, 4], [2, 3, 1], [2, 3, 4]],
  ];
  for (const [cs, as, bs, os] of cases) {
    await t.step(`${cs}|${as}|${bs}`, async () => {
      const c = randomArray(r, sizeOf(cs)).map((v) => v > 0 ? 1 : 0);
      await assertSameAsCpu(
        g(),
        cpu,
        [c, randomArray(r, sizeOf(as)), randomArray(r, sizeOf(bs))],
        (be, [x, y, z]) => be.where(x, cs, y, as, z, bs, os),
        EXACT,
        "where",
      );
    });
  }
});

function subsets(rank: number): number[][] {
  const out: number[][] = [];
  for (let m = 1; m < 1 << rank; m++) out.push([...Array(rank).keys()].filter((i) => m & (1 << i)));
  return out;
}

Deno.test({ name: "webgpu: reduce sum and max over every axis set", ignore }, async (t) => {
  const r = rng(4);
  for (const shape of [[2, 3, 4, 5], [3, 1, 8], [17]] as Shape[]) {
    const x = randomArray(r, sizeOf(shape));
    for (const axes of subsets(shape.length)) {
      await t.step(`${shape} axes ${axes}`, async () => {
        for (const op of ["sum", "max"] as const) {
          await assertSameAsCpu(
            g(),
            cpu,
            [x],
            (be, [s]) => be.reduce(op, s, shape, axes),
            op === "sum" ? REDUCE : EXACT,
            `${op}`,
          );
        }
      });
    }
  }
  await t.step("long reductions use two passes and stay accurate", async () => {
    const cases: [Shape, number[]][] = [[[1 << 20], [0]], [[3, 200000], [1]], [[100000, 3], [0]], [[
      8,
      3,
      9000,
    ], [0, 2]]];
    for (const [shape, axes] of cases) {
      const x = randomArray(r, sizeOf(shape), 0, 1);
      const before = g().stats().dispatches;
      const [gs, cs] = await runBoth(g(), cpu, [x], (be, [s]) => be.reduce("sum", s, shape, axes));
      assertTrue(g().stats().dispatches - before >= 2, `two dispatches for ${shape} axes ${axes}`);
      assertClose(gs, cs, REDUCE, `sum ${shape} axes ${axes}`);
      await assertSameAsCpu(g(), cpu, [x], (be, [s]) => be.reduce("max", s, shape, axes), EXACT, "max");
    }
  });
});

Deno.test({ name: "webgpu: permute, slice, pad and concat", ignore }, async (t) => {
  const r = rng(5);
  const shape = [2, 3, 4, 5];
  const x = randomArray(r, sizeOf(shape));
  await t.step("permute", async () => {
    for (const perm of [[0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 3, 1], [1, 0, 2, 3], [0, 1, 3, 2]]) {
      await assertSameAsCpu(g(), cpu, [x], (be, [s]) => be.permute(s, shape, perm), EXACT, `permute ${perm}`);
    }
  });
  await t.step("slice", async () => {
    await assertSameAsCpu(
      g(),
      cpu,
      [x],
      (be, [s]) => be.slice(s, shape, [1, 0, 1, 2], [1, 3, 2, 3]),
      EXACT,
      "slice",
    );
    await assertSameAsCpu(
      g(),
      cpu,
      [x],
      (be, [s]) => be.slice(s, shape, [0, 0, 0, 0], [2, 3, 4, 5]),
      EXACT,
      "slice all",
    );
  });
  await t.step("pad", async () => {
    await assertSameAsCpu(
      g(),
      cpu,
      [x],
      (be, [s]) => be.pad(s, shape, [0, 1, 2, 0], [1, 0, 1, 3], -1.5),
      EXACT,
      "pad",
    );
  });
  await t.step("concat", async () => {
    for (const axis of [0, 1, 3]) {
      const shapes = [
        shape,
        shape.map((n, i) => i === axis ? 2 : n),
        shape.map((n, i) => i === axis ? 1 : n),
      ];
      const xs = shapes.map((s) => randomArray(r, sizeOf(s)));
      await assertSameAsCpu(
        g(),
        cpu,
        xs,
        (be, ss) => be.concat(ss, shapes, axis),
        EXACT,
        `concat axis ${axis}`,
      );
    }
  });
});

Deno.test({ name: "webgpu: batched matmul with transposes and batch broadcast", ignore }, async (t) => {
  const r = rng(6);
  const shapes: [number, number, number, number, number, number][] = [
    // batch, aBatch, bBatch, m, k, n
    [1, 1, 1, 16, 8, 32], // vec4 path
    [3, 3, 1, 12, 20, 8], // vec4, partial blocks, b broadcast
    [2, 1, 2, 36, 12, 52], // vec4, a broadcast
    [2, 2, 2, 5, 7, 3], // scalar path
    [1, 1, 1, 33, 17, 9], // scalar path, partial blocks
    [2, 2, 2, 1, 64, 1], // vector dot
    [2, 2, 1, 520, 12, 20], // tall block (m >= 512), partial row and column blocks
  ];
  for (const [batch, aBatch, bBatch, m, k, n] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await t.step(
          `${batch}x(${m}x${k})·(${k}x${n}) ${transA ? "T" : "N"}${transB ? "T" : "N"}`,
          async () => {
            const a = randomArray(r, aBatch * m * k), b = randomArray(r, bBatch * k * n);
            const dims = { batch, aBatch, bBatch, m, k, n, transA, transB };
            const [gv, cv] = await runBoth(g(), cpu, [a, b], (be, [x, y]) => be.matmul(x, y, dims));
            assertCloseRows(gv, cv, n, PRODUCT, "matmul");
          },
        );
      }
    }
  }
});

async function checkConv(
  be: Backend,
  geo: Conv2dGeometry,
  r: ReturnType<typeof rng>,
  what: string,
): Promise<void> {
  const [n, o, ho, wo] = conv2dOutputShape(geo);
  const x = randomArray(r, sizeOf(geo.x)),
    w = randomArray(r, sizeOf(geo.w)),
    dy = randomArray(r, n * o * ho * wo);
  const [y, yc] = await runBoth(be, cpu, [x, w], (b, [xs, ws]) => b.conv2d(xs, ws, geo));
  assertCloseRows(y, yc, ho * wo, PRODUCT, `${what} conv2d`);
  const [dx, dxc] = await runBoth(be, cpu, [dy, w], (b, [d, ws]) => b.conv2dInputGrad(d, ws, geo));
  assertCloseRows(dx, dxc, geo.x[2] * geo.x[3], PRODUCT, `${what} conv2dInputGrad`);
  const [dw, dwc] = await runBoth(be, cpu, [x, dy], (b, [xs, d]) => b.conv2dWeightGrad(xs, d, geo));
  assertCloseRows(dw, dwc, geo.w[1] * geo.w[2] * geo.w[3], PRODUCT, `${what} conv2dWeightGrad`);
}

Deno.test({ name: "webgpu: conv2d and both gradients", ignore }, async (t) => {
  const r = rng(7);
  const cases: [string, Conv2dGeometry][] = [
    ["3x3 s1 p1", { x: [2, 3, 8, 8], w: [5, 3, 3, 3], stride: 1, pad: 1 }],
    ["3x3 s2 p1", { x: [2, 4, 9, 9], w: [8, 4, 3, 3], stride: 2, pad: 1 }],
    ["1x1 s1 p0", { x: [3, 6, 5, 5], w: [4, 6, 1, 1], stride: 1, pad: 0 }],
    ["1x1 s2 p0", { x: [2, 4, 8, 8], w: [12, 4, 1, 1], stride: 2, pad: 0 }],
    ["3x3 s2 p1 even", { x: [2, 8, 8, 8], w: [16, 8, 3, 3], stride: 2, pad: 1 }],
    ["3x3 s1 p0 7x7", { x: [1, 20, 9, 9], w: [20, 20, 3, 3], stride: 1, pad: 0 }],
    ["1x1 s2 p1", { x: [1, 2, 6, 6], w: [3, 2, 1, 1], stride: 2, pad: 1 }],
    ["3x3 s1 p1, 1 output channel (1-row blocks)", {
      x: [3, 16, 12, 12],
      w: [1, 16, 3, 3],
      stride: 1,
      pad: 1,
    }],
    ["3x3 s1 p1, 2 output channels", { x: [2, 8, 7, 10], w: [2, 8, 3, 3], stride: 1, pad: 1 }],
    ["3x3 s1 p1, 1 input channel", { x: [3, 1, 12, 12], w: [16, 1, 3, 3], stride: 1, pad: 1 }],
  ];
  for (const [name, geo] of cases) await t.step(name, () => checkConv(g(), geo, r, name));
  await t.step("batch 64 x 64ch x 28x28, 3x3 pad 1", () => {
    return checkConv(g(), { x: [64, 64, 28, 28], w: [64, 64, 3, 3], stride: 1, pad: 1 }, r, "b64");
  });
});

Deno.test(
  { name: "webgpu: dispatches beyond the workgroup limit fold into 2-D grids", ignore },
  async (t) => {
    await t.step("slice of 64·65536·2+3 elements (one invocation each)", async () => {
      const n = 64 * 65536 * 2 + 3;
      const x = new Float32Array(n + 5);
      for (let i = 0; i < x.length; i++) x[i] = i % 1000003;
      const s = g().fromArray(x);
      const y = g().slice(s, [n + 5], [2], [n]);
      const v = await g().read(y);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (v[i] !== x[i + 2]) bad = i;
      assertEquals(bad, -1, "first wrong index");
      g().free(s);
      g().free(y);
    });
    await t.step("every op under a limit of 5 workgroups per dimension", async () => {
      const small = await createWebGpuBackend({ testLimits: { maxComputeWorkgroupsPerDimension: 5 } });
      const r = rng(8);
      const x = randomArray(r, 2000);
      await assertSameAsCpu(small, cpu, [x], (be, [s]) => be.unary("exp", s), TRANSCENDENTAL, "unary");
      const x1 = x.slice(0, 1000);
      await assertSameAsCpu(
        small,
        cpu,
        [x1, x.slice(0, 25)],
        (be, [a, b]) => be.binary("mul", a, [40, 25], b, [25]),
        ELEMENTWISE,
        "binary",
      );
      await assertSameAsCpu(small, cpu, [x1], (be, [s]) => be.slice(s, [1000], [1], [999]), EXACT, "slice");
      await assertSameAsCpu(
        small,
        cpu,
        [x],
        (be, [s]) => be.reduce("sum", s, [4, 500], [0]),
        REDUCE,
        "reduce",
      );
      const dims = { batch: 7, aBatch: 7, bBatch: 1, m: 8, k: 8, n: 8, transA: false, transB: true };
      const [mg, mc] = await runBoth(
        small,
        cpu,
        [x.slice(0, 448), x.slice(0, 64)],
        (be, [a, b]) => be.matmul(a, b, dims),
      );
      assertCloseRows(mg, mc, 8, PRODUCT, "matmul with batches split over several dispatches");
      const geo: Conv2dGeometry = { x: [2, 4, 24, 24], w: [8, 4, 3, 3], stride: 1, pad: 1 };
      await checkConv(small, geo, r, "small-limit");
      small.destroy();
    });
  },
);

Deno.test(
  { name: "webgpu: a binding beyond maxStorageBufferBindingSize fails clearly", ignore },
  async () => {
    const small = await createWebGpuBackend({ testLimits: { maxStorageBufferBindingSize: 4096 } });
    const s = small.fromArray(new Float32Array(2000));
    assertThrows(() => small.unary("neg", s), /Cannot bind 8000 bytes .*maxStorageBufferBindingSize is 4096/);
    small.destroy();
  },
);

Deno.test({ name: "webgpu: buffer pool, batching and the writeBuffer hazard", ignore }, async (t) => {
  await t.step(
    "a freed input reused by an upload in the same batch does not corrupt earlier commands",
    async () => {
      const be = await createWebGpuBackend({ submitEvery: 1000 });
      const a = be.fromArray([1, 2, 3, 4]);
      const b = be.unary("neg", a);
      be.free(a); // still read by the unsubmitted neg
      const c = be.fromArray([9, 9, 9, 9]); // same size class: must not get a's buffer before the submit
      assertEquals(Array.from(await be.read(b)), [-1, -2, -3, -4]);
      assertEquals(Array.from(await be.read(c)), [9, 9, 9, 9]);
      be.destroy();
    },
  );
  await t.step("freed buffers are reused after the batch is submitted", async () => {
    const be = await createWebGpuBackend();
    const a = be.fromArray(new Float32Array(1000));
    be.free(a);
    assertEquals(be.poolBytes(), 4096);
    const hits = be.stats().poolHits;
    const b = be.fromArray(new Float32Array(999));
    assertEquals(be.stats().poolHits, hits + 1);
    assertEquals(be.poolBytes(), 0);
    be.free(b);
    const st = be.stats();
    assertEquals([st.buffersCreated, st.bytesAllocatedTotal], [1, 4096]);
    assertEquals(be.trimPool(), 4096);
    assertEquals(be.poolBytes(), 0);
    be.destroy();
  });
  await t.step("many dispatches are submitted in batches and stay ordered", async () => {
    // Without fusion, so that each add is its own dispatch.
    const be = await createWebGpuBackend({ submitEvery: 16, fuse: false });
    let s = be.fromArray([0, 1, 2]);
    const one = be.fromArray([1]);
    for (let i = 0; i < 100; i++) {
      const next = be.binary("add", s, [3], one, [1]);
      be.free(s);
      s = next;
    }
    assertEquals(Array.from(await be.read(s)), [100, 101, 102]);
    assertTrue(be.stats().submits >= 100 / 16, `submits ${be.stats().submits}`);
    assertTrue(be.stats().poolHits > 50, `pool hits ${be.stats().poolHits}`);
    await be.sync();
    be.destroy();
  });
});
