/**
 * {@link SpectralNormLinear}: a spectrally normalised linear layer (the official `InducedNormLinear`).
 * @module
 */
import { matmul } from "../engine/ops/linalg.ts";
import { reshape } from "../engine/ops/shape.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import { InducedNormLayer, type InducedNormOptions, type PowerOperator } from "./induced_norm_layer.ts";
import { linear } from "./linear.ts";
import type { BatchSpec } from "./power_batch.ts";

/** Options of {@link SpectralNormLinear}. */
export interface SpectralNormLinearOptions extends InducedNormOptions {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
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
