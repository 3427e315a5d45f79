/**
 * Exponential moving average of parameters (Polyak averaging, decay 0.999), used for evaluation and
 * sampling. As in the official code, the shadow copy is created on the first `update` (after the first
 * optimizer step, so ActNorm's data-dependent initialisation is captured) and covers parameters only.
 * @module
 */
import { add, mul } from "../engine/ops/elementwise.ts";
import { splitFlat } from "../engine/ops/shape.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import type { Parameter } from "../flow/module.ts";
import { concatFlat } from "./optimizer.ts";

/**
 * Shadow weights: shadow ← decay · shadow + (1 − decay) · param after each step.
 *
 * @example
 * ```ts
 * import { createDevice, grad, mean, rand, Rng } from "../engine/mod.ts";
 * import { makeConfig, ResidualFlow } from "../flow/mod.ts";
 * import { Adam } from "./optimizer.ts";
 *
 * const device = await createDevice("cpu");
 * const config = makeConfig({ inputShape: [1, 8, 8], nBlocks: [1, 1], hiddenChannels: 8, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * const opt = new Adam(model.parameters(), { lr: 1e-3 });
 * const ema = new Ema(model.parameters(), 0.999);
 * const out = model.forward(rand([4, 1, 8, 8], new Rng(1), device), { training: true, rng: new Rng(2) });
 * opt.step(grad(mean(model.bitsPerDim(out.logpx!)), opt.params.map((p) => p.value)));
 * ema.update();
 * // Sample (or evaluate) with the averaged weights, then the training weights come back.
 * const samples = await ema.withShadow(() => model.sample(4, { training: false, rng: new Rng(3) }));
 * ```
 */
export class Ema {
  /** Parameters tracked. */
  readonly params: readonly Parameter[];
  /** Decay per update. */
  readonly decay: number;
  /**
   * Whether the shadow is one flat tensor over all parameters, updated in a few dispatches (default),
   * rather than one tensor and one update chain per parameter. The same arithmetic per element.
   */
  readonly multiTensor: boolean;
  #shadow: Tensor[] | null = null;
  #flat: Tensor | null = null;

  /** Tracks `params` with `decay`; `multiTensor` as in {@link Ema.multiTensor}. */
  constructor(params: readonly Parameter[], decay = 0.999, opts: { readonly multiTensor?: boolean } = {}) {
    this.params = params;
    this.decay = decay;
    this.multiTensor = opts.multiTensor ?? true;
  }

  /** True once the shadow exists. */
  get initialized(): boolean {
    return this.#shadow !== null || this.#flat !== null;
  }

  /** The per-parameter shadow tensors, split from the flat one when needed (owned by the EMA). */
  #pieces(): Tensor[] | null {
    if (this.#shadow === null && this.#flat !== null) {
      const flat = this.#flat;
      this.#shadow = noGrad(() => splitFlat(flat, this.params.map((p) => p.value.shape))).map((t) =>
        t.keep()
      );
    }
    return this.#shadow;
  }

  /** Updates (or creates) the shadow from the current parameters. */
  update(): void {
    if (this.multiTensor && this.params.length > 0) {
      noGrad(() => {
        const old = this.#flat ?? (this.#shadow ? concatFlat(this.#shadow).keep() : null);
        this.#shadow?.forEach((s) => s.dispose());
        this.#shadow = null;
        const w = this.params.map((p) => p.value);
        this.#flat = (old === null
          ? tidy(() =>
            concatFlat(w.map((t) => t.detach()))
          )
          : tidy(() => add(mul(old, this.decay), mul(concatFlat(w), 1 - this.decay)))).keep();
        old?.dispose();
      });
      return;
    }
    noGrad(() => {
      if (this.#shadow === null) {
        this.#shadow = this.params.map((p) => p.value.detach().keep());
        return;
      }
      this.#shadow = this.#shadow.map((s, i) => {
        const next = tidy(() => add(mul(s, this.decay), mul(this.params[i].value, 1 - this.decay)));
        s.dispose();
        return next.keep();
      });
    });
  }

  /** The shadow tensors by parameter name (owned by the EMA), for checkpoints. */
  shadow(): Map<string, Tensor> {
    const m = new Map<string, Tensor>();
    this.#pieces()?.forEach((s, i) => m.set(this.params[i].name, s));
    return m;
  }

  /** Replaces the shadow (takes ownership). */
  loadShadow(shadow: Map<string, Tensor>): void {
    this.#shadow?.forEach((s) => s.dispose());
    this.#flat?.dispose();
    this.#flat = null;
    this.#shadow = this.params.map((p) => {
      const s = shadow.get(p.name);
      if (!s) throw new Error(`Cannot load the EMA: no shadow for parameter ${p.name}`);
      return s.keep();
    });
  }

  /** Runs `fn` with the shadow weights swapped in, then swaps the training weights back. */
  async withShadow<T>(fn: () => Promise<T> | T): Promise<T> {
    const pieces = this.#pieces();
    if (pieces === null) return await fn();
    const saved = this.params.map((p) => p.value.detach().keep());
    this.params.forEach((p, i) => p.set(pieces[i].detach()));
    try {
      return await fn();
    } finally {
      this.params.forEach((p, i) => p.set(saved[i]));
    }
  }

  /** Frees the shadow. */
  dispose(): void {
    this.#shadow?.forEach((s) => s.dispose());
    this.#shadow = null;
    this.#flat?.dispose();
    this.#flat = null;
  }
}
