/**
 * Test helpers: reference operator norms written separately from the layers' code so the tests can
 * check them: {@link operatorNorm} (plain power iteration on AᵀA for a convolution at a resolution or a
 * matrix), {@link closedFormMatrixNorm} (the induced norms that have a closed form) and
 * {@link inducedMatrixNorm} (‖W‖_{p→q} by the power method with random restarts). Not part of the
 * published package.
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { conv2d, convTranspose2d } from "../engine/ops/conv.ts";
import { div, mul, pow } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/linalg.ts";
import { max, sum } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { Rng } from "../engine/random.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { normalizeU, normalizeV } from "./mixed_norm.ts";

/** Options of {@link operatorNorm}. */
export interface PowerOperatorNormOptions {
  /** Input resolution for a convolution weight (rank 4). Omit for a matrix (rank 2) or a 1×1 kernel. */
  readonly inputHW?: readonly [number, number];
  /** Convolution padding (default 0). */
  readonly padding?: number;
  /** Convolution stride (default 1). */
  readonly stride?: number;
  /** Power iterations (default 1000). */
  readonly iterations?: number;
  /** Seed of the random start (default 12345). */
  readonly seed?: number;
}

/**
 * An independent estimate of the ℓ2 operator norm of a convolution at a resolution (or of a matrix):
 * plain power iteration on AᵀA from a seeded random start, written separately from the layers' code
 * so tests can check them. Returns ‖A v‖ for the final unit v (a lower bound that converges to σ_max).
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 * import { SpectralNormConv2d } from "./spectral_norm_conv.ts";
 *
 * const device = await createDevice("cpu64");
 * const rng = new Rng(0);
 * const conv = new SpectralNormConv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, rng, device });
 * conv.apply(randn([1, 3, 8, 8], rng, device)); // first use: records 8×8, starts the power iteration
 * const s = await operatorNorm(conv.effectiveWeight(), { inputHW: [8, 8], padding: 1 });
 * ```
 */
export async function operatorNorm(weight: Tensor, opts: PowerOperatorNormOptions = {}): Promise<number> {
  const iterations = opts.iterations ?? 1000;
  const rng = new Rng(opts.seed ?? 12345);
  let apply: (v: Tensor) => Tensor;
  let adjoint: (u: Tensor) => Tensor;
  let vShape: number[];
  if (weight.rank === 2) {
    const [o, c] = weight.shape;
    vShape = [c, 1];
    apply = (v) => matmul(weight, v);
    adjoint = (u) => matmul(weight, u, true);
    if (o < 1) throw new Error("Cannot take the norm of an empty matrix");
  } else if (weight.rank === 4) {
    const [o, c, kh, kw] = weight.shape;
    if (kh === 1 && kw === 1 && !opts.inputHW) {
      const m = weight.detach();
      const w2 = reshape(m, [o, c]);
      m.dispose();
      const s = await operatorNorm(w2, { ...opts, inputHW: undefined });
      w2.dispose();
      return s;
    }
    if (!opts.inputHW) {
      throw new Error(`Cannot take the operator norm of a ${kh}x${kw} kernel without inputHW`);
    }
    const [h, w] = opts.inputHW;
    const geo = { stride: opts.stride ?? 1, pad: opts.padding ?? 0 };
    vShape = [1, c, h, w];
    apply = (v) => conv2d(v, weight, null, geo);
    adjoint = (u) => convTranspose2d(u, weight, [h, w], geo);
  } else {
    throw new Error(
      `Cannot take the operator norm of a weight of shape ${fmt(weight.shape)}: expected rank 2 or 4`,
    );
  }
  const unit = (x: Tensor) => div(x, pow(sum(mul(x, x)), 0.5));
  const result = noGrad(() =>
    tidy(() => {
      const w0 = weight.detach();
      let v = unit(tensor(rng.fill(vShape.reduce((a, b) => a * b, 1), (r) => r.normal()), vShape, w0.device));
      for (let i = 0; i < iterations; i++) {
        const nv = tidy(() => unit(adjoint(apply(v))));
        v.dispose();
        v = nv;
      }
      const av = apply(v);
      return pow(sum(mul(av, av)), 0.5);
    })
  );
  const s = await result.item();
  result.dispose();
  return s;
}

/**
 * Closed forms of a few induced matrix norms of W [m, n] (row-major), or null when there is none:
 * (1, 1) max column |·| sum, (∞, ∞) max row |·| sum, (1, 2) max column ℓ2, (1, ∞) max |entry|,
 * (2, ∞) max row ℓ2.
 */
export function closedFormMatrixNorm(
  w: ArrayLike<number>,
  m: number,
  n: number,
  p: number,
  q: number,
): number | null {
  const col = (j: number, f: (v: number) => number) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += f(w[i * n + j]);
    return s;
  };
  const row = (i: number, f: (v: number) => number) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += f(w[i * n + j]);
    return s;
  };
  const range = (k: number) => Array.from({ length: k }, (_, i) => i);
  if (p === 1 && q === 1) return Math.max(...range(n).map((j) => col(j, Math.abs)));
  if (p === Infinity && q === Infinity) return Math.max(...range(m).map((i) => row(i, Math.abs)));
  if (p === 1 && q === 2) return Math.max(...range(n).map((j) => Math.sqrt(col(j, (v) => v * v))));
  if (p === 1 && q === Infinity) return Math.max(...Array.from(w, Math.abs));
  if (p === 2 && q === Infinity) return Math.max(...range(m).map((i) => Math.sqrt(row(i, (v) => v * v))));
  return null;
}

/** Options of {@link inducedMatrixNorm}. */
export interface InducedMatrixNormOptions {
  /** Iterations per start (default 200). */
  readonly iterations?: number;
  /** Random starts; the largest σ wins (default 10 for non-(2,2), 1 for (2,2)). */
  readonly restarts?: number;
  /** Seed of the random starts (default 0). */
  readonly seed?: number;
}

/**
 * ‖W‖_{p→q} of a matrix W [m, n] by the power method with random restarts (a lower bound that is
 * usually the global maximum). Runs under noGrad; one readback at the end.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 * import { SpectralNormConv2d } from "./spectral_norm_conv.ts";
 *
 * const w = randn([8, 6], new Rng(0), await createDevice("cpu64"));
 * const s = await inducedMatrixNorm(w, 3, 1.5); // ‖W‖_{3→1.5}
 * ```
 */
export async function inducedMatrixNorm(
  weight: Tensor,
  p: number,
  q: number,
  opts: InducedMatrixNormOptions = {},
): Promise<number> {
  if (weight.rank !== 2) {
    throw new Error(`Cannot take an induced matrix norm of shape ${fmt(weight.shape)}: expected a matrix`);
  }
  const [m, n] = weight.shape;
  const iterations = opts.iterations ?? 200;
  const restarts = opts.restarts ?? (p === 2 && q === 2 ? 1 : 10);
  const rng = new Rng(opts.seed ?? 0);
  const best = noGrad(() =>
    tidy(() => {
      const sigmas: Tensor[] = [];
      for (let r = 0; r < restarts; r++) {
        let v = normalizeV(tensor(rng.fill(n, (g) => g.normal()), [n], weight.device), p);
        let u = normalizeU(tensor(rng.fill(m, (g) => g.normal()), [m], weight.device), q);
        for (let k = 0; k < iterations; k++) {
          const nu = tidy(() => normalizeU(reshape(matmul(weight, reshape(v, [n, 1])), [m]), q));
          const nv = tidy(() => normalizeV(reshape(matmul(weight, reshape(nu, [m, 1]), true), [n]), p));
          u.dispose();
          v.dispose();
          u = nu;
          v = nv;
        }
        sigmas.push(reshape(sum(mul(u, reshape(matmul(weight, reshape(v, [n, 1])), [m]))), [1]));
      }
      return max(concat(sigmas, 0));
    })
  );
  const s = await best.item();
  best.dispose();
  return s;
}
