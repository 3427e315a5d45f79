/**
 * The base of the spectrally normalised layers: {@link InducedNormLayer} holds the raw weight and bias,
 * the persistent power-iteration buffers u and v, σ = ⟨u, A_W v⟩ and the effective weight
 * W / max(1, σ/coeff) the forward pass uses, and first use (u, v drawn from N(0, I) and iterated a fixed
 * number of times). The iteration after each optimizer step is scheduled by power_iteration.ts; the
 * concrete layers are in spectral_norm_conv.ts and spectral_norm_linear.ts.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import { lt, mul, where } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { defaultBias, kaimingUniform } from "./linear.ts";
import {
  isFixedOrder,
  normalizeU,
  normalizeV,
  type NormOrder,
  type OrderTrainable,
  type OrderValue,
  resolveOrder,
} from "./mixed_norm.ts";
import { BufferState, type Module, Parameter } from "./module.ts";
import type { BatchSpec } from "./power_batch.ts";
import { PowerSession, updateLipschitzAll } from "./power_iteration.ts";
import { spectralScale } from "./spectral_scale.ts";

/** Default Lipschitz bound per layer. */
export const DEFAULT_COEFF = 0.98;
/** Default power-iteration tolerances (`--sn-tol`). */
export const DEFAULT_SN_TOL = 1e-3;
/** Iteration cap of the adaptive power iteration. */
export const MAX_POWER_ITERATIONS = 200;

/** Settings shared by the normalised layers. */
export interface InducedNormOptions {
  /** Per-layer Lipschitz bound (default 0.98). */
  readonly coeff?: number;
  /** A fixed iteration count per update; undefined/null means adaptive (atol, rtol). */
  readonly nIterations?: number | null;
  /** Absolute tolerance of the adaptive stop (default 1e-3). */
  readonly atol?: number;
  /** Relative tolerance of the adaptive stop (default 1e-3). */
  readonly rtol?: number;
  /** Cap of the adaptive iteration (default 200). */
  readonly maxIterations?: number;
  /** Iterations between convergence readbacks (default 5). */
  readonly checkEvery?: number;
  /** Fixed iterations run at first use (default 20 for convolutions, 200 for linear layers as the official constructor). */
  readonly initIterations?: number;
  /** Random restarts at first use for non-(2, 2) norms, keeping the largest σ (default 10). */
  readonly restarts?: number;
  /** Domain norm order (default 2). */
  readonly domain?: NormOrder;
  /** Codomain norm order (default 2). */
  readonly codomain?: NormOrder;
  /** Include a bias (default true). */
  readonly bias?: boolean;
  /** Source of the initial weights and, through a derived generator, of u and v. */
  readonly rng: Rng;
  /** Device of parameters and buffers. */
  readonly device: Device;
}

/** What one update did. */
export interface LipschitzUpdate {
  /** Parameter name of the layer's weight (identifies the layer). */
  readonly name: string;
  /** Iterations run. */
  readonly iterations: number;
  /** True when the tolerance was met (always true for a fixed count). */
  readonly converged: boolean;
}

/** Options of one update. */
export interface UpdateOptions {
  /** Run exactly this many iterations instead of the layer's setting. */
  readonly nIterations?: number;
  /**
   * Iterate to the layer's tolerance with this cap, whatever the layer's fixed count or adaptive cap
   * (first use: see {@link convergeLipschitzAll}).
   */
  readonly toToleranceWithin?: number;
}

/** The linear map A_W whose norm is controlled, on flat vectors. */
export interface PowerOperator {
  /** Length of u (the output side). */
  readonly uSize: number;
  /** Length of v (the input side). */
  readonly vSize: number;
  /** A_W v as a flat vector. */
  apply(w: Tensor, v: Tensor): Tensor;
  /** A_Wᵀ u as a flat vector. */
  adjoint(w: Tensor, u: Tensor): Tensor;
}

/**
 * Common machinery of the induced-norm layers: parameters, u/v buffers, σ, the effective weight, the
 * power iteration and the order loss.
 */
export abstract class InducedNormLayer implements Module, OrderTrainable {
  /** Raw weight. */
  readonly weight: Parameter;
  /** Bias, or null. */
  readonly bias: Parameter | null;
  /** Power-iteration vector on the output side (null before first use). */
  readonly u: BufferState;
  /** Power-iteration vector on the input side (null before first use). */
  readonly v: BufferState;
  /** Lipschitz bound. */
  readonly coeff: number;
  /** Domain order. */
  readonly domain: NormOrder;
  /** Codomain order. */
  readonly codomain: NormOrder;
  /** Fixed iteration count, or null for adaptive. */
  readonly nIterations: number | null;
  /** Adaptive tolerances and cap. */
  readonly atol: number;
  /** Relative tolerance. */
  readonly rtol: number;
  /** Adaptive cap. */
  readonly maxIterations: number;
  /** Iterations per convergence readback. */
  readonly checkEvery: number;
  /** Fixed iterations at first use. */
  readonly initIterations: number;
  /** Restarts at first use for non-(2, 2) norms. */
  readonly restarts: number;
  /** Device. */
  readonly device: Device;
  /** Generator for u and v draws (derived from the constructor's rng). */
  protected readonly rng: Rng;

  /** Sets up parameters and buffers (called by subclasses). */
  protected constructor(
    weightShape: number[],
    fanIn: number,
    opts: InducedNormOptions,
    defaultInitIterations: number,
  ) {
    const coeff = opts.coeff ?? DEFAULT_COEFF;
    if (!(coeff > 0)) {
      throw new Error(`Cannot create an induced-norm layer with coeff ${coeff}: expected > 0`);
    }
    this.coeff = coeff;
    this.device = opts.device;
    this.weight = new Parameter("weight", kaimingUniform(weightShape, fanIn, opts.rng, opts.device));
    this.bias = opts.bias === false
      ? null
      : new Parameter("bias", defaultBias(weightShape[0], fanIn, opts.rng, opts.device));
    this.rng = new Rng(opts.rng.nextU32());
    this.u = new BufferState("u");
    this.v = new BufferState("v");
    this.domain = opts.domain ?? 2;
    this.codomain = opts.codomain ?? 2;
    this.nIterations = opts.nIterations ?? null;
    this.atol = opts.atol ?? DEFAULT_SN_TOL;
    this.rtol = opts.rtol ?? DEFAULT_SN_TOL;
    this.maxIterations = opts.maxIterations ?? MAX_POWER_ITERATIONS;
    this.checkEvery = Math.max(1, Math.floor(opts.checkEvery ?? 5));
    this.initIterations = opts.initIterations ?? defaultInitIterations;
    this.restarts = opts.restarts ?? 10;
    if (this.nIterations !== null && !(Number.isInteger(this.nIterations) && this.nIterations >= 0)) {
      throw new Error(`Cannot use nIterations ${this.nIterations}: expected a non-negative integer or null`);
    }
  }

  /** The operator at the recorded resolution; throws when it is not known yet. */
  protected abstract operator(): PowerOperator;

  /**
   * How this layer's power iteration can be stacked with others' (see power_batch.ts), or null. Only
   * spectral (2, 2) layers batch.
   */
  batchSpec(): BatchSpec | null {
    return null;
  }

  /** True once u and v exist (first use done, or restored from a checkpoint). */
  get initialized(): boolean {
    return this.u.value !== null && this.v.value !== null;
  }

  /** True for the plain spectral norm (p = q = 2). */
  get isSpectral(): boolean {
    return isFixedOrder(this.domain, 2) && isFixedOrder(this.codomain, 2);
  }

  #orders(): [OrderValue, OrderValue] {
    return [resolveOrder(this.domain), resolveOrder(this.codomain)];
  }

  /** One power-iteration step from (u, v) with weight w (no readback). Returns new tensors. */
  protected step(op: PowerOperator, w: Tensor, v: Tensor, p: OrderValue, q: OrderValue): [Tensor, Tensor] {
    return tidy(() => {
      const nu = normalizeU(op.apply(w, v), q);
      const nv = normalizeV(op.adjoint(w, nu), p);
      return [nu, nv];
    });
  }

  /**
   * First use: draws u, v ~ N(0, I), normalises them and runs `initIterations` fixed iterations (plus,
   * for non-(2, 2) norms, `restarts` more random starts, keeping the largest σ). Synchronous.
   */
  protected initializeVectors(iterations: number = this.initIterations): void {
    const op = this.operator();
    noGrad(() => {
      const [u, v] = tidy(() => {
        const [p, q] = this.#orders();
        const w = this.weight.value.detach();
        const start = (): [Tensor, Tensor] => {
          let v = normalizeV(tensor(this.rng.fill(op.vSize, (r) => r.normal()), [op.vSize], this.device), p);
          let u = normalizeU(tensor(this.rng.fill(op.uSize, (r) => r.normal()), [op.uSize], this.device), q);
          for (let i = 0; i < iterations; i++) {
            const [nu, nv] = this.step(op, w, v, p, q);
            u.dispose();
            v.dispose();
            u = nu;
            v = nv;
          }
          return [u, v];
        };
        let [bu, bv] = start();
        if (!this.isSpectral) {
          let best = sum(mul(bu, op.apply(w, bv)));
          for (let r = 0; r < this.restarts; r++) {
            const [cu, cv] = start();
            const s = sum(mul(cu, op.apply(w, cv)));
            const better = lt(best, s);
            [bu, bv, best] = [where(better, cu, bu), where(better, cv, bv), where(better, s, best)];
          }
        }
        return [bu, bv];
      });
      this.u.set(u);
      this.v.set(v);
    });
  }

  /**
   * Draws u, v afresh (with the restarts of first use for non-(2, 2) norms) for the current weight, e.g.
   * after replacing the weight wholesale; the power method for p→q norms only finds a local maximum
   * near its start, so a warm start from another weight's vectors can stay below the global one.
   */
  reinitialize(opts: { iterations?: number } = {}): void {
    this.operator(); // throws when the resolution is unknown
    this.initializeVectors(opts.iterations ?? this.initIterations);
  }

  /** σ = ⟨u, A_W v⟩ with the stored u, v (constants) and the raw weight: differentiable in W. */
  sigma(): Tensor {
    const u = this.u.value;
    const v = this.v.value;
    if (u === null || v === null) {
      throw new Error(
        `Cannot compute sigma of ${this.weight.name}: u and v are not initialised (run a forward first)`,
      );
    }
    return sum(mul(u, this.operator().apply(this.weight.value, v)));
  }

  /** W / max(1, σ/coeff): the weight the forward pass uses (differentiable in W through σ). */
  effectiveWeight(): Tensor {
    return tidy(() => spectralScale(this.weight.value, this.sigma(), this.coeff));
  }

  /**
   * One power iteration from the stored u, v with W, u and v detached, returning σ = uᵀ A v; it is
   * differentiable in learnable orders only (the official `compute_one_iter`). Stored vectors are not
   * changed.
   */
  oneIterationSigma(): Tensor {
    const u0 = this.u.value;
    const v0 = this.v.value;
    if (u0 === null || v0 === null) {
      throw new Error(`Cannot run compute_one_iter on ${this.weight.name}: u and v are not initialised`);
    }
    const op = this.operator();
    return tidy(() => {
      const [p, q] = this.#orders();
      const w = this.weight.value.detach();
      const u = normalizeU(op.apply(w, v0.detach()), q);
      const v = normalizeV(op.adjoint(w, u), p);
      return sum(mul(u, op.apply(w, v)));
    });
  }

  /** Runs the power iteration (adaptive or fixed) and stores u, v. See {@link updateLipschitzAll}. */
  async updateLipschitz(opts: UpdateOptions = {}): Promise<LipschitzUpdate> {
    return (await updateLipschitzAll([this], opts))[0];
  }

  /** @internal Starts an update session (used by {@link updateLipschitzAll}). */
  session(opts: UpdateOptions): PowerSession {
    if (!this.initialized) {
      throw new Error(
        `Cannot update the Lipschitz vectors of ${this.weight.name}: not initialised (run a forward or initialize() first)`,
      );
    }
    if (opts.toToleranceWithin !== undefined) {
      return new PowerSession(this, this.operator(), null, opts.toToleranceWithin);
    }
    const fixed = opts.nIterations ?? this.nIterations;
    return new PowerSession(this, this.operator(), fixed);
  }

  /** @internal Runs one step for a session. */
  stepFor(op: PowerOperator, w: Tensor, v: Tensor): [Tensor, Tensor] {
    const [p, q] = this.#orders();
    return this.step(op, w, v, p, q);
  }

  /** [weight, bias] (learnable orders belong to the block's OrderChain). */
  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** [u, v]. */
  buffers(): BufferState[] {
    return [this.u, this.v];
  }
}
