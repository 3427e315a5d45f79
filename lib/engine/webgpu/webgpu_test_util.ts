/**
 * Test helpers for the WebGPU backend tests: a seeded generator, a per-row relative comparison for
 * products, and running one op on two backends.
 * @module
 */
import type { Backend, Storage } from "../backend.ts";
import { assertClose, type Tolerance } from "../../testing/asserts.ts";

/** A seeded uniform generator on [lo, hi) (mulberry32). */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = -1, hi = 1) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return lo + (hi - lo) * u;
  };
}

/** `n` values from `r` on [lo, hi). */
export function randomArray(
  r: (lo?: number, hi?: number) => number,
  n: number,
  lo = -1,
  hi = 1,
): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r(lo, hi);
  return a;
}

/**
 * Asserts |actual - expected| <= rtol · ||expected row||₂ + atol elementwise, rows being consecutive
 * runs of `rowLength` values (the error of a dot product scales with the size of its row, not with the
 * element, which may be near zero by cancellation).
 */
export function assertCloseRows(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rowLength: number,
  tol: Tolerance,
  what: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  for (let r = 0; r < expected.length; r += rowLength) {
    let norm = 0;
    for (let i = r; i < r + rowLength; i++) norm += expected[i] * expected[i];
    const lim = tol.rtol * Math.sqrt(norm) + tol.atol;
    for (let i = r; i < r + rowLength; i++) {
      const diff = Math.abs(actual[i] - expected[i]);
      if (!(diff <= lim)) {
        throw new Error(
          `${what}: index ${i} is ${actual[i]}, expected ${
            expected[i]
          } (|diff| ${diff} > ${tol.rtol}·row norm ${Math.sqrt(norm)} + ${tol.atol})`,
        );
      }
    }
  }
}

/**
 * Uploads `inputs` to both backends, applies `op` on each, reads both results and frees everything.
 * Returns [gpu result, cpu result].
 */
export async function runBoth(
  gpu: Backend,
  cpu: Backend,
  inputs: readonly ArrayLike<number>[],
  op: (be: Backend, xs: Storage[]) => Storage,
): Promise<[Float32Array, Float32Array]> {
  const run = async (be: Backend) => {
    const xs = inputs.map((a) => be.fromArray(a));
    const y = op(be, xs);
    const out = await be.read(y);
    for (const s of [...xs, y]) be.free(s);
    return Float32Array.from(out);
  };
  return [await run(gpu), await run(cpu)];
}

/** assertClose of `runBoth` results. */
export async function assertSameAsCpu(
  gpu: Backend,
  cpu: Backend,
  inputs: readonly ArrayLike<number>[],
  op: (be: Backend, xs: Storage[]) => Storage,
  tol: Tolerance,
  what: string,
): Promise<void> {
  const [g, c] = await runBoth(gpu, cpu, inputs, op);
  assertClose(g, c, tol, what);
}
