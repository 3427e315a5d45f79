/**
 * The invertible residual block y = x + g(x) (official `iResBlock`) as a flow layer: the log-det by
 * the unbiased Russian-roulette estimator (or the biased i-ResNet truncation), trained with naive
 * backprop or the Neumann gradient series, optionally backward-in-forward; the evaluation estimator
 * (20 exact terms plus roulette) in eval mode; and the fixed-point inverse with a report.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import { add, neg, square } from "../engine/ops/elementwise.ts";
import { mean } from "../engine/ops/reduce.ts";
import { randn } from "../engine/random.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { type LogdetGradient, type ResidualBranch, residualLogdet } from "./estimators.ts";
import {
  fixedPointInverse,
  fixedPointInverseSync,
  type FixedPointOptions,
  type FixedPointReport,
  type FixedPointResult,
} from "./fixed_point.ts";
import {
  BufferState,
  type FlowContext,
  type FlowLayer,
  type FlowOutput,
  nameChildren,
  type Parameter,
} from "./module.ts";
import {
  checkDist,
  type RouletteDist,
  sampleRoulettePlan,
  type SeriesPlan,
  truncatedPlan,
} from "./roulette.ts";

/** Options of {@link IResBlock}. Defaults follow the paper where it differs from the repo (SPEC 1.12). */
export interface IResBlockOptions {
  /** "unbiased" Russian roulette (default) or the biased i-ResNet "truncated" series (training only). */
  readonly estimator?: "unbiased" | "truncated";
  /** Terms always computed before the roulette (default 2). */
  readonly nExactTerms?: number;
  /** Distribution of N: "geometric" (paper, default) or "poisson" (official repo default). */
  readonly nDist?: "geometric" | "poisson";
  /** Geometric success probability (default 0.5). */
  readonly geomP?: number;
  /** Poisson rate (default 2). */
  readonly lambda?: number;
  /** Terms of the truncated series (default 5; used when estimator = "truncated"). */
  readonly nTruncated?: number;
  /** Train with the Neumann gradient series instead of naive backprop (default true, as the official training). */
  readonly neumannGrad?: boolean;
  /** Backward-in-forward (default true, as the official training). */
  readonly backwardInForward?: boolean;
  /** Exact terms of the evaluation estimator (default 20). */
  readonly evalExactTerms?: number;
  /** Settings of the fixed-point inverse (defaults of {@link FixedPointOptions}). */
  readonly inverse?: FixedPointOptions;
}

/** The resolved settings of a block. */
export interface IResBlockSettings {
  /** Unbiased or truncated training estimator. */
  readonly estimator: "unbiased" | "truncated";
  /** Always-computed terms. */
  readonly nExactTerms: number;
  /** Roulette distribution. */
  readonly dist: RouletteDist;
  /** Truncated-series length. */
  readonly nTruncated: number;
  /** Training gradient. */
  readonly gradient: LogdetGradient;
  /** Backward-in-forward. */
  readonly backwardInForward: boolean;
  /** Exact terms in eval mode. */
  readonly evalExactTerms: number;
  /** Fixed-point inverse settings. */
  readonly inverse: FixedPointOptions;
}

/** Resolves and validates block options. */
export function resolveIResBlockOptions(o: IResBlockOptions = {}): IResBlockSettings {
  const estimator = o.estimator ?? "unbiased";
  if (estimator !== "unbiased" && estimator !== "truncated") {
    throw new Error(`Cannot build iResBlock with estimator "${estimator}": expected unbiased or truncated`);
  }
  const nDist = o.nDist ?? "geometric";
  const dist: RouletteDist = nDist === "geometric"
    ? { kind: "geometric", p: o.geomP ?? 0.5 }
    : nDist === "poisson"
    ? { kind: "poisson", lambda: o.lambda ?? 2 }
    : (() => {
      throw new Error(`Cannot build iResBlock with nDist "${nDist}": expected geometric or poisson`);
    })();
  checkDist(dist);
  const ints: [string, number][] = [
    ["nExactTerms", o.nExactTerms ?? 2],
    ["nTruncated", o.nTruncated ?? 5],
    ["evalExactTerms", o.evalExactTerms ?? 20],
  ];
  for (const [name, v] of ints) {
    if (!Number.isInteger(v) || v < 0 || (name === "nTruncated" && v < 1)) {
      throw new Error(`Cannot build iResBlock with ${name} = ${v}: expected a non-negative integer`);
    }
  }
  return {
    estimator,
    nExactTerms: ints[0][1],
    dist,
    nTruncated: ints[1][1],
    gradient: (o.neumannGrad ?? true) ? "neumann" : "naive",
    backwardInForward: o.backwardInForward ?? true,
    evalExactTerms: ints[2][1],
    inverse: o.inverse ?? {},
  };
}

/**
 * y = x + g(x) with a stochastic log-det. Per forward call with a log-det it draws (from `ctx.rng`,
 * in this order) one N for the whole batch and one Gaussian probe per example, and records the first
 * and second moments of its per-example estimate in the buffers `last_firmom` / `last_secmom` (and N
 * in `last_n_samples`), as tensors, without reading them back.
 *
 * Parameter names are the branch's, prefixed "nnet." (the official layout).
 */
export class IResBlock implements FlowLayer {
  /** Layer kind. */
  readonly kind = "iResBlock";
  /** The residual branch g. */
  readonly nnet: ResidualBranch;
  /** Resolved settings. */
  readonly settings: IResBlockSettings;
  /** Sampled N of the last call with a roulette plan, shape [1]. */
  readonly lastNSamples: BufferState = new BufferState("last_n_samples");
  /** Mean over the batch of the last log-det estimate, a scalar. */
  readonly lastFirmom: BufferState = new BufferState("last_firmom");
  /** Mean over the batch of the squared last estimate, a scalar. */
  readonly lastSecmom: BufferState = new BufferState("last_secmom");
  /** The plan (terms and weights) of the last log-det, or null. */
  lastPlan: SeriesPlan | null = null;
  /** Report of the last inverse, or null. */
  lastInverse: FixedPointReport | null = null;
  /**
   * On non-CPU devices, the relative spread max_b |upstream_b − upstream_0| / max_b |upstream_b| of the
   * last backward-in-forward backward (a kept scalar; above `UPSTREAM_REL_TOL` means the shared-upstream
   * assumption was broken: the trainer checks it in its step readback). CPU devices throw instead.
   */
  lastUpstreamSpread: Tensor | null = null;

  /** Wraps a branch; its parameters are renamed "nnet.<name>". */
  constructor(nnet: ResidualBranch, options: IResBlockOptions = {}) {
    this.nnet = nnet;
    this.settings = resolveIResBlockOptions(options);
    nameChildren("nnet", nnet);
  }

  /** Parameters of g. */
  parameters(): Parameter[] {
    return this.nnet.parameters();
  }

  /** Buffers of g, then the estimator diagnostics. */
  buffers(): BufferState[] {
    return [...this.nnet.buffers(), this.lastNSamples, this.lastFirmom, this.lastSecmom];
  }

  /** The series plan for one call: training (unbiased or truncated) or evaluation. Draws N from ctx.rng. */
  planFor(ctx: FlowContext): SeriesPlan {
    const s = this.settings;
    if (!ctx.training) return sampleRoulettePlan(s.dist, s.evalExactTerms, ctx.rng);
    if (s.estimator === "truncated") return truncatedPlan(s.nTruncated);
    return sampleRoulettePlan(s.dist, s.nExactTerms, ctx.rng);
  }

  /** y = x + g(x) and the per-example log-det estimate (null when ctx.skipLogdet). */
  forward(x: Tensor, ctx: FlowContext): FlowOutput {
    if (ctx.skipLogdet) return { y: tidy(() => add(x, this.nnet.apply(x))), logdet: null };
    const plan = this.planFor(ctx);
    const out = tidy(() => {
      const probe = randn(x.shape, ctx.rng, x.device);
      const r = residualLogdet(this.nnet, x, {
        plan,
        probe,
        training: ctx.training,
        gradient: this.settings.gradient,
        backwardInForward: this.settings.backwardInForward,
        upstreamSink: (spread) => {
          this.lastUpstreamSpread?.dispose();
          this.lastUpstreamSpread = spread;
        },
      });
      noGrad(() => {
        this.lastFirmom.set(mean(r.estimate));
        this.lastSecmom.set(mean(square(r.estimate)));
      });
      return { y: add(x, r.gx), logdet: r.logdet };
    });
    this.lastPlan = plan;
    if (plan.sampledN !== null) this.lastNSamples.set(tensor([plan.sampledN], [1], x.device));
    return out;
  }

  /** x = f⁻¹(y) on CPU devices (throws on devices without synchronous readback: use {@link inverseAsync}). */
  inverse(y: Tensor, ctx: FlowContext): Tensor | Promise<Tensor> {
    const opts = ctx.onUnconverged
      ? { ...this.settings.inverse, onUnconverged: ctx.onUnconverged }
      : undefined;
    if (y.device.name === "cpu") {
      const r = fixedPointInverseSync(this.nnet, y, opts ?? this.settings.inverse);
      this.lastInverse = r.report;
      return r.x;
    }
    return this.inverseAsync(y, opts).then((r) => r.x);
  }

  /** x = f⁻¹(y) on any device, with the iteration report (also kept in `lastInverse`). */
  async inverseAsync(y: Tensor, opts?: FixedPointOptions): Promise<FixedPointResult> {
    const r = await fixedPointInverse(this.nnet, y, opts ?? this.settings.inverse);
    this.lastInverse = r.report;
    return r;
  }

  /**
   * The inverse together with its log-det, log|det ∂x/∂y| = −(the block's estimate recomputed at the
   * solved x), with the ctx's estimator (draws from ctx.rng). The log-det carries no graph.
   */
  async inverseWithLogdet(
    y: Tensor,
    ctx: FlowContext,
    opts?: FixedPointOptions,
  ): Promise<FixedPointResult & { readonly logdet: Tensor }> {
    const r = await this.inverseAsync(y, opts);
    const logdet = noGrad(() =>
      tidy(() => {
        const out = this.forward(r.x, { ...ctx, skipLogdet: false });
        return neg(out.logdet!);
      })
    );
    return { ...r, logdet };
  }
}
