/**
 * Induced mixed (p→q) norms with learnable orders (SPEC §3.3; official `mixed_lipschitz.py`).
 *
 * The power method for ‖W‖_{p→q} alternates u ← normalize_u(W v, q) and v ← normalize_v(Wᵀ u, p) and
 * reports σ = uᵀ W v, a lower bound that reaches a (local) maximum of ‖Wx‖_q/‖x‖_p. The normalisers
 * follow the official rules: p = 2 is ℓ2; p = 1 (for v) and q = ∞ (for u) put ±1 at the largest
 * |entry| (the official code puts +1; see `projmax`); otherwise v ← sign(v)·a/‖a‖_p with a = (|v|/max|v|)^{1/(p−1)} and
 * u ← sign(u)·b/‖b‖_{q/(q−1)} with b = (|u|/max|u|)^{q−1} (q = 1: b/‖b‖_∞), signs of zeros taken as +1.
 *
 * Learnable orders: p = asym_squash(θ) = 2·tanh(−leaky_elu(−θ + 0.5493…)) + 3 ∈ (1, 5), θ = 0 → p = 2.
 * Layer i of a block has domain p_i and codomain p_{(i+1) mod n} (shared cyclically), so g maps
 * ‖·‖_{p0} to ‖·‖_{p0} with Lipschitz constant ≤ Π coeff_i: a contraction in one norm. The orders get
 * gradients only from {@link orderLoss} (the official `compute_p_grads`: the mean over layers of one
 * power-iteration σ with W, u and v detached), never from the likelihood.
 *
 * The orders are owned by an {@link OrderChain} module (one per block); layers only reference them, so
 * each shared parameter is listed (and named) exactly once.
 * @module
 */
import { grad } from "../engine/autograd.ts";
import { full } from "../engine/ops/creation.ts";
import {
  abs,
  add,
  div,
  elu,
  eq,
  maximum,
  mul,
  neg,
  pow,
  recip,
  step,
  sub,
  tanh,
  where,
} from "../engine/ops/elementwise.ts";
import { max, mean, sum } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";
import { type BufferState, type Module, Parameter } from "./module.ts";

/** The shift inside asym_squash: atanh(0.5), so θ = 0 gives p = 2. */
export const ASYM_SQUASH_SHIFT = 0.5493061829986572;

/** leaky_elu(x) = a·x + (1 − a)·ELU(x) (official default a = 0.3). */
export function leakyElu(x: Tensor, a = 0.3): Tensor {
  return add(mul(x, a), mul(elu(x), 1 - a));
}

/**
 * p = 2·tanh(−leaky_elu(−θ + 0.5493…)) + 3, a smooth increasing map onto (1, 5). p(0) = 2 − 5.8e-8
 * in float64: the official shift is atanh(0.5) rounded to float32.
 */
export function asymSquash(theta: Tensor): Tensor {
  return add(mul(tanh(neg(leakyElu(add(neg(theta), ASYM_SQUASH_SHIFT)))), 2), 3);
}

/** {@link asymSquash} on a host number. */
export function asymSquashHost(theta: number): number {
  const z = -theta + ASYM_SQUASH_SHIFT;
  const le = 0.3 * z + 0.7 * (z > 0 ? z : Math.expm1(z));
  return 2 * Math.tanh(-le) + 3;
}

/** A learnable norm order p = asym_squash(θ); parameter "theta" (a scalar, initialised to 0 → p = 2). */
export class LearnableOrder implements Module {
  /** θ, shape []. */
  readonly theta: Parameter;

  /** Creates an order with θ = `theta` (default 0). */
  constructor(opts: { device: Device; theta?: number; name?: string }) {
    this.theta = new Parameter(opts.name ?? "theta", full([], opts.theta ?? 0, opts.device));
  }

  /** p = asym_squash(θ) as a scalar tensor (differentiable in θ). */
  value(): Tensor {
    return asymSquash(this.theta.value);
  }

  /** [theta]. */
  parameters(): Parameter[] {
    return [this.theta];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** A norm order: a fixed number (1, 2, Infinity or any p > 1) or a learnable one. */
export type NormOrder = number | LearnableOrder;

/** A resolved order: a host number or a scalar tensor (learnable orders always take the general rule). */
export type OrderValue = number | Tensor;

/** The value to compute with: the number itself, or asym_squash(θ). */
export function resolveOrder(order: NormOrder): OrderValue {
  if (typeof order === "number") {
    if (!(order >= 1)) throw new Error(`Cannot use norm order ${order}: expected a number >= 1 or Infinity`);
    return order;
  }
  return order.value();
}

/** True when an order is the fixed number `n`. */
export function isFixedOrder(order: NormOrder, n: number): boolean {
  return typeof order === "number" && order === n;
}

/** ‖x‖_p = (Σ x^p)^{1/p} of a non-negative vector (p = ∞: max). */
export function vectorNorm(x: Tensor, p: OrderValue): Tensor {
  if (typeof p === "number") {
    if (p === Infinity) return max(x);
    if (p === 2) return pow(sum(mul(x, x)), 0.5);
    return pow(sum(pow(x, p)), 1 / p);
  }
  return pow(sum(pow(x, p)), recip(p));
}

/** sign(x) with zeros mapped to +1 (the official `x/|x|` with NaN set to 1). No gradient. */
function signPlus(x: Tensor): Tensor {
  return sub(1, mul(step(neg(x)), 2));
}

/**
 * The official `projmax_` with the sign kept: sign(x_i)·e_i at the largest |x_i| (ties share it
 * equally). The official one writes +1, which makes σ = uᵀWv negative whenever that entry is
 * negative (and then max(1, σ/coeff) = 1 silently skips the normalisation); the official models route
 * the orders that use it (p = 1, q = ∞) to closed forms, so keeping the sign changes nothing there.
 */
function projmax(x: Tensor): Tensor {
  const a = abs(x);
  const mask = eq(a, max(a));
  return div(mul(mask, signPlus(x)), sum(mask));
}

/** ℓ2 normalisation as `F.normalize` (norm floored at 1e-12). */
export function l2Normalize(x: Tensor): Tensor {
  return div(x, maximum(pow(sum(mul(x, x)), 0.5), 1e-12));
}

/** The official `normalize_v(v, p)` of a flat vector (the domain side of the power method). */
export function normalizeV(v: Tensor, p: OrderValue): Tensor {
  if (typeof p === "number") {
    if (p === 2) return l2Normalize(v);
    if (p === 1) return projmax(v);
    if (p === Infinity) return signPlus(v);
  }
  const vabs = abs(v);
  const scaled = div(vabs, max(vabs));
  const expo = typeof p === "number" ? 1 / (p - 1) : recip(sub(p, 1));
  const a = pow(scaled, expo);
  return div(mul(signPlus(v), a), vectorNorm(a, p));
}

/** The official `normalize_u(u, q)` of a flat vector (the codomain side of the power method). */
export function normalizeU(u: Tensor, q: OrderValue): Tensor {
  if (typeof q === "number") {
    if (q === 2) return l2Normalize(u);
    if (q === Infinity) return projmax(u);
    if (q === 1) return signPlus(u);
  }
  const uabs = abs(u);
  const scaled = div(uabs, max(uabs));
  const b = typeof q === "number" ? pow(scaled, q - 1) : pow(scaled, sub(q, 1));
  const dual = typeof q === "number" ? q / (q - 1) : div(q, sub(q, 1));
  return div(mul(signPlus(u), b), vectorNorm(b, dual));
}

/**
 * Parses the official `--vnorms` string: one character per layer boundary, digits or "f" for ∞.
 *
 * @example
 * ```ts
 * parseVnorms("2222"); // [2, 2, 2, 2]: 3 layers, spectral norm everywhere
 * parseVnorms("122f"); // [1, 2, 2, Infinity]
 * ```
 */
export function parseVnorms(vnorms: string): number[] {
  if (vnorms.length < 2) {
    throw new Error(`Cannot parse vnorms "${vnorms}": expected at least 2 characters (layers + 1)`);
  }
  return [...vnorms].map((c, i) => {
    if (c === "f") return Infinity;
    const v = Number(c);
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`Cannot parse vnorms "${vnorms}": character ${i} ("${c}") is not a digit >= 1 or "f"`);
    }
    return v;
  });
}

/**
 * The norm orders of one block's n Lipschitz layers: fixed ones from a vnorms string (layer i maps
 * vnorms[i] → vnorms[i+1]) or learnable ones shared cyclically (layer i maps p_i → p_{(i+1) mod n}).
 * As a module it owns the learnable orders: parameters "0", "1", … (empty when fixed).
 */
export class OrderChain implements Module {
  /** The learnable orders (empty for fixed orders). */
  readonly orders: readonly LearnableOrder[];
  readonly #domains: NormOrder[];
  readonly #codomains: NormOrder[];

  /**
   * Fixed: `{ vnorms: "2222" }`; learnable: `{ layers: 3, learn: true, device }` (θ = 0, p = 2).
   */
  constructor(opts: { vnorms?: string; layers?: number; learn?: boolean; device?: Device }) {
    if (opts.learn) {
      const n = opts.layers ?? (opts.vnorms ? opts.vnorms.length - 1 : 0);
      if (!Number.isInteger(n) || n < 1) {
        throw new Error(`Cannot create learnable orders for ${n} layers: expected a positive layer count`);
      }
      if (!opts.device) throw new Error("Cannot create learnable orders: no device given");
      const device = opts.device;
      this.orders = Array.from({ length: n }, (_, i) => new LearnableOrder({ device, name: `${i}` }));
      this.#domains = [...this.orders];
      this.#codomains = [...this.orders.slice(1), this.orders[0]];
    } else {
      const ps = parseVnorms(opts.vnorms ?? "2".repeat((opts.layers ?? 3) + 1));
      if (opts.layers !== undefined && ps.length !== opts.layers + 1) {
        throw new Error(
          `Cannot use vnorms of ${ps.length} characters for ${opts.layers} layers: expected ${
            opts.layers + 1
          }`,
        );
      }
      this.orders = [];
      this.#domains = ps.slice(0, -1);
      this.#codomains = ps.slice(1);
    }
  }

  /** Number of layers. */
  get layers(): number {
    return this.#domains.length;
  }

  /** Domain order of layer i. */
  domain(i: number): NormOrder {
    return this.#domains[i];
  }

  /** Codomain order of layer i. */
  codomain(i: number): NormOrder {
    return this.#codomains[i];
  }

  /** The learnable θs. */
  parameters(): Parameter[] {
    return this.orders.map((o) => o.theta);
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** Anything that can give one power-iteration σ with its weight and vectors detached. */
export interface OrderTrainable {
  /** One power iteration from the stored u, v with W, u, v detached; differentiable in the orders. */
  oneIterationSigma(): Tensor;
}

/** The official `compute_p_grads` objective: mean over layers of one detached power-iteration σ. */
export function orderLoss(layers: readonly OrderTrainable[], scale = 1): Tensor {
  if (layers.length === 0) throw new Error("Cannot build the order loss: no induced-norm layers given");
  return mul(mean(concat(layers.map((l) => reshape(l.oneIterationSigma(), [1])), 0)), scale);
}

/**
 * Gradients of {@link orderLoss} with respect to the order parameters; a NaN gradient becomes zero
 * (the official code drops it). `scale` is 1 for images, 0.01 in the toy script.
 */
export function orderGradients(
  layers: readonly OrderTrainable[],
  orders: readonly Parameter[],
  scale = 1,
): Tensor[] {
  return tidy(() => {
    const gs = grad(orderLoss(layers, scale), orders.map((o) => o.value), { allowUnused: false });
    return gs.map((g) => where(eq(g, g), g, 0));
  });
}
