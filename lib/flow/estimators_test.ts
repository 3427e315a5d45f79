/**
 * Golden numbers of one residual block (testdata/fixtures/iresblock.json, computed with the authors'
 * PyTorch code in float64): g(x), y, the full Jacobian, the exact log-det, traces of powers, the
 * Hutchinson terms by repeated VJPs with the fixture's probe and their partial sums, the gradients of
 * the exact log-det (through the Jacobian built with createGraph, differentiated again) and the
 * Neumann surrogate's value and gradients. Both variants, in float64 and in float32.
 */
import { requireGrad } from "../engine/ops/creation.ts";
import { add } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { assertClose, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { basicLogdetEstimator, hutchinsonTerms, neumannLogdetEstimator } from "./estimators.ts";
import { exactLogdet, jacobian, traceOfPowers } from "./exact_logdet.ts";
import { truncatedPlan } from "./roulette.ts";
import {
  type FixtureArray,
  FixtureBranch,
  fixtureFiles,
  type FixtureLayer,
  fixtureTensor,
  flat,
  readFixture,
} from "./testing_util.ts";

/** Float64 forward values, log-dets, traces and series terms (fixtures README). */
const F64_VALUE: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Float64 gradients (fixtures README: about 1e-8 relative). */
const F64_GRAD: Tolerance = { atol: 1e-10, rtol: 1e-8 };
/** Float32 single-layer values (fixtures README: about 1e-5 relative). */
const F32_VALUE: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Float32 log-dets, series terms and gradients (fixtures README: 1e-4 relative, absolute scaled to the first term). */
const F32_SERIES: Tolerance = { atol: 2e-4, rtol: 1e-4 };

// deno-lint-ignore no-explicit-any
type Variant = Record<string, any>;

interface Precision {
  readonly device: Device;
  readonly value: Tolerance;
  readonly series: Tolerance;
  readonly grad: Tolerance;
}

const precisions: Precision[] = [
  { device: await createDevice("cpu64"), value: F64_VALUE, series: F64_VALUE, grad: F64_GRAD },
  { device: await createDevice("cpu"), value: F32_VALUE, series: F32_SERIES, grad: F32_SERIES },
];
try {
  const gpu = await createDevice("webgpu");
  precisions.push({ device: gpu, value: F32_VALUE, series: F32_SERIES, grad: F32_SERIES });
} catch (e) {
  console.log(`WebGPU pass skipped: ${(e as Error).message.split("\n")[0]}`);
}

/** Scales a tolerance's absolute part by the largest magnitude of the expected values. */
function scaled(tol: Tolerance, expected: ArrayLike<number>): Tolerance {
  let m = 0;
  for (let i = 0; i < expected.length; i++) m = Math.max(m, Math.abs(expected[i]));
  return { atol: tol.atol * Math.max(1, m), rtol: tol.rtol };
}

async function read(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.read());
  t.dispose();
  return d;
}

/** Gradients of Σ out (the graph of g(x) is kept for later steps); an unused input gets zeros. */
async function gradsOf(out: Tensor, inputs: Tensor[]): Promise<Float64Array[]> {
  const gs = tidy(() => gradMaybe(sum(out), inputs, { allowUnused: true, retainGraph: true }));
  out.dispose();
  return await Promise.all(gs.map((g, i) => (g ? read(g) : new Float64Array(inputs[i].size))));
}

/** Column k (0-based) of a [B, K] fixture array. */
function column(a: FixtureArray, k: number): Float64Array {
  const [b, kk] = a.shape;
  const f = flat(a);
  return Float64Array.from({ length: b }, (_, i) => f[i * kk + k]);
}

function setup(v: Variant, device: Device) {
  const branch = new FixtureBranch(v.layers as FixtureLayer[], device);
  const x = requireGrad(fixtureTensor(v.x, device));
  const probe = fixtureTensor(v.probe_v, device);
  const gx = branch.apply(x);
  return { branch, x, probe, gx, dispose: () => [x, probe, gx].forEach((t) => t.dispose()) };
}

// Every residual-block fixture in testdata/fixtures (iresblock.json and any other iresblock*.json).
for (const file of fixtureFiles("iresblock")) {
  const fixture = await readFixture(file);
  const variants = fixture.variants as Variant[];
  const nTerms = fixture.n_terms as number;
  for (const p of precisions) {
    const dev = p.device;
    const tag = `${dev.name}, ${dev.backend.dtype}`;
    for (const v of variants) {
      Deno.test(`${file} (${v.variant}, ${tag})`, async (t) => {
        const s = setup(v, dev);
        const b = v.x.shape[0] as number;
        const d = (flat(v.x).length / b) | 0;

        await t.step("g(x) and y = x + g(x)", async () => {
          assertClose(await read(s.gx.detach()), flat(v.g), p.value, "g");
          assertClose(await read(tidy(() => add(s.x, s.gx))), flat(v.y), p.value, "y");
        });

        await t.step("full Jacobian by D vector-Jacobian products", async () => {
          assertClose(await read(jacobian(s.gx, s.x)), flat(v.jacobian), p.value, "jacobian");
        });

        await t.step("exact log det(I + J) by LU equals slogdet", async () => {
          const ld = await read(await exactLogdet(s.gx, s.x));
          assertClose(ld, flat(v.logdet_exact), p.series, "logdet_exact");
        });

        await t.step(`tr(J^k), k = 1..${nTerms}, from the built Jacobian`, async () => {
          const jac = await read(jacobian(s.gx, s.x));
          for (let n = 0; n < b; n++) {
            const tr = traceOfPowers(jac.subarray(n * d * d, (n + 1) * d * d), d, nTerms);
            const want = flat(v.trace_terms).subarray(n * nTerms, (n + 1) * nTerms);
            assertClose(tr, want, scaled(p.series, want), `trace_terms[${n}]`);
          }
        });

        await t.step(
          "Hutchinson terms vᵀJ^k v by repeated VJPs, and the basic estimator's partial sums",
          async () => {
            const terms = hutchinsonTerms(s.gx, s.x, s.probe, nTerms);
            const all = flat(v.hutchinson_terms);
            for (let k = 0; k < nTerms; k++) {
              assertClose(
                await read(terms[k]),
                column(v.hutchinson_terms, k),
                scaled(p.series, all),
                `t_${k + 1}`,
              );
            }
            const sums = flat(v.hutchinson_series_partial_sums);
            for (const n of [...new Set([1, 2, 5, nTerms])].filter((n) => n <= nTerms)) {
              const est = basicLogdetEstimator(s.gx, s.x, s.probe, truncatedPlan(n), { createGraph: false });
              assertTrue(!est.requiresGrad, "a graph-free estimate carries no graph");
              assertClose(
                await read(est),
                column(v.hutchinson_series_partial_sums, n - 1),
                scaled(p.series, sums),
                `S_${n}`,
              );
            }
          },
        );

        await t.step(
          "gradient of Σ exact log-det w.r.t. effective weights, biases, β_raw and x",
          async () => {
            const names = Object.keys(v.grad_logdet_sum);
            const inputs = [...names.map((n) => s.branch.param(n).value), s.x];
            const ld = await exactLogdet(s.gx, s.x, { differentiable: true });
            assertClose(
              await read(ld.detach()),
              flat(v.logdet_exact),
              p.series,
              "differentiable logdet value",
            );
            const grads = await gradsOf(ld, inputs);
            for (let i = 0; i < names.length; i++) {
              const want = flat(v.grad_logdet_sum[names[i]]);
              assertClose(grads[i], want, scaled(p.grad, want), `grad ${names[i]}`);
            }
            const wantX = flat(v.grad_logdet_sum_x);
            assertClose(grads[names.length], wantX, scaled(p.grad, wantX), "grad x");
          },
        );

        await t.step(
          `Neumann surrogate (n = ${v.neumann_surrogate.n_terms}, c_k = 1): value u J v and its gradients`,
          async () => {
            const ns = v.neumann_surrogate;
            const names = Object.keys(ns.grad_sum).filter((n) => n !== "x");
            const inputs = [...names.map((n) => s.branch.param(n).value), s.x];
            const out = neumannLogdetEstimator(s.gx, s.x, s.probe, truncatedPlan(ns.n_terms));
            assertTrue(!out.estimate.requiresGrad && out.surrogate.requiresGrad);
            const value = flat(ns.value);
            assertClose(
              await read(out.surrogate.detach()),
              value,
              scaled(p.series, value),
              "surrogate value",
            );
            // Its estimate is the n-term basic estimate.
            const sums = flat(v.hutchinson_series_partial_sums);
            assertClose(
              await read(out.estimate),
              column(v.hutchinson_series_partial_sums, ns.n_terms - 1),
              scaled(p.series, sums),
              "estimate",
            );
            const grads = await gradsOf(out.surrogate, inputs);
            for (let i = 0; i < names.length; i++) {
              const want = flat(ns.grad_sum[names[i]]);
              assertClose(grads[i], want, scaled(p.grad, want), `surrogate grad ${names[i]}`);
            }
            const wantX = flat(ns.grad_sum.x);
            assertClose(grads[names.length], wantX, scaled(p.grad, wantX), "surrogate grad x");
          },
        );

        await t.step(
          "gradient w.r.t. the raw weights through the spectral normalisation (u, v fixed)",
          async () => {
            const raw = new FixtureBranch(v.layers as FixtureLayer[], dev, {
              raw: true,
              coeff: fixture.coeff as number,
            });
            const names = Object.keys(v.grad_logdet_sum_raw_weights);
            const inputs = names.map((n) => raw.param(n).value);
            const ld = await exactLogdet(raw.apply(s.x), s.x, { differentiable: true });
            assertClose(
              await read(ld.detach()),
              flat(v.logdet_exact),
              p.series,
              "logdet through normalisation",
            );
            const grads = await gradsOf(ld, inputs);
            for (let i = 0; i < names.length; i++) {
              const want = flat(v.grad_logdet_sum_raw_weights[names[i]]);
              assertClose(grads[i], want, scaled(p.grad, want), `grad ${names[i]}`);
            }
          },
        );
        s.dispose();
      });
    }
  }
}
