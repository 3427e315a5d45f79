/**
 * Spectrally normalised Conv2d and Linear layers (the official `InducedNormConv2d` /
 * `InducedNormLinear`; p = q = 2 by default, any induced (p→q) norm through `domain`/`codomain`).
 *
 * - Parameters "weight" (raw, PyTorch default init) and "bias"; buffers "u" and "v", the persistent
 *   power-iteration vectors of the true operator at the input resolution (flat, as the official
 *   buffers: v of length C_in·H·W, u of length C_out·H_out·W_out; for 1×1 kernels v of length C_in,
 *   u of length C_out, iterating on the C_out×C_in matrix).
 * - Forward never iterates: it uses W / max(1, σ/coeff) with σ = ⟨u, A_W v⟩ differentiable in W (u, v
 *   constants). The bias is not normalised.
 * - {@link updateLipschitzAll} / `updateLipschitz()` run the power iteration under noGrad after each
 *   optimizer step and before evaluation: u ← normalize(A v), then v ← normalize(Aᵀ u); adaptive stop
 *   when ‖u − u_old‖/√len(u) < atol + rtol·max(u) and the same for v (atol = rtol = 1e-3, at most 200
 *   iterations), or exactly `nIterations`. Convergence flags are computed on the device for every
 *   iteration and read back once per `checkEvery` iterations (for all layers together), and the state
 *   of the first converged iteration is kept, so the result is the official one with few readbacks.
 * - First use (the first forward, or `initialize(hw)`): the input resolution is recorded, u and v are
 *   drawn from N(0, I) and normalised, and `initIterations` fixed iterations run synchronously (the
 *   forward pass cannot read back). The official code iterates to tolerance there: every entry point
 *   calls {@link convergeLipschitzAll} (through `ResidualFlow.convergeLipschitz`, which the trainer
 *   runs before a fresh run's first step) to do the same. `reinitialize()` redraws u, v for a replaced
 *   weight.
 * @module
 */
import { conv2dOutputShape, fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { conv2d, convTranspose2d } from "../engine/ops/conv.ts";
import { add, div, lt, maximum, mul, pow, sub, where } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/linalg.ts";
import { max, sum } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { defaultBias, kaimingUniform, linear } from "./linear.ts";
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
import { type BatchMember, type BatchSpec, groupKey, PowerBatch, powerBatchOptions } from "./power_batch.ts";

export type { BatchSpec } from "./power_batch.ts";

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

/** Options of {@link SpectralNormConv2d}. */
export interface SpectralNormConv2dOptions extends InducedNormOptions {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** Square kernel size. */
  readonly kernelSize: number;
  /** Stride (default 1). */
  readonly stride?: number;
  /** Zero padding on every side (default 0, as PyTorch; the residual blocks pass k // 2). */
  readonly padding?: number;
  /** Input resolution [H, W] if known in advance (otherwise recorded on the first forward). */
  readonly inputHW?: readonly [number, number];
}

/** Options of {@link SpectralNormLinear}. */
export interface SpectralNormLinearOptions extends InducedNormOptions {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
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

/**
 * Cap of the iteration to tolerance at first use. The official code allows 20000; from the initial
 * iterations the layers of this suite converge in far fewer (a tiny model: tens), so the cap is only
 * reached by a layer that cannot converge, which the update then reports.
 */
export const FIRST_USE_MAX_ITERATIONS = 5000;

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
    return tidy(() => div(this.weight.value, maximum(div(this.sigma(), this.coeff), 1)));
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

/** ‖x − y‖₂/√n. */
function rmsDiff(a: Tensor, b: Tensor): Tensor {
  const d = sub(a, b);
  return pow(div(sum(mul(d, d)), a.size), 0.5);
}

/** One layer's in-progress update (used by {@link updateLipschitzAll}). */
export class PowerSession {
  /** The layer being updated. */
  readonly layer: InducedNormLayer;
  /** Its operator. */
  readonly op: PowerOperator;
  /** Fixed iteration count, or null for adaptive. */
  readonly fixed: number | null;
  /** Cap of the adaptive iteration. */
  readonly cap: number;
  /** Iterations accepted so far. */
  iterations = 0;
  /** True when no more chunks are needed. */
  done = false;
  /** True once the tolerance was met (or a fixed count ran). */
  converged = false;
  #w: Tensor;
  #u: Tensor;
  #v: Tensor;
  #owned = false;
  #pending: [Tensor, Tensor][] = [];

  /** Starts from the layer's stored vectors and a detached copy of its weight. */
  constructor(layer: InducedNormLayer, op: PowerOperator, fixed: number | null, cap = layer.maxIterations) {
    this.layer = layer;
    this.op = op;
    this.fixed = fixed;
    this.cap = cap;
    this.#w = layer.weight.value.detach();
    this.#u = layer.u.value!;
    this.#v = layer.v.value!;
    if (fixed === 0) this.done = true;
  }

  #replace(u: Tensor, v: Tensor): void {
    if (this.#owned) {
      this.#u.dispose();
      this.#v.dispose();
    }
    this.#u = u;
    this.#v = v;
    this.#owned = true;
  }

  /** Fixed count: runs every iteration now. */
  runFixed(): void {
    noGrad(() => {
      while (this.iterations < this.fixed!) {
        const [nu, nv] = this.layer.stepFor(this.op, this.#w, this.#v);
        this.#replace(nu, nv);
        this.iterations++;
      }
    });
    this.converged = true;
    this.done = true;
  }

  /** Adaptive: runs up to `checkEvery` iterations and returns one convergence flag per iteration. */
  runChunk(): Tensor {
    const k = Math.min(this.layer.checkEvery, this.cap - this.iterations);
    return noGrad(() => {
      const flags: Tensor[] = [];
      let u = this.#u;
      let v = this.#v;
      for (let i = 0; i < k; i++) {
        const [nu, nv] = this.layer.stepFor(this.op, this.#w, v);
        flags.push(tidy(() => {
          const okU = lt(rmsDiff(nu, u), add(this.layer.atol, mul(max(nu), this.layer.rtol)));
          const okV = lt(rmsDiff(nv, v), add(this.layer.atol, mul(max(nv), this.layer.rtol)));
          return reshape(mul(okU, okV), [1]);
        }));
        this.#pending.push([nu, nv]);
        u = nu;
        v = nv;
      }
      const all = concat(flags, 0);
      flags.forEach((f) => f.dispose());
      return all;
    });
  }

  /** Adaptive: takes the flags of the last chunk, keeps the first converged state (or the last). */
  accept(flags: ArrayLike<number>): void {
    const n = this.#pending.length;
    let pick = n - 1;
    for (let i = 0; i < n; i++) {
      if (flags[i] > 0.5) {
        pick = i;
        this.converged = true;
        break;
      }
    }
    this.iterations += pick + 1;
    this.#pending.forEach(([u, v], i) => {
      if (i !== pick) {
        u.dispose();
        v.dispose();
      }
    });
    const [u, v] = this.#pending[pick];
    this.#pending = [];
    this.#replace(u, v);
    if (this.converged || this.iterations >= this.cap) this.done = true;
  }

  /** Ends the session with a state computed elsewhere (a batched iteration); takes ownership of u, v. */
  adopt(u: Tensor, v: Tensor, iterations: number, converged: boolean): void {
    this.#replace(u, v);
    this.iterations = iterations;
    this.converged = converged;
    this.done = true;
  }

  /** The detached weight the session iterates with. */
  get weight(): Tensor {
    return this.#w;
  }

  /** The current u. */
  get u(): Tensor {
    return this.#u;
  }

  /** The current v. */
  get v(): Tensor {
    return this.#v;
  }

  /** Stores the final vectors in the layer's buffers. */
  finish(): LipschitzUpdate {
    if (this.#owned) {
      this.layer.u.set(this.#u);
      this.layer.v.set(this.#v);
    }
    this.#w.dispose();
    return { name: this.layer.weight.name, iterations: this.iterations, converged: this.converged };
  }
}

/**
 * Runs the power iteration of several layers together (after an optimizer step, before evaluation),
 * under noGrad. Adaptive layers advance in lockstep chunks of `checkEvery` iterations with one
 * readback per chunk for all of them; fixed-count layers run without any readback. On the meta
 * backend (shapes only) one chunk runs and convergence is not tested.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const layers = [0, 1].map(() =>
 *   new SpectralNormConv2d({ inChannels: 4, outChannels: 4, kernelSize: 3, padding: 1, rng, device })
 * );
 * const x = randn([2, 4, 8, 8], rng, device);
 * layers.forEach((l) => l.apply(x)); // first use records the input size
 * // ... after each optimizer step:
 * await updateLipschitzAll(layers);
 * ```
 */
export async function updateLipschitzAll(
  layers: readonly InducedNormLayer[],
  opts: UpdateOptions = {},
): Promise<LipschitzUpdate[]> {
  const sessions = layers.map((l) => l.session(opts));
  for (const s of sessions) if (s.fixed !== null && !s.done) s.runFixed();
  let active = sessions.filter((s) => !s.done);
  // Adaptive spectral layers with the same operator iterate stacked (one set of dispatches per group).
  let batches: PowerBatch[] = [];
  if (powerBatchOptions.enabled) {
    const groups = new Map<string, BatchMember[]>();
    for (const s of active) {
      const spec = s.layer.batchSpec();
      if (spec === null) continue;
      const m: BatchMember = {
        spec,
        weight: s.weight,
        u: s.u,
        v: s.v,
        atol: s.layer.atol,
        rtol: s.layer.rtol,
        maxIterations: s.cap,
        checkEvery: s.layer.checkEvery,
        finish: (u, v, iterations, converged) => s.adopt(u, v, iterations, converged),
      };
      const key = groupKey(m);
      groups.set(key, [...(groups.get(key) ?? []), m]);
    }
    const batchedWeights = new Set<Tensor>();
    for (const members of groups.values()) {
      if (members.length < 2) continue;
      batches.push(new PowerBatch(members));
      for (const m of members) batchedWeights.add(m.weight);
    }
    active = active.filter((s) => !batchedWeights.has(s.weight));
  }
  try {
    while (active.length > 0 || batches.length > 0) {
      const flags = [...batches.map((b) => b.runChunk()), ...active.map((s) => s.runChunk())];
      const joined = noGrad(() => concat(flags, 0));
      flags.forEach((f) => f.dispose());
      let host: ArrayLike<number>;
      if (joined.device.backend.name === "meta") host = new Float64Array(joined.size).fill(1);
      else host = await joined.read();
      joined.dispose();
      const all = Array.from(host);
      let off = 0;
      for (const b of batches) {
        const k = b.chunk * b.members.length;
        b.accept(all.slice(off, off + k));
        off += k;
      }
      for (const s of active) {
        const k = Math.min(s.layer.checkEvery, s.cap - s.iterations);
        s.accept(all.slice(off, off + k));
        off += k;
      }
      for (const b of batches) if (b.done) b.dispose();
      batches = batches.filter((b) => !b.done);
      active = active.filter((s) => !s.done);
    }
  } finally {
    for (const b of batches) b.dispose();
  }
  return sessions.map((s) => s.finish());
}

/**
 * First use: iterates every layer to its tolerance (at most {@link FIRST_USE_MAX_ITERATIONS}), whatever
 * its fixed count or per-step cap, as the official code does on its first forward. Call it once after
 * the model is built (u and v then hold the few fixed iterations a synchronous first use can run) and
 * before the first training step or evaluation, so Lip(g) <= coeff holds from step 0.
 */
export function convergeLipschitzAll(layers: readonly InducedNormLayer[]): Promise<LipschitzUpdate[]> {
  return updateLipschitzAll(layers, { toToleranceWithin: FIRST_USE_MAX_ITERATIONS });
}

/**
 * A spectrally normalised 2-D convolution (official `InducedNormConv2d`, stride and padding as given).
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const [rng, device] = [new Rng(0), await createDevice("cpu")];
 * const conv = new SpectralNormConv2d({ inChannels: 3, outChannels: 512, kernelSize: 3, padding: 1, rng, device });
 * const y = conv.apply(randn([2, 3, 8, 8], rng, device)); // uses W / max(1, σ/0.98)
 * await conv.updateLipschitz();     // after each optimizer step
 * ```
 */
export class SpectralNormConv2d extends InducedNormLayer {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** Kernel size. */
  readonly kernelSize: number;
  /** Stride. */
  readonly stride: number;
  /** Padding. */
  readonly padding: number;
  #hw: [number, number] | null;

  /** Creates the layer (PyTorch default init from `rng`). */
  constructor(opts: SpectralNormConv2dOptions) {
    const { inChannels: c, outChannels: o, kernelSize: k } = opts;
    for (const [name, v] of [["inChannels", c], ["outChannels", o], ["kernelSize", k]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`Cannot create SpectralNormConv2d: ${name} is ${v}, expected a positive integer`);
      }
    }
    super([o, c, k, k], c * k * k, opts, 20);
    this.inChannels = c;
    this.outChannels = o;
    this.kernelSize = k;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.#hw = opts.inputHW ? [opts.inputHW[0], opts.inputHW[1]] : null;
  }

  /** The recorded input resolution [H, W], or null before first use. */
  get inputHW(): [number, number] | null {
    if (this.#hw === null && this.kernelSize !== 1 && this.v.value !== null) this.#hw = this.#inferHW();
    return this.#hw ? [...this.#hw] : null;
  }

  #inferHW(): [number, number] | null {
    const per = this.v.value!.size / this.inChannels;
    const side = Math.round(Math.sqrt(per));
    return side * side === per ? [side, side] : null;
  }

  /** True for a 1×1 kernel (iterates on the C_out × C_in matrix). */
  get isPointwise(): boolean {
    return this.kernelSize === 1;
  }

  /** Stacks with layers of the same weight shape (and, for k×k kernels, resolution, stride, padding). */
  override batchSpec(): BatchSpec | null {
    if (!this.isSpectral) return null;
    const c = this.inChannels;
    const o = this.outChannels;
    if (this.isPointwise) return { kind: "matrix", key: `matrix:${o}x${c}`, o, c };
    const hw = this.inputHW;
    if (hw === null) return null;
    const geo = { stride: this.stride, pad: this.padding };
    const out = conv2dOutputShape({
      x: [1, c, hw[0], hw[1]],
      w: [o, c, this.kernelSize, this.kernelSize],
      ...geo,
    });
    return {
      kind: "conv",
      key: `conv:${o}x${c}x${this.kernelSize}@${hw[0]}x${hw[1]}/${this.stride}/${this.padding}`,
      o,
      c,
      k: this.kernelSize,
      hw: [hw[0], hw[1]],
      outHW: [out[2], out[3]],
      stride: this.stride,
      pad: this.padding,
    };
  }

  /** The convolution at the recorded resolution (or the channel matrix for 1×1 kernels). */
  protected operator(): PowerOperator {
    const c = this.inChannels;
    const o = this.outChannels;
    if (this.isPointwise) {
      return {
        uSize: o,
        vSize: c,
        apply: (w, v) => reshape(matmul(reshape(w, [o, c]), reshape(v, [c, 1])), [o]),
        adjoint: (w, u) => reshape(matmul(reshape(w, [o, c]), reshape(u, [o, 1]), true), [c]),
      };
    }
    const hw = this.inputHW;
    if (hw === null) {
      throw new Error(
        `Cannot build the power-iteration operator of ${this.weight.name}: the input resolution is unknown (run a forward or initialize([H, W]) first)`,
      );
    }
    const geo = { stride: this.stride, pad: this.padding };
    const out = conv2dOutputShape({
      x: [1, c, hw[0], hw[1]],
      w: [o, c, this.kernelSize, this.kernelSize],
      ...geo,
    });
    return {
      uSize: out[1] * out[2] * out[3],
      vSize: c * hw[0] * hw[1],
      apply: (w, v) => reshape(conv2d(reshape(v, [1, c, hw[0], hw[1]]), w, null, geo), [-1]),
      adjoint: (w, u) => reshape(convTranspose2d(reshape(u, out), w, [hw[0], hw[1]], geo), [-1]),
    };
  }

  /**
   * First use at input resolution [H, W]: records it, draws u, v and runs `initIterations` fixed
   * iterations (or `iterations` if given). A no-op when already initialised.
   */
  initialize(hw: readonly [number, number], opts: { iterations?: number } = {}): void {
    if (this.initialized) return;
    if (this.#hw && (this.#hw[0] !== hw[0] || this.#hw[1] !== hw[1])) {
      throw new Error(
        `Cannot initialise ${this.weight.name} at ${hw[0]}x${hw[1]}: it was created for ${this.#hw[0]}x${
          this.#hw[1]
        }`,
      );
    }
    this.#hw = [hw[0], hw[1]];
    this.initializeVectors(opts.iterations ?? this.initIterations);
  }

  /** conv2d(x, W_eff, bias). Initialises u, v at x's resolution on first use. */
  apply(x: Tensor): Tensor {
    return this.applyWith(x, null);
  }

  /** conv2d(x, w, bias) with a precomputed effective weight (null: compute it now). */
  applyWith(x: Tensor, weight: Tensor | null): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new Error(
        `Cannot apply ${this.weight.name} to input ${fmt(x.shape)}: expected [B, ${this.inChannels}, H, W]`,
      );
    }
    if (!this.initialized) this.initialize([x.shape[2], x.shape[3]]);
    else if (this.#hw === null) {
      this.#hw = [x.shape[2], x.shape[3]];
      if (!this.isPointwise && this.v.value!.size !== this.inChannels * x.shape[2] * x.shape[3]) {
        this.#hw = null;
        throw new Error(
          `Cannot apply ${this.weight.name} at ${x.shape[2]}x${x.shape[3]}: its stored v has ${
            this.v.value!.size
          } values, not ${this.inChannels}·H·W`,
        );
      }
    }
    const geo = { stride: this.stride, pad: this.padding };
    if (weight) return conv2d(x, weight, this.bias?.value ?? null, geo);
    return tidy(() => conv2d(x, this.effectiveWeight(), this.bias?.value ?? null, geo));
  }
}

/**
 * A spectrally normalised linear layer y = x·W_effᵀ + b (official `InducedNormLinear`). As the
 * official constructor, u and v are drawn and iterated (`initIterations`, default 200) at
 * construction.
 */
export class SpectralNormLinear extends InducedNormLayer {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;

  /** Creates the layer and initialises u, v. */
  constructor(opts: SpectralNormLinearOptions) {
    const { inFeatures: i, outFeatures: o } = opts;
    if (!Number.isInteger(i) || i < 1 || !Number.isInteger(o) || o < 1) {
      throw new Error(`Cannot create SpectralNormLinear(${i} -> ${o}): sizes must be positive integers`);
    }
    super([o, i], i, opts, 200);
    this.inFeatures = i;
    this.outFeatures = o;
    this.initializeVectors();
  }

  /** Stacks with linear layers of the same shape. */
  override batchSpec(): BatchSpec | null {
    if (!this.isSpectral) return null;
    const c = this.inFeatures;
    const o = this.outFeatures;
    return { kind: "matrix", key: `matrix:${o}x${c}`, o, c };
  }

  /** The weight matrix. */
  protected operator(): PowerOperator {
    const i = this.inFeatures;
    const o = this.outFeatures;
    return {
      uSize: o,
      vSize: i,
      apply: (w, v) => reshape(matmul(w, reshape(v, [i, 1])), [o]),
      adjoint: (w, u) => reshape(matmul(w, reshape(u, [o, 1]), true), [i]),
    };
  }

  /** x [B, in] → [B, out] with the normalised weight. */
  apply(x: Tensor): Tensor {
    return tidy(() => linear(x, this.effectiveWeight(), this.bias?.value ?? null));
  }

  /** The same with a precomputed effective weight. */
  applyWith(x: Tensor, weight: Tensor): Tensor {
    return linear(x, weight, this.bias?.value ?? null);
  }
}

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
