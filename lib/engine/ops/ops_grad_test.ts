/**
 * Every differentiable primitive: gradient against central differences in float64 on the CPU
 * reference, second-order checks (Hessian-vector products), and the same values and gradients on
 * the float32 devices (WebGPU, wasm) against the float64 reference.
 */
import { assertClose, assertTrue, type Tolerance } from "../../testing/asserts.ts";
import { grad } from "../autograd.ts";
import { createDevice } from "../devices.ts";
import { checkGradient, checkHessianVector } from "../gradcheck.ts";
import { Rng } from "../random.ts";
import { type Device, type Tensor, tidy } from "../tensor.ts";
import { requireGrad, tensor } from "./creation.ts";
import * as E from "./elementwise.ts";
import { conv2d, conv2dInputGradOp, conv2dWeightGradOp } from "./conv.ts";
import { matmul } from "./linalg.ts";
import { crossEntropy } from "./nn.ts";
import { logsumexp, max, mean, sum } from "./reduce.ts";
import { concat, expand, pad, permute, reshape, slice } from "./shape.ts";

/** Central differences in float64 agree with autograd to this relative error. */
const FD_REL: number = 2e-6;
/** Hessian-vector products by double backward vs differences of gradients. */
const HVP_REL: number = 1e-5;
/** Float32 device results (WebGPU, wasm) vs the float64 reference (relative to the largest magnitude). */
const GPU_TOL: Tolerance = { atol: 2e-4, rtol: 2e-4 };

const dev64 = await createDevice("cpu64");
let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU comparisons skipped: ${(e as Error).message.split("\n")[0]}`);
}
const wasm = await createDevice("wasm");

interface Case {
  name: string;
  shapes: number[][];
  /** Maps a standard normal draw into the op's domain. */
  domain?: (v: number) => number;
  fn: (...xs: Tensor[]) => Tensor;
}

/** A fixed random weighting so the scalar objective depends on every output element differently. */
function weighted(y: Tensor): Tensor {
  const r = new Rng(99);
  const w = tensor(Array.from({ length: y.size }, () => r.normal()), y.shape, y.device);
  return sum(E.mul(y, w));
}

const pos = (v: number) => Math.abs(v) + 0.5;
const awayFromZero = (v: number) => (v >= 0 ? v + 0.3 : v - 0.3);

const cases: Case[] = [
  { name: "neg", shapes: [[3, 4]], fn: (x) => E.neg(x) },
  { name: "exp", shapes: [[3, 4]], fn: (x) => E.exp(x) },
  { name: "log", shapes: [[3, 4]], domain: pos, fn: (x) => E.log(x) },
  { name: "log1p", shapes: [[3, 4]], domain: pos, fn: (x) => E.log1p(x) },
  { name: "sqrt", shapes: [[3, 4]], domain: pos, fn: (x) => E.sqrt(x) },
  { name: "abs", shapes: [[3, 4]], domain: awayFromZero, fn: (x) => E.abs(x) },
  { name: "sigmoid", shapes: [[3, 4]], fn: (x) => E.sigmoid(x) },
  { name: "softplus", shapes: [[3, 4]], fn: (x) => E.softplus(x) },
  { name: "tanh", shapes: [[3, 4]], fn: (x) => E.tanh(x) },
  { name: "elu", shapes: [[3, 4]], domain: awayFromZero, fn: (x) => E.elu(x) },
  { name: "relu", shapes: [[3, 4]], domain: awayFromZero, fn: (x) => E.relu(x) },
  { name: "recip", shapes: [[3, 4]], domain: awayFromZero, fn: (x) => E.recip(x) },
  { name: "square", shapes: [[3, 4]], fn: (x) => E.square(x) },
  { name: "add broadcast row", shapes: [[3, 4], [4]], fn: (a, b) => E.add(a, b) },
  { name: "sub broadcast col", shapes: [[3, 4], [3, 1]], fn: (a, b) => E.sub(a, b) },
  { name: "mul rank mismatch", shapes: [[2, 3, 4], [3, 1]], fn: (a, b) => E.mul(a, b) },
  { name: "div", shapes: [[3, 4], [3, 4]], domain: awayFromZero, fn: (a, b) => E.div(a, b) },
  { name: "pow", shapes: [[3, 4], [3, 4]], domain: pos, fn: (a, b) => E.pow(a, b) },
  { name: "maximum", shapes: [[3, 4], [3, 4]], fn: (a, b) => E.maximum(a, b) },
  { name: "minimum scalar", shapes: [[3, 4]], fn: (a) => E.minimum(a, 0.1) },
  {
    name: "where",
    shapes: [[3, 4], [3, 4]],
    fn: (a, b) => E.where(E.gt(a, b), E.mul(a, 2), E.mul(b, 3)),
  },
  { name: "sum axes", shapes: [[2, 3, 4]], fn: (x) => sum(x, [0, 2]) },
  { name: "mean keepdims", shapes: [[2, 3, 4]], fn: (x) => mean(x, 1, true) },
  { name: "max", shapes: [[2, 3, 4]], fn: (x) => max(x, -1) },
  { name: "logsumexp", shapes: [[2, 5]], fn: (x) => logsumexp(x, 1) },
  { name: "matmul", shapes: [[3, 5], [5, 2]], fn: (a, b) => matmul(a, b) },
  { name: "matmul aᵀbᵀ batched", shapes: [[2, 5, 3], [2, 4, 5]], fn: (a, b) => matmul(a, b, true, true) },
  { name: "matmul broadcast batch", shapes: [[2, 3, 5], [5, 4]], fn: (a, b) => matmul(a, b) },
  {
    name: "conv2d 3x3 pad 1 + bias",
    shapes: [[2, 3, 5, 5], [4, 3, 3, 3], [4]],
    fn: (x, w, b) => conv2d(x, w, b, { pad: 1 }),
  },
  {
    name: "conv2d stride 2",
    shapes: [[2, 2, 6, 5], [3, 2, 3, 3]],
    fn: (x, w) => conv2d(x, w, null, { stride: 2, pad: 1 }),
  },
  { name: "conv2d 1x1", shapes: [[2, 4, 3, 3], [5, 4, 1, 1]], fn: (x, w) => conv2d(x, w) },
  {
    name: "conv2dInputGrad (transposed conv)",
    shapes: [[2, 3, 3, 3], [3, 2, 3, 3]],
    fn: (dy, w) => conv2dInputGradOp(dy, w, { x: [2, 2, 5, 5], w: [3, 2, 3, 3], stride: 2, pad: 1 }),
  },
  {
    name: "conv2dWeightGrad",
    shapes: [[2, 2, 5, 5], [2, 3, 5, 5]],
    fn: (x, dy) => conv2dWeightGradOp(x, dy, { x: [2, 2, 5, 5], w: [3, 2, 3, 3], stride: 1, pad: 1 }),
  },
  { name: "reshape+permute", shapes: [[2, 3, 4]], fn: (x) => permute(reshape(x, [6, 4]), [1, 0]) },
  { name: "slice", shapes: [[4, 5]], fn: (x) => slice(x, [1, 2], [2, 3]) },
  { name: "pad", shapes: [[2, 3]], fn: (x) => pad(x, [1, 0], [0, 2], 0) },
  { name: "concat", shapes: [[2, 3], [2, 2]], fn: (a, b) => concat([a, b], 1) },
  { name: "expand", shapes: [[3, 1]], fn: (x) => expand(x, [2, 3, 4]) },
  { name: "crossEntropy", shapes: [[4, 5]], fn: (x) => crossEntropy(x, [0, 3, 4, 1]) },
];

function inputsFor(c: Case, seed: number) {
  const r = new Rng(seed);
  return c.shapes.map((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float64Array.from({ length: n }, () => (c.domain ?? ((v) => v))(r.normal())) };
  });
}

Deno.test("gradients of every primitive match central differences (float64 CPU)", async (t) => {
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, async () => {
      const r = await checkGradient((...xs) => weighted(c.fn(...xs)), dev64, inputsFor(c, 10 + i));
      assertTrue(
        r.maxRelError < FD_REL,
        `${c.name}: relative error ${r.maxRelError} at ${r.where} (analytic ${r.analytic}, numeric ${r.numeric})`,
      );
    });
  }
});

Deno.test("second-order: Hessian-vector products of composites match differences of gradients", async (t) => {
  const r = new Rng(5);
  const randv = (n: number) => Float64Array.from({ length: n }, () => r.normal());
  const w = tensor(randv(4 * 2 * 3 * 3), [4, 2, 3, 3], dev64);
  const w2 = tensor(randv(2 * 4 * 1 * 1), [2, 4, 1, 1], dev64);
  const m = tensor(randv(6 * 6), [6, 6], dev64);
  const composites: [string, (x: Tensor) => Tensor, number[]][] = [
    [
      "softplus(conv) -> elu -> conv",
      (x) => weighted(conv2d(E.elu(E.softplus(conv2d(x, w, null, { pad: 1 }))), w2)),
      [2, 2, 4, 4],
    ],
    ["tanh(matmul) * sigmoid", (x) => weighted(E.mul(E.tanh(matmul(x, m)), E.sigmoid(x))), [3, 6]],
    ["logsumexp(exp-scaled)", (x) => sum(logsumexp(E.mul(E.exp(E.mul(x, 0.3)), x), 1)), [2, 5]],
    ["swish-like x*sigmoid(x)/1.1", (x) => weighted(E.div(E.mul(x, E.sigmoid(x)), 1.1)), [10]],
  ];
  for (const [name, f, shape] of composites) {
    await t.step(name, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const rep = await checkHessianVector(f, dev64, { data: randv(n), shape }, randv(n));
      assertTrue(
        rep.maxRelError < HVP_REL,
        `${name}: relative error ${rep.maxRelError} at ${rep.where} (${rep.analytic} vs ${rep.numeric})`,
      );
    });
  }
});

for (const [label, dev] of [["WebGPU", gpu], ["wasm", wasm]] as const) {
  Deno.test({
    name: `${label} values and gradients match the float64 reference for every primitive`,
    ignore: dev === null,
    fn: async (t) => {
      for (const [i, c] of cases.entries()) {
        await t.step(c.name, async () => {
          const ins = inputsFor(c, 10 + i);
          const run = async (d: Device) => {
            const xs = ins.map((x) => requireGrad(tensor(x.data, x.shape, d)));
            const [y, gs] = tidy(() => {
              const y = c.fn(...xs);
              return [y, grad(weighted(y), xs)] as const;
            });
            const out = [await y.read(), ...(await Promise.all(gs.map((g) => g.read())))];
            [y, ...gs, ...xs].forEach((t) => t.dispose());
            return out;
          };
          const ref = await run(dev64);
          const got = await run(dev!);
          ref.forEach((r, k) => {
            const scale = Math.max(1, ...Array.from(r, Math.abs));
            assertClose(
              got[k],
              r,
              { atol: GPU_TOL.atol * scale, rtol: GPU_TOL.rtol },
              `${c.name} ${k === 0 ? "value" : `grad ${k - 1}`}`,
            );
          });
        });
      }
    },
  });
}
