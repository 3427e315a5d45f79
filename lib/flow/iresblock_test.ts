/**
 * The residual block as a flow layer: the fixed-point inverse against the fixture (iteration count
 * and reconstruction), its report when it does not converge, the official stopping rule, forward
 * plus inverse log-det = 0, the per-call plans and moments, every training mode giving gradients, and
 * the backward-in-forward shared-upstream check.
 */
import { gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { abs, add, mul, sub } from "../engine/ops/elementwise.ts";
import { max, mean, sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import {
  assertClose,
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
  type Tolerance,
} from "../testing/asserts.ts";
import { exactLogdet } from "./exact_logdet.ts";
import { IResBlock, type IResBlockOptions } from "./iresblock.ts";
import type { FlowContext } from "./module.ts";
import {
  FixtureBranch,
  fixtureFiles,
  type FixtureLayer,
  fixtureTensor,
  flat,
  readFixture,
} from "./testing_util.ts";

/** Fixed-point reconstruction in float64 (fixtures README: about 1e-11). */
const F64_INVERSE: Tolerance = { atol: 1e-11, rtol: 0 };
/** Float32 reconstruction with the float32 stopping rule (atol = rtol = 1e-6). */
const F32_INVERSE: Tolerance = { atol: 2e-5, rtol: 0 };
/**
 * Error range of the official stopping rule's answer: the fixture README measured 2.3e-3 and 2.4e-3 on
 * iresblock.json; a block with a smaller Lipschitz constant stops closer, so the lower end only asks that
 * the rule stops far short of the tight rule's 1e-11.
 */
const OFFICIAL_RULE_ERROR = { min: 1e-5, max: 1e-2 };
/** Forward log-det + inverse log-det at the solved x (float64). */
const LOGDET_ROUNDTRIP: Tolerance = { atol: 1e-9, rtol: 0 };

// deno-lint-ignore no-explicit-any
type Variant = Record<string, any>;
const fixture = await readFixture("iresblock.json");
const variants = fixture.variants as Variant[];
const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");
let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU steps skipped: ${(e as Error).message.split("\n")[0]}`);
}

async function read(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.read());
  t.dispose();
  return d;
}

function ctxOf(training: boolean, seed: number): FlowContext {
  return { training, rng: new Rng(seed) };
}

function block(v: Variant, dev = dev64, opts: IResBlockOptions = {}): IResBlock {
  return new IResBlock(new FixtureBranch(v.layers as FixtureLayer[], dev), opts);
}

// Every residual-block fixture in testdata/fixtures (iresblock.json and any other iresblock*.json).
const allVariants: [string, Variant][] = [];
for (const file of fixtureFiles("iresblock")) {
  for (const v of (await readFixture(file)).variants as Variant[]) allVariants.push([file, v]);
}

for (const [file, v] of allVariants) {
  Deno.test(`iresblock inverse (${file}, ${v.variant})`, async (t) => {
    const inv = v.inverse;
    const y = fixtureTensor(v.y, dev64);
    const x = flat(v.x);
    const zeros = new Array(v.x.shape[0]).fill(0);

    await t.step("float64: x_reconstructed and the iteration count (±1) of the fixture", async () => {
      const b = block(v);
      const r = await b.inverseAsync(y, { atol: inv.tolerance_max_abs_change, rtol: 0 });
      assertTrue(r.report.converged);
      assertTrue(
        Math.abs(r.report.iterations - inv.iterations) <= 1,
        `iterations ${r.report.iterations}, fixture ${inv.iterations}`,
      );
      assertTrue(r.report.lastChange <= inv.tolerance_max_abs_change);
      assertTrue(r.report.residual <= inv.tolerance_max_abs_change, `residual ${r.report.residual}`);
      assertEquals(b.lastInverse, r.report);
      const got = await read(r.x);
      assertClose(got, flat(inv.x_reconstructed), F64_INVERSE, "x_reconstructed");
      assertClose(got, x, F64_INVERSE, "x");
    });

    await t.step("the synchronous inverse (CPU) does the same iterations", async () => {
      const b = block(v, dev64, { inverse: { atol: inv.tolerance_max_abs_change, rtol: 0 } });
      const xs = await b.inverse(y, ctxOf(false, 0));
      assertTrue(Math.abs(b.lastInverse!.iterations - inv.iterations) <= 1);
      assertClose(await read(xs), x, F64_INVERSE, "x (sync)");
    });

    await t.step("checks batched per readback (checkEvery 1, 3, 7) give the same x and report", async () => {
      const opts = { atol: inv.tolerance_max_abs_change, rtol: 0 };
      const runs = [];
      for (const checkEvery of [1, 3, 7]) {
        const r = await block(v).inverseAsync(y, { ...opts, checkEvery });
        runs.push({ report: r.report, x: Array.from(await read(r.x)) });
        r.x.dispose();
      }
      for (const r of runs.slice(1)) {
        assertEquals(r.report, runs[0].report);
        assertEquals(r.x, runs[0].x);
      }
      await assertRejects(() => block(v).inverseAsync(y, { checkEvery: 0 }), /checkEvery 0/);
    });

    await t.step("float32 with the default tolerance", async () => {
      const b = block(v, dev32);
      const y32 = fixtureTensor(v.y, dev32);
      const r = await b.inverseAsync(y32);
      assertTrue(r.report.converged && r.report.iterations < inv.iterations);
      assertClose(await read(r.x), x, F32_INVERSE, "x (float32)");
      y32.dispose();
    });

    if (gpu) {
      const g = gpu;
      await t.step("WebGPU: the async inverse converges; the synchronous one refuses clearly", async () => {
        const b = block(v, g);
        const yg = fixtureTensor(v.y, g);
        const r = await b.inverseAsync(yg);
        assertTrue(r.report.converged);
        assertClose(await read(r.x), x, F32_INVERSE, "x (webgpu)");
        const viaContract = await b.inverse(yg, ctxOf(false, 0));
        assertClose(await read(viaContract), x, F32_INVERSE, "x (webgpu, FlowLayer.inverse)");
        viaContract.dispose();
        yg.dispose();
      });
    }

    await t.step("the official rule (squared change < 1e-5 + 1e-5|y|) stops early, ~1e-3 away", async () => {
      const b = block(v);
      const r = await b.inverseAsync(y, { criterion: "official", atol: 1e-5, rtol: 1e-5 });
      const err = Math.max(...(await read(r.x)).map((e, i) => Math.abs(e - x[i])));
      assertTrue(r.report.converged && r.report.iterations < inv.iterations / 2, `${r.report.iterations}`);
      // The rule stops once the change is about 3e-3 (squared below ~1e-5), so the error is of that order
      // for any contraction of Lipschitz constant between ~0.1 and ~0.7.
      assertTrue(
        err > OFFICIAL_RULE_ERROR.min && err < OFFICIAL_RULE_ERROR.max,
        `official-rule error ${err}`,
      );
    });

    await t.step("hitting the cap throws, or reports converged: false", async () => {
      const b = block(v);
      await assertRejects(
        () => b.inverseAsync(y, { maxIterations: 5 }),
        /did not converge within 5 iterations/,
      );
      assertThrows(
        () => block(v, dev64, { inverse: { maxIterations: 5 } }).inverse(y, ctxOf(false, 0)),
        /did not converge within 5 iterations/,
      );
      const r = await b.inverseAsync(y, { maxIterations: 5, onUnconverged: "report" });
      assertEquals(r.report.converged, false);
      assertEquals(r.report.iterations, 5);
      assertTrue(r.report.residual > 1e-3 && r.report.lastChange > 1e-3, JSON.stringify(r.report));
      r.x.dispose();
      await assertRejects(() => b.inverseAsync(y, { maxIterations: 0 }), /maxIterations 0/);
      // Through the flow-layer contract, a context asking for reports counts instead of failing.
      const capped = block(v, dev64, { inverse: { maxIterations: 5 } });
      const xs = await capped.inverse(y, { ...ctxOf(false, 0), onUnconverged: "report" });
      assertEquals([capped.lastInverse?.converged, capped.lastInverse?.iterations], [false, 5]);
      xs.dispose();
    });

    await t.step(
      "forward log-det + inverse log-det = 0 (exact, and the block's estimator with the same draws)",
      async () => {
        const b = block(v);
        const r = await b.inverseAsync(y, { atol: 1e-13, rtol: 0 });
        const xs = requireGrad(r.x);
        const xf = requireGrad(fixtureTensor(v.x, dev64));
        const fwd = await read(await exactLogdet(b.nnet.apply(xf), xf));
        const back = await read(await exactLogdet(b.nnet.apply(xs), xs));
        assertClose(fwd.map((f, i) => f - back[i]), zeros, LOGDET_ROUNDTRIP, "exact forward - inverse");
        assertClose(fwd, flat(v.logdet_exact), LOGDET_ROUNDTRIP, "exact forward");
        const est = await read(b.forward(xf, ctxOf(false, 7)).logdet!);
        const invRes = await b.inverseWithLogdet(y, ctxOf(false, 7), { atol: 1e-13, rtol: 0 });
        const estInv = await read(invRes.logdet);
        invRes.x.dispose();
        assertClose(
          est.map((e, i) => e + estInv[i]),
          zeros,
          LOGDET_ROUNDTRIP,
          "estimated forward + inverse",
        );
        xs.dispose();
        xf.dispose();
      },
    );
    y.dispose();
  });
}

Deno.test("iresblock forward", async (t) => {
  const v = variants[0];
  const x = fixtureTensor(v.x, dev64);

  await t.step(
    "defaults: the paper's Geom(0.5), 2 exact terms, Neumann + backward-in-forward, 20 eval terms",
    () => {
      const b = block(v);
      assertEquals(b.settings.dist, { kind: "geometric", p: 0.5 });
      assertEquals(
        [
          b.settings.nExactTerms,
          b.settings.gradient,
          b.settings.backwardInForward,
          b.settings.evalExactTerms,
          b.settings.estimator,
        ],
        [2, "neumann", true, 20, "unbiased"],
      );
      assertEquals(block(v, dev64, { nDist: "poisson" }).settings.dist, { kind: "poisson", lambda: 2 });
      assertThrows(() => block(v, dev64, { nDist: "uniform" as "poisson" }), /nDist "uniform"/);
      assertThrows(() => block(v, dev64, { nExactTerms: -1 }), /nExactTerms = -1/);
      assertThrows(() => block(v, dev64, { geomP: 0 }), /geometric\(p = 0\)/);
      assertTrue(b.parameters().every((p) => p.name.startsWith("nnet.")));
      assertEquals(b.buffers().map((q) => q.name), ["last_n_samples", "last_firmom", "last_secmom"]);
    },
  );

  await t.step("plans: N + 2 terms in training, N + 20 in eval, n in the truncated setting", () => {
    const b = block(v);
    const rng = new Rng(5);
    const ref = new Rng(5);
    for (let i = 0; i < 20; i++) {
      const p = b.planFor({ training: true, rng });
      assertEquals(p.nTerms, ref.geometric(0.5) + 2);
      const e = b.planFor({ training: false, rng });
      assertEquals(e.nTerms, ref.geometric(0.5) + 20);
      assertTrue(e.coeffs.slice(0, 20).every((c) => c === 1) && e.coeffs.length === e.nTerms);
    }
    const tr = block(v, dev64, { estimator: "truncated", nTruncated: 7 }).planFor({ training: true, rng });
    assertEquals([tr.nTerms, tr.sampledN, tr.coeffs.every((c) => c === 1)], [7, null, true]);
  });

  await t.step("eval: y = x + g(x), a graph-free log-det, moments and N recorded as tensors", async () => {
    const b = block(v);
    const out = b.forward(x, ctxOf(false, 3));
    assertClose(await read(out.y), flat(v.y), { atol: 1e-12, rtol: 1e-12 }, "y");
    assertTrue(!out.logdet!.requiresGrad && out.logdet!.shape.join() === "3");
    const ld = await read(out.logdet!);
    const m1 = ld.reduce((a, c) => a + c, 0) / 3;
    const m2 = ld.reduce((a, c) => a + c * c, 0) / 3;
    assertClose(await b.lastFirmom.value!.item(), m1, { atol: 1e-12, rtol: 1e-12 }, "last_firmom");
    assertClose(await b.lastSecmom.value!.item(), m2, { atol: 1e-12, rtol: 1e-12 }, "last_secmom");
    assertEquals(await b.lastNSamples.value!.item(), b.lastPlan!.sampledN);
    assertEquals(b.lastPlan!.nTerms, b.lastPlan!.sampledN! + 20);
    const skip = b.forward(x, { training: true, rng: new Rng(0), skipLogdet: true });
    assertEquals(skip.logdet, null);
    assertClose(await read(skip.y), flat(v.y), { atol: 1e-12, rtol: 1e-12 }, "y (skipLogdet)");
  });

  await t.step(
    "training: every mode gives the same value and finite gradients to every parameter and x",
    async () => {
      const modes: IResBlockOptions[] = [
        { neumannGrad: false, backwardInForward: false },
        { neumannGrad: true, backwardInForward: false },
        { neumannGrad: false, backwardInForward: true },
        { neumannGrad: true, backwardInForward: true },
      ];
      let first: Float64Array | null = null;
      for (const m of modes) {
        const b = block(v, dev64, m);
        const xg = requireGrad(fixtureTensor(v.x, dev64));
        const params = b.parameters().map((p) => p.value);
        const grads = tidy(() => {
          const out = b.forward(xg, ctxOf(true, 11));
          assertTrue(out.logdet!.requiresGrad);
          const ld = out.logdet!.detach();
          const loss = mean(sub(mul(sum(mul(out.y, out.y), [1, 2, 3]), 0.5), out.logdet!));
          return [ld, ...gradMaybe(loss, [xg, ...params], { allowUnused: true })];
        });
        const ld = await read(grads[0]!);
        if (first === null) first = ld;
        else assertClose(ld, first, { atol: 1e-12, rtol: 1e-12 }, `value, mode ${JSON.stringify(m)}`);
        for (const g of grads.slice(1)) {
          assertTrue(g !== null, `mode ${JSON.stringify(m)}: a parameter got no gradient`);
          const d = await read(g);
          assertTrue(d.every(Number.isFinite) && d.some((e) => e !== 0), `mode ${JSON.stringify(m)}`);
        }
        xg.dispose();
      }
    },
  );

  await t.step("backward-in-forward refuses per-example upstream weights (CPU check)", () => {
    const b = block(v, dev64, { backwardInForward: true });
    const xg = requireGrad(fixtureTensor(v.x, dev64));
    const params = b.parameters().map((p) => p.value);
    assertThrows(
      () =>
        tidy(() => {
          const out = b.forward(xg, ctxOf(true, 2));
          const w = tensor([1, 2, 3], [3], dev64);
          return gradMaybe(sum(mul(out.logdet!, w)), params, { allowUnused: true });
        }),
      /differs across examples/,
    );
    // A mean-reduced loss passes.
    const gs = tidy(() =>
      gradMaybe(mean(b.forward(xg, ctxOf(true, 2)).logdet!), params, { allowUnused: true })
    );
    gs.forEach((g) => g?.dispose());
    xg.dispose();
  });

  await t.step("forward under noGrad in training mode builds no graph", async () => {
    const { noGrad } = await import("../engine/tensor.ts");
    const b = block(v, dev64, { backwardInForward: true });
    const xg = requireGrad(fixtureTensor(v.x, dev64));
    const out = noGrad(() => b.forward(xg, ctxOf(true, 2)));
    assertTrue(!out.y.requiresGrad && !out.logdet!.requiresGrad);
    const d = await read(tidy(() => max(abs(add(out.y, 0)))));
    assertTrue(Number.isFinite(d[0]));
    out.y.dispose();
    out.logdet!.dispose();
    xg.dispose();
  });
  x.dispose();
});
