/**
 * Induced mixed norms: the normalisers' duality properties, p = q = 2 equal to the spectral norm,
 * the p→q power method against a brute-force maximum of ‖Wx‖_q/‖x‖_p, closed forms, learnable orders
 * (asym_squash, cyclic sharing, contraction in ‖·‖_{p0}) and the order loss's gradients.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { full, tensor } from "../engine/ops/creation.ts";
import { pow } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { largestSingularValue, matmulHost } from "./dense_test_util.ts";
import { fixtureTensor, loadFixture } from "./layer_test_util.ts";
import {
  asymSquash,
  asymSquashHost,
  LearnableOrder,
  normalizeU,
  normalizeV,
  OrderChain,
  orderGradients,
  orderLoss,
  parseVnorms,
} from "./mixed_norm.ts";
import { closedFormMatrixNorm, inducedMatrixNorm } from "./norm_test_util.ts";
import { SpectralNormConv2d, SpectralNormLinear, updateLipschitzAll } from "./spectral_norm.ts";

/** Float64 identities (norms of normalised vectors, closed forms). */
const EXACT: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** The power method vs the brute-force maximum: it may beat sampling slightly, never by much. */
const BEAT_REL = 2e-3;
/** ... and must not fall below the best sample by more than this. */
const BELOW_REL = 1e-6;
/** p(θ = 0) is 2 up to the float32 rounding of the official shift constant atanh(0.5). */
const SQUASH_AT_0: Tolerance = { atol: 1e-7, rtol: 0 };
/** σ with the general rule at p = 2 − 5.8e-8 vs the ℓ2 rule. */
const NEAR_2: Tolerance = { atol: 0, rtol: 1e-7 };
/** Finite differences of the order loss in θ (float64). */
const FD: Tolerance = { atol: 1e-8, rtol: 1e-5 };

const dev64 = await createDevice("cpu64");

function hostNorm(x: ArrayLike<number>, p: number): number {
  if (p === Infinity) return Math.max(...Array.from(x, Math.abs));
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i]) ** p;
  return s ** (1 / p);
}

function ratio(w: Float64Array, m: number, n: number, x: Float64Array, p: number, q: number): number {
  return hostNorm(matmulHost(w, x, m, n, 1), q) / hostNorm(x, p);
}

/** The largest sampled ‖Wx‖_q/‖x‖_p over normal, sparse, sign and unit vectors, then hill-climbed. */
function bruteForceNorm(w: Float64Array, m: number, n: number, p: number, q: number, rng: Rng): number {
  const cands: Float64Array[] = [];
  for (let j = 0; j < n; j++) cands.push(Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
  for (let s = 0; s < 1 << n; s++) {
    cands.push(Float64Array.from({ length: n }, (_, i) => ((s >> i) & 1 ? 1 : -1)));
  }
  for (let k = 0; k < 20000; k++) cands.push(rng.fill(n, (r) => r.normal() ** 3));
  const scored = cands.map((x) => ({ x, r: ratio(w, m, n, x, p, q) })).sort((a, b) => b.r - a.r);
  let best = scored[0].r;
  for (const start of scored.slice(0, 10)) {
    let x = Float64Array.from(start.x);
    let r = start.r;
    for (let step = 0.3; step > 1e-7; step *= 0.7) {
      for (let k = 0; k < 60; k++) {
        const y = x.map((v) => v + step * rng.normal() * (Math.abs(v) + 0.1));
        const ry = ratio(w, m, n, y, p, q);
        if (ry > r) [x, r] = [y, ry];
      }
    }
    best = Math.max(best, r);
  }
  return best;
}

async function read(t: Tensor): Promise<Float64Array> {
  const v = Float64Array.from(await t.read());
  t.dispose();
  return v;
}

Deno.test("asym_squash: θ = 0 gives p = 2, values in (1, 5), host and tensor agree", async () => {
  const thetas = [-20, -3, -1, -0.2, 0, 0.3, 1, 4, 30];
  const got = await read(noGrad(() => asymSquash(tensor(thetas, [thetas.length], dev64))));
  assertClose(got, thetas.map(asymSquashHost), EXACT, "asym_squash");
  assertClose(asymSquashHost(0), 2, SQUASH_AT_0, "p(0)");
  assertTrue(got.every((p) => p >= 1 && p <= 5), `range ${got}`);
  assertTrue(got.every((p, i) => i === 0 || p >= got[i - 1]), "monotone increasing");
  const order = new LearnableOrder({ device: dev64 });
  assertClose(await read(order.value()), [2], SQUASH_AT_0, "a new learnable order is 2");
});

Deno.test("normalisers: ‖v‖_p = 1 and u is the dual of Wv (uᵀw = ‖w‖_q, ‖u‖_{q*} = 1)", async () => {
  const rng = new Rng(4);
  const w = rng.fill(7, (r) => r.normal());
  for (const p of [1, 1.3, 2, 2.5, 4, Infinity]) {
    const v = await read(noGrad(() => normalizeV(tensor(w, [7], dev64), p)));
    assertClose(hostNorm(v, p), 1, EXACT, `‖normalize_v(·, ${p})‖_${p}`);
    // v maximises ⟨w, v⟩ on the unit p-ball: the value is the dual norm ‖w‖_{p*}.
    const dual = p === 1 ? Infinity : p === Infinity ? 1 : p / (p - 1);
    assertClose(v.reduce((s, vi, i) => s + vi * w[i], 0), hostNorm(w, dual), EXACT, `⟨w, v⟩ for p = ${p}`);
  }
  for (const q of [1, 1.5, 2, 3, Infinity]) {
    const u = await read(noGrad(() => normalizeU(tensor(w, [7], dev64), q)));
    const dual = q === 1 ? Infinity : q === Infinity ? 1 : q / (q - 1);
    assertClose(hostNorm(u, dual), 1, EXACT, `‖normalize_u(·, ${q})‖_${dual}`);
    assertClose(u.reduce((s, ui, i) => s + ui * w[i], 0), hostNorm(w, q), EXACT, `uᵀw = ‖w‖_${q}`);
  }
  // A learnable order (a tensor p) takes the general rule and agrees with the number path.
  const p = tensor([2.7], [], dev64);
  const a = await read(noGrad(() => normalizeV(tensor(w, [7], dev64), p)));
  const b = await read(noGrad(() => normalizeV(tensor(w, [7], dev64), 2.7)));
  assertClose(a, b, EXACT, "tensor order = number order");
  // Zeros take sign +1 (the official NaN rule).
  const z = await read(noGrad(() => normalizeU(tensor([0, -2, 0], [3], dev64), 1)));
  assertEquals(Array.from(z), [1, -1, 1]);
});

Deno.test("p = q = 2 is the spectral norm, for matrices and for a conv layer with learnable orders at θ = 0", async () => {
  const rng = new Rng(9);
  const w = rng.fill(20, (r) => r.normal());
  const s = await inducedMatrixNorm(tensor(w, [4, 5], dev64), 2, 2, { iterations: 500 });
  assertClose(s, largestSingularValue(w, 4, 5), EXACT, "‖W‖_{2→2}");

  const c =
    ((await loadFixture("spectral_conv.json")).convs as { weight: unknown; sigma_exact_svd: number }[])[1];
  const orders = new OrderChain({ layers: 1, learn: true, device: dev64 });
  const make = (learn: boolean) => {
    const l = new SpectralNormConv2d({
      inChannels: 8,
      outChannels: 8,
      kernelSize: 1,
      rng: new Rng(2),
      device: dev64,
      domain: learn ? orders.domain(0) : 2,
      codomain: learn ? orders.codomain(0) : 2,
      restarts: 0,
    });
    l.weight.set(fixtureTensor(c.weight, dev64));
    l.initialize([6, 6]);
    return l;
  };
  const learned = make(true);
  const plain = make(false);
  assertTrue(!learned.isSpectral && plain.isSpectral, "a learnable order takes the general path");
  await updateLipschitzAll([learned, plain], { nIterations: 300 });
  const sl = await read(noGrad(() => learned.sigma()));
  const sp = await read(noGrad(() => plain.sigma()));
  assertClose(sl, [c.sigma_exact_svd], NEAR_2, "general rule at p = 2");
  assertClose(sp, [c.sigma_exact_svd], EXACT, "ℓ2 rule");
});

Deno.test("closed forms: (1,1) max column sum, (∞,∞) max row sum, (1,2), (2,∞), (1,∞)", async () => {
  const rng = new Rng(17);
  for (const [m, n] of [[3, 3], [4, 2], [2, 5]]) {
    const w = rng.fill(m * n, (r) => r.normal());
    for (const [p, q] of [[1, 1], [Infinity, Infinity], [1, 2], [2, Infinity], [1, Infinity]]) {
      const exact = closedFormMatrixNorm(w, m, n, p, q)!;
      const pm = await inducedMatrixNorm(tensor(w, [m, n], dev64), p, q, { iterations: 50, restarts: 20 });
      // The power method is a local search: never above the norm, and equal to it for these small W.
      assertClose(pm, exact, EXACT, `${m}x${n} power method (${p}, ${q}) vs closed form`);
      const brute = bruteForceNorm(w, m, n, p, q, new Rng(1));
      assertTrue(brute <= exact * (1 + 1e-12), `(${p}, ${q}) sampling never beats the closed form`);
    }
  }
  assertEquals(closedFormMatrixNorm([1, 2, 3, 4], 2, 2, 3, 1.5), null);
  // Hand-computed: W = [[1, -2], [3, 4]].
  assertEquals(closedFormMatrixNorm([1, -2, 3, 4], 2, 2, 1, 1), 6);
  assertEquals(closedFormMatrixNorm([1, -2, 3, 4], 2, 2, Infinity, Infinity), 7);
});

Deno.test("p→q power method reaches the brute-force maximum of ‖Wx‖_q/‖x‖_p", async () => {
  const rng = new Rng(23);
  const pairs = [[1.5, 3], [3, 1.5], [2, 4], [1.2, 2], [4, 1.3], [2.5, 2.5], [2, 1.5]];
  for (const [m, n] of [[3, 3], [4, 3]]) {
    const w = rng.fill(m * n, (r) => r.normal());
    for (const [p, q] of pairs) {
      const pm = await inducedMatrixNorm(tensor(w, [m, n], dev64), p, q, { iterations: 300, restarts: 10 });
      const brute = bruteForceNorm(w, m, n, p, q, new Rng(5));
      assertTrue(pm >= brute * (1 - BELOW_REL), `${m}x${n} (${p}→${q}): power ${pm} < sampled ${brute}`);
      assertTrue(pm <= brute * (1 + BEAT_REL), `${m}x${n} (${p}→${q}): power ${pm} ≫ sampled ${brute}`);
    }
  }
});

Deno.test("orders: vnorms parsing and cyclic sharing of learnable orders", () => {
  assertEquals(parseVnorms("122f"), [1, 2, 2, Infinity]);
  assertThrows(() => parseVnorms("2x2"), /character 1 \("x"\)/);
  assertThrows(() => parseVnorms("2"), /at least 2 characters/);
  const fixed = new OrderChain({ vnorms: "122f" });
  assertEquals([0, 1, 2].map((i) => [fixed.domain(i), fixed.codomain(i)]), [[1, 2], [2, 2], [2, Infinity]]);
  assertEquals(fixed.parameters().length, 0);
  const chain = new OrderChain({ layers: 3, learn: true, device: dev64 });
  assertEquals(chain.parameters().map((p) => p.name), ["0", "1", "2"]);
  for (let i = 0; i < 3; i++) assertTrue(chain.codomain(i) === chain.domain((i + 1) % 3), `shared ${i}`);
  assertThrows(() => new OrderChain({ vnorms: "222", layers: 3 }), /expected 4/);
});

Deno.test("a chain with learnable orders is a contraction in ‖·‖_{p0} after the update", async () => {
  const chain = new OrderChain({ layers: 3, learn: true, device: dev64 });
  const thetas = [0.6, -0.5, 1.2];
  thetas.forEach((t, i) => chain.orders[i].theta.set(full([], t, dev64)));
  const ps = thetas.map(asymSquashHost);
  const dims = [3, 5, 4, 3];
  const rng = new Rng(31);
  const layers = [0, 1, 2].map((i) => {
    const l = new SpectralNormLinear({
      inFeatures: dims[i],
      outFeatures: dims[i + 1],
      rng,
      device: dev64,
      domain: chain.domain(i),
      codomain: chain.codomain(i),
      coeff: 0.9,
    });
    l.weight.set(
      tensor(rng.fill(dims[i] * dims[i + 1], (r) => 2 * r.normal()), [dims[i + 1], dims[i]], dev64),
    );
    return l;
  });
  // Fresh starts for the new weights (the p→q power method is a local search), then the update.
  layers.forEach((l) => l.reinitialize());
  await updateLipschitzAll(layers, { nIterations: 200 });
  // Each effective weight is bounded p_i → p_{i+1}, so the product maps p0 → p0 with constant ≤ 0.9³.
  const eff = await Promise.all(layers.map(async (l) => await read(tidy(() => l.effectiveWeight()))));
  for (let i = 0; i < 3; i++) {
    const b = bruteForceNorm(eff[i], dims[i + 1], dims[i], ps[i], ps[(i + 1) % 3], new Rng(i));
    assertTrue(b <= 0.9 * (1 + 1e-3), `layer ${i} ‖W‖_{${ps[i]}→${ps[(i + 1) % 3]}} = ${b}`);
  }
  const prod = matmulHost(eff[2], matmulHost(eff[1], eff[0], 4, 5, 3), 3, 4, 3);
  const whole = bruteForceNorm(prod, 3, 3, ps[0], ps[0], new Rng(7));
  assertTrue(whole <= 0.9 ** 3 * (1 + 3e-3), `‖W3 W2 W1‖_{p0→p0} = ${whole} > 0.729`);
});

Deno.test("order loss: gradients reach θ only, match finite differences; NaN gradients become 0", async () => {
  const chain = new OrderChain({ layers: 2, learn: true, device: dev64 });
  chain.orders[0].theta.set(full([], 0.4, dev64));
  chain.orders[1].theta.set(full([], -0.3, dev64));
  const rng = new Rng(8);
  const layers = [0, 1].map((i) =>
    new SpectralNormLinear({
      inFeatures: 4,
      outFeatures: 4,
      rng,
      device: dev64,
      domain: chain.domain(i),
      codomain: chain.codomain(i),
      initIterations: 30,
      restarts: 0,
    })
  );
  const params = chain.parameters();
  const gs = orderGradients(layers, params);
  const analytic = await Promise.all(gs.map(read));
  const lossAt = async () => (await read(noGrad(() => orderLoss(layers))))[0];
  const eps = 1e-6;
  for (let k = 0; k < 2; k++) {
    const t0 = (await params[k].value.read())[0];
    params[k].set(full([], t0 + eps, dev64));
    const lp = await lossAt();
    params[k].set(full([], t0 - eps, dev64));
    const lm = await lossAt();
    params[k].set(full([], t0, dev64));
    assertClose(analytic[k][0], (lp - lm) / (2 * eps), FD, `∂loss/∂θ${k}`);
  }
  assertTrue(analytic.every((g) => g[0] !== 0), "both orders receive a gradient");
  assertThrows(() => tidy(() => orderGradients(layers, [layers[0].weight])), /do not depend on it/);
  // A layer whose σ has a NaN gradient in its order (0^p differentiated in p) contributes 0.
  const o = new LearnableOrder({ device: dev64 });
  const nanLayer = { oneIterationSigma: () => sum(pow(full([2], 0, dev64), o.value())) };
  const [g] = orderGradients([nanLayer], [o.theta]);
  assertEquals(Array.from(await g.read()), [0]);
  g.dispose();
});
