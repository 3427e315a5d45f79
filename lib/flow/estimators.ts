/**
 * Stochastic log-det estimators of an invertible residual block y = x + g(x) (SPEC 2.1-2.3):
 *
 * - the basic power-series estimator Σ_k (−1)^(k+1)/k · c_k · ⟨w_k, v⟩ with w_0 = v, w_k = w_(k−1)ᵀJ
 *   (one vector-Jacobian product per term, one Gaussian probe v per example), used with the
 *   truncated (i-ResNet), unbiased Russian-roulette and evaluation plans of `roulette.ts`;
 *   differentiable by naive backprop through every VJP (memory O(n));
 * - the Neumann gradient surrogate s = ⟨uᵀJ, v⟩ with u = v + Σ_(k=1..n) (−1)^k c_k w_k held constant,
 *   whose gradient is the Theorem-2 estimator (memory constant in n);
 * - backward-in-forward: the log-det gradients with respect to x and every parameter of g are taken
 *   during the forward pass and the estimator's graph is freed at once; the returned log-det carries
 *   a hand-written backward that scales the stored gradients by one upstream scalar.
 *
 * Every combination of {naive, Neumann} × {plain, backward-in-forward} goes through
 * {@link residualLogdet}.
 * @module
 */
import { grad, gradMaybe } from "../engine/autograd.ts";
import { CpuStorage } from "../engine/cpu/cpu_storage.ts";
import { Node } from "../engine/graph.ts";
import { requireGrad, zeros } from "../engine/ops/creation.ts";
import { abs, add, div, maximum, mul, sub } from "../engine/ops/elementwise.ts";
import { max, sum } from "../engine/ops/reduce.ts";
import { concat, reshape, sliceAxis, splitFlat } from "../engine/ops/shape.ts";
import { isGradEnabled, noGrad, type Tensor, tidy, withGradMode } from "../engine/tensor.ts";
import type { Module } from "./module.ts";
import { logdetWeight, type SeriesPlan } from "./roulette.ts";

/** The residual branch g of a block: any module with a forward map of the same shape. */
export interface ResidualBranch extends Module {
  /** g(x); must be twice differentiable for the Neumann and backward-in-forward gradients. */
  apply(x: Tensor): Tensor;
}

/** ⟨a_b, c_b⟩ for each example b (sum over every axis after the first), shape [B]. */
export function dotPerExample(a: Tensor, c: Tensor): Tensor {
  const axes = a.shape.map((_, i) => i).slice(1);
  return sum(mul(a, c), axes);
}

/**
 * One vector-Jacobian product wᵀ ∂gx/∂x (the graph of gx is kept). With `createGraph` the result can
 * be differentiated again (naive backprop); without, it carries no graph.
 */
export function vjpStep(gx: Tensor, x: Tensor, w: Tensor, createGraph: boolean): Tensor {
  return grad(gx, [x], { gradOutputs: [w], createGraph, retainGraph: true })[0];
}

/**
 * Hutchinson terms t_k = ⟨w_k, v⟩ = vᵀJ^k v per example for k = 1..n, by repeated VJPs
 * (no graph). Returns n tensors of shape [B].
 */
export function hutchinsonTerms(gx: Tensor, x: Tensor, v: Tensor, n: number): Tensor[] {
  return tidy(() => {
    const out: Tensor[] = [];
    let w = v;
    for (let k = 1; k <= n; k++) {
      const next = vjpStep(gx, x, w, false);
      if (w !== v) w.dispose();
      w = next;
      out.push(dotPerExample(w, v));
    }
    return out;
  });
}

/**
 * The basic estimator Σ_(k=1..n) (−1)^(k+1)/k · c_k · ⟨w_k, v⟩, shape [B]. With `createGraph` it is
 * differentiable in x and the parameters of g by backprop through all n VJPs (memory O(n)); without,
 * each w_k is freed as soon as the next one exists.
 */
export function basicLogdetEstimator(
  gx: Tensor,
  x: Tensor,
  v: Tensor,
  plan: SeriesPlan,
  opts: { createGraph: boolean },
): Tensor {
  return tidy(() => {
    let est = zeros([x.shape[0]], x.device);
    let w = v;
    for (let k = 1; k <= plan.nTerms; k++) {
      const next = vjpStep(gx, x, w, opts.createGraph);
      if (!opts.createGraph && w !== v) w.dispose();
      w = next;
      const acc = add(est, mul(dotPerExample(w, v), logdetWeight(plan, k)));
      if (!opts.createGraph) est.dispose();
      est = acc;
    }
    return est;
  });
}

/** Output of {@link neumannLogdetEstimator}. */
export interface NeumannOutput {
  /** s = ⟨uᵀJ, v⟩ per example, with a graph: its gradient is the Theorem-2 estimator. Not a log-det. */
  readonly surrogate: Tensor;
  /** The basic estimate from the same w_k, per example, without a graph. */
  readonly estimate: Tensor;
}

/**
 * The Neumann gradient surrogate (SPEC 2.2): u = v + Σ_(k=1..n) (−1)^k c_k w_k without a graph (each
 * w_k is freed as soon as it is used, so memory does not depend on n), then one VJP with a graph,
 * s = ⟨uᵀJ, v⟩. Also returns the basic estimate, which costs nothing extra.
 */
export function neumannLogdetEstimator(gx: Tensor, x: Tensor, v: Tensor, plan: SeriesPlan): NeumannOutput {
  return tidy(() => {
    const { u, estimate } = noGrad(() => {
      let acc = reshape(v, v.shape);
      let w = v;
      const dots: Tensor[] = [];
      for (let k = 1; k <= plan.nTerms; k++) {
        const next = vjpStep(gx, x, w, false);
        if (w !== v) w.dispose();
        w = next;
        // The update of u and the product w·v are element-wise ops of one size, recorded back to back
        // so that the per-example sum evaluates them in one kernel on backends that fuse (WebGPU).
        const step = mul(w, (k % 2 === 0 ? 1 : -1) * plan.coeffs[k - 1]);
        const a2 = add(acc, step);
        step.dispose();
        acc.dispose();
        acc = a2;
        dots.push(dotPerExample(w, v));
      }
      if (w !== v) w.dispose();
      // The estimate's terms in the same order as term by term (the same numbers), as one chain of [B] ops.
      let est = zeros([x.shape[0]], x.device);
      dots.forEach((dot, i) => {
        const e2 = add(est, mul(dot, logdetWeight(plan, i + 1)));
        est.dispose();
        dot.dispose();
        est = e2;
      });
      return { u: acc, estimate: est };
    });
    const uJ = vjpStep(gx, x, u, true);
    return { surrogate: dotPerExample(uJ, v), estimate };
  });
}

/** How the training-time gradient of the log-det is formed. */
export type LogdetGradient = "naive" | "neumann";

/**
 * Called on non-CPU devices with the relative spread max_b |upstream_b − upstream_0| / max_b |upstream_b|
 * (a kept scalar tensor, read later: the trainer folds it into its step's readback and compares it with
 * {@link UPSTREAM_REL_TOL}).
 */
export type UpstreamSpreadSink = (spread: Tensor) => void;

/** Floor of the spread's denominator (an all-zero upstream has spread 0). */
const SPREAD_FLOOR = 1e-30;

/** Relative spread of upstream log-det gradients tolerated by backward-in-forward. */
export const UPSTREAM_REL_TOL = 1e-6;

function checkSharedUpstream(gy: Tensor, sink: UpstreamSpreadSink | undefined): void {
  const storage = gy.buffer.storage;
  if (storage instanceof CpuStorage) {
    const d = storage.data;
    let scale = 0;
    for (let i = 0; i < d.length; i++) scale = Math.max(scale, Math.abs(d[i]));
    for (let i = 1; i < d.length; i++) {
      if (Math.abs(d[i] - d[0]) > UPSTREAM_REL_TOL * scale) {
        throw new Error(
          `Cannot backpropagate a backward-in-forward log-det: the upstream gradient differs across examples (example 0: ${
            d[0]
          }, example ${i}: ${
            d[i]
          }); backward-in-forward assumes every example's log-det gets the same upstream scalar (a mean-reduced loss)`,
        );
      }
    }
  } else if (sink && gy.device.name !== "meta") {
    sink(
      noGrad(() =>
        tidy(() => div(max(abs(sub(gy, sliceAxis(gy, 0, 0, 1)))), maximum(max(abs(gy)), SPREAD_FLOOR)))
      ).keep(),
    );
  }
}

/**
 * The backward-in-forward custom op (official `MemoryEfficientLogDetEstimator`). Takes the gradients
 * of Σ_b `gradSource` with respect to `xin` and `params` now (a double backward through the VJPs),
 * and returns `value` (detached) as a new tensor whose backward gives `stored · upstream[0]` to
 * `xNode` and to each parameter. The caller frees `gradSource`'s graph afterwards (dispose it and
 * its intermediates); only the stored gradients survive.
 *
 * Assumption: every example's log-det receives the same upstream gradient (true for mean-reduced
 * bits/dim and the hybrid loss). It is checked at backward time on CPU devices (throws); on other
 * devices the relative spread is handed to `sink` instead of forcing a readback (the trainer reads it
 * with the step's loss and throws when it exceeds {@link UPSTREAM_REL_TOL}).
 */
export function backwardInForward(
  xin: Tensor,
  xNode: Node | null,
  params: readonly Tensor[],
  value: Tensor,
  gradSource: Tensor,
  sink?: UpstreamSpreadSink,
): Tensor {
  const inputs = [xin, ...params];
  const stored = tidy(() => gradMaybe(sum(gradSource), inputs, { retainGraph: true, allowUnused: true }));
  const out = value.detach();
  const parents = [xNode, ...params.map((p) => p.node)];
  if (!isGradEnabled() || parents.every((p) => p === null)) {
    for (const s of stored) s?.dispose();
    return out;
  }
  const present = stored.filter((s): s is Tensor => s !== null);
  const shapes = present.map((s) => s.shape);
  // Several stored gradients are kept as one flat vector, so the backward scales them all with one
  // element-wise op and splits them with a few copies (WebGPU: one dispatch per 15 pieces) instead of
  // one op per gradient; the products are the same.
  const flat = present.length > 1
    ? noGrad(() => tidy(() => concat(present.map((s) => reshape(s, [s.size])), 0)))
    : null;
  const saved = flat ? [flat] : present;
  const node = new Node("logdetBackwardInForward", out.shape, parents, saved, (gy, needs) => {
    checkSharedUpstream(gy, sink);
    const scale = reshape(sliceAxis(gy, 0, 0, 1), []);
    if (flat === null) return stored.map((s, i) => (needs[i] && s !== null ? mul(s, scale) : null));
    const pieces = splitFlat(mul(flat, scale), shapes);
    let k = 0;
    return stored.map((s) => (s === null ? null : pieces[k++]));
  });
  // The node retained what it saved; drop our handles so the node alone owns them.
  for (const s of present) s.dispose();
  flat?.dispose();
  node.retain();
  out.node = node;
  return out;
}

/** What {@link residualLogdet} should compute. */
export interface LogdetRequest {
  /** Number of terms and their weights (truncated, roulette or evaluation plan). */
  readonly plan: SeriesPlan;
  /** The probe v, shape of x (one standard-normal vector per example). */
  readonly probe: Tensor;
  /** Training: a log-det with gradients (per `gradient`, `backwardInForward`); eval: no graph for the log-det. */
  readonly training: boolean;
  /** Naive backprop through the series, or the Neumann surrogate (default "naive"). */
  readonly gradient?: LogdetGradient;
  /** Backward-in-forward (default false). */
  readonly backwardInForward?: boolean;
  /** Receives the upstream-gradient spread on non-CPU devices (backward-in-forward only). */
  readonly upstreamSink?: UpstreamSpreadSink;
}

/** Output of {@link residualLogdet}. */
export interface LogdetResult {
  /** g(x), with its graph to x and the parameters when gradients are being recorded. */
  readonly gx: Tensor;
  /**
   * The log-det estimate per example, [B]. In training its gradient is the chosen estimator's; its
   * value is always the basic estimate (also with the Neumann surrogate, whose own value is not a log-det).
   */
  readonly logdet: Tensor;
  /** The same values without a graph (for logging moments). */
  readonly estimate: Tensor;
}

/**
 * g(x) and a log-det estimate of x ↦ x + g(x) per example, in any of the four training modes or the
 * graph-free evaluation mode. When gradients are not being recorded (noGrad), nothing returned has a
 * graph whatever `training` says.
 */
export function residualLogdet(branch: ResidualBranch, x: Tensor, req: LogdetRequest): LogdetResult {
  const recording = isGradEnabled();
  const gradient = req.gradient ?? "naive";
  const inForward = req.backwardInForward ?? false;
  if (gradient !== "naive" && gradient !== "neumann") {
    throw new Error(`Cannot estimate a log-det with gradient "${gradient}": expected "naive" or "neumann"`);
  }
  if (req.probe.shape.join() !== x.shape.join()) {
    throw new Error(
      `Cannot estimate a log-det: probe shape [${req.probe.shape}] differs from x shape [${x.shape}]`,
    );
  }
  return withGradMode(true, () =>
    tidy(() => {
      const xin = x.node ? x : requireGrad(x.detach());
      const gx = branch.apply(xin);
      const v = req.probe;
      if (!req.training || !recording) {
        const est = basicLogdetEstimator(gx, xin, v, req.plan, { createGraph: false });
        return { gx: recording ? gx : gx.detach(), logdet: est, estimate: est.detach() };
      }
      const params = branch.parameters().map((p) => p.value);
      if (gradient === "naive") {
        const est = basicLogdetEstimator(gx, xin, v, req.plan, { createGraph: true });
        const estimate = est.detach();
        if (!inForward) return { gx, logdet: est, estimate };
        const logdet = backwardInForward(xin, x.node, params, estimate, est, req.upstreamSink);
        return { gx, logdet, estimate };
      }
      const { surrogate, estimate } = neumannLogdetEstimator(gx, xin, v, req.plan);
      if (inForward) {
        const logdet = backwardInForward(xin, x.node, params, estimate, surrogate, req.upstreamSink);
        return { gx, logdet, estimate };
      }
      // Value of the estimate, gradient of the surrogate.
      const shift = noGrad(() => sub(estimate, surrogate));
      return { gx, logdet: add(surrogate, shift), estimate };
    }));
}
