/**
 * {@link SpectralNormConv2d}: a spectrally normalised 2-D convolution (the official
 * `InducedNormConv2d`), whose power iteration runs on the true operator at the input resolution (on
 * the C_out×C_in matrix for 1×1 kernels).
 * @module
 */
import { conv2dOutputShape, fmt } from "../engine/backend.ts";
import { conv2d, convTranspose2d } from "../engine/ops/conv.ts";
import { matmul } from "../engine/ops/linalg.ts";
import { reshape } from "../engine/ops/shape.ts";
import { type Tensor, tidy } from "../engine/tensor.ts";
import { InducedNormLayer, type InducedNormOptions, type PowerOperator } from "./induced_norm_layer.ts";
import type { BatchSpec } from "./power_batch.ts";

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

  /** The output shape [1, C_out, H_out, W_out] of one image at input resolution `hw`. */
  #outputShape(hw: readonly [number, number]): number[] {
    return conv2dOutputShape({
      x: [1, this.inChannels, hw[0], hw[1]],
      w: [this.outChannels, this.inChannels, this.kernelSize, this.kernelSize],
      stride: this.stride,
      pad: this.padding,
    });
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
    const out = this.#outputShape(hw);
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
    const out = this.#outputShape(hw);
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
