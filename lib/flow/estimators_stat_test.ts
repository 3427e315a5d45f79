/**
 * Statistical checks of the stochastic estimators against exact values (fixed seeds, so the
 * outcomes are reproducible): the Russian-roulette estimate is unbiased for both distributions of N
 * and in the evaluation setting; the truncated series is biased; the naive-backprop and Neumann
 * gradients are unbiased for the exact log-det's gradient, while a truncated gradient is not.
 *
 * Criteria: |mean − exact| ≤ 3 standard errors for values; ≤ 4 standard errors for every gradient
 * coordinate (about 80 coordinates per check); "biased" means more than 5 standard errors away.
 */
import { gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { sum } from "../engine/ops/reduce.ts";
import { randn, Rng } from "../engine/random.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import { assertTrue } from "../testing/asserts.ts";
import { type LogdetGradient, type ResidualBranch, residualLogdet } from "./estimators.ts";
import { exactLogdet } from "./exact_logdet.ts";
import { PAPER_DIST, REPO_DIST, sampleRoulettePlan, type SeriesPlan, truncatedPlan } from "./roulette.ts";
import {
  type FixtureArray,
  FixtureBranch,
  type FixtureLayer,
  flat,
  readFixture,
  TinyFcBranch,
} from "./testing_util.ts";

/** Unbiased values: the mean lies within this many standard errors of the exact value. */
const VALUE_SE = 3;
/** Unbiased gradients: every coordinate's mean lies within this many standard errors. */
const GRAD_SE = 4;
/** Biased: the mean lies further than this many standard errors away. */
const BIAS_SE = 5;
/** Copies of each example per call in the value checks (they average out the probe noise). */
const COPIES = 10;
/** Calls in the roulette value checks. */
const DRAWS = 800;

const dev = await createDevice("cpu64");
const fixture = await readFixture("iresblock.json");
// deno-lint-ignore no-explicit-any
const variants = fixture.variants as Record<string, any>[];
const firstBlock = variants.find((v) => v.variant === "first_block")!;

/** Running mean and standard error per coordinate. */
class Moments {
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  n = 0;
  constructor(size: number) {
    this.sum = new Float64Array(size);
    this.sumSq = new Float64Array(size);
  }
  add(x: ArrayLike<number>): void {
    for (let i = 0; i < x.length; i++) {
      this.sum[i] += x[i];
      this.sumSq[i] += x[i] * x[i];
    }
    this.n++;
  }
  mean(i: number): number {
    return this.sum[i] / this.n;
  }
  se(i: number): number {
    const m = this.mean(i);
    const v = (this.sumSq[i] / this.n - m * m) * this.n / (this.n - 1);
    return Math.sqrt(Math.max(v, 0) / this.n);
  }
  /** |mean − exact| / SE per coordinate (0 where both the SE and the difference vanish). */
  z(exact: ArrayLike<number>): number[] {
    return Array.from(exact, (e, i) => {
      const d = Math.abs(this.mean(i) - e);
      const se = this.se(i);
      return se === 0 ? (d < 1e-12 ? 0 : Infinity) : d / se;
    });
  }
}

/** `copies` copies of each example of a fixture input, as one batch (copy-major). */
function replicate(a: FixtureArray, copies: number): Tensor {
  const one = flat(a);
  const data = Float64Array.from({ length: copies * one.length }, (_, i) => one[i % one.length]);
  return tensor(data, [copies * a.shape[0], ...a.shape.slice(1)], dev);
}

/**
 * Log-det estimates over `draws` calls (graph-free) on a batch of `copies` copies of `b` examples.
 * With `pool`, each copy counts as one draw (valid when draws do not share N: the truncated
 * series); otherwise one call gives one draw per example, the average over its copies (the copies
 * share that call's N, and averaging them only reduces the probe noise).
 */
async function valueDraws(
  branch: ResidualBranch,
  x: Tensor,
  b: number,
  plan: (rng: Rng) => SeriesPlan,
  draws: number,
  seed: number,
  pool = false,
): Promise<Moments> {
  const rng = new Rng(seed);
  const copies = x.shape[0] / b;
  const m = new Moments(b);
  for (let i = 0; i < draws; i++) {
    const est = tidy(() => {
      const p = plan(rng);
      return residualLogdet(branch, x, { plan: p, probe: randn(x.shape, rng, dev), training: false })
        .estimate;
    });
    const e = await est.read();
    est.dispose();
    if (pool) {
      for (let c = 0; c < copies; c++) m.add(e.subarray(c * b, (c + 1) * b));
    } else {
      const avg = new Float64Array(b);
      for (let j = 0; j < e.length; j++) avg[j % b] += e[j] / copies;
      m.add(avg);
    }
  }
  return m;
}

function describe(z: number[]): string {
  return z.map((v) => v.toFixed(2)).join(", ");
}

Deno.test("log-det values in expectation (first_block of iresblock.json, 3 examples)", async (t) => {
  const branch = new FixtureBranch(firstBlock.layers as FixtureLayer[], dev);
  const x = replicate(firstBlock.x, COPIES);
  const exact = flat(firstBlock.logdet_exact);

  for (
    const [name, dist, seed] of [["geometric(0.5)", PAPER_DIST, 101], ["poisson(2)", REPO_DIST, 102]] as const
  ) {
    await t.step(`roulette with ${name} and 2 exact terms is unbiased (${DRAWS} draws)`, async () => {
      const m = await valueDraws(branch, x, 3, (r) => sampleRoulettePlan(dist, 2, r), DRAWS, seed);
      const z = m.z(exact);
      assertTrue(z.every((v) => v <= VALUE_SE), `z = ${describe(z)}`);
    });
  }

  await t.step(
    `without the 1/P(N ≥ k) weights the same roulette is detectably biased (${DRAWS} draws)`,
    async () => {
      const unweighted = (r: Rng): SeriesPlan => {
        const p = sampleRoulettePlan(PAPER_DIST, 2, r);
        return { ...p, coeffs: p.coeffs.map(() => 1) };
      };
      const m = await valueDraws(branch, x, 3, unweighted, DRAWS, 101);
      const z = m.z(exact);
      // At least one example is clearly off: the check above would catch the missing weights.
      assertTrue(Math.max(...z) > BIAS_SE, `z = ${describe(z)}`);
    },
  );

  await t.step(
    "the evaluation setting (20 exact terms + Poisson roulette) is unbiased (100 draws)",
    async () => {
      const m = await valueDraws(branch, x, 3, (r) => sampleRoulettePlan(REPO_DIST, 20, r), 100, 202);
      const z = m.z(exact);
      assertTrue(z.every((v) => v <= VALUE_SE), `z = ${describe(z)}`);
    },
  );

  x.dispose();
});

Deno.test("the truncated series is biased (preact block of iresblock.json, 3 examples x 100 copies)", async (t) => {
  // Without roulette every example's probe is independent, so copies of x give independent draws.
  const v = variants.find((q) => q.variant === "preact")!;
  const branch = new FixtureBranch(v.layers as FixtureLayer[], dev);
  const x = replicate(v.x, 100);
  const exact = flat(v.logdet_exact);
  const partial = flat(v.trace_series_partial_sums);
  for (const n of [1, 2]) {
    await t.step(
      `n = ${n}: mean > ${BIAS_SE} SE from the exact log-det, within ${VALUE_SE} SE of S_${n}`,
      async () => {
        const pooled = await valueDraws(branch, x, 3, () => truncatedPlan(n), 200, 303 + n, true);
        const zExact = pooled.z(exact);
        const zSeries = pooled.z([0, 1, 2].map((b) => partial[b * 12 + n - 1]));
        assertTrue(zExact.every((z) => z > BIAS_SE), `z vs exact = ${describe(zExact)}`);
        assertTrue(zSeries.every((z) => z <= VALUE_SE), `z vs S_${n} = ${describe(zSeries)}`);
      },
    );
  }
  x.dispose();
});

/** Flattened gradients of Σ_b log-det w.r.t. every parameter and x. */
async function gradVector(branch: ResidualBranch, x: Tensor, make: () => Tensor): Promise<Float64Array> {
  const inputs = [...branch.parameters().map((p) => p.value), x];
  const gs = tidy(() => gradMaybe(sum(make()), inputs, { allowUnused: true }));
  const parts: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    const g = gs[i];
    if (g === null) parts.push(...new Array(inputs[i].size).fill(0));
    else {
      parts.push(...(await g.read()));
      g.dispose();
    }
  }
  return Float64Array.from(parts);
}

Deno.test("log-det gradients in expectation (tiny FC block, D = 4, 8 examples)", async (t) => {
  const branch = new TinyFcBranch(4, 8, dev, 17, 0.85);
  const x = requireGrad(randn([8, 4], new Rng(4), dev));
  const exactLd = await exactLogdet(branch.apply(x), x, { differentiable: true });
  const exactGrad = await gradVector(branch, x, () => exactLd);

  const run = async (gradient: LogdetGradient, plan: (r: Rng) => SeriesPlan, draws: number, seed: number) => {
    const rng = new Rng(seed);
    const m = new Moments(exactGrad.length);
    for (let i = 0; i < draws; i++) {
      m.add(
        await gradVector(branch, x, () =>
          residualLogdet(branch, x, {
            plan: plan(rng),
            probe: randn(x.shape, rng, dev),
            training: true,
            gradient,
          }).logdet),
      );
    }
    return m.z(exactGrad);
  };

  const cases: [LogdetGradient, string, (r: Rng) => SeriesPlan][] = [
    ["naive", "geometric(0.5)", (r) => sampleRoulettePlan(PAPER_DIST, 2, r)],
    ["neumann", "geometric(0.5)", (r) => sampleRoulettePlan(PAPER_DIST, 2, r)],
    ["neumann", "poisson(2)", (r) => sampleRoulettePlan(REPO_DIST, 2, r)],
  ];
  for (const [gradient, name, plan] of cases) {
    await t.step(`${gradient} gradient with ${name} roulette is unbiased (1500 draws)`, async () => {
      const z = await run(gradient, plan, 1500, 99);
      const worst = Math.max(...z);
      assertTrue(
        worst <= GRAD_SE,
        `largest |mean - exact| / SE = ${worst.toFixed(2)} over ${z.length} coordinates`,
      );
    });
  }

  for (const gradient of ["naive", "neumann"] as const) {
    await t.step(
      `a truncated (n = 3) ${gradient} gradient is detectably biased with as many draws`,
      async () => {
        const z = await run(gradient, () => truncatedPlan(3), 1500, 99);
        assertTrue(Math.max(...z) > BIAS_SE, `largest z ${Math.max(...z).toFixed(2)}`);
      },
    );
  }
  exactLd.dispose();
  x.dispose();
});
