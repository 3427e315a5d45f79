/**
 * Adam as in the authors' code (betas (0.9, 0.99), eps 1e-8), with linear learning-rate warm-up,
 * global gradient-norm clipping and optional decoupled weight decay (the paper's 5e-4 "applied
 * outside the adaptive learning rate computation"; the official code's decay is a no-op, SPEC 1.12).
 * @module
 */
import { add, div, minimum, mul, sqrt, sub, where } from "../engine/ops/elementwise.ts";
import { full, tensor, zeros, zerosLike } from "../engine/ops/creation.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, reshape, splitFlat } from "../engine/ops/shape.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import type { Parameter } from "../flow/module.ts";

/** Adam settings. */
export interface AdamOptions {
  /** Peak learning rate (default 1e-3). */
  readonly lr?: number;
  /** Exponential decay rates (default [0.9, 0.99], the official code's). */
  readonly betas?: readonly [number, number];
  /** Denominator epsilon (default 1e-8). */
  readonly eps?: number;
  /** Decoupled weight decay per step, multiplied by the current learning rate (default 0). */
  readonly weightDecay?: number;
  /** Linear warm-up: lr · min(1, (step + 1) / warmupIters) (default 0: none). */
  readonly warmupIters?: number;
  /**
   * Update all parameters at once over flat (concatenated) moments: a few dispatches per step instead
   * of one chain per parameter tensor (default true). The same arithmetic per element either way.
   */
  readonly multiTensor?: boolean;
}

/** Flattens tensors and concatenates them (one tensor of their total size; a view for a single one). */
export function concatFlat(ts: readonly Tensor[]): Tensor {
  return concat(ts.map((t) => reshape(t, [t.size])), 0);
}

/** Serialisable optimizer state: the step count and first/second moments by parameter name. */
export interface AdamState {
  /** Steps taken. */
  readonly step: number;
  /** First moments by parameter name. */
  readonly m: Map<string, Tensor>;
  /** Second moments by parameter name. */
  readonly v: Map<string, Tensor>;
}

/**
 * Adam over a list of parameters. `step(grads)` takes gradients in the order of `params`.
 *
 * @example
 * ```ts
 * import { createDevice, grad, mean, rand, Rng } from "../engine/mod.ts";
 * import { makeConfig, ResidualFlow } from "../flow/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const config = makeConfig({ inputShape: [1, 8, 8], nBlocks: [1, 1], hiddenChannels: 8, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * const opt = new Adam(model.parameters(), { lr: 1e-3, warmupIters: 1000 });
 * const out = model.forward(rand([4, 1, 8, 8], new Rng(1), device), { training: true, rng: new Rng(2) });
 * const loss = mean(model.bitsPerDim(out.logpx!));
 * const grads = grad(loss, opt.params.map((p) => p.value));
 * opt.step(clipGradNorm(grads, 1).grads);
 * await model.updateLipschitz();
 * ```
 */
export class Adam {
  /** The parameters updated. */
  readonly params: readonly Parameter[];
  /** Settings. */
  readonly options: Required<AdamOptions>;
  #step = 0;
  /** Per-parameter moments (per-tensor path), or null. */
  #m: Tensor[] | null = null;
  #v: Tensor[] | null = null;
  /** Flat moments over all parameters in order (multi-tensor path), or null. */
  #mFlat: Tensor | null = null;
  #vFlat: Tensor | null = null;
  /** Per-parameter pieces of the flat moments handed out by state(), freed when they go stale. */
  #views: Tensor[] = [];
  /** Masks of the parameters that got a gradient, by pattern of missing ones (multi-tensor path). */
  readonly #masks = new Map<string, Tensor>();

  /** Creates zeroed moments for every parameter. */
  constructor(params: readonly Parameter[], opts: AdamOptions = {}) {
    this.params = params;
    this.options = {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.99],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0,
      warmupIters: opts.warmupIters ?? 0,
      multiTensor: opts.multiTensor ?? true,
    };
    const device = params[0]?.value.device;
    if (this.options.multiTensor && device) {
      const total = params.reduce((n, p) => n + p.value.size, 0);
      this.#mFlat = zeros([total], device).keep();
      this.#vFlat = zeros([total], device).keep();
    } else {
      this.#m = params.map((p) => zerosLike(p.value).keep());
      this.#v = params.map((p) => zerosLike(p.value).keep());
    }
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /** The learning rate the next step will use (after warm-up). */
  currentLr(): number {
    const w = this.options.warmupIters;
    return w > 0 ? this.options.lr * Math.min(1, (this.#step + 1) / w) : this.options.lr;
  }

  /** Applies one update. Gradients are not disposed (the caller owns them). */
  step(grads: readonly (Tensor | null)[]): void {
    if (grads.length !== this.params.length) {
      throw new Error(
        `Cannot take an Adam step: ${grads.length} gradients for ${this.params.length} parameters`,
      );
    }
    const lr = this.currentLr();
    const [b1, b2] = this.options.betas;
    const t = this.#step + 1;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    const stepSize = lr / bc1;
    const wd = this.options.weightDecay;
    const device = this.params[0]?.value.device;
    if (!device) return;
    // Numbers that change every step go in as per-step tensors: mixing them in as plain numbers would
    // fill the engine's cache of scalar constants with a new entry per step.
    const perStep = [stepSize, Math.sqrt(bc2), 1 - lr * wd].map((x) => full([], x, device));
    const [sStep, sBc2, sDecay] = perStep;
    const update = (m0: Tensor, v0: Tensor, g: Tensor, w0: Tensor): [Tensor, Tensor, Tensor] => {
      const m = add(mul(m0, b1), mul(g, 1 - b1));
      const v = add(mul(v0, b2), mul(mul(g, g), 1 - b2));
      const denom = add(div(sqrt(v), sBc2), this.options.eps);
      let w = w0;
      if (wd > 0) w = mul(w, sDecay);
      return [m, v, sub(w, mul(div(m, denom), sStep))];
    };
    if (this.#mFlat && this.#vFlat) {
      this.#stepFlat(grads, update);
      perStep.forEach((x) => x.dispose());
      this.#step = t;
      return;
    }
    const mAll = this.#m!, vAll = this.#v!;
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (!g) return;
        const [m, v, next] = tidy(() => update(mAll[i], vAll[i], g, p.value.detach()));
        mAll[i].dispose();
        vAll[i].dispose();
        mAll[i] = m.keep();
        vAll[i] = v.keep();
        p.set(next);
      });
    });
    perStep.forEach((x) => x.dispose());
    this.#step = t;
  }

  /** The multi-tensor step: every parameter's update in one fused chain over flat tensors. */
  #stepFlat(
    grads: readonly (Tensor | null)[],
    update: (m0: Tensor, v0: Tensor, g: Tensor, w0: Tensor) => [Tensor, Tensor, Tensor],
  ): void {
    this.#dropViews();
    const missing = grads.map((g) => g === null);
    const mask = missing.some(Boolean) ? this.#mask(missing) : null;
    const [m, v, pieces] = noGrad(() =>
      tidy(() => {
        const g = concatFlat(
          grads.map((g, i) => g ?? zeros(this.params[i].value.shape, this.#mFlat!.device)),
        );
        const w0 = concatFlat(this.params.map((p) => p.value.detach()));
        let [m, v, w] = update(this.#mFlat!, this.#vFlat!, g, w0);
        // Parameters without a gradient keep their value and moments, as in the per-tensor path.
        if (mask) {
          [m, v, w] = [where(mask, m, this.#mFlat!), where(mask, v, this.#vFlat!), where(mask, w, w0)];
        }
        return [m, v, splitFlat(w, this.params.map((p) => p.value.shape))] as const;
      })
    );
    this.#mFlat!.dispose();
    this.#vFlat!.dispose();
    this.#mFlat = m.keep();
    this.#vFlat = v.keep();
    this.params.forEach((p, i) => {
      if (!missing[i]) p.set(pieces[i]);
      else pieces[i].dispose();
    });
  }

  /** 1 where a parameter got a gradient, 0 where it did not (cached by pattern). */
  #mask(missing: readonly boolean[]): Tensor {
    const key = missing.map((x) => (x ? "0" : "1")).join("");
    let mask = this.#masks.get(key);
    if (!mask) {
      const data = new Float32Array(this.#mFlat!.size);
      let at = 0;
      this.params.forEach((p, i) => {
        if (!missing[i]) data.fill(1, at, at + p.value.size);
        at += p.value.size;
      });
      mask = noGrad(() => tensor(data, [data.length], this.#mFlat!.device)).keep();
      this.#masks.set(key, mask);
    }
    return mask;
  }

  #dropViews(): void {
    this.#views.forEach((t) => t.dispose());
    this.#views = [];
  }

  /**
   * The state for a checkpoint (tensors stay owned by the optimizer, valid until its next step,
   * `loadState` or `dispose`).
   */
  state(): AdamState {
    const m = new Map<string, Tensor>();
    const v = new Map<string, Tensor>();
    let mAll = this.#m, vAll = this.#v;
    if (this.#mFlat && this.#vFlat) {
      this.#dropViews();
      const shapes = this.params.map((p) => p.value.shape);
      const [mp, vp] = noGrad(() => [splitFlat(this.#mFlat!, shapes), splitFlat(this.#vFlat!, shapes)]);
      this.#views = [...mp, ...vp].map((t) => t.keep());
      [mAll, vAll] = [mp, vp];
    }
    this.params.forEach((p, i) => {
      m.set(p.name, mAll![i]);
      v.set(p.name, vAll![i]);
    });
    return { step: this.#step, m, v };
  }

  /** Restores a state (takes ownership of the given tensors). */
  loadState(s: AdamState): void {
    const ms: Tensor[] = [], vs: Tensor[] = [];
    for (const p of this.params) {
      const m = s.m.get(p.name);
      const v = s.v.get(p.name);
      if (!m || !v) throw new Error(`Cannot load optimizer state: no moments for parameter ${p.name}`);
      ms.push(m);
      vs.push(v);
    }
    if (this.#mFlat && this.#vFlat) {
      this.#dropViews();
      const [m, v] = noGrad(() => [concatFlat(ms), concatFlat(vs)]);
      this.#mFlat.dispose();
      this.#vFlat.dispose();
      this.#mFlat = m.keep();
      this.#vFlat = v.keep();
      // Views (a single parameter) share the data by reference count, so the given tensors can go.
      [...ms, ...vs].forEach((t) => t.dispose());
    } else {
      this.params.forEach((_, i) => {
        this.#m![i].dispose();
        this.#v![i].dispose();
        this.#m![i] = ms[i].keep();
        this.#v![i] = vs[i].keep();
      });
    }
    this.#step = s.step;
  }

  /** Frees the moments. */
  dispose(): void {
    this.#dropViews();
    [...(this.#m ?? []), ...(this.#v ?? []), this.#mFlat, this.#vFlat, ...this.#masks.values()]
      .forEach((t) => t?.dispose());
    this.#masks.clear();
  }
}

/**
 * Global gradient-norm clipping: scales every gradient by min(1, maxNorm / ‖g‖) (PyTorch's
 * clip_grad_norm_ with its 1e-6 guard). Returns new gradient tensors and the norm before clipping as a
 * one-element tensor (read it later; no readback here). `multiTensor` (default true) computes over one
 * flat vector in a few dispatches; false keeps one chain per tensor (the norm then sums per-tensor sums,
 * so the two differ by float rounding).
 */
export function clipGradNorm(
  grads: readonly Tensor[],
  maxNorm: number,
  opts: { readonly multiTensor?: boolean } = {},
): { grads: Tensor[]; norm: Tensor } {
  if (grads.length === 0) throw new Error("Cannot clip an empty list of gradients");
  if (opts.multiTensor ?? true) {
    // One flat vector: its squared norm in one reduction, the scaling in one kernel, one split back.
    return noGrad(() =>
      tidy(() => {
        const flat = concatFlat(grads);
        const norm = sqrt(sum(mul(flat, flat)));
        const scale = minimum(div(maxNorm, add(norm, 1e-6)), 1);
        return { grads: splitFlat(mul(flat, scale), grads.map((g) => g.shape)), norm };
      })
    );
  }
  return noGrad(() =>
    tidy(() => {
      let sq: Tensor | null = null;
      for (const g of grads) {
        const s = sum(mul(g, g));
        sq = sq ? add(sq, s) : s;
      }
      if (sq === null) throw new Error("Cannot clip an empty list of gradients");
      const norm = sqrt(sq);
      // scale = min(1, maxNorm / (norm + 1e-6)), computed on the device: no readback.
      const scale = minimum(div(maxNorm, add(norm, 1e-6)), 1);
      return { grads: grads.map((g) => mul(g, scale)), norm };
    })
  );
}
