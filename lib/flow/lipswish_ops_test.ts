/**
 * The composite LipSwish ops against the same function written as a chain of primitives (values,
 * first and second derivatives in z and β, float64), against central differences, on WebGPU
 * (float32), and the point of them: a recorded graph keeps only z and β.
 */
import { assertClose, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { grad } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { checkGradient } from "../engine/gradcheck.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { add, div, exp, mul, sigmoid } from "../engine/ops/elementwise.ts";
import { composite } from "../engine/ops/record.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { lipswish, lipswishDerivative } from "./lipswish_ops.ts";

/** Composite vs primitive chain, both float64: the same maths in another order of operations. */
const SAME: Tolerance = { atol: 1e-13, rtol: 1e-11 };
/** Central differences in float64 vs autograd (relative). */
const FD_REL = 2e-6;
/** WebGPU float32 vs the float64 chain. */
const GPU_TOL: Tolerance = { atol: 2e-5, rtol: 2e-4 };
const D = 1.1;

const dev64 = await createDevice("cpu64");
const N = 37;
const rng = new Rng(7);
const zData = Array.from({ length: N }, () => 3 * rng.normal());
const wData = Array.from({ length: N }, () => rng.normal());
const uData = Array.from({ length: N }, () => rng.normal());
const BETA = 0.83;

const chain = (z: Tensor, b: Tensor) => div(mul(z, sigmoid(mul(z, b))), D);

/**
 * Values and derivatives of φ = f(z, β) by autograd: y; first derivatives of Σw·φ in z and β; second
 * derivatives of Σu·∂(Σw·φ)/∂z + ∂(Σw·φ)/∂β in z and β (every mixed term).
 */
async function derivatives(f: (z: Tensor, b: Tensor) => Tensor, device: Device) {
  const z = requireGrad(tensor(zData, [N], device));
  const b = requireGrad(tensor([BETA], [], device));
  const w = tensor(wData, [N], device);
  const u = tensor(uData, [N], device);
  const out = tidy(() => {
    const y = f(z, b);
    const [gz, gb] = grad(sum(mul(y, w)), [z, b], { createGraph: true });
    const [hz, hb] = grad(add(sum(mul(gz, u)), gb), [z, b]);
    return [y, gz, gb, hz, hb];
  });
  const r = await Promise.all(out.map((t) => t.read()));
  [z, b, w, u, ...out].forEach((t) => t.dispose());
  return { y: r[0], gz: r[1], gb: r[2], hz: r[3], hb: r[4] };
}

Deno.test("lipswish composite ops", async (t) => {
  await t.step(
    "φ, both first derivatives and every second derivative equal the primitive chain's",
    async () => {
      const want = await derivatives(chain, dev64);
      const got = await derivatives((z, b) => lipswish(z, b, D), dev64);
      for (const k of ["y", "gz", "gb", "hz", "hb"] as const) assertClose(got[k], want[k], SAME, k);
    },
  );

  await t.step("φ' equals the chain's ∂φ/∂z, and its gradients match central differences", async () => {
    const z = requireGrad(tensor(zData, [N], dev64));
    const b = tensor([BETA], [], dev64);
    const want = tidy(() => grad(sum(chain(z, b)), [z])[0]);
    const got = tidy(() => lipswishDerivative(z, b, D));
    assertClose(await got.read(), await want.read(), SAME, "φ'");
    [z, b, want, got].forEach((x) => x.dispose());
    const w = tensor(wData, [N], dev64);
    for (const f of [lipswish, lipswishDerivative]) {
      const r = await checkGradient((z, b) => sum(mul(f(z, b, D), w)), dev64, [
        { data: zData, shape: [N] },
        { data: [BETA], shape: [] },
      ]);
      assertTrue(r.maxRelError < FD_REL, `${f.name}: ${r.maxRelError} at ${r.where}`);
    }
    w.dispose();
  });

  await t.step("a recorded graph keeps z and β only (the chain keeps four tensors of z's size)", () => {
    const big = 4096;
    const held = (f: (z: Tensor, b: Tensor) => Tensor) => {
      const z = requireGrad(tensor(new Float64Array(big).fill(0.3), [big], dev64));
      const b = requireGrad(tensor([BETA], [], dev64));
      const before = dev64.memoryStats().bytesLive;
      const y = f(z, b);
      const bytes = dev64.memoryStats().bytesLive - before;
      [y, z, b].forEach((x) => x.dispose());
      return bytes / (big * dev64.bytesPerElement);
    };
    // y itself plus whatever the graph saved beyond z and β (scalar constants are cached).
    assertClose(held((z, b) => lipswish(z, b, D)), 1, { atol: 0.01, rtol: 0 }, "composite: y only");
    assertTrue(held(chain) >= 3.99, `chain holds ${held(chain)} z-sized tensors, expected 4`);
  });

  await t.step("composite refuses a forward that returns an input", () => {
    const z = requireGrad(tensor([1, 2], [2], dev64));
    assertThrows(() => composite("id", [z], [z], () => z, (g) => [g]), /Cannot record composite op id/);
    z.dispose();
  });

  await t.step("a composite's own rule replaces the chain's (x·eˣ saving only x)", async () => {
    const x = requireGrad(tensor([0.5, -1], [2], dev64));
    const g = tidy(() =>
      grad(
        sum(composite("xexp", [x], [x], () => mul(x, exp(x)), (gy) => [mul(gy, mul(add(x, 1), exp(x)))])),
        [x],
      )[0]
    );
    assertClose(await g.read(), [1.5 * Math.exp(0.5), 0], SAME, "d/dx x·eˣ");
    [x, g].forEach((v) => v.dispose());
  });
});

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU comparison skipped: ${(e as Error).message.split("\n")[0]}`);
}
Deno.test({
  name: "lipswish composite ops on WebGPU (float32) match the float64 chain",
  ignore: gpu === null,
  fn: async () => {
    const want = await derivatives(chain, dev64);
    const got = await derivatives((z, b) => lipswish(z, b, D), gpu!);
    for (const k of ["y", "gz", "gb", "hz", "hb"] as const) assertClose(got[k], want[k], GPU_TOL, k);
  },
});
