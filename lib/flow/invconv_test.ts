/**
 * Invertible 1×1 convolution: the in-graph log|det W| and W⁻¹ against host LU (values, gradient W⁻ᵀ,
 * a Hessian-vector product), the permutation initialisation, and the flow contract in float64 and
 * float32.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { grad } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { checkHessianVector } from "../engine/gradcheck.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import { inverse, slogdet, transposeHost } from "./dense_test_util.ts";
import { inverseMatrix, InvertibleConv2d, logAbsDet, randomPermutation } from "./invconv.ts";
import { checkFlowLayer, normals, testContext } from "./layer_test_util.ts";

/** Float64 vs host LU (conditioning of WᵀW is squared: random 6×6 matrices stay well within this). */
const F64: Tolerance = { atol: 1e-11, rtol: 1e-10 };
/** Float32 vs host LU. */
const F32: Tolerance = { atol: 1e-4, rtol: 1e-4 };
/** Log-det vs brute-force Jacobian (float64). */
const BRUTE: Tolerance = { atol: 1e-10, rtol: 1e-10 };
/** Hessian-vector product vs differences of gradients. */
const HVP_REL = 1e-6;

const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");
const ctx = testContext(false);

/** A random matrix near a random orthogonal-ish one (identity rows permuted plus noise). */
function randomMatrix(n: number, seed: number, noise = 0.4): Float64Array {
  const rng = new Rng(seed);
  const perm = randomPermutation(n, rng);
  const w = rng.fill(n * n, (r) => noise * r.normal());
  perm.forEach((c, r) => (w[r * n + c] += 1));
  return w;
}

Deno.test("logAbsDet and inverseMatrix equal host LU results; the gradient is W⁻ᵀ", async () => {
  for (const [dev, tol] of [[dev64, F64], [dev32, F32]] as const) {
    for (const [n, seed] of [[1, 1], [3, 2], [6, 3], [12, 4]]) {
      const data = randomMatrix(n, seed);
      const w = requireGrad(tensor(data, [n, n], dev));
      const [ld, g] = tidy(() => {
        const ld = logAbsDet(w);
        return [ld, grad(ld, [w])[0]];
      });
      assertClose(await ld.item(), slogdet(data, n).logAbsDet, tol, `log|det| ${n}x${n}`);
      assertClose(await g.read(), transposeHost(inverse(data, n), n, n), tol, `∂/∂W = W⁻ᵀ ${n}x${n}`);
      const inv = noGrad(() => inverseMatrix(w));
      assertClose(await inv.read(), inverse(data, n), tol, `W⁻¹ ${n}x${n}`);
      [ld, g, inv, w].forEach((t) => t.dispose());
    }
  }
  // A negative determinant: |det| is what counts.
  const flip = [0, 1, 0, 1, 0, 0, 0, 0, 2];
  assertClose(
    await noGrad(() => logAbsDet(tensor(flip, [3, 3], dev64))).item(),
    Math.log(2),
    F64,
    "det = −2",
  );
  assertThrows(() => logAbsDet(tensor([1, 2], [1, 2], dev64)), /expected a square matrix/);
});

Deno.test("log|det W| is twice differentiable (Hessian-vector product)", async () => {
  const n = 4;
  const r = await checkHessianVector(
    (w) => logAbsDet(w),
    dev64,
    { data: randomMatrix(n, 7), shape: [n, n] },
    new Rng(8).fill(n * n, (q) => q.normal()),
  );
  assertTrue(r.maxRelError < HVP_REL, `HVP error ${r.maxRelError} at ${r.where}`);
});

Deno.test("InvertibleConv2d starts as a permutation; flow contract in float64 and float32", async () => {
  const layer = new InvertibleConv2d({ channels: 5, rng: new Rng(3), device: dev64 });
  const w = Array.from(await layer.weight.value.read());
  for (let i = 0; i < 5; i++) {
    assertEquals(w.slice(i * 5, i * 5 + 5).filter((v) => v === 1).length, 1, `row ${i}`);
    assertEquals([0, 1, 2, 3, 4].filter((r) => w[r * 5 + i] === 1).length, 1, `column ${i}`);
  }
  assertEquals(layer.parameters().map((p) => p.name), ["weight"]);
  for (const dev of [dev64, dev32]) {
    const l = new InvertibleConv2d({ channels: 3, rng: new Rng(1), device: dev });
    l.weight.set(tensor(randomMatrix(3, 11), [3, 3], dev));
    const x = tensor(normals(2 * 3 * 2 * 2, new Rng(2)), [2, 3, 2, 2], dev);
    const r = await checkFlowLayer(l, x, ctx);
    assertTrue(r.roundTrip <= (dev === dev64 ? 1e-12 : 1e-4), `round trip ${r.roundTrip}`);
    assertEquals(r.nonFinite, []);
    assertEquals(r.zeroGrad, []);
    if (dev === dev64) {
      const ld = 4 * slogdet(randomMatrix(3, 11), 3).logAbsDet;
      assertClose(r.logdet, [ld, ld], F64, "H·W·log|det W|");
      assertClose(r.bruteForward, r.logdet, BRUTE, "brute force");
      assertClose(r.bruteInverse, r.logdet.map((v) => -v), BRUTE, "inverse log-det");
    }
  }
  // The permutation start has log-det 0 and is inverted exactly.
  const p = new InvertibleConv2d({ channels: 4, rng: new Rng(5), device: dev32 });
  const r = await checkFlowLayer(p, tensor(normals(4 * 3, new Rng(6)), [1, 4, 3, 1], dev32), ctx);
  assertEquals([r.roundTrip, r.logdet[0]], [0, 0]);
});
