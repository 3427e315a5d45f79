/**
 * Batched power iteration: the adaptive spectral-norm (p = q = 2) updates of several layers with the same
 * operator (the same weight shape, and for k×k convolutions the same resolution, stride and padding) run
 * as one stacked iteration, so a group of L layers costs the dispatches of one layer instead of L.
 *
 * - Matrices (linear layers, 1×1 convolutions): W stacked [L, o, c]; A v and Aᵀ u are batched matmuls.
 * - k×k convolutions: a block-diagonal weight [L·o, L·c, k, k] (layer l's weight in block (l, l), zeros
 *   elsewhere, built as the stacked weights times an identity) on the layers' vectors as the channels of one image: conv2d and convTranspose2d of that
 *   weight apply each layer's operator to its own vector. It multiplies the FLOPs by L, which does not
 *   matter for these single-image products (the step is bound by dispatches, not arithmetic).
 * - Each layer keeps the official stopping rule: u and v normalised per layer, the same convergence test
 *   per layer and per iteration (flags read back once per chunk for all groups), and the state of each
 *   layer's first converged iteration is kept. Layers already converged keep being computed in the stack
 *   (no extra dispatch) and their kept state is not touched.
 *
 * Results equal the unbatched iteration up to float rounding (products summed in another order).
 * @module
 */
import { concat, reshape, splitFlat } from "../engine/ops/shape.ts";
import { tensor } from "../engine/ops/creation.ts";
import { mul } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/linalg.ts";
import { conv2d, convTranspose2d } from "../engine/ops/conv.ts";
import { normalizeRows, normalizeRowsConverged } from "../engine/ops/rows.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";

/** How a layer's power operator can be batched with others of the same {@link BatchSpec.key}. */
export type BatchSpec =
  | { readonly kind: "matrix"; readonly key: string; readonly o: number; readonly c: number }
  | {
    readonly kind: "conv";
    readonly key: string;
    readonly o: number;
    readonly c: number;
    readonly k: number;
    readonly hw: readonly [number, number];
    readonly outHW: readonly [number, number];
    readonly stride: number;
    readonly pad: number;
  };

/** What the batched iteration needs of a layer's update session. */
export interface BatchMember {
  /** The layer's batch description. */
  readonly spec: BatchSpec;
  /** Its raw weight (detached). */
  readonly weight: Tensor;
  /** Its current u (flat, length uSize) and v (flat, length vSize). */
  readonly u: Tensor;
  /** Current v. */
  readonly v: Tensor;
  /** Adaptive tolerances, cap and chunk length (equal within a group: part of the grouping). */
  readonly atol: number;
  /** Relative tolerance. */
  readonly rtol: number;
  /** Iteration cap. */
  readonly maxIterations: number;
  /** Iterations per readback. */
  readonly checkEvery: number;
  /** Receives the final state: kept u, v (owned by the receiver), iterations run, converged. */
  finish(u: Tensor, v: Tensor, iterations: number, converged: boolean): void;
}

/** Switch of the batched path, for measuring its effect (benchmarks); default on. */
export const powerBatchOptions: { enabled: boolean } = { enabled: true };

/** The grouping key of a member: its operator plus its stopping settings. */
export function groupKey(m: BatchMember): string {
  return `${m.spec.key}|${m.atol}|${m.rtol}|${m.maxIterations}|${m.checkEvery}`;
}

/** The official normalize's floor of the norm (`F.normalize` eps). */
const NORMALIZE_EPS = 1e-12;

/**
 * The chunk loop of the adaptive power iteration (one layer's or a stacked group's): runs `k` steps
 * from (u0, v0) under noGrad, each `step(u, v)` giving the new u, v and the step's convergence flags;
 * appends each new (u, v) to `pending` (owned by the caller) and returns the flags of every step,
 * concatenated in step order.
 */
export function runPowerChunk(
  u0: Tensor,
  v0: Tensor,
  k: number,
  step: (u: Tensor, v: Tensor) => [Tensor, Tensor, Tensor],
  pending: [Tensor, Tensor][],
): Tensor {
  return noGrad(() => {
    const flags: Tensor[] = [];
    let u = u0;
    let v = v0;
    for (let i = 0; i < k; i++) {
      const [nu, nv, flag] = tidy(() => step(u, v));
      flags.push(flag);
      pending.push([nu, nv]);
      u = nu;
      v = nv;
    }
    const all = concat(flags, 0);
    flags.forEach((f) => f.dispose());
    return all;
  });
}

/** Several layers' power iterations run as one stacked iteration. */
export class PowerBatch {
  /** The members, in stacking order. */
  readonly members: readonly BatchMember[];
  readonly #spec: BatchSpec;
  readonly #w: Tensor;
  #u: Tensor;
  #v: Tensor;
  #pending: [Tensor, Tensor][] = [];
  readonly #iterations: number[];
  readonly #done: boolean[];
  /** Chunk length of the last {@link PowerBatch.runChunk}. */
  chunk = 0;

  /** Stacks the members' weights and vectors (all with the same {@link groupKey}). */
  constructor(members: readonly BatchMember[]) {
    if (members.length === 0) throw new Error("Cannot batch power iterations: no layers");
    const key = groupKey(members[0]);
    for (const m of members) {
      if (groupKey(m) !== key) {
        throw new Error(`Cannot batch power iterations of ${groupKey(m)} with ${key}: different operators`);
      }
    }
    this.members = members;
    this.#spec = members[0].spec;
    const spec = this.#spec;
    const n = members.length;
    this.#iterations = members.map(() => 0);
    this.#done = members.map(() => false);
    [this.#w, this.#u, this.#v] = noGrad(() =>
      tidy(() => {
        let w: Tensor;
        if (spec.kind === "matrix") {
          w = concat(members.map((m) => reshape(m.weight, [1, spec.o, spec.c])), 0);
        } else {
          // Block-diagonal [L·o, L·c, k, k]: the stacked weights [L, o, 1, c·k²] times the identity
          // [L, 1, L, 1] (one gather and one broadcast product instead of a zero pad per layer).
          const kk = spec.c * spec.k * spec.k;
          const stacked = concat(members.map((m) => reshape(m.weight, [1, spec.o, 1, kk])), 0);
          const eye = new Float32Array(n * n);
          for (let l = 0; l < n; l++) eye[l * n + l] = 1;
          const blocks = mul(stacked, tensor(eye, [n, 1, n, 1], stacked.device));
          w = reshape(blocks, [n * spec.o, n * spec.c, spec.k, spec.k]);
        }
        const u = concat(members.map((m) => reshape(m.u, [1, -1])), 0);
        const v = concat(members.map((m) => reshape(m.v, [1, -1])), 0);
        return [w, u, v];
      })
    );
  }

  /** True when every member has stopped. */
  get done(): boolean {
    return this.#done.every((d) => d);
  }

  #apply(v: Tensor): Tensor {
    const s = this.#spec;
    const n = this.members.length;
    if (s.kind === "matrix") return reshape(matmul(this.#w, reshape(v, [n, s.c, 1])), [n, s.o]);
    const y = conv2d(reshape(v, [1, n * s.c, s.hw[0], s.hw[1]]), this.#w, null, {
      stride: s.stride,
      pad: s.pad,
    });
    return reshape(y, [n, -1]);
  }

  #adjoint(u: Tensor): Tensor {
    const s = this.#spec;
    const n = this.members.length;
    if (s.kind === "matrix") return reshape(matmul(this.#w, reshape(u, [n, s.o, 1]), true), [n, s.c]);
    const x = convTranspose2d(
      reshape(u, [1, n * s.o, s.outHW[0], s.outHW[1]]),
      this.#w,
      [s.hw[0], s.hw[1]],
      { stride: s.stride, pad: s.pad },
    );
    return reshape(x, [n, -1]);
  }

  /**
   * Runs up to `checkEvery` stacked iterations (fewer near the cap) and returns their convergence flags,
   * [chunk·L] in iteration-major order (flag of member l at iteration i at i·L + l).
   */
  runChunk(): Tensor {
    const m0 = this.members[0];
    const left = Math.max(
      ...this.members.map((_, l) => (this.#done[l] ? 0 : m0.maxIterations - this.#iterations[l])),
    );
    const k = Math.min(m0.checkEvery, left);
    this.chunk = k;
    return runPowerChunk(
      this.#u,
      this.#v,
      k,
      (u, v) => {
        const nu = normalizeRows(this.#apply(v), NORMALIZE_EPS);
        // v' and the test per member, rms(v' − v) < atol + rtol·max(v') and the same for u, in one
        // dispatch on WebGPU (ops/rows.ts).
        const [nv, flag] = normalizeRowsConverged(
          this.#adjoint(nu),
          v,
          nu,
          u,
          NORMALIZE_EPS,
          m0.atol,
          m0.rtol,
        );
        return [nu, nv, flag];
      },
      this.#pending,
    );
  }

  /** Takes the last chunk's flags; members that stop hand their kept state to their session. */
  accept(flags: ArrayLike<number>): void {
    const n = this.members.length;
    const k = this.#pending.length;
    // Members that stop now, by the iteration whose state they keep.
    const stopping = new Map<number, { l: number; converged: boolean }[]>();
    this.members.forEach((m, l) => {
      if (this.#done[l]) return;
      let pick = -1;
      for (let i = 0; i < k; i++) {
        if (flags[i * n + l] > 0.5) {
          pick = i;
          break;
        }
      }
      const converged = pick >= 0;
      const ran = converged ? pick + 1 : k;
      this.#iterations[l] += ran;
      if (!converged && this.#iterations[l] < m.maxIterations) return;
      this.#done[l] = true;
      stopping.set(ran - 1, [...(stopping.get(ran - 1) ?? []), { l, converged }]);
    });
    for (const [i, stops] of stopping) {
      // Every row of the kept u and v in one flat split (a dispatch per 15 rows on WebGPU, not one per row).
      const [pu, pv] = this.#pending[i];
      const rows = (t: Tensor) => splitFlat(t, Array.from({ length: n }, () => [t.shape[1]]));
      const [us, vs] = noGrad(() => tidy(() => [rows(pu), rows(pv)]));
      const kept = new Set<number>();
      for (const { l, converged } of stops) {
        kept.add(l);
        this.members[l].finish(us[l], vs[l], this.#iterations[l], converged);
      }
      for (let l = 0; l < n; l++) {
        if (!kept.has(l)) {
          us[l].dispose();
          vs[l].dispose();
        }
      }
    }
    const last = this.#pending[k - 1];
    this.#pending.forEach(([u, v], i) => {
      if (i !== k - 1) {
        u.dispose();
        v.dispose();
      }
    });
    this.#pending = [];
    this.#u.dispose();
    this.#v.dispose();
    [this.#u, this.#v] = last;
  }

  /** Frees the stacked weight and vectors. */
  dispose(): void {
    for (const t of [this.#w, this.#u, this.#v, ...this.#pending.flat()]) t.dispose();
    this.#pending = [];
  }
}
