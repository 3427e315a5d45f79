/**
 * The invertible 1×1 convolution of the "+1×1 conv" baseline (official `InvertibleConv2d`): a full C×C
 * matrix W (parameter "weight"), initialised to a random permutation of the identity's rows;
 * y = conv2d(x, W as a 1×1 kernel); log|det| = H·W·log|det W| per example; inverse with W⁻¹.
 *
 * How the determinant and the inverse are computed, and why. A flow layer's forward and inverse are
 * synchronous, and a WebGPU tensor can only be read back asynchronously, so a host LU of a readback
 * cannot feed the forward pass. Both are therefore computed in the graph, from A = WᵀW, which is
 * symmetric positive definite for any invertible W, so elimination needs no pivoting (a permutation W
 * has zeros on its diagonal, which plain elimination on W would divide by):
 * - log|det W| = ½ log det A = ½ Σ_k log d_k over the pivots d_k of symmetric Gaussian elimination
 *   (Schur complements A ← A₂₂ − a₂₁a₁₂/a₁₁), C steps of small differentiable ops; autograd gives the
 *   exact gradient ∂/∂W = W(WᵀW)⁻¹ = W⁻ᵀ (and higher derivatives), on every backend, meta included.
 * - W⁻¹ = A⁻¹Wᵀ by Gauss–Jordan elimination on [A | Wᵀ], C rank-one updates.
 * The cost is O(C) small ops per call (C = 3 to 48 in the image models), and forming WᵀW squares the
 * condition number, which is harmless for the near-orthogonal matrices this layer starts from and
 * trains into. Host versions (`slogdet`, `inverse` in dense_test_util.ts, from a readback) check them in
 * tests.
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { div, log, mul, sub } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/linalg.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, expand, reshape, slice, transpose } from "../engine/ops/shape.ts";
import type { Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { type BufferState, type FlowContext, type FlowLayer, type FlowOutput, Parameter } from "./module.ts";

function checkSquare(w: Tensor, what: string): number {
  if (w.rank !== 2 || w.shape[0] !== w.shape[1]) {
    throw new Error(`Cannot ${what} of shape ${fmt(w.shape)}: expected a square matrix`);
  }
  return w.shape[0];
}

/**
 * log|det W| of a square matrix as a differentiable scalar (½ Σ log of the pivots of WᵀW).
 *
 * @example
 * ```ts
 * import { createDevice, requireGrad, tensor } from "../engine/mod.ts";
 *
 * const w = requireGrad(tensor([2, 1, 0, 3], [2, 2], await createDevice("cpu64")));
 * const ld = logAbsDet(w); // grad(ld, [w]) is W⁻ᵀ
 * ```
 */
export function logAbsDet(w: Tensor): Tensor {
  const n = checkSquare(w, "take log|det|");
  return tidy(() => {
    let a = matmul(w, w, true, false);
    const pivots: Tensor[] = [];
    for (let k = 0; k < n; k++) {
      const m = n - k;
      const p = slice(a, [0, 0], [1, 1]);
      pivots.push(p);
      if (m > 1) {
        const col = slice(a, [1, 0], [m - 1, 1]);
        const row = slice(a, [0, 1], [1, m - 1]);
        a = sub(slice(a, [1, 1], [m - 1, m - 1]), div(matmul(col, row), p));
      }
    }
    return mul(sum(log(concat(pivots, 0))), 0.5);
  });
}

/** W⁻¹ of a square matrix (Gauss–Jordan on [WᵀW | Wᵀ]); differentiable. */
export function inverseMatrix(w: Tensor): Tensor {
  const n = checkSquare(w, "invert a matrix");
  return tidy(() => {
    let m = concat([matmul(w, w, true, false), transpose(w)], 1);
    for (let k = 0; k < n; k++) {
      const e = new Float64Array(n);
      e[k] = 1;
      const row = div(slice(m, [k, 0], [1, 2 * n]), slice(m, [k, k], [1, 1]));
      const col = sub(slice(m, [0, k], [n, 1]), tensor(e, [n, 1], w.device));
      m = sub(m, matmul(col, row));
    }
    return slice(m, [0, n], [n, n]);
  });
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates). */
export function randomPermutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Options of {@link InvertibleConv2d}. */
export interface InvertibleConv2dOptions {
  /** Channels C. */
  readonly channels: number;
  /** Source of the initial permutation. */
  readonly rng: Rng;
  /** Device of the weight. */
  readonly device: Device;
}

/**
 * The invertible 1×1 convolution.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const inv = new InvertibleConv2d({ channels: 12, rng: new Rng(0), device });
 * const x = randn([2, 12, 4, 4], new Rng(1), device);
 * const { y, logdet } = inv.forward(x, { training: false, rng: new Rng(2) });
 * ```
 */
export class InvertibleConv2d implements FlowLayer {
  /** "InvertibleConv2d". */
  readonly kind: string = "InvertibleConv2d";
  /** The C×C matrix W. */
  readonly weight: Parameter;
  /** Channels. */
  readonly channels: number;

  /** Creates the layer with W = identity rows in random order (official `eye(C)[randperm(C)]`). */
  constructor(opts: InvertibleConv2dOptions) {
    const c = opts.channels;
    if (!Number.isInteger(c) || c < 1) throw new Error(`Cannot create InvertibleConv2d with ${c} channels`);
    this.channels = c;
    const perm = randomPermutation(c, opts.rng);
    const w = new Float64Array(c * c);
    perm.forEach((col, row) => (w[row * c + col] = 1));
    this.weight = new Parameter("weight", tensor(w, [c, c], opts.device));
  }

  #check(x: Tensor): void {
    if (x.rank !== 4 || x.shape[1] !== this.channels) {
      throw new Error(
        `Cannot apply InvertibleConv2d(${this.channels}) to ${
          fmt(x.shape)
        }: expected [B, ${this.channels}, H, W]`,
      );
    }
  }

  /** y = W x per pixel; log|det| = H·W·log|det W| for every example. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    this.#check(x);
    const c = this.channels;
    const y = tidy(() => conv2d(x, reshape(this.weight.value, [c, c, 1, 1])));
    if (ctx.skipLogdet) return { y, logdet: null };
    const hw = x.shape[2] * x.shape[3];
    const logdet = tidy(() => expand(reshape(mul(logAbsDet(this.weight.value), hw), [1]), [x.shape[0]]));
    return { y, logdet };
  }

  /** x = W⁻¹ y per pixel. */
  inverse(y: Tensor, _ctx: FlowContext): Tensor {
    this.#check(y);
    const c = this.channels;
    return tidy(() => conv2d(y, reshape(inverseMatrix(this.weight.value), [c, c, 1, 1])));
  }

  /** [weight]. */
  parameters(): Parameter[] {
    return [this.weight];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}
