/**
 * The seeded generator: reproducible, the same numbers on every backend, and the right moments.
 */
import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "./devices.ts";
import { rand, randGeometric, randn, randPoisson, Rng } from "./random.ts";
import type { Device } from "./tensor.ts";

/** Sample means must lie within this many standard errors of the truth (fixed seeds, so not flaky). */
const Z: number = 4;
const N = 200_000;

function moments(xs: Float64Array): { mean: number; variance: number } {
  let s = 0;
  for (const x of xs) s += x;
  const mean = s / xs.length;
  let v = 0;
  for (const x of xs) v += (x - mean) ** 2;
  return { mean, variance: v / (xs.length - 1) };
}

function assertMoments(name: string, xs: Float64Array, mean: number, variance: number, fourth: number) {
  const m = moments(xs);
  const seMean = Math.sqrt(variance / xs.length);
  // Standard error of the sample variance: sqrt((mu4 - sigma^4) / n).
  const seVar = Math.sqrt((fourth - variance ** 2) / xs.length);
  assertTrue(Math.abs(m.mean - mean) < Z * seMean, `${name}: mean ${m.mean} vs ${mean} (se ${seMean})`);
  assertTrue(
    Math.abs(m.variance - variance) < Z * seVar,
    `${name}: variance ${m.variance} vs ${variance} (se ${seVar})`,
  );
}

Deno.test("Rng", async (t) => {
  await t.step("same seed, same stream; different seeds and forks differ; state round-trips", () => {
    const a = new Rng(42).fill(100, (r) => r.uniform());
    const b = new Rng(42).fill(100, (r) => r.uniform());
    const c = new Rng(43).fill(100, (r) => r.uniform());
    assertEquals(Array.from(a), Array.from(b));
    assertTrue(a.some((v, i) => v !== c[i]));
    const r = new Rng(7);
    r.fill(13, (q) => q.normal());
    const copy = Rng.fromState(r.state);
    assertEquals(copy.fill(5, (q) => q.normal()), r.fill(5, (q) => q.normal()));
    const f1 = new Rng(7).fork(1).uniform();
    const f2 = new Rng(7).fork(2).uniform();
    assertTrue(f1 !== f2);
  });
  await t.step("uniform in [0, 1): mean 1/2, variance 1/12", () => {
    const xs = new Rng(1).fill(N, (r) => r.uniform());
    assertTrue(xs.every((x) => x >= 0 && x < 1));
    assertMoments("uniform", xs, 0.5, 1 / 12, 1 / 80);
  });
  await t.step("normal: mean 0, variance 1", () => {
    assertMoments("normal", new Rng(2).fill(N, (r) => r.normal()), 0, 1, 3);
  });
  await t.step("Poisson(2): mean 2, variance 2", () => {
    const lam = 2;
    const xs = new Rng(3).fill(N, (r) => r.poisson(lam));
    assertTrue(xs.every((x) => Number.isInteger(x) && x >= 0));
    assertMoments("poisson", xs, lam, lam, lam * (1 + 3 * lam));
    // P(N = 0) = e^-2
    const p0 = xs.filter((x) => x === 0).length / N;
    assertTrue(Math.abs(p0 - Math.exp(-2)) < Z * Math.sqrt(Math.exp(-2) * (1 - Math.exp(-2)) / N));
  });
  await t.step("Geometric(0.5) on {1, 2, ...}: mean 1/p, variance (1-p)/p²", () => {
    const p = 0.5;
    const xs = new Rng(4).fill(N, (r) => r.geometric(p));
    assertTrue(xs.every((x) => Number.isInteger(x) && x >= 1));
    const q = 1 - p;
    // Fourth central moment of the geometric distribution.
    const mu4 = (q * (p * p - 9 * p + 9)) / p ** 4;
    assertMoments("geometric", xs, 1 / p, q / (p * p), mu4);
  });
  await t.step("bad parameters are refused with the value", () => {
    assertThrows(() => new Rng(1).poisson(-1), /Poisson\(-1\)/);
    assertThrows(() => new Rng(1).geometric(0), /Geometric\(0\)/);
  });
});

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU part skipped: ${(e as Error).message.split("\n")[0]}`);
}

Deno.test("random tensors: the same seed gives the same numbers on every backend", async () => {
  const devices = [await createDevice("cpu"), await createDevice("cpu64")];
  if (gpu) devices.push(gpu);
  const draws = async (d: Device) => {
    const ts = [
      randn([3, 5], new Rng(9), d),
      rand([7], new Rng(9), d),
      randPoisson([6], 2, new Rng(9), d),
      randGeometric([6], 0.5, new Rng(9), d),
    ];
    const out = await Promise.all(ts.map(async (t) => Array.from(Float32Array.from(await t.read()))));
    ts.forEach((t) => t.dispose());
    return out;
  };
  const ref = await draws(devices[0]);
  for (const d of devices.slice(1)) assertEquals(await draws(d), ref, `${d.name} vs cpu`);
});
