/**
 * The shared shape of every layer: named parameters and buffers that an optimizer, a checkpoint and
 * the EMA can walk, and (for flow layers) a forward pass that returns the per-example log-det and an
 * inverse.
 * @module
 */
import { requireGrad } from "../engine/ops/creation.ts";
import type { Rng } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";

/**
 * A trainable tensor held by a layer. The optimizer replaces `value` after each step (tensors are
 * immutable); layers must read `param.value` at every use, never cache it.
 */
export class Parameter {
  /** Dotted name inside its model, set by the owner (e.g. "blocks.3.nnet.0.weight"). */
  name: string;
  #value: Tensor;

  /** Wraps a tensor as a parameter: it requires gradients and is kept out of `tidy` scopes. */
  constructor(name: string, value: Tensor) {
    this.name = name;
    this.#value = requireGrad(value).keep();
  }

  /** The current tensor. */
  get value(): Tensor {
    return this.#value;
  }

  /** Replaces the tensor (disposing the previous one). The new one requires gradients and is kept. */
  set(value: Tensor): void {
    if (value === this.#value) return;
    const old = this.#value;
    this.#value = requireGrad(value).keep();
    old.dispose();
  }
}

/**
 * A non-trainable tensor held by a layer (power-iteration vectors, ActNorm's initialised flag,
 * recorded input sizes). Same replace-on-update rule as {@link Parameter}, but no gradient.
 */
export class BufferState {
  /** Dotted name inside its model. */
  name: string;
  #value: Tensor | null;

  /** Creates a buffer, possibly empty until the first forward. */
  constructor(name: string, value: Tensor | null = null) {
    this.name = name;
    this.#value = value ? value.keep() : null;
  }

  /** The current tensor, or null before initialisation. */
  get value(): Tensor | null {
    return this.#value;
  }

  /** Replaces the tensor, taking ownership of `value` (stored detached) and disposing the previous one. */
  set(value: Tensor | null): void {
    if (value === this.#value) return;
    const old = this.#value;
    this.#value = value ? value.detach().keep() : null;
    value?.dispose();
    old?.dispose();
  }
}

/** Anything with parameters and buffers. */
export interface Module {
  /** Every parameter, depth first, with stable names. */
  parameters(): Parameter[];
  /** Every buffer, depth first, with stable names. */
  buffers(): BufferState[];
}

/** Settings that change how a flow layer runs, passed down through a model. */
export interface FlowContext {
  /** Training mode: stochastic log-det estimators with gradients; eval mode: the evaluation estimator. */
  readonly training: boolean;
  /** Source of the random N and probes; each block draws from it in order. */
  readonly rng: Rng;
  /** Skip log-det computation entirely (classification-only runs, sampling). */
  readonly skipLogdet?: boolean;
  /**
   * What a fixed-point inverse does at its iteration cap: "throw" (the blocks' default) or "report"
   * (keep the last iterate; the block's `lastInverse` says it did not converge), for callers that
   * count non-convergence as a measured outcome.
   */
  readonly onUnconverged?: "throw" | "report";
}

/** Output of a flow layer's forward pass. */
export interface FlowOutput {
  /** The transformed tensor. */
  readonly y: Tensor;
  /** log|det ∂y/∂x| per example, shape [B] (natural log); null when skipped or identically zero. */
  readonly logdet: Tensor | null;
}

/** An invertible layer. */
export interface FlowLayer extends Module {
  /** Layer kind for logs and checkpoints (e.g. "ActNorm2d", "iResBlock"). */
  readonly kind: string;
  /** y = f(x) and log|det J_f(x)| per example. */
  forward(x: Tensor, ctx: FlowContext): FlowOutput;
  /**
   * x = f⁻¹(y). Analytic inverses may return synchronously; iterative ones (fixed-point inversion of
   * residual blocks) read back to test convergence and return a promise. Callers always `await`.
   * Iterative inverses must report non-convergence, never stop silently.
   */
  inverse(y: Tensor, ctx: FlowContext): Tensor | Promise<Tensor>;
}

/** Prefixes the names of a child's parameters and buffers (call once when composing). */
export function nameChildren(prefix: string, child: Module): void {
  for (const p of child.parameters()) p.name = `${prefix}.${p.name}`;
  for (const b of child.buffers()) b.name = `${prefix}.${b.name}`;
}
