/**
 * Correctness of the fast texture GEMM / convolution hook against plain TypeScript references, on random
 * inputs with odd shapes, transposes, broadcast batches, strides 1 and 2, padding 0 and 1, 1×1 and 3×3
 * kernels, and (through a small `maxTextureDimension2D`) the k-chunk, rows-per-line and image-chunk paths.
 * Skipped, with a printed reason, when no WebGPU adapter exists.
 * @module
 */
import { type Conv2dGeometry, conv2dOutputShape } from "../backend.ts";
import { assertTrue } from "../../testing/asserts.ts";
import {
  type FastGemmContext,
  fastGemmResourceBytes,
  type MatmulDims,
  recordFastConv2d,
  recordFastConv2dInputGrad,
  recordFastConv2dWeightGrad,
  recordFastMatmul,
  releaseFastGemmResources,
  trimFastGemmResources,
} from "./fast_gemm.ts";

/** Allowed error, relative to Σ|a_ik·b_kj| of the output (float32 accumulation over ≤ 600 terms). */
const REL_TO_ABS_SUM = 1e-5;

const adapter = typeof navigator !== "undefined" && navigator.gpu !== undefined
  ? await navigator.gpu.requestAdapter()
  : null;
if (adapter === null) console.log("fast_gemm_test: skipped, no WebGPU adapter (navigator.gpu gave none)");

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function randomArray(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r();
  return a;
}

/** A reference result and, per element, the sum of absolute products (the error scale). */
interface Ref {
  readonly value: Float64Array;
  readonly absSum: Float64Array;
}

function refMatmul(a: Float32Array, b: Float32Array, d: MatmulDims): Ref {
  const value = new Float64Array(d.batch * d.m * d.n);
  const absSum = new Float64Array(value.length);
  for (let z = 0; z < d.batch; z++) {
    const ao = (d.aBatch === 1 ? 0 : z) * d.m * d.k;
    const bo = (d.bBatch === 1 ? 0 : z) * d.k * d.n;
    for (let i = 0; i < d.m; i++) {
      for (let j = 0; j < d.n; j++) {
        let s = 0;
        let t = 0;
        for (let p = 0; p < d.k; p++) {
          const av = a[ao + (d.transA ? p * d.m + i : i * d.k + p)];
          const bv = b[bo + (d.transB ? j * d.k + p : p * d.n + j)];
          s += av * bv;
          t += Math.abs(av * bv);
        }
        value[(z * d.m + i) * d.n + j] = s;
        absSum[(z * d.m + i) * d.n + j] = t;
      }
    }
  }
  return { value, absSum };
}

/** Visits every (n, o, c, oh, ow, i, j) term of a convolution whose input pixel is inside the image. */
function convTerms(
  g: Conv2dGeometry,
  f: (xi: number, wi: number, yi: number) => void,
): void {
  const [n, c, h, w] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      for (let oh = 0; oh < ho; oh++) {
        for (let ow = 0; ow < wo; ow++) {
          const yi = ((b * o + oc) * ho + oh) * wo + ow;
          for (let ic = 0; ic < c; ic++) {
            for (let i = 0; i < kh; i++) {
              const ih = oh * g.stride - g.pad + i;
              if (ih < 0 || ih >= h) continue;
              for (let j = 0; j < kw; j++) {
                const iw = ow * g.stride - g.pad + j;
                if (iw < 0 || iw >= w) continue;
                f(((b * c + ic) * h + ih) * w + iw, ((oc * c + ic) * kh + i) * kw + j, yi);
              }
            }
          }
        }
      }
    }
  }
}

function size(shape: readonly number[]): number {
  return shape.reduce((p, v) => p * v, 1);
}

function refConv(x: Float32Array, w: Float32Array, g: Conv2dGeometry): Ref {
  const n = size(conv2dOutputShape(g));
  const value = new Float64Array(n);
  const absSum = new Float64Array(n);
  convTerms(g, (xi, wi, yi) => {
    value[yi] += x[xi] * w[wi];
    absSum[yi] += Math.abs(x[xi] * w[wi]);
  });
  return { value, absSum };
}

function refInputGrad(dy: Float32Array, w: Float32Array, g: Conv2dGeometry): Ref {
  const value = new Float64Array(size(g.x));
  const absSum = new Float64Array(value.length);
  convTerms(g, (xi, wi, yi) => {
    value[xi] += dy[yi] * w[wi];
    absSum[xi] += Math.abs(dy[yi] * w[wi]);
  });
  return { value, absSum };
}

function refWeightGrad(x: Float32Array, dy: Float32Array, g: Conv2dGeometry): Ref {
  const value = new Float64Array(size(g.w));
  const absSum = new Float64Array(value.length);
  convTerms(g, (xi, wi, yi) => {
    value[wi] += x[xi] * dy[yi];
    absSum[wi] += Math.abs(x[xi] * dy[yi]);
  });
  return { value, absSum };
}

function assertMatches(got: Float32Array, ref: Ref, what: string): void {
  assertTrue(
    got.length >= ref.value.length,
    `${what}: read ${got.length} values, expected ${ref.value.length}`,
  );
  let scale = 1e-30;
  for (const s of ref.absSum) scale = Math.max(scale, s);
  for (let i = 0; i < ref.value.length; i++) {
    const lim = REL_TO_ABS_SUM * Math.max(ref.absSum[i], 1e-3 * scale) + 1e-30;
    const diff = Math.abs(got[i] - ref.value[i]);
    assertTrue(
      diff <= lim,
      `${what}: element ${i} is ${got[i]}, expected ${ref.value[i]} (|diff| ${diff} > ${lim})`,
    );
  }
}

Deno.test({
  name: "fast_gemm: texture GEMM and direct convolution match TypeScript references",
  ignore: adapter === null,
  async fn(t) {
    const device = await adapter!.requestDevice({
      requiredLimits: { maxTextureDimension2D: adapter!.limits.maxTextureDimension2D },
    });
    const pipelines = new Map<string, GPUComputePipeline>();
    const getPipeline = (code: string) => {
      let p = pipelines.get(code);
      if (p === undefined) {
        p = device.createComputePipeline({
          layout: "auto",
          compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
        });
        pipelines.set(code, p);
      }
      return p;
    };
    const upload = (a: Float32Array) => {
      const b = device.createBuffer({
        size: Math.max(16, a.byteLength),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      new Float32Array(b.getMappedRange()).set(a);
      b.unmap();
      return b;
    };
    const output = (n: number) =>
      device.createBuffer({
        size: Math.max(16, n * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      });
    const download = async (b: GPUBuffer, n: number) => {
      const r = device.createBuffer({
        size: b.size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, 0, r, 0, b.size);
      device.queue.submit([enc.finish()]);
      await r.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(r.getMappedRange().slice(0, n * 4));
      r.unmap();
      r.destroy();
      return out;
    };
    /** Records through the hook in one open pass, submits, and reads `n` outputs back. */
    const run = async (
      record: (ctx: FastGemmContext) => boolean,
      out: GPUBuffer,
      n: number,
      maxDim?: number,
    ): Promise<Float32Array | null> => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      const ok = record({ device, pass, getPipeline, maxTextureDimension2D: maxDim });
      pass.end();
      device.queue.submit([enc.finish()]);
      return ok ? await download(out, n) : null;
    };

    const matmulCases: [string, MatmulDims, number?][] = [
      ["37x53x29", { batch: 1, aBatch: 1, bBatch: 1, m: 37, k: 53, n: 29, transA: false, transB: false }],
      ["transA", { batch: 1, aBatch: 1, bBatch: 1, m: 37, k: 53, n: 29, transA: true, transB: false }],
      ["transB", { batch: 1, aBatch: 1, bBatch: 1, m: 21, k: 18, n: 31, transA: false, transB: true }],
      ["both transposed", { batch: 1, aBatch: 1, bBatch: 1, m: 9, k: 7, n: 5, transA: true, transB: true }],
      ["batch 3, B broadcast", {
        batch: 3,
        aBatch: 3,
        bBatch: 1,
        m: 19,
        k: 13,
        n: 24,
        transA: false,
        transB: false,
      }],
      ["batch 2, A broadcast, transB", {
        batch: 2,
        aBatch: 1,
        bBatch: 2,
        m: 50,
        k: 20,
        n: 64,
        transA: false,
        transB: true,
      }],
      ["wide n (lanes on columns)", {
        batch: 1,
        aBatch: 1,
        bBatch: 1,
        m: 33,
        k: 17,
        n: 130,
        transA: false,
        transB: false,
      }],
      ["tall m (32-row blocks)", {
        batch: 1,
        aBatch: 1,
        bBatch: 1,
        m: 1100,
        k: 9,
        n: 40,
        transA: true,
        transB: false,
      }],
      ["k chunks, 2 rows per line (max texture side 32)", {
        batch: 2,
        aBatch: 2,
        bBatch: 2,
        m: 40,
        k: 150,
        n: 20,
        transA: false,
        transB: true,
      }, 32],
    ];
    for (const [name, dims, maxDim] of matmulCases) {
      await t.step(`matmul ${name}`, async () => {
        const aLen = dims.aBatch * dims.m * dims.k;
        const bLen = dims.bBatch * dims.k * dims.n;
        const a = randomArray(aLen, 1 + dims.m);
        const b = randomArray(bLen, 2 + dims.n);
        const outLen = dims.batch * dims.m * dims.n;
        const out = output(outLen);
        const got = await run(
          (ctx) => recordFastMatmul(ctx, upload(a), upload(b), out, dims),
          out,
          outLen,
          maxDim,
        );
        assertTrue(got !== null, `matmul ${name}: the hook declined the shape`);
        assertMatches(got, refMatmul(a, b, dims), `matmul ${name}`);
      });
    }

    const convCases: [string, Conv2dGeometry, number?][] = [
      ["3x3 stride 1 pad 1", { x: [2, 3, 7, 9], w: [5, 3, 3, 3], stride: 1, pad: 1 }],
      ["3x3 stride 2 pad 1", { x: [3, 6, 8, 7], w: [4, 6, 3, 3], stride: 2, pad: 1 }],
      ["3x3 stride 2 pad 0", { x: [2, 5, 9, 8], w: [7, 5, 3, 3], stride: 2, pad: 0 }],
      ["3x3 stride 1 pad 0", { x: [1, 17, 10, 11], w: [33, 17, 3, 3], stride: 1, pad: 0 }],
      ["1x1 stride 1", { x: [2, 8, 6, 6], w: [16, 8, 1, 1], stride: 1, pad: 0 }],
      ["1x1 pointwise, 64 channels, 14x14 (edge pixel blocks)", {
        x: [3, 64, 14, 14],
        w: [64, 64, 1, 1],
        stride: 1,
        pad: 0,
      }],
      ["1x1 pointwise, 12 -> 20 channels, 12 pixels (partial row blocks)", {
        x: [2, 12, 2, 6],
        w: [20, 12, 1, 1],
        stride: 1,
        pad: 0,
      }],
      ["1x1 stride 2", { x: [2, 4, 5, 5], w: [3, 4, 1, 1], stride: 2, pad: 0 }],
      ["1x1 pad 1 (negative padding of the transposed convolution)", {
        x: [2, 3, 4, 5],
        w: [4, 3, 1, 1],
        stride: 1,
        pad: 1,
      }],
      ["wide output channels", { x: [1, 4, 6, 6], w: [130, 4, 3, 3], stride: 1, pad: 1 }],
      ["3x3 stride 1 pad 1, width 8 (vec4 image packing)", {
        x: [3, 5, 6, 8],
        w: [6, 5, 3, 3],
        stride: 1,
        pad: 1,
      }],
      ["image chunks (max texture side 24)", { x: [5, 3, 7, 9], w: [5, 3, 3, 3], stride: 1, pad: 1 }, 24],
      [
        "image chunks, width 8 (max texture side 24)",
        { x: [5, 3, 7, 8], w: [5, 3, 3, 3], stride: 1, pad: 1 },
        24,
      ],
    ];
    for (const [name, g, maxDim] of convCases) {
      const xLen = size(g.x);
      const wLen = size(g.w);
      const yLen = size(conv2dOutputShape(g));
      const x = randomArray(xLen, 3 + xLen);
      const w = randomArray(wLen, 4 + wLen);
      const dy = randomArray(yLen, 5 + yLen);
      await t.step(`conv2d ${name}`, async () => {
        const y = output(yLen);
        const got = await run((ctx) => recordFastConv2d(ctx, upload(x), upload(w), y, g), y, yLen, maxDim);
        assertTrue(got !== null, `conv2d ${name}: the hook declined the shape`);
        assertMatches(got, refConv(x, w, g), `conv2d ${name}`);
      });
      await t.step(`conv2dInputGrad ${name}`, async () => {
        const dx = output(xLen);
        const got = await run(
          (ctx) => recordFastConv2dInputGrad(ctx, upload(dy), upload(w), dx, g),
          dx,
          xLen,
          maxDim,
        );
        assertTrue(got !== null, `conv2dInputGrad ${name}: the hook declined the shape`);
        assertMatches(got, refInputGrad(dy, w, g), `conv2dInputGrad ${name}`);
      });
      await t.step(`conv2dWeightGrad ${name}`, async () => {
        const dw = output(wLen);
        const got = await run(
          (ctx) => recordFastConv2dWeightGrad(ctx, upload(x), upload(dy), dw, g),
          dw,
          wLen,
          maxDim,
        );
        assertTrue(got !== null, `conv2dWeightGrad ${name}: the hook declined the shape`);
        assertMatches(got, refWeightGrad(x, dy, g), `conv2dWeightGrad ${name}`);
      });
    }

    await t.step("two convolutions of one shape in one pass share textures correctly", async () => {
      const g: Conv2dGeometry = { x: [2, 6, 5, 8], w: [7, 6, 3, 3], stride: 1, pad: 1 };
      const yLen = size(conv2dOutputShape(g));
      const xs = [randomArray(size(g.x), 11), randomArray(size(g.x), 12)];
      const ws = [randomArray(size(g.w), 13), randomArray(size(g.w), 14)];
      const ys = [output(yLen), output(yLen)];
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      for (let i = 0; i < 2; i++) {
        const ok = recordFastConv2d({ device, pass, getPipeline }, upload(xs[i]), upload(ws[i]), ys[i], g);
        assertTrue(ok, "the hook declined a small convolution");
      }
      pass.end();
      device.queue.submit([enc.finish()]);
      for (let i = 0; i < 2; i++) {
        assertMatches(await download(ys[i], yLen), refConv(xs[i], ws[i], g), `conv2d #${i} of a shared pass`);
      }
    });

    await t.step("declines shapes that cannot fit the texture limit, recording nothing", async () => {
      const g: Conv2dGeometry = { x: [1, 64, 8, 8], w: [4, 64, 3, 3], stride: 1, pad: 1 };
      const y = output(size(conv2dOutputShape(g)));
      const got = await run(
        (ctx) =>
          recordFastConv2d(
            ctx,
            upload(new Float32Array(size(g.x))),
            upload(new Float32Array(size(g.w))),
            y,
            g,
          ),
        y,
        1,
        8,
      );
      assertTrue(got === null, "conv2d with 160 texels per image row and a texture side of 8 was accepted");
    });

    await t.step("trims and releases its textures and buffers", async () => {
      await device.queue.onSubmittedWorkDone();
      const before = fastGemmResourceBytes(device);
      assertTrue(before > 0, "no resources were cached");
      trimFastGemmResources(device, before / 2);
      const after = fastGemmResourceBytes(device);
      assertTrue(after <= before / 2, `trim to ${before / 2} bytes left ${after}`);
      releaseFastGemmResources(device);
      assertTrue(fastGemmResourceBytes(device) === 0, "resources remain after release");
    });
    device.destroy();
  },
});
