/**
 * Host linear algebra of the exact log-det: LU log|det| and sign against the Leibniz expansion,
 * the inverse against the identity, and traces of powers against repeated products.
 */
import { Rng } from "../engine/random.ts";
import { assertClose, assertEquals, assertThrows, type Tolerance } from "../testing/asserts.ts";
import { invertMatrix, logAbsDet, logdetOfIdentityPlus, traceOfPowers } from "./exact_logdet.ts";

/** Float64 host linear algebra on well-conditioned 1..6 dimensional matrices. */
const HOST: Tolerance = { atol: 1e-12, rtol: 1e-11 };

/** det by the Leibniz formula (sum over permutations): the brute-force reference. */
function leibniz(a: ArrayLike<number>, n: number): number {
  let total = 0;
  const perm = Array.from({ length: n }, (_, i) => i);
  const rec = (k: number, sign: number) => {
    if (k === n) {
      let p = sign;
      for (let i = 0; i < n; i++) p *= a[i * n + perm[i]];
      total += p;
      return;
    }
    for (let i = k; i < n; i++) {
      [perm[k], perm[i]] = [perm[i], perm[k]];
      rec(k + 1, i === k ? sign : -sign);
      [perm[k], perm[i]] = [perm[i], perm[k]];
    }
  };
  rec(0, 1);
  return total;
}

Deno.test("LU log|det| and sign equal the Leibniz determinant", () => {
  const rng = new Rng(3);
  for (let n = 1; n <= 6; n++) {
    for (let trial = 0; trial < 5; trial++) {
      const a = rng.fill(n * n, (r) => r.normal());
      const d = leibniz(a, n);
      const r = logAbsDet(a, n);
      assertEquals(r.sign, Math.sign(d), `n=${n}`);
      assertClose(r.logAbsDet, Math.log(Math.abs(d)), HOST, `n=${n}`);
    }
  }
  assertEquals(logAbsDet([1, 2, 2, 4], 2), { logAbsDet: -Infinity, sign: 0 });
  // I + J per example.
  assertClose(logdetOfIdentityPlus([0.5, 0, 0, -0.5, 0.1, 0.2, 0.3, 0.4], 2, 2), [
    Math.log(0.75),
    Math.log(1.1 * 1.4 - 0.06),
  ], HOST);
});

Deno.test("inverse and traces of powers", () => {
  const rng = new Rng(4);
  const n = 5;
  const a = rng.fill(n * n, (r) => r.normal());
  const inv = invertMatrix(a, n);
  const prod = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++) prod[i * n + j] += a[i * n + k] * inv[k * n + j];
    }
  }
  assertClose(
    prod,
    Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)),
    HOST,
    "A·A⁻¹",
  );
  assertThrows(() => invertMatrix([1, 2, 2, 4], 2), /singular/);
  // tr(A^k) by explicit repeated products.
  let p = Float64Array.from(a);
  const want: number[] = [];
  for (let k = 1; k <= 4; k++) {
    want.push(Array.from({ length: n }, (_, i) => p[i * n + i]).reduce((s, v) => s + v, 0));
    const next = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        for (let m = 0; m < n; m++) next[i * n + j] += p[i * n + m] * a[m * n + j];
      }
    }
    p = next;
  }
  assertClose(traceOfPowers(a, n, 4), want, HOST, "tr(A^k)");
});
