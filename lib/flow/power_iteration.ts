/**
 * Scheduling of the power iteration of the induced-norm layers after each optimizer step and before
 * evaluation: one {@link PowerSession} per layer, advanced together by {@link updateLipschitzAll}
 * (fixed counts without readback; adaptive layers in lockstep chunks with one readback per chunk for
 * all, spectral layers with the same operator stacked through power_batch.ts), and
 * {@link convergeLipschitzAll}, the iteration to tolerance at first use.
 * @module
 */
import { rowsConverged } from "../engine/ops/rows.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { noGrad, type Tensor } from "../engine/tensor.ts";
import type {
  InducedNormLayer,
  LipschitzUpdate,
  PowerOperator,
  UpdateOptions,
} from "./induced_norm_layer.ts";
import { type BatchMember, groupKey, PowerBatch, powerBatchOptions, runPowerChunk } from "./power_batch.ts";

/**
 * Cap of the iteration to tolerance at first use. The official code allows 20000; from the initial
 * iterations the layers of this suite converge in far fewer (a tiny model: tens), so the cap is only
 * reached by a layer that cannot converge, which the update then reports.
 */
export const FIRST_USE_MAX_ITERATIONS = 5000;

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
    const { atol, rtol } = this.layer;
    return runPowerChunk(
      this.#u,
      this.#v,
      k,
      (u, v) => {
        const [nu, nv] = this.layer.stepFor(this.op, this.#w, v);
        // rms(u' − u) < atol + rtol·max(u') and the same for v, as one row (ops/rows.ts, one dispatch).
        const row = (t: Tensor) => reshape(t, [1, -1]);
        return [nu, nv, rowsConverged(row(nu), row(u), row(nv), row(v), atol, rtol)];
      },
      this.#pending,
    );
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
 * import { SpectralNormConv2d } from "./spectral_norm_conv.ts";
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
