/**
 * Tests of spectralScale (the effective weight W / max(1, σ/coeff) as one op): value, gradients in W and
 * σ, and gradients of gradients equal those of the composed ops (float64, exact oracle up to rounding), on
 * both sides of the kink and at it; and on WebGPU the same as on the CPU.
 * @module
 */
import { assertClose, assertThrows } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { grad } from "../engine/autograd.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { div, maximum, mul, tanh } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { spectralScale } from "./spectral_scale.ts";

/** Float64: the rule and the composed ops do the same arithmetic in another order. */
const TOL64 = { atol: 1e-13, rtol: 1e-11 };
/** Float32 WebGPU against the float64 reference: single-precision rounding of sums of 12 terms. */
const TOL32 = { atol: 1e-5, rtol: 1e-4 };

const COEFF = 0.9;
const W = [0.3, -1.2, 0.7, 2.1, -0.4, 0.05, 1.6, -0.9, 0.2, 0.8, -1.1, 0.45];
const G = [0.5, 0.1, -0.3, 0.9, 0.2, -0.7, 0.4, 0.05, -0.2, 0.6, 0.3, -0.1];

/** Value, first gradients (W, σ) and a second-order quantity, with `scale` or the composed ops. */
async function figures(device: Device, sigmaValue: number, composed: boolean): Promise<Float64Array[]> {
  const w = requireGrad(tensor(W, [3, 4], device));
  const s = requireGrad(tensor([sigmaValue], [], device));
  const g = tensor(G, [3, 4], device);
  const y: Tensor = composed ? div(w, maximum(div(s, COEFF), 1)) : spectralScale(w, s, COEFF);
  // A non-linear loss so that the second derivatives through the rule are not trivially zero.
  const loss = sum(mul(tanh(y), g));
  const [gw, gs] = grad(loss, [w, s], { createGraph: true });
  const [hw, hs] = grad(sum(mul(gw, gw)), [w, s]);
  const out: Float64Array[] = [];
  for (const t of [y, gw, gs, hw, hs]) out.push(Float64Array.from(await t.read()));
  return out;
}

Deno.test("spectralScale", async (t) => {
  const cpu = await createDevice("cpu64");
  const names = ["value", "dW", "dσ", "d²W", "d²σ"];
  for (
    const [label, sigma] of [["σ/coeff above 1", 2.5], ["below 1", 0.4], ["at the kink", COEFF]] as const
  ) {
    await t.step(`equals the composed ops: ${label}`, async () => {
      const a = await figures(cpu, sigma, false);
      const b = await figures(cpu, sigma, true);
      a.forEach((v, i) => assertClose(v, b[i], TOL64, `${label}: ${names[i]}`));
    });
  }
  await t.step("WebGPU gives the CPU's figures", async (s) => {
    let gpu: Device;
    try {
      gpu = await createDevice("webgpu");
    } catch {
      console.log("Skipping the WebGPU step: no adapter");
      return;
    }
    const a = await figures(gpu, 2.5, false);
    const b = await figures(cpu, 2.5, false);
    a.forEach((v, i) => assertClose(v, b[i], TOL32, `${s.name}: ${names[i]}`));
  });
  await t.step("σ must be a single value", () => {
    assertThrows(
      () => spectralScale(tensor(W, [3, 4], cpu), tensor([1, 2], [2], cpu), COEFF),
      /single value/,
    );
  });
});
