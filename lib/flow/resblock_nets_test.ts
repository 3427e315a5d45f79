/**
 * The residual branches built from the library's layers: official structure and names, the
 * iresblock.json blocks reproduced with SpectralNormConv2d (raw weights and stored u, v), a Jacobian
 * norm below the bound after the power iteration, the FC branch's exact log-det against a
 * brute-force 2×2 determinant from finite differences, and a training step through the block.
 */
import { gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { mul, sub } from "../engine/ops/elementwise.ts";
import { mean, sum } from "../engine/ops/reduce.ts";
import { randn, Rng } from "../engine/random.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { type ActivationKind, Elu, LipSwish } from "./activations.ts";
import { exactLogdet, jacobian } from "./exact_logdet.ts";
import { IResBlock } from "./iresblock.ts";
import { buildConvBranch, buildFcBranch, type SequentialBranch } from "./resblock_nets.ts";
import { SpectralNormConv2d, updateLipschitzAll } from "./spectral_norm.ts";
import {
  fixtureFiles,
  type FixtureLayer,
  fixtureTensor,
  flat,
  readFixture,
  spectralNorm,
} from "./testing_util.ts";

/** Float64 values against the fixture (fixtures README). */
const F64_VALUE: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float64 gradients against the fixture. */
const F64_GRAD: Tolerance = { atol: 1e-10, rtol: 1e-8 };
/** Exact log-det vs the finite-difference determinant (central differences, step 1e-5, float64). */
const FD_LOGDET: Tolerance = { atol: 1e-8, rtol: 0 };

const dev = await createDevice("cpu64");
const fixture = await readFixture("iresblock.json");
/** The fixture's activation names (fixtures README) as activation kinds. */
const ACTIVATIONS: Record<string, ActivationKind> = { LipSwish: "swish", ELU: "elu" };
// deno-lint-ignore no-explicit-any
const variants = fixture.variants as Record<string, any>[];

async function read(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.read());
  t.dispose();
  return d;
}

/** Copies a fixture block's raw weights, biases, β_raw and power-iteration vectors into a built branch. */
function loadFixture(branch: SequentialBranch, layers: readonly FixtureLayer[]): void {
  assertEquals(branch.layers.length, layers.length);
  layers.forEach((l, i) => {
    const m = branch.layers[i];
    if (l.type === "LipSwish") {
      assertTrue(m instanceof LipSwish);
      m.beta.set(tensor([l.beta_raw], [1], dev));
    } else if (l.type === "ELU") {
      assertTrue(m instanceof Elu);
    } else {
      assertTrue(m instanceof SpectralNormConv2d);
      m.weight.set(fixtureTensor(l.weight_raw, dev));
      m.bias!.set(fixtureTensor(l.bias, dev));
      const u = flat(l.power_iteration_u);
      const v = flat(l.power_iteration_v);
      m.u.set(tensor(u, [u.length], dev));
      m.v.set(tensor(v, [v.length], dev));
    }
  });
}

/** A conv branch built with a fixture's settings (channels, hidden width, activation, coeff, input size). */
// deno-lint-ignore no-explicit-any
function fixtureBranch(fx: Record<string, any>, v: Record<string, any>): SequentialBranch {
  const conv = (v.layers as FixtureLayer[]).find((l) => l.type === "Conv2d")!;
  return buildConvBranch({
    inChannels: fx.C as number,
    hidden: fx.hidden as number,
    activation: ACTIVATIONS[fx.activation],
    leadingActivation: v.leading_activation as boolean,
    coeff: fx.coeff as number,
    inputHW: conv.input_hw as [number, number],
    rng: new Rng(0),
    device: dev,
  });
}

Deno.test("conv branch: official layout and names", () => {
  const pre = buildConvBranch({ inChannels: 3, hidden: 16, rng: new Rng(1), device: dev });
  assertEquals(
    pre.parameters().map((p) => p.name),
    ["0.beta", "1.weight", "1.bias", "2.beta", "3.weight", "3.bias", "4.beta", "5.weight", "5.bias"],
  );
  assertEquals(pre.buffers().map((b) => b.name), ["1.u", "1.v", "3.u", "3.v", "5.u", "5.v"]);
  const convs = pre.lipschitzLayers() as SpectralNormConv2d[];
  assertEquals(
    convs.map((c) => [c.inChannels, c.outChannels, c.kernelSize, c.padding]),
    [[3, 16, 3, 1], [16, 16, 1, 0], [16, 3, 3, 1]],
  );
  const first = buildConvBranch({
    inChannels: 3,
    hidden: 16,
    leadingActivation: false,
    rng: new Rng(1),
    device: dev,
  });
  assertEquals(first.parameters()[0].name, "0.weight");
  const block = new IResBlock(pre);
  assertEquals(block.parameters()[0].name, "nnet.0.beta");
  const wide = buildConvBranch({
    inChannels: 2,
    hidden: 7,
    kernels: [3, 1, 1, 3],
    rng: new Rng(1),
    device: dev,
  });
  assertEquals(wide.lipschitzLayers().length, 4);
  assertThrows(
    () => buildConvBranch({ inChannels: 2, kernels: [3, 2, 3], rng: new Rng(1), device: dev }),
    /odd/,
  );
  assertThrows(
    () => buildConvBranch({ inChannels: 2, vnorms: "22", rng: new Rng(1), device: dev }),
    /vnorms/,
  );
});

// Every residual-block fixture in testdata/fixtures (iresblock.json and any other iresblock*.json).
for (const file of fixtureFiles("iresblock")) {
  const fx = await readFixture(file);
  // deno-lint-ignore no-explicit-any
  for (const v of fx.variants as Record<string, any>[]) {
    Deno.test(`conv branch reproduces ${file} (${v.variant}) with SpectralNormConv2d`, async () => {
      const branch = fixtureBranch(fx, v);
      loadFixture(branch, v.layers as FixtureLayer[]);
      const x = requireGrad(fixtureTensor(v.x, dev));
      const gx = branch.apply(x);
      assertClose(await read(gx.detach()), flat(v.g), F64_VALUE, "g");
      const ld = await exactLogdet(gx, x, { differentiable: true });
      assertClose(await read(ld.detach()), flat(v.logdet_exact), F64_VALUE, "logdet");
      const convs = branch.lipschitzLayers();
      const gs = tidy(() => gradMaybe(sum(ld), convs.map((c) => c.weight.value)));
      for (let i = 0; i < convs.length; i++) {
        const want = flat(v.grad_logdet_sum_raw_weights[`conv${i}.weight_raw`]);
        const scale = Math.max(...want.map(Math.abs));
        assertClose(
          await read(gs[i]!),
          want,
          { atol: F64_GRAD.atol * scale, rtol: F64_GRAD.rtol },
          `conv${i}`,
        );
      }
      ld.dispose();
      gx.dispose();
      x.dispose();
    });
  }
}

Deno.test("conv branch: after the power iteration from fresh u, v, the Jacobian norm is below coeff³ < coeff", async () => {
  // The fixture's raw weights (chosen so the three layers do not cancel) with the layer's own random
  // u, v: the adaptive power iteration alone must bring every σ to the operator norm.
  const v = variants[0];
  const branch = fixtureBranch(fixture, v);
  const layers = v.layers as FixtureLayer[];
  layers.forEach((l, i) => {
    const m = branch.layers[i];
    if (m instanceof LipSwish) m.beta.set(tensor([l.beta_raw], [1], dev));
    else if (m instanceof SpectralNormConv2d) {
      m.weight.set(fixtureTensor(l.weight_raw, dev));
      m.bias!.set(fixtureTensor(l.bias, dev));
    }
  });
  branch.apply(fixtureTensor(v.x, dev)).dispose(); // first use: records 4x4, draws u, v
  const updates = await updateLipschitzAll(branch.lipschitzLayers(), { nIterations: 500 });
  assertTrue(updates.every((u) => u.converged));
  const x = requireGrad(randn([4, ...(v.x.shape as number[]).slice(1)], new Rng(2), dev));
  const jac = await read(jacobian(branch.apply(x), x));
  const d = x.size / 4;
  const norms = [0, 1, 2, 3].map((b) => spectralNorm(jac.subarray(b * d * d, (b + 1) * d * d), d, d));
  const bound = (fixture.coeff as number) ** 3;
  assertTrue(norms.every((n) => n < bound + 1e-9), `Jacobian norms ${norms.join(", ")}, bound ${bound}`);
  // The bound is not vacuous for these weights.
  assertTrue(norms.every((n) => n > 0.5), `Jacobian norms ${norms.join(", ")}`);
  x.dispose();
});

Deno.test("FC branch: layout, and its exact log-det equals a brute-force 2x2 determinant", async () => {
  const branch = buildFcBranch({ inputShape: [2], hidden: 16, rng: new Rng(3), device: dev, coeff: 0.9 });
  assertEquals(
    branch.parameters().map((p) => p.name),
    [
      "nnet.0.beta",
      "nnet.1.weight",
      "nnet.1.bias",
      "nnet.2.beta",
      "nnet.3.weight",
      "nnet.3.bias",
      "nnet.4.beta",
      "nnet.5.weight",
      "nnet.5.bias",
    ],
  );
  assertEquals(new IResBlock(branch).parameters()[1].name, "nnet.nnet.1.weight");
  // Aligned weights (W3 = −W1ᵀ, W2 = I, hidden biases 2) so the log-det is not tiny; the layers
  // normalise them to operator norm 0.9.
  const [l1, l2, l3] = branch.lipschitzLayers();
  const w1 = new Rng(4).fill(32, (r) => 3 * r.normal());
  l1.weight.set(tensor(w1, [16, 2], dev));
  l1.bias!.set(tensor(new Float64Array(16).fill(2), [16], dev));
  l2.weight.set(tensor(Float64Array.from({ length: 256 }, (_, i) => (i % 17 === 0 ? 2 : 0)), [16, 16], dev));
  l3.weight.set(
    tensor(Float64Array.from({ length: 32 }, (_, i) => -w1[(i % 16) * 2 + Math.floor(i / 16)]), [2, 16], dev),
  );
  await updateLipschitzAll(branch.lipschitzLayers(), { nIterations: 100 });
  const pts = new Rng(9).fill(10, (r) => 2 * r.normal());
  const x = requireGrad(tensor(pts, [5, 2], dev));
  const ld = await read(await exactLogdet(branch.apply(x), x));
  const g = async (p: ArrayLike<number>) =>
    await read(noGrad(() => branch.apply(tensor(p, [p.length / 2, 2], dev))));
  const h = 1e-5;
  const brute: number[] = [];
  for (let b = 0; b < 5; b++) {
    const j = [0, 0, 0, 0];
    for (let c = 0; c < 2; c++) {
      const plus = [pts[2 * b], pts[2 * b + 1]];
      const minus = [...plus];
      plus[c] += h;
      minus[c] -= h;
      const [gp, gm] = [await g(plus), await g(minus)];
      for (let r = 0; r < 2; r++) j[r * 2 + c] = (gp[r] - gm[r]) / (2 * h);
    }
    brute.push(Math.log(Math.abs((1 + j[0]) * (1 + j[3]) - j[1] * j[2])));
  }
  assertClose(ld, brute, FD_LOGDET, "exact vs brute force");
  assertTrue(ld.every((v) => Math.abs(v) > 0.1), `log-dets ${ld.join(", ")}`);
  x.dispose();
});

Deno.test("a training step through IResBlock(conv branch): every parameter gets a finite gradient; inverse recovers x", async () => {
  const branch = buildConvBranch({ inChannels: 2, hidden: 8, rng: new Rng(7), device: dev });
  const block = new IResBlock(branch); // defaults: Neumann + backward-in-forward, Geom(0.5)
  const x = requireGrad(randn([3, 2, 4, 4], new Rng(8), dev));
  const params = block.parameters().map((p) => p.value);
  const gs = tidy(() => {
    const out = block.forward(x, { training: true, rng: new Rng(1) });
    const nll = mean(sub(mul(sum(mul(out.y, out.y), [1, 2, 3]), 0.5), out.logdet!));
    return gradMaybe(nll, [x, ...params]);
  });
  for (const [i, g] of gs.entries()) {
    const d = await read(g!);
    assertTrue(d.every(Number.isFinite), `gradient ${i}`);
  }
  await updateLipschitzAll(branch.lipschitzLayers());
  const y = noGrad(() => block.forward(x, { training: false, rng: new Rng(2), skipLogdet: true }).y);
  const r = await block.inverseAsync(y, { atol: 1e-12, rtol: 0 });
  assertClose(await read(r.x), await x.read(), { atol: 1e-10, rtol: 0 }, "inverse(forward(x))");
  y.dispose();
  x.dispose();
});
