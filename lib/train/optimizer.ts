/**
 * Adam as in the authors' code (betas (0.9, 0.99), eps 1e-8), with linear learning-rate warm-up,
 * global gradient-norm clipping and optional decoupled weight decay (the paper's 5e-4 "applied
 * outside the adaptive learning rate computation"; the official code's decay is a no-op, SPEC 1.12).
 * @module
 */
import { add, div, minimum, mul, sqrt, sub } from "../engine/ops/elementwise.ts";
import { full, zerosLike } from "../engine/ops/creation.ts";
import { sum } from "../engine/ops/reduce.ts";
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
  #m: Tensor[];
  #v: Tensor[];

  /** Creates zeroed moments for every parameter. */
  constructor(params: readonly Parameter[], opts: AdamOptions = {}) {
    this.params = params;
    this.options = {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.99],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0,
      warmupIters: opts.warmupIters ?? 0,
    };
    this.#m = params.map((p) => zerosLike(p.value).keep());
    this.#v = params.map((p) => zerosLike(p.value).keep());
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
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (!g) return;
        const [m, v, next] = tidy(() => {
          const m = add(mul(this.#m[i], b1), mul(g, 1 - b1));
          const v = add(mul(this.#v[i], b2), mul(mul(g, g), 1 - b2));
          const denom = add(div(sqrt(v), sBc2), this.options.eps);
          let w = p.value.detach();
          if (wd > 0) w = mul(w, sDecay);
          return [m, v, sub(w, mul(div(m, denom), sStep))];
        });
        this.#m[i].dispose();
        this.#v[i].dispose();
        this.#m[i] = m.keep();
        this.#v[i] = v.keep();
        p.set(next);
      });
    });
    perStep.forEach((x) => x.dispose());
    this.#step = t;
  }

  /** The state for a checkpoint (tensors stay owned by the optimizer). */
  state(): AdamState {
    const m = new Map<string, Tensor>();
    const v = new Map<string, Tensor>();
    this.params.forEach((p, i) => {
      m.set(p.name, this.#m[i]);
      v.set(p.name, this.#v[i]);
    });
    return { step: this.#step, m, v };
  }

  /** Restores a state (takes ownership of the given tensors). */
  loadState(s: AdamState): void {
    this.params.forEach((p, i) => {
      const m = s.m.get(p.name);
      const v = s.v.get(p.name);
      if (!m || !v) throw new Error(`Cannot load optimizer state: no moments for parameter ${p.name}`);
      this.#m[i].dispose();
      this.#v[i].dispose();
      this.#m[i] = m.keep();
      this.#v[i] = v.keep();
    });
    this.#step = s.step;
  }

  /** Frees the moments. */
  dispose(): void {
    [...this.#m, ...this.#v].forEach((t) => t.dispose());
  }
}

/**
 * Global gradient-norm clipping: scales every gradient by min(1, maxNorm / ‖g‖) (PyTorch's
 * clip_grad_norm_ with its 1e-6 guard). Returns new gradient tensors and the norm before clipping as a
 * one-element tensor (read it later; no readback here).
 */
export function clipGradNorm(grads: readonly Tensor[], maxNorm: number): { grads: Tensor[]; norm: Tensor } {
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
