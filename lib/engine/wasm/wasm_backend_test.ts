/**
 * Tests of the "wasm" backend against the CPU reference (float32): the WebAssembly matrix products and
 * convolutions across ragged sizes (not multiples of the 6x8 tile), transposes, batch broadcasts,
 * strides, padding and several image groups; storage bookkeeping (no leaks) and the inherited ops.
 * @module
 */
import type { Backend, Conv2dGeometry, Storage } from "../backend.ts";
import { conv2dOutputShape, sizeOf } from "../backend.ts";
import { createCpuBackend } from "../cpu/cpu_backend.ts";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  type Tolerance,
} from "../../testing/asserts.ts";
import { assertCloseRows, randomArray, rng, runBoth } from "../webgpu/webgpu_test_util.ts";
import { createWasmBackend, WasmStorage } from "./wasm_backend.ts";
import { conv2dInputGradWasm, conv2dWasm, conv2dWeightGradWasm } from "./wasm_products.ts";
import { MIN_ELEMENTS, WASM_BINARY_OPS, WASM_UNARY_OPS } from "./wasm_elementwise.ts";
import {
  BINARY_KERNELS,
  roundUp,
  THREAD_MIN_ELEMENTS,
  THREAD_MIN_WORK,
  UNARY_KERNELS,
  WasmRuntime,
} from "./wasm_runtime.ts";

/**
 * Products relative to the L2 norm of each output row: float32 accumulation (with fused multiply-adds
 * where the hardware has them) against the reference's float64 sums rounded once; the error of a k-term
 * float32 dot product is below k·2⁻²⁴ times the row norm, about 3e-5 for the largest k here (600).
 */
const PRODUCT: Tolerance = { atol: 1e-6, rtol: 1e-4 };
/** Ops inherited from the CPU reference, and float32 arithmetic (double-then-round is correctly rounded): bit for bit. */
const EXACT: Tolerance = { atol: 0, rtol: 0 };
/**
 * sigmoid through the kernel's float32 exp (Cephes expf, within 2 ulp) and a float32 add and divide,
 * against the reference's double result rounded once: a few float32 ulp of a value in (0, 1].
 */
const SIGMOID: Tolerance = { atol: 1e-7, rtol: 1e-6 };

const cpu = createCpuBackend("float32");

/** Reads a storage into a plain array. */
async function readAll(be: Backend, s: ReturnType<Backend["fromArray"]>): Promise<number[]> {
  return Array.from(await be.read(s));
}
const wasm = createWasmBackend();

Deno.test("wasm backend: identity, storages and leaks", async (t) => {
  await t.step("name, description, dtype", () => {
    assertEquals([wasm.name, wasm.dtype], ["wasm", "float32"]);
    assertTrue(/WebAssembly SIMD/.test(wasm.description), wasm.description);
  });

  await t.step("every storage a product creates is freed (liveStorages back to its start)", () => {
    const be = createWasmBackend();
    const a = be.fromArray(randomArray(rng(1), 7 * 9)), b = be.fromArray(randomArray(rng(2), 9 * 5));
    const y = be.matmul(a, b, {
      batch: 1,
      aBatch: 1,
      bBatch: 1,
      m: 7,
      k: 9,
      n: 5,
      transA: false,
      transB: false,
    });
    const geo: Conv2dGeometry = { x: [1, 2, 5, 5], w: [3, 2, 3, 3], stride: 1, pad: 1 };
    const x = be.fromArray(randomArray(rng(3), 50)), w = be.fromArray(randomArray(rng(4), 54));
    const c = be.conv2d(x, w, geo);
    const dx = be.conv2dInputGrad(c, w, geo), dw = be.conv2dWeightGrad(x, c, geo);
    assertEquals(be.liveStorages(), 8);
    for (const s of [a, b, y, x, w, c, dx, dw]) be.free(s);
    assertEquals(be.liveStorages(), 0);
    assertTrue(be.poolBytes() > 0, "freed blocks and the scratch block are reported as pool bytes");
    assertTrue(be.memoryBytes() >= 65536, "memory size");
  });

  await t.step("freed blocks are reused, and storages survive the memory growing", async () => {
    const be = createWasmBackend();
    const a = be.fromArray([1, 2, 3]) as WasmStorage;
    be.free(a);
    const b = be.fromArray([4, 5, 6]) as WasmStorage;
    assertEquals(b.offset, a.offset, "same size class, same block");
    const before = be.memoryBytes();
    const big = be.fill(1 << 22, 0.5); // 16 MiB: grows the memory
    assertTrue(be.memoryBytes() > before, "the memory grew");
    assertEquals(await readAll(be, b), [4, 5, 6]);
    const sum = be.binary("add", b, [3], b, [3]);
    assertEquals(await readAll(be, sum), [8, 10, 12]);
    const got = await be.read(big);
    assertEquals([got.length, got[0], got[got.length - 1]], [1 << 22, 0.5, 0.5]);
    for (const s of [b, big, sum]) be.free(s);
    assertEquals(be.liveStorages(), 0);
    assertThrows(() => be.free(b), /Cannot free: storage was freed/);
  });

  await t.step("a full memory leaves storages on the JS heap, and every op stays correct", async () => {
    // 40 pages (2.5 MiB): the 600k-float operand below cannot enter the WebAssembly memory.
    const small = createWasmBackend({ maxPages: 40 });
    const r = rng(14);
    const big = randomArray(r, 600_000), row = randomArray(r, 1000), w = randomArray(r, 8 * 6 * 9);
    const bs = small.fromArray(big);
    assertTrue(!(bs instanceof WasmStorage), "the big operand lives on the JS heap");
    const rs = small.fromArray(row);
    assertTrue(rs instanceof WasmStorage, "a small operand still lives in the memory");
    const ops: [string, (be: Backend, s: Storage[]) => Storage, Float32Array[]][] = [
      ["sigmoid of a heap storage", (be, [x]) => be.unary("sigmoid", x), [big]],
      ["mul heap x memory", (be, [x, y]) => be.binary("mul", x, [600, 1000], y, [1000]), [big, row]],
      [
        "matmul whose scratch does not fit",
        (be, [x, y]) =>
          be.matmul(x, y, {
            batch: 1,
            aBatch: 1,
            bBatch: 1,
            m: 600,
            k: 1000,
            n: 1,
            transA: false,
            transB: false,
          }),
        [
          big,
          row,
        ],
      ],
      [
        "conv2d on a heap input",
        (be, [x, y]) => be.conv2d(x, y, { x: [50, 6, 40, 50], w: [8, 6, 3, 3], stride: 2, pad: 1 }),
        [
          big,
          w,
        ],
      ],
    ];
    for (const [what, op, inputs] of ops) {
      const [got, want] = await runBoth(small, cpu, inputs, op);
      if (what.startsWith("sigmoid")) assertClose(got, want, SIGMOID, what);
      else assertCloseRows(got, want, want.length === 600_000 ? 1000 : want.length, PRODUCT, what);
    }
    small.free(bs);
    small.free(rs);
    assertEquals(small.liveStorages(), 0);
  });

  await t.step("freed and mis-sized inputs throw the CPU backend's errors", () => {
    const be = createWasmBackend();
    const a = be.fromArray([1, 2, 3, 4]);
    const dims = { batch: 1, aBatch: 1, bBatch: 1, m: 2, k: 3, n: 2, transA: false, transB: false };
    assertThrows(() => be.matmul(a, a, dims), /Cannot matmul: a \(batch 1, 2x3\) has 4 elements/);
    be.free(a);
    assertThrows(() => be.conv2d(a, a, { x: [1, 1, 2, 2], w: [1, 1, 1, 1], stride: 1, pad: 0 }), /was freed/);
  });

  await t.step("inherited ops are the CPU reference's", async () => {
    const r = rng(5);
    const x = randomArray(r, 60), y = randomArray(r, 12);
    const same = async (
      op: (be: Backend, s: ReturnType<Backend["fromArray"]>[]) => ReturnType<Backend["fromArray"]>,
    ) => {
      const [got, want] = await runBoth(wasm, cpu, [x, y], op);
      assertClose(got, want, EXACT, "inherited op");
    };
    await same((be, [a, b]) => be.binary("mul", a, [5, 12], b, [12]));
    await same((be, [a]) => be.unary("sigmoid", a));
    await same((be, [a]) => be.reduce("sum", a, [5, 12], [1]));
    await same((be, [a]) => be.permute(a, [3, 4, 5], [2, 0, 1]));
  });
});

Deno.test("wasm backend: batched matmul matches the CPU reference", async (t) => {
  const r = rng(6);
  const shapes: [number, number, number, number, number, number][] = [
    // batch, aBatch, bBatch, m, k, n
    [1, 1, 1, 6, 8, 8], // exactly one tile
    [2, 2, 2, 5, 7, 3], // smaller than a tile
    [1, 1, 1, 33, 17, 9], // ragged rows and columns
    [3, 3, 1, 12, 20, 13], // b broadcast
    [2, 1, 2, 37, 12, 52], // a broadcast
    [2, 2, 2, 1, 64, 1], // vector dot
    [1, 1, 1, 131, 300, 19], // crosses the 120-row and 256-deep cache blocks
    [1, 1, 1, 4, 0, 5], // empty sum: zeros
  ];
  for (const [batch, aBatch, bBatch, m, k, n] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await t.step(
          `${batch}x(${m}x${k})·(${k}x${n}) ${transA ? "T" : "N"}${transB ? "T" : "N"}`,
          async () => {
            const a = randomArray(r, aBatch * m * k), b = randomArray(r, bBatch * k * n);
            const dims = { batch, aBatch, bBatch, m, k, n, transA, transB };
            const [got, want] = await runBoth(wasm, cpu, [a, b], (be, [x, y]) => be.matmul(x, y, dims));
            assertCloseRows(got, want, n, PRODUCT, "matmul");
          },
        );
      }
    }
  }
});

const CONV_CASES: [string, Conv2dGeometry][] = [
  ["3x3 s1 p1", { x: [2, 3, 8, 8], w: [5, 3, 3, 3], stride: 1, pad: 1 }],
  ["3x3 s2 p1 odd", { x: [2, 4, 9, 9], w: [8, 4, 3, 3], stride: 2, pad: 1 }],
  ["3x3 s2 p1 even", { x: [2, 8, 8, 8], w: [16, 8, 3, 3], stride: 2, pad: 1 }],
  ["3x3 s1 p0 non-square", { x: [1, 7, 9, 11], w: [13, 7, 3, 3], stride: 1, pad: 0 }],
  ["1x1 s1 p0", { x: [3, 6, 5, 5], w: [4, 6, 1, 1], stride: 1, pad: 0 }],
  ["1x1 s2 p0", { x: [2, 4, 8, 8], w: [12, 4, 1, 1], stride: 2, pad: 0 }],
  ["1x1 s2 p1", { x: [1, 2, 6, 6], w: [3, 2, 1, 1], stride: 2, pad: 1 }],
  ["3x3 s1 p1, 1 output channel", { x: [3, 16, 12, 12], w: [1, 16, 3, 3], stride: 1, pad: 1 }],
  ["3x3 s1 p1, 1 input channel", { x: [3, 1, 12, 12], w: [16, 1, 3, 3], stride: 1, pad: 1 }],
  ["3x3 s1 p1, 64 channels (the model's hidden layer)", {
    x: [2, 64, 7, 7],
    w: [64, 64, 3, 3],
    stride: 1,
    pad: 1,
  }],
];

async function checkConv(geo: Conv2dGeometry, r: ReturnType<typeof rng>, what: string): Promise<void> {
  const [n, o, ho, wo] = conv2dOutputShape(geo);
  const x = randomArray(r, sizeOf(geo.x)),
    w = randomArray(r, sizeOf(geo.w)),
    dy = randomArray(r, n * o * ho * wo);
  const [y, yc] = await runBoth(wasm, cpu, [x, w], (b, [xs, ws]) => b.conv2d(xs, ws, geo));
  assertCloseRows(y, yc, ho * wo, PRODUCT, `${what} conv2d`);
  const [dx, dxc] = await runBoth(wasm, cpu, [dy, w], (b, [d, ws]) => b.conv2dInputGrad(d, ws, geo));
  assertCloseRows(dx, dxc, geo.x[2] * geo.x[3], PRODUCT, `${what} conv2dInputGrad`);
  const [dw, dwc] = await runBoth(wasm, cpu, [x, dy], (b, [xs, d]) => b.conv2dWeightGrad(xs, d, geo));
  assertCloseRows(dw, dwc, geo.w[1] * geo.w[2] * geo.w[3], PRODUCT, `${what} conv2dWeightGrad`);
}

Deno.test("wasm backend: conv2d and both gradients match the CPU reference", async (t) => {
  const r = rng(7);
  for (const [name, geo] of CONV_CASES) await t.step(name, () => checkConv(geo, r, name));
});

Deno.test("wasm products: images split into several groups give the same results", async (t) => {
  const rt = new WasmRuntime();
  const r = rng(8);
  for (const [name, geo] of CONV_CASES) {
    await t.step(name, async () => {
      const [n, o, ho, wo] = conv2dOutputShape(geo);
      const x = randomArray(r, sizeOf(geo.x)), w = randomArray(r, sizeOf(geo.w));
      const dy = randomArray(r, n * o * ho * wo);
      // A budget of one float makes every image its own group.
      const run = (budget: number) => {
        const y = new Float32Array(n * o * ho * wo), dx = new Float32Array(sizeOf(geo.x));
        const dw = new Float32Array(sizeOf(geo.w));
        conv2dWasm(rt, x, w, geo, y, budget);
        conv2dInputGradWasm(rt, dy, w, geo, dx, budget);
        conv2dWeightGradWasm(rt, x, dy, geo, dw, budget);
        return [y, dx, dw];
      };
      const one = run(1), all = run(Infinity);
      const [, yc] = await runBoth(wasm, cpu, [x, w], (b, [xs, ws]) => b.conv2d(xs, ws, geo));
      assertCloseRows(one[0], yc, ho * wo, PRODUCT, `${name} conv2d, one image per group`);
      const [, dwc] = await runBoth(wasm, cpu, [x, dy], (b, [xs, d]) => b.conv2dWeightGrad(xs, d, geo));
      assertCloseRows(
        one[2],
        dwc,
        geo.w[1] * geo.w[2] * geo.w[3],
        PRODUCT,
        `${name} dw, one image per group`,
      );
      // Per-image work is independent of grouping for the forward pass and the input gradient.
      assertClose(one[0], all[0], EXACT, `${name} conv2d grouping`);
      assertClose(one[1], all[1], EXACT, `${name} conv2dInputGrad grouping`);
    });
  }
});

Deno.test("wasm products: the alternative gradient routes match the reference too", async (t) => {
  // The backend picks one route per geometry (flipped convolution or fold-back for dx; per-tap products
  // or unfolding for dw); here the other route runs on every case, in groups of one image and of all.
  const rt = new WasmRuntime();
  const r = rng(11);
  for (const [name, geo] of CONV_CASES) {
    await t.step(name, async () => {
      const [n, o, ho, wo] = conv2dOutputShape(geo);
      const w = randomArray(r, sizeOf(geo.w)), dy = randomArray(r, n * o * ho * wo);
      const [, want] = await runBoth(wasm, cpu, [dy, w], (b, [d, ws]) => b.conv2dInputGrad(d, ws, geo));
      for (const budget of [1, Infinity]) {
        const dx = new Float32Array(sizeOf(geo.x));
        // The route the backend does not take for this geometry (where both apply).
        conv2dInputGradWasm(rt, dy, w, geo, dx, budget, geo.w[0] <= geo.w[1] ? "fold" : "convolution");
        assertCloseRows(dx, want, geo.x[2] * geo.x[3], PRODUCT, `${name} dx by col2im, budget ${budget}`);
      }
      const x = randomArray(r, sizeOf(geo.x));
      const [, dwWant] = await runBoth(wasm, cpu, [x, dy], (b, [xs, d]) => b.conv2dWeightGrad(xs, d, geo));
      for (const budget of [1, Infinity]) {
        const dw = new Float32Array(sizeOf(geo.w));
        conv2dWeightGradWasm(rt, x, dy, geo, dw, budget, geo.w[0] < geo.w[1] ? "unfold" : "taps");
        const row = geo.w[1] * geo.w[2] * geo.w[3];
        assertCloseRows(dw, dwWant, row, PRODUCT, `${name} dw by unfolding, budget ${budget}`);
      }
    });
  }
});

/** `n` values with every special case the kernels must treat like the reference, then uniform ones. */
function withSpecials(r: ReturnType<typeof rng>, n: number, scale: number): Float32Array {
  const specials = [
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    1e-40,
    -1e-40,
    3.4e38,
    -3.4e38,
    1,
    -1,
    88,
    -88,
    100,
    -100,
  ];
  const a = randomArray(r, n, -scale, scale);
  a.set(specials.slice(0, Math.min(n, specials.length)));
  return a;
}

/** Compares bit patterns too (so -0 vs 0 and NaN payload-free equality are checked), naming the index. */
function assertSameNumbers(got: Float32Array, want: Float32Array, what: string): void {
  assertEquals(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) throw new Error(`${what}: index ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

Deno.test("wasm backend: element-wise kernels match the CPU reference", async (t) => {
  await t.step("the ops routed to kernels are the kernels the module exports", () => {
    assertEquals([...WASM_UNARY_OPS].sort(), [...UNARY_KERNELS].sort());
    assertEquals([...WASM_BINARY_OPS].sort(), [...BINARY_KERNELS].sort());
  });
  const r = rng(9);
  const n = MIN_ELEMENTS * 4 + 3; // large enough for the kernels, not a multiple of 4
  for (const op of WASM_UNARY_OPS) {
    await t.step(`unary ${op}`, async () => {
      const x = withSpecials(r, n, op === "sigmoid" ? 30 : 10);
      const [got, want] = await runBoth(wasm, cpu, [x], (be, [s]) => be.unary(op, s));
      if (op === "sigmoid") {
        assertEquals(Array.from(got, Number.isNaN), Array.from(want, Number.isNaN), "sigmoid NaN positions");
        const finite = (a: Float32Array) => a.map((v) => (Number.isNaN(v) ? 0 : v));
        assertClose(finite(got), finite(want), SIGMOID, op);
      } else assertSameNumbers(got, want, op);
    });
  }
  const shapes: [string, number[], number[]][] = [
    ["same shape", [3, 5, 67], [3, 5, 67]],
    ["scalar on the right", [7, 150], []],
    ["scalar on the left", [], [7, 150]],
    ["per-channel rows (stride-0 rows of 49)", [4, 6, 7, 7], [1, 6, 1, 1]],
    ["channel rows on the left", [1, 6, 1, 1], [4, 6, 7, 7]],
    ["row vector broadcast over rows of 70", [30, 70], [70]],
    ["outer product of broadcasts", [40, 1], [1, 33]],
    ["short rows fall back to the CPU path", [300, 3], [3]],
  ];
  for (const op of WASM_BINARY_OPS) {
    for (const [name, aShape, bShape] of shapes) {
      await t.step(`binary ${op}: ${name}`, async () => {
        const a = withSpecials(r, sizeOf(aShape), 10), b = withSpecials(rng(10), sizeOf(bShape), 10);
        if (op === "div") b[0] = 0; // division by zero on purpose
        const [got, want] = await runBoth(
          wasm,
          cpu,
          [a, b],
          (be, [x, y]) => be.binary(op, x, aShape, y, bShape),
        );
        assertSameNumbers(got, want, `${op} ${name}`);
      });
    }
  }
  await t.step("inputs below the size threshold take the CPU path (same numbers)", async () => {
    const x = randomArray(r, MIN_ELEMENTS - 1, -5, 5);
    const [got, want] = await runBoth(wasm, cpu, [x], (be, [s]) => be.unary("sigmoid", s));
    assertSameNumbers(got, want, "small sigmoid");
  });
});

Deno.test("wasm backend: products split over a second thread equal the single-thread ones", async (t) => {
  const one = createWasmBackend();
  const two = createWasmBackend();
  await two.startThread();
  try {
    const r = rng(12);
    await t.step("matmul, ragged (m n k above the threshold for splitting)", async () => {
      const [m, k, n] = [131, 150, 203];
      assertTrue(m * roundUp(n, 8) * k >= THREAD_MIN_WORK, "large enough to split");
      const a = randomArray(r, m * k), b = randomArray(r, k * n);
      const dims = { batch: 2, aBatch: 1, bBatch: 1, m, k, n, transA: false, transB: true };
      const [single, want] = await runBoth(one, cpu, [a, b], (be, [x, y]) => be.matmul(x, y, dims));
      const [split] = await runBoth(two, cpu, [a, b], (be, [x, y]) => be.matmul(x, y, dims));
      assertCloseRows(split, want, n, PRODUCT, "threaded matmul");
      // Each column of C is computed whole by one thread in the same order: bit for bit.
      assertClose(split, single, EXACT, "threaded vs single-thread matmul");
    });
    await t.step("conv2d and both gradients", async () => {
      const geo: Conv2dGeometry = { x: [4, 32, 14, 14], w: [64, 32, 3, 3], stride: 1, pad: 1 };
      const x = randomArray(r, sizeOf(geo.x)), w = randomArray(r, sizeOf(geo.w));
      const dy = randomArray(r, sizeOf(conv2dOutputShape(geo)));
      for (
        const [what, inputs, op] of [
          ["conv2d", [x, w], (be: Backend, [p, q]: Storage[]) => be.conv2d(p, q, geo)],
          ["input grad", [dy, w], (be: Backend, [p, q]: Storage[]) => be.conv2dInputGrad(p, q, geo)],
          ["weight grad", [x, dy], (be: Backend, [p, q]: Storage[]) => be.conv2dWeightGrad(p, q, geo)],
        ] as const
      ) {
        const [single] = await runBoth(one, cpu, inputs, op);
        const [split] = await runBoth(two, cpu, inputs, op);
        assertClose(split, single, EXACT, `threaded vs single-thread ${what}`);
      }
    });
    await t.step("element-wise kernels, above the threshold for splitting", async () => {
      const n = THREAD_MIN_ELEMENTS * 2 + 7; // odd: the halves are not equal
      const x = withSpecials(r, n, 20), y = withSpecials(rng(15), n, 20);
      const rows = new Float32Array(2 * n);
      rows.set(y);
      rows.set(x, n);
      const cases: [string, Float32Array[], (be: Backend, s: Storage[]) => Storage][] = [
        ...[...WASM_UNARY_OPS].map((op): [string, Float32Array[], (be: Backend, s: Storage[]) => Storage] => [
          `unary ${op}`,
          [x],
          (be, [p]) => be.unary(op, p),
        ]),
        ...[...WASM_BINARY_OPS].flatMap((
          op,
        ): [string, Float32Array[], (be: Backend, s: Storage[]) => Storage][] => [
          [`${op} same shape`, [x, y], (be, [p, q]) => be.binary(op, p, [n], q, [n])],
          [`${op} scalar on the left`, [x.subarray(0, 1), y], (be, [p, q]) => be.binary(op, p, [], q, [n])],
          [`${op} broadcast over two rows`, [x, rows], (be, [p, q]) => be.binary(op, p, [n], q, [2, n])],
        ]),
      ];
      const before = two.threadJobs();
      for (const [what, inputs, op] of cases) {
        const [single] = await runBoth(one, cpu, inputs, op);
        const [split] = await runBoth(two, cpu, inputs, op);
        assertSameNumbers(split, single, `threaded vs single-thread ${what}`);
      }
      assertTrue(two.threadJobs() >= before + cases.length, "every case was split");
    });
    assertTrue(two.threadJobs() > 0, "the second thread took jobs");
    assertEquals(one.threadJobs(), 0);
  } finally {
    await two.destroy();
  }
  await t.step("after destroy, products run on one thread and stay correct", async () => {
    const jobs = two.threadJobs();
    const a = randomArray(rng(13), 200 * 200);
    const dims = { batch: 1, aBatch: 1, bBatch: 1, m: 200, k: 200, n: 200, transA: false, transB: false };
    const [got, want] = await runBoth(two, cpu, [a, a], (be, [x, y]) => be.matmul(x, y, dims));
    assertCloseRows(got, want, 200, PRODUCT, "matmul after destroy");
    assertEquals(two.threadJobs(), jobs);
  });
});
