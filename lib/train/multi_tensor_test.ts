/**
 * The multi-tensor (flat) clipping, Adam and EMA against the per-tensor path, on the CPU reference and
 * on WebGPU, and the flat gather / split copies against the CPU reference.
 */
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { grad } from "../engine/autograd.ts";
import { add, mul } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, reshape, splitFlat } from "../engine/ops/shape.ts";
import { requestWebGpuAdapter } from "../engine/webgpu/webgpu_backend.ts";
import { Parameter } from "../flow/module.ts";
import { Rng } from "../engine/random.ts";
import { Ema } from "./ema.ts";
import { Adam, clipGradNorm } from "./optimizer.ts";

const adapter = await requestWebGpuAdapter();

/**
 * Flat and per-tensor paths: the update is the same arithmetic per element, but the gradient norm sums
 * in another order (one flat reduction against a sum of per-tensor sums), so the clipping scale differs
 * by float32 rounding, which three Adam steps carry into the weights (relative 1e-6 of a ~1e-3 step).
 */
const PATHS: Tolerance = { atol: 2e-6, rtol: 1e-5 };
/** WebGPU against the CPU reference: float32 reductions in another order, then the same three steps. */
const DEVICES: Tolerance = { atol: 1e-5, rtol: 1e-4 };

/** Parameter shapes like a model's: odd sizes, a scalar, more tensors than one gather dispatch takes. */
const SHAPES: number[][] = [
  [3, 2, 3, 3],
  [3],
  [],
  [5, 7],
  [1],
  ...Array.from({ length: 17 }, (_, i) => [i % 4 + 1, 2]),
  [64],
];

function values(seed: number, n: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.uniform() * 2 - 1);
}

function sizeOf(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/**
 * Three clipped Adam steps (the second leaves parameter 1 without a gradient) and EMA updates; returns
 * the weights, the moments from `state()`, the shadow and the norms, all read back.
 */
async function run(device: Device, multiTensor: boolean): Promise<number[][]> {
  const params = SHAPES.map((s, i) => new Parameter(`p${i}`, tensor(values(i, sizeOf(s)), s, device)));
  const opt = new Adam(params, { lr: 0.05, warmupIters: 2, weightDecay: 0.01, multiTensor });
  const ema = new Ema(params, 0.9, { multiTensor });
  const norms: number[] = [];
  for (let t = 0; t < 3; t++) {
    const grads = SHAPES.map((s, i) => tensor(values(100 * t + i, sizeOf(s)), s, device));
    const present = grads.filter((_, i) => !(t === 1 && i === 1));
    const c = clipGradNorm(present, 2, { multiTensor });
    norms.push(await c.norm.item());
    let k = 0;
    opt.step(grads.map((_, i) => (t === 1 && i === 1 ? null : c.grads[k++])));
    ema.update();
    [...grads, c.norm, ...c.grads].forEach((g) => g.dispose());
  }
  const read = async (ts: Iterable<Tensor>) => {
    const out: number[] = [];
    for (const t of ts) out.push(...await t.read());
    return out;
  };
  const st = opt.state();
  const result = [
    await read(params.map((p) => p.value)),
    await read(st.m.values()),
    await read(st.v.values()),
    await read(ema.shadow().values()),
    norms,
  ];
  assertEquals(st.step, 3, "steps taken");
  opt.dispose();
  ema.dispose();
  params.forEach((p) => p.value.dispose());
  return result;
}

const NAMES = ["weights", "first moments", "second moments", "EMA shadow", "gradient norms"];

function compare(a: number[][], b: number[][], tol: Tolerance, what: string): void {
  a.forEach((x, i) => assertClose(x, b[i], tol, `${what}: ${NAMES[i]}`));
}

Deno.test("multi-tensor clipping, Adam and EMA match the per-tensor path", async (t) => {
  const cpu = await createDevice("cpu");
  const cpuFlat = await run(cpu, true);
  await t.step("CPU reference: flat against per tensor", async () => {
    compare(cpuFlat, await run(cpu, false), PATHS, "CPU");
  });
  await t.step({
    name: "WebGPU: both paths against the CPU reference",
    ignore: !adapter,
    fn: async () => {
      const gpu = await createDevice("webgpu");
      const flat = await run(gpu, true);
      const each = await run(gpu, false);
      compare(flat, cpuFlat, DEVICES, "WebGPU flat");
      compare(each, cpuFlat, DEVICES, "WebGPU per tensor");
      compare(flat, each, PATHS, "WebGPU flat against per tensor");
    },
  });
});

Deno.test({
  name: "flat gather and split on WebGPU copy exactly what the CPU reference copies",
  ignore: !adapter,
  fn: async () => {
    const gpu = await createDevice("webgpu");
    const cpu = await createDevice("cpu");
    // 40 pieces, some empty: several dispatches of up to 15, ranges that skip empty pieces.
    const shapes = Array.from({ length: 40 }, (_, i) => (i % 7 === 3 ? [0] : [i % 5 + 1, (i % 3) + 1]));
    const pieces = (d: Device) => shapes.map((s, i) => tensor(values(7 + i, sizeOf(s)), s, d));
    const roundTrip = async (d: Device) => {
      const xs = pieces(d);
      const flat = concat(xs.map((x) => reshape(x, [x.size])), 0);
      const back = splitFlat(flat, shapes);
      const out = [[...await flat.read()]];
      for (const b of back) out.push([...await b.read()]);
      back.forEach((b, i) => assertEquals([...b.shape], shapes[i], `shape of piece ${i}`));
      [...xs, flat, ...back].forEach((x) => x.dispose());
      return out;
    };
    const g = await roundTrip(gpu), c = await roundTrip(cpu);
    assertTrue(g.length === c.length, "as many pieces");
    g.forEach((x, i) => assertEquals(x, c[i], `piece ${i} (0: the flat concatenation)`));
  },
});

Deno.test("splitFlat's gradient puts each piece's gradient back in its range (exact oracle)", async (t) => {
  const shapes = [[2, 3], [0], [4], [], [3, 1, 2]];
  const total = shapes.reduce((n, s) => n + sizeOf(s), 0);
  const kinds = adapter ? ["cpu", "webgpu"] as const : ["cpu"] as const;
  for (const kind of kinds) {
    await t.step(kind, async () => {
      const d = await createDevice(kind);
      const x = requireGrad(tensor(values(3, total), [total], d));
      const weights = shapes.map((s, j) => tensor(values(50 + j, sizeOf(s)), s, d));
      const pieces = splitFlat(x, shapes);
      pieces.forEach((p, j) => assertEquals([...p.shape], shapes[j], `shape of piece ${j}`));
      // d/dx of sum_j sum(piece_j * w_j) is the concatenation of the w_j, exactly.
      const loss = pieces.map((p, j) => sum(mul(p, weights[j]))).reduce((a, b) => add(a, b));
      const [gx] = grad(loss, [x]);
      const expected: number[] = [];
      for (const w of weights) expected.push(...await w.read());
      assertEquals([...await gx.read()], expected, "gradient of the flat input");
    });
  }
});
