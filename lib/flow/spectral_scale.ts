/**
 * The effective weight of an induced-norm layer, W / max(1, σ/coeff), as one differentiable op with its
 * own backward rule (written in differentiable ops, so gradients of gradients work): the composed ops
 * would record a division, a maximum and another division whose backward rules interleave single-value
 * and weight-sized steps (about five dispatches per layer and backward pass on WebGPU); the rule below
 * orders them as one fused product-and-sum, one single-value chain and one weight-sized scaling.
 * @module
 */
import { div, ge, maximum, mul } from "../engine/ops/elementwise.ts";
import { composite } from "../engine/ops/record.ts";
import { sum } from "../engine/ops/reduce.ts";
import { reshape } from "../engine/ops/shape.ts";
import type { Tensor } from "../engine/tensor.ts";

/**
 * W / max(1, σ/coeff) for a weight `w` of any shape and a single-value `sigma` (shape [] or [1]).
 * Gradients: to W, g / m; to σ, −⟨g, W⟩ / m² · [σ/coeff ≥ 1] / coeff, with m = max(σ/coeff, 1) (at the
 * kink σ = coeff the gradient goes to σ, as the composed `maximum` sends ties to its first argument).
 */
export function spectralScale(w: Tensor, sigma: Tensor, coeff: number): Tensor {
  if (sigma.size !== 1) {
    throw new Error(`Cannot scale a weight by σ: σ has shape [${sigma.shape}], expected a single value`);
  }
  return composite(
    "spectralScale",
    [w, sigma],
    [w, sigma],
    () => div(w, maximum(div(sigma, coeff), 1)),
    (g, needs) => {
      // ⟨g, W⟩ first (one fused product and sum), then the single-value chain, then the scaling of g.
      const dot = needs[1] ? sum(mul(g, w)) : null;
      const ratio = div(sigma, coeff);
      const m = maximum(ratio, 1);
      const inv = div(1, m);
      const gs = dot === null
        ? null
        : reshape(mul(mul(dot, mul(inv, inv)), mul(ge(ratio, 1), -1 / coeff)), sigma.shape);
      return [needs[0] ? mul(g, inv) : null, gs];
    },
  );
}
