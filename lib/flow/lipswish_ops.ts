/**
 * LipSwish as two composite ops, so a recorded graph keeps only the pre-activation z and β:
 * φ(z) = z·σ(βz)/D and its derivative φ'(z) = σ(βz)·(1 + βz·(1 − σ(βz)))/D. Written as a chain of
 * primitives, φ would keep βz, σ(βz) and the products (four tensors of z's size per activation), and
 * every vector-Jacobian product through it (the power-series terms) another seven; as composites the
 * forward keeps one and each product two. Backward rules recompute σ(βz) and are themselves written in
 * differentiable ops (φ' is a composite op too), so gradients of gradients work.
 *
 * With t = βz, s = σ(t), q = s(1 − s) and h = q·(2 + t(1 − 2s))/D:
 * ∂φ/∂z = φ', ∂φ/∂β = z²q/D, ∂φ'/∂z = β·h, ∂φ'/∂β = z·h.
 * @module
 */
import { add, div, mul, sigmoid, square, sub } from "../engine/ops/elementwise.ts";
import { composite } from "../engine/ops/record.ts";
import { sumTo } from "../engine/ops/reduce.ts";
import type { Tensor } from "../engine/tensor.ts";

/** t = βz, s = σ(t) and q = s(1 − s) in primitives (recorded when the caller records). */
function parts(z: Tensor, beta: Tensor) {
  const t = mul(z, beta);
  const s = sigmoid(t);
  return { t, s, q: () => mul(s, sub(1, s)) };
}

/**
 * φ(z) = z·σ(βz)/`divisor` for a scalar (or broadcastable) β, saving only z and β for backward.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng, softplus, tensor } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const z = randn([4, 8], new Rng(0), device);
 * const beta = softplus(tensor([0.5], [], device)); // shape [], β = softplus(β_raw)
 * const y = lipswish(z, beta, 1.1);
 * ```
 */
export function lipswish(z: Tensor, beta: Tensor, divisor: number): Tensor {
  return composite(
    "lipswish",
    [z, beta],
    [z, beta],
    () => div(mul(z, parts(z, beta).s), divisor),
    (gy, needs) => [
      needs[0] ? mul(gy, lipswishDerivative(z, beta, divisor)) : null,
      needs[1] ? sumTo(div(mul(gy, mul(square(z), parts(z, beta).q())), divisor), beta.shape) : null,
    ],
  );
}

/**
 * φ'(z) = σ(βz)·(1 + βz·(1 − σ(βz)))/`divisor`, differentiable in z and β, saving only z and β.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng, softplus, tensor } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const z = randn([4, 8], new Rng(0), device);
 * const beta = softplus(tensor([0.5], [], device));
 * const slope = lipswishDerivative(z, beta, 1.1); // |slope| ≤ 1 everywhere
 * ```
 */
export function lipswishDerivative(z: Tensor, beta: Tensor, divisor: number): Tensor {
  return composite(
    "lipswishDerivative",
    [z, beta],
    [z, beta],
    () => {
      const { t, s } = parts(z, beta);
      return div(mul(s, add(1, mul(t, sub(1, s)))), divisor);
    },
    (g, needs) => {
      const { t, s, q } = parts(z, beta);
      const h = div(mul(q(), add(2, mul(t, sub(1, mul(s, 2))))), divisor);
      return [needs[0] ? mul(g, mul(beta, h)) : null, needs[1] ? sumTo(mul(g, mul(z, h)), beta.shape) : null];
    },
  );
}
