/**
 * Activations of the residual blocks: LipSwish (the paper's), ELU, softplus, ReLU and identity, as
 * modules with `apply(x)`, plus host-side closed forms of each one's first and second derivative (the
 * quantities of the gradient-saturation argument, SPEC §4.1, for the figure).
 *
 * LipSwish: φ(z) = z·sigmoid(βz)/1.1 with β = softplus(β_raw) and one trainable scalar β_raw per
 * instance, initialised to 0.5. Dividing by 1.1 keeps |φ'| ≤ 1 for every β (max_t d/dt[t·σ(t)] ≈ 1.0998).
 * @module
 */
import { elu, relu, softplus } from "../engine/ops/elementwise.ts";
import { full } from "../engine/ops/creation.ts";
import { reshape } from "../engine/ops/shape.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { lipswish } from "./lipswish_ops.ts";
import { type BufferState, type Module, Parameter } from "./module.ts";

/** Names accepted by {@link createActivation} (the official `--act` choices this port supports). */
export type ActivationKind = "swish" | "elu" | "softplus" | "relu" | "identity";

/** An element-wise activation module. */
export interface Activation extends Module {
  /** Which activation. */
  readonly kind: ActivationKind;
  /** φ(x), element-wise. */
  apply(x: Tensor): Tensor;
  /** The largest |φ'| over all inputs (1 for all of these: each is 1-Lipschitz). */
  readonly lipschitz: number;
}

/** The divisor that makes LipSwish 1-Lipschitz. */
export const LIPSWISH_DIVISOR = 1.1;
/** The initial β_raw of the official code (β = softplus(0.5) ≈ 0.974). */
export const LIPSWISH_BETA_RAW_INIT = 0.5;

/** Options of {@link LipSwish}. */
export interface LipSwishOptions {
  /** Device of the β_raw parameter. */
  readonly device: Device;
  /** Initial β_raw (default 0.5, as the official code). */
  readonly betaRaw?: number;
}

/**
 * LipSwish φ(z) = z·sigmoid(softplus(β_raw)·z)/1.1. Parameter "beta" (shape [1], named as the
 * official `Swish.beta`) holds β_raw.
 *
 * @example
 * ```ts
 * import { createDevice, randn, Rng } from "../engine/mod.ts";
 *
 * const device = await createDevice("cpu");
 * const act = new LipSwish({ device });
 * const y = act.apply(randn([4, 8], new Rng(0), device));
 * ```
 */
export class LipSwish implements Activation {
  /** Always "swish" (the official flag value). */
  readonly kind: ActivationKind = "swish";
  /** 1. */
  readonly lipschitz: number = 1;
  /** β_raw, shape [1]. */
  readonly beta: Parameter;

  /** Creates the activation with β_raw = `betaRaw` (default 0.5). */
  constructor(opts: LipSwishOptions) {
    this.beta = new Parameter("beta", full([1], opts.betaRaw ?? LIPSWISH_BETA_RAW_INIT, opts.device));
  }

  /** The effective β = softplus(β_raw) as a scalar tensor (differentiable in β_raw). */
  betaValue(): Tensor {
    return reshape(softplus(this.beta.value), []);
  }

  /** φ(x). */
  apply(x: Tensor): Tensor {
    return lipswish(x, this.betaValue(), LIPSWISH_DIVISOR);
  }

  /** [beta]. */
  parameters(): Parameter[] {
    return [this.beta];
  }

  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** Base of the parameter-free activations. */
export abstract class StatelessActivation implements Activation {
  /** Which activation. */
  abstract readonly kind: ActivationKind;
  /** 1. */
  readonly lipschitz: number = 1;
  /** φ(x). */
  abstract apply(x: Tensor): Tensor;
  /** None. */
  parameters(): Parameter[] {
    return [];
  }
  /** None. */
  buffers(): BufferState[] {
    return [];
  }
}

/** ELU with α = 1 (PyTorch `nn.ELU()`). */
export class Elu extends StatelessActivation {
  /** "elu". */
  readonly kind: ActivationKind = "elu";
  /** ELU(x). */
  apply(x: Tensor): Tensor {
    return elu(x);
  }
}

/** softplus(x) = log(1 + eˣ) (PyTorch `nn.Softplus()`, β = 1). */
export class Softplus extends StatelessActivation {
  /** "softplus". */
  readonly kind: ActivationKind = "softplus";
  /** softplus(x). */
  apply(x: Tensor): Tensor {
    return softplus(x);
  }
}

/** max(x, 0). */
export class Relu extends StatelessActivation {
  /** "relu". */
  readonly kind: ActivationKind = "relu";
  /** ReLU(x). */
  apply(x: Tensor): Tensor {
    return relu(x);
  }
}

/** The identity (a linear residual block; useful in tests). */
export class Identity extends StatelessActivation {
  /** "identity". */
  readonly kind: ActivationKind = "identity";
  /** x itself (a new handle on the same data, so callers may dispose it independently). */
  apply(x: Tensor): Tensor {
    return reshape(x, x.shape);
  }
}

/** Options of {@link createActivation}. */
export interface ActivationOptions {
  /** Device for parameters (LipSwish's β_raw). */
  readonly device: Device;
  /** LipSwish only: initial β_raw (default 0.5). */
  readonly betaRaw?: number;
}

/**
 * Builds an activation by its official flag name.
 *
 * @example
 * ```ts
 * import { createDevice } from "../engine/mod.ts";
 *
 * const act = createActivation("swish", { device: await createDevice("cpu") });
 * ```
 */
export function createActivation(kind: ActivationKind, opts: ActivationOptions): Activation {
  switch (kind) {
    case "swish":
      return new LipSwish({ device: opts.device, betaRaw: opts.betaRaw });
    case "elu":
      return new Elu();
    case "softplus":
      return new Softplus();
    case "relu":
      return new Relu();
    case "identity":
      return new Identity();
    default:
      throw new Error(
        `Cannot create activation "${kind}": expected one of swish, elu, softplus, relu, identity`,
      );
  }
}

/** φ, φ' and φ'' at one point. */
export interface Derivatives {
  /** φ(z). */
  readonly y: number;
  /** φ'(z). */
  readonly dy: number;
  /** φ''(z) (right-hand value at a kink). */
  readonly d2y: number;
}

function sigmoidHost(t: number): number {
  return t >= 0 ? 1 / (1 + Math.exp(-t)) : Math.exp(t) / (1 + Math.exp(t));
}

function softplusHost(t: number): number {
  return t > 0 ? t + Math.log1p(Math.exp(-t)) : Math.log1p(Math.exp(t));
}

/**
 * LipSwish and its derivatives at z for a given β_raw (closed forms; s = sigmoid(βz)):
 * φ' = (s + βz·s(1−s))/1.1, φ'' = β·s(1−s)·(2 + βz(1−2s))/1.1, ∂φ/∂β_raw = z²·s(1−s)/1.1·sigmoid(β_raw).
 */
export function lipswishDerivatives(z: number, betaRaw: number): Derivatives & { readonly dBetaRaw: number } {
  const beta = softplusHost(betaRaw);
  const s = sigmoidHost(beta * z);
  const ds = s * (1 - s);
  return {
    y: (z * s) / LIPSWISH_DIVISOR,
    dy: (s + beta * z * ds) / LIPSWISH_DIVISOR,
    d2y: (beta * ds * (2 + beta * z * (1 - 2 * s))) / LIPSWISH_DIVISOR,
    dBetaRaw: ((z * z * ds) / LIPSWISH_DIVISOR) * sigmoidHost(betaRaw),
  };
}

/** ELU (α = 1) and its derivatives; at z = 0 the second derivative is the right-hand value 0, as autograd gives. */
export function eluDerivatives(z: number): Derivatives {
  if (z > 0) return { y: z, dy: 1, d2y: 0 };
  const e = Math.exp(z);
  return { y: e - 1, dy: e, d2y: z === 0 ? 0 : e };
}

/** softplus and its derivatives: φ' = σ(z), φ'' = σ(z)(1 − σ(z)). */
export function softplusDerivatives(z: number): Derivatives {
  const s = sigmoidHost(z);
  return { y: softplusHost(z), dy: s, d2y: s * (1 - s) };
}

/** ReLU and its derivatives (φ'(0) = 0, as `step`). */
export function reluDerivatives(z: number): Derivatives {
  return z > 0 ? { y: z, dy: 1, d2y: 0 } : { y: 0, dy: 0, d2y: 0 };
}

/** The identity: φ' = 1, φ'' = 0. */
export function identityDerivatives(z: number): Derivatives {
  return { y: z, dy: 1, d2y: 0 };
}

/**
 * φ, φ', φ'' of any activation kind at host points (LipSwish uses `betaRaw`, default 0.5): the data of
 * the gradient-saturation figure.
 *
 * @example
 * ```ts
 * const pts = activationDerivatives("swish", [-2, 0, 2], 0.5);
 * ```
 */
export function activationDerivatives(
  kind: ActivationKind,
  zs: ArrayLike<number>,
  betaRaw: number = LIPSWISH_BETA_RAW_INIT,
): Derivatives[] {
  const f: (z: number) => Derivatives = kind === "swish"
    ? (z) => lipswishDerivatives(z, betaRaw)
    : kind === "elu"
    ? eluDerivatives
    : kind === "softplus"
    ? softplusDerivatives
    : kind === "relu"
    ? reluDerivatives
    : kind === "identity"
    ? identityDerivatives
    : (() => {
      throw new Error(`Cannot differentiate activation "${kind}": unknown kind`);
    })();
  return Array.from(zs, (z) => f(z));
}
