/**
 * Test assertions. The one place that names the assertion library (today `node:assert/strict`,
 * tomorrow `@std/assert`): swap it here and every test follows.
 * @module
 */
import assert from "node:assert/strict";

/** Asserts `cond` is truthy. */
export function assertTrue(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Asserts `fn` throws an error whose message matches `pattern`. */
export function assertThrows(fn: () => unknown, pattern?: RegExp, msg?: string): void {
  assert.throws(fn, pattern ?? Error, msg);
}

/** Asserts the promise rejects with an error whose message matches `pattern`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  pattern?: RegExp,
  msg?: string,
): Promise<void> {
  await assert.rejects(fn, pattern ?? Error, msg);
}

/** Named tolerance: |a - b| <= atol + rtol * |b| elementwise. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/** Asserts two arrays (or numbers) agree within `tol`; the message names the first bad index and values. */
export function assertClose(
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  tol: Tolerance,
  what = "value",
): void {
  const a = typeof actual === "number" ? [actual] : actual;
  const e = typeof expected === "number" ? [expected] : expected;
  assert.equal(a.length, e.length, `${what}: length ${a.length} != expected ${e.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - e[i]);
    const lim = tol.atol + tol.rtol * Math.abs(e[i]);
    if (!(diff <= lim)) {
      const excess = Number.isNaN(diff) ? Infinity : diff / lim;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (worst >= 0) {
    throw new assert.AssertionError({
      message: `${what}: index ${worst} is ${a[worst]}, expected ${e[worst]} (|diff| ${
        Math.abs(a[worst] - e[worst])
      } > atol ${tol.atol} + rtol ${tol.rtol}·|expected|)`,
    });
  }
}
