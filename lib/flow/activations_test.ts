/**
 * Activations against lipswish.json (float64, autograd first and second derivatives and the closed
 * forms), |φ'| ≤ 1 on a dense grid, ELU derivatives away from the kink, and a float32 pass.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { grad, gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad, tensor, zerosLike } from "../engine/ops/creation.ts";
import { sum } from "../engine/ops/reduce.ts";
import { type Device, tidy } from "../engine/tensor.ts";
import {
  type Activation,
  activationDerivatives,
  createActivation,
  eluDerivatives,
  LipSwish,
  lipswishDerivatives,
} from "./activations.ts";
import { flat, loadFixture } from "./layer_test_util.ts";

/** Float64 values vs the fixture (README: ~1e-10 relative, 1e-12 absolute). */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float32 values vs the fixture (README: ~1e-5 relative on activations). */
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 };
/** Host closed forms vs the fixture (both float64). */
const CLOSED: Tolerance = { atol: 1e-14, rtol: 1e-12 };

const fx = await loadFixture("lipswish.json");
const zs = flat(fx.z);
const cases = fx.lipswish as {
  beta_raw: number;
  beta: number;
  y: unknown;
  dy_dz: unknown;
  d2y_dz2: unknown;
  dy_dbeta_raw: unknown;
}[];
const eluFx = fx.elu as { y: unknown; dy_dz: unknown; d2y_dz2: unknown };

const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");

/** φ, φ', φ'' at every z by autograd (a first backward with a graph, then a second). */
async function autogradDerivatives(act: Activation, z: ArrayLike<number>, device: Device) {
  const x = requireGrad(tensor(z, [z.length], device));
  const [y, d1, d2] = tidy(() => {
    const y = act.apply(x);
    const [d1] = grad(sum(y), [x], { createGraph: true });
    // d1 may be constant in x (ReLU, identity): then φ'' is zero.
    const [d2] = d1.requiresGrad ? gradMaybe(sum(d1), [x], { allowUnused: true }) : [null];
    return [y, d1, d2 ?? zerosLike(x)];
  });
  const out = { y: await y.read(), dy: await d1.read(), d2y: await d2.read() };
  [x, y, d1, d2].forEach((t) => t.dispose());
  return out;
}

for (const [device, tol] of [[dev64, F64], [dev32, F32]] as const) {
  Deno.test(`LipSwish matches lipswish.json on ${device.backend.description}`, async (t) => {
    for (const c of cases) {
      await t.step(`beta_raw ${c.beta_raw}: value, φ', φ''`, async () => {
        const act = new LipSwish({ device, betaRaw: c.beta_raw });
        const beta = await tidy(() => act.betaValue()).item();
        assertClose(beta, c.beta, tol, "beta = softplus(beta_raw)");
        const d = await autogradDerivatives(act, zs, device);
        assertClose(d.y, flat(c.y), tol, "y");
        assertClose(d.dy, flat(c.dy_dz), tol, "dy/dz");
        assertClose(d.d2y, flat(c.d2y_dz2), tol, "d2y/dz2");
      });
      await t.step(`beta_raw ${c.beta_raw}: ∂φ/∂β_raw per point`, async () => {
        const act = new LipSwish({ device, betaRaw: c.beta_raw });
        const got = new Float64Array(zs.length);
        for (let i = 0; i < zs.length; i++) {
          const g = tidy(() => grad(sum(act.apply(tensor([zs[i]], [1], device))), [act.beta.value])[0]);
          got[i] = await g.item();
          g.dispose();
        }
        assertClose(got, flat(c.dy_dbeta_raw), tol, "dy/dbeta_raw");
      });
    }
  });

  Deno.test(`ELU matches lipswish.json on ${device.backend.description}`, async () => {
    const d = await autogradDerivatives(createActivation("elu", { device }), zs, device);
    assertClose(d.y, flat(eluFx.y), tol, "elu y");
    assertClose(d.dy, flat(eluFx.dy_dz), tol, "elu dy/dz");
    // The second derivative jumps at z = 0 (index 24): compare everywhere else.
    const kink = zs.findIndex((z) => z === 0);
    assertEquals(kink, 24);
    const keep = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => i !== kink);
    assertClose(keep(d.d2y), keep(flat(eluFx.d2y_dz2)), tol, "elu d2y/dz2 away from 0");
  });
}

Deno.test("closed-form derivatives equal the fixture's autograd values", () => {
  for (const c of cases) {
    const h = activationDerivatives("swish", zs, c.beta_raw);
    assertClose(h.map((d) => d.y), flat(c.y), CLOSED, "closed-form y");
    assertClose(h.map((d) => d.dy), flat(c.dy_dz), CLOSED, "closed-form φ'");
    assertClose(h.map((d) => d.d2y), flat(c.d2y_dz2), CLOSED, "closed-form φ''");
    assertClose(
      Array.from(zs, (z) => lipswishDerivatives(z, c.beta_raw).dBetaRaw),
      flat(c.dy_dbeta_raw),
      CLOSED,
      "closed-form ∂φ/∂β_raw",
    );
  }
  const e = Array.from(zs, eluDerivatives);
  assertClose(e.map((d) => d.y), flat(eluFx.y), CLOSED, "elu closed form y");
  assertClose(e.map((d) => d.dy), flat(eluFx.dy_dz), CLOSED, "elu closed form φ'");
  assertClose(e.map((d) => d.d2y), flat(eluFx.d2y_dz2), CLOSED, "elu closed form φ'' (0 at the kink)");
});

Deno.test("|φ'| ≤ 1 for LipSwish on a dense grid and several β; the bound is nearly attained", async () => {
  const grid = Array.from({ length: 4001 }, (_, i) => -40 + i * 0.02);
  let overall = 0;
  for (const betaRaw of [-3, -1, 0, 0.5, 1, 2, 4, 8]) {
    const host = Math.max(...activationDerivatives("swish", grid, betaRaw).map((d) => Math.abs(d.dy)));
    const act = new LipSwish({ device: dev64, betaRaw });
    const ad = await autogradDerivatives(act, grid, dev64);
    const auto = Math.max(...Array.from(ad.dy, Math.abs));
    assertTrue(host <= 1 && auto <= 1, `beta_raw ${betaRaw}: max |φ'| host ${host}, autograd ${auto}`);
    overall = Math.max(overall, auto);
  }
  // max_t d/dt[t σ(t)] ≈ 1.0998, so after /1.1 the largest slope is just below 1.
  assertTrue(overall > 0.999, `largest |φ'| ${overall} should approach 1`);
});

Deno.test("the other activations: values, derivatives, unknown kind", async () => {
  const grid = [-3, -1.5, -0.25, 0.3, 1.7, 4];
  for (const kind of ["softplus", "relu", "identity", "elu"] as const) {
    const act = createActivation(kind, { device: dev64 });
    assertEquals(act.parameters().length, 0);
    const ad = await autogradDerivatives(act, grid, dev64);
    const h = activationDerivatives(kind, grid);
    assertClose(ad.y, h.map((d) => d.y), F64, `${kind} y`);
    assertClose(ad.dy, h.map((d) => d.dy), F64, `${kind} φ'`);
    assertClose(ad.d2y, h.map((d) => d.d2y), F64, `${kind} φ''`);
    assertTrue(h.every((d) => Math.abs(d.dy) <= 1), `${kind} is 1-Lipschitz`);
  }
  const sw = createActivation("swish", { device: dev64 });
  assertEquals(sw.parameters().map((p) => p.name), ["beta"]);
  assertEquals(Array.from(await sw.parameters()[0].value.read()), [0.5]);
  assertThrows(
    () => createActivation("lcube" as "elu", { device: dev64 }),
    /Cannot create activation "lcube"/,
  );
});
