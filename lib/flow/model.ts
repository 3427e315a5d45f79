/**
 * The multiscale Residual Flow (SPEC 4.3-4.6): config in, model out.
 *
 * Per scale: [init layer and ActNorm on scale 0] → n × ([1×1 conv] → block → [ActNorm]) → squeeze
 * (all but the last scale) → factor-out of half the channels (with `factorOut`); the last scale ends
 * with the fully connected residual blocks (`fcEnd`). The output z concatenates every factored-out
 * piece and the final tensor, all under one standard normal prior.
 * @module
 */
import { concat, reshape, sliceAxis } from "../engine/ops/shape.ts";
import { add, mul } from "../engine/ops/elementwise.ts";
import { Rng } from "../engine/random.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import { requireGrad } from "../engine/ops/creation.ts";
import { ActNorm1d, ActNorm2d } from "./actnorm.ts";
import type { ActivationKind } from "./activations.ts";
import { type ActivationName, numScales, type ResidualFlowConfig } from "./config.ts";
import { alternatingMask, ChannelCouplingBlock, MaskedCouplingBlock } from "./coupling.ts";
import { InvertibleConv2d } from "./invconv.ts";
import { exactLogdet } from "./exact_logdet.ts";
import { IResBlock, type IResBlockOptions } from "./iresblock.ts";
import { LogitTransform } from "./logit.ts";
import {
  type BufferState,
  type FlowContext,
  type FlowLayer,
  type Module,
  nameChildren,
  type Parameter,
} from "./module.ts";
import { Normalize } from "./normalize.ts";
import { bitsPerDim, samplePrior, standardNormalLogProb } from "./prior.ts";
import { buildConvBranch, buildFcBranch } from "./resblock_nets.ts";
import {
  convergeLipschitzAll,
  type InducedNormLayer,
  type LipschitzUpdate,
  SpectralNormConv2d,
  updateLipschitzAll,
} from "./spectral_norm.ts";
import { Squeeze } from "./squeeze.ts";

/** A step of the model's chain: an invertible layer, or a factor-out that sends half the channels to z. */
export type Stage =
  | { readonly kind: "layer"; readonly layer: FlowLayer; readonly scale: number }
  | { readonly kind: "factorOut"; readonly scale: number; readonly keep: number; readonly out: number };

/** Per-image shapes seen by each scale (for the classifier heads and for the inverse). */
export interface ScaleShape {
  /** [C, H, W] inside the scale's blocks. */
  readonly blocks: readonly [number, number, number];
  /** [C, H, W] at the scale's end (after its squeeze, before factor-out). */
  readonly end: readonly [number, number, number];
}

/** Output of {@link ResidualFlow.forward}. */
export interface ModelOutput {
  /** Latent z, flattened per example: [B, D]. */
  readonly z: Tensor;
  /** Sum of every layer's log-det per example, [B] (null when log-dets were skipped). */
  readonly logdet: Tensor | null;
  /** log N(z; 0, I) per example, [B]. */
  readonly logpz: Tensor;
  /** log p(x) of the continuous (dequantised) input per example, [B] (null when skipped). */
  readonly logpx: Tensor | null;
  /** The tensor at the end of each scale (after its squeeze), for hybrid classifier heads. */
  readonly features: readonly Tensor[];
}

/** Options of the builder besides the config. */
export interface BuildOptions {
  /** Initial weights, permutations and power-iteration starts. */
  readonly rng: Rng;
  /** Device of every parameter. */
  readonly device: Device;
  /** Replace the logit transform by a per-channel Normalize (hybrid CIFAR-10, SPEC 1.8). */
  readonly normalize?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}

function activationKind(a: ActivationName): ActivationKind {
  return a === "lipswish" ? "swish" : a;
}

/**
 * A Residual Flow (or the coupling baseline) built from a {@link ResidualFlowConfig}.
 *
 * @example
 * ```ts
 * import { createDevice, rand, Rng } from "../engine/mod.ts";
 * import { makeConfig } from "./config.ts";
 *
 * const device = await createDevice("cpu");
 * const cfg = makeConfig({ inputShape: [1, 28, 28], nBlocks: [2, 2], hiddenChannels: 32, fcEnd: false });
 * const model = new ResidualFlow(cfg, { rng: new Rng(0), device });
 * const x01 = rand([4, 1, 28, 28], new Rng(2), device); // dequantised images in [0, 1)
 * const out = model.forward(x01, { training: true, rng: new Rng(1) });
 * const bpd = model.bitsPerDim(out.logpx!);
 * ```
 */
export class ResidualFlow implements Module {
  /** The configuration it was built from. */
  readonly config: ResidualFlowConfig;
  /** The chain, in forward order. */
  readonly stages: readonly Stage[];
  /** Shapes per scale. */
  readonly scaleShapes: readonly ScaleShape[];
  /** Values per example of the input (D). */
  readonly dims: number;
  readonly #named: { name: string; module: Module }[] = [];

  /** Builds the model. */
  constructor(config: ResidualFlowConfig, opts: BuildOptions) {
    this.config = config;
    const { rng, device } = opts;
    const stages: Stage[] = [];
    const shapes: ScaleShape[] = [];
    let [c, h, w] = config.inputShape;
    this.dims = c * h * w;
    let index = 0;
    const push = (layer: FlowLayer, scale: number) => {
      nameChildren(String(index), layer);
      this.#named.push({ name: String(index), module: layer });
      stages.push({ kind: "layer", layer, scale });
      index++;
    };
    if (config.squeezeFirst) {
      push(new Squeeze(), 0);
      [c, h, w] = [c * 4, h / 2, w / 2];
    }
    if (opts.normalize) push(new Normalize({ ...opts.normalize, device }), 0);
    else if (config.logitAlpha !== null) push(new LogitTransform({ alpha: config.logitAlpha }), 0);
    const nScales = numScales(config);
    const act = activationKind(config.activation);
    const blockOpts: IResBlockOptions = {
      estimator: config.estimator.kind,
      nExactTerms: config.estimator.nExactTerms,
      nDist: config.estimator.nDist,
      geomP: config.estimator.nDist === "geometric" ? config.estimator.nDistParam : undefined,
      lambda: config.estimator.nDist === "poisson" ? config.estimator.nDistParam : undefined,
      nTruncated: config.estimator.nTruncated,
      neumannGrad: config.estimator.neumannGrad,
      backwardInForward: config.estimator.backwardInForward,
      evalExactTerms: config.estimator.evalExactTerms,
    };
    const spectral = {
      coeff: config.coeff,
      nIterations: config.spectral.nIterations,
      atol: config.spectral.tol,
      rtol: config.spectral.tol,
      maxIterations: config.spectral.maxIterations,
    };
    let coupling = 0;
    for (let s = 0; s < nScales; s++) {
      const blocksShape: [number, number, number] = [c, h, w];
      if (s === 0 && config.actnorm) push(new ActNorm2d({ channels: c, device }), s);
      for (let b = 0; b < config.nBlocks[s]; b++) {
        if (config.quadratic) push(new InvertibleConv2d({ channels: c, rng, device }), s);
        if (config.block === "resblock") {
          const branch = buildConvBranch({
            ...spectral,
            inChannels: c,
            hidden: config.hiddenChannels,
            kernels: config.kernels,
            activation: act,
            leadingActivation: config.preact && !(s === 0 && b === 0),
            inputHW: [h, w],
            rng,
            device,
          });
          push(new IResBlock(branch, blockOpts), s);
        } else {
          const common = {
            channels: c,
            hidden: config.hiddenChannels,
            kernels: config.kernels,
            activation: act,
            rng,
            device,
          };
          push(
            s === 0
              ? new MaskedCouplingBlock({ ...common, mask: alternatingMask("checkerboard", coupling) })
              : new ChannelCouplingBlock({ ...common, mask: alternatingMask("channel", coupling) }),
            s,
          );
          coupling++;
        }
        if (config.actnorm) push(new ActNorm2d({ channels: c, device }), s);
      }
      const last = s === nScales - 1;
      if (!last) {
        push(new Squeeze(), s);
        [c, h, w] = [c * 4, h / 2, w / 2];
        shapes.push({ blocks: blocksShape, end: [c, h, w] });
        if (config.factorOut) {
          const keep = c / 2;
          stages.push({ kind: "factorOut", scale: s, keep, out: c - keep });
          c = keep;
        }
      } else {
        if (config.fcEnd) {
          if (config.block !== "resblock") {
            throw new Error(
              "Cannot build FC end blocks for the coupling baseline: set fcEnd false (the paper's hybrid models have none)",
            );
          }
          for (let f = 0; f < config.fcBlocks; f++) {
            const branch = buildFcBranch({
              ...spectral,
              inputShape: [c, h, w],
              hidden: config.fcHidden,
              activation: act,
              leadingActivation: config.preact,
              rng,
              device,
            });
            push(new IResBlock(branch, blockOpts), s);
            if (config.actnorm) push(new ActNorm1d({ channels: c * h * w, device }), s);
          }
        }
        shapes.push({ blocks: blocksShape, end: [c, h, w] });
      }
    }
    this.stages = stages;
    this.scaleShapes = shapes;
    // Power-iteration vectors start at the known input resolution (the official scripts do this with a
    // dummy forward); 1x1 convolutions iterate on the channel matrix, whatever the resolution.
    for (const l of this.lipschitzLayers()) {
      if (l instanceof SpectralNormConv2d && !l.initialized) l.initialize(l.inputHW ?? [1, 1]);
    }
  }

  /** Every parameter, with names "<stage index>.<name>". */
  parameters(): Parameter[] {
    return this.#named.flatMap((n) => n.module.parameters());
  }

  /** Every buffer, with names "<stage index>.<name>". */
  buffers(): BufferState[] {
    return this.#named.flatMap((n) => n.module.buffers());
  }

  /** The residual blocks (for estimator diagnostics). */
  residualBlocks(): IResBlock[] {
    return this.stages.flatMap((s) => (s.kind === "layer" && s.layer instanceof IResBlock ? [s.layer] : []));
  }

  /** Every spectrally normalised layer, for the power-iteration update. */
  lipschitzLayers(): InducedNormLayer[] {
    return this.residualBlocks().flatMap((b) => {
      const n = b.nnet as unknown as { lipschitzLayers?: () => InducedNormLayer[] };
      return n.lipschitzLayers ? n.lipschitzLayers() : [];
    });
  }

  /**
   * First use of the power iteration: every normalised layer to its tolerance (see
   * `convergeLipschitzAll`). Run it once on a freshly built model before training or evaluating it (the
   * trainer does so before a fresh run's first step; a checkpoint brings converged vectors instead).
   */
  async convergeLipschitz(): Promise<LipschitzUpdate[]> {
    const layers = this.lipschitzLayers();
    return layers.length ? await convergeLipschitzAll(layers) : [];
  }

  /** Runs the power iteration on every normalised layer (after each optimizer step, before evaluation). */
  async updateLipschitz(opts: { nIterations?: number } = {}): Promise<LipschitzUpdate[]> {
    const layers = this.lipschitzLayers();
    return layers.length ? await updateLipschitzAll(layers, opts) : [];
  }

  /**
   * Forward pass on dequantised images x ∈ [0, 1)^{C×H×W} (shape [B, C, H, W]): z, the log-det and
   * log p(x). With `ctx.skipLogdet` only z (and the features) are computed.
   */
  forward(x: Tensor, ctx: FlowContext): ModelOutput {
    const [c, h, w] = this.config.inputShape;
    if (x.rank !== 4 || x.shape[1] !== c || x.shape[2] !== h || x.shape[3] !== w) {
      throw new Error(`Cannot run the model on input [${x.shape}]: expected [B, ${c}, ${h}, ${w}]`);
    }
    const batch = x.shape[0];
    const zs: Tensor[] = [];
    const features: Tensor[] = [];
    let logdet: Tensor | null = null;
    let cur = x;
    let prevScale = 0;
    for (const st of this.stages) {
      if (st.kind === "factorOut") {
        features.push(cur);
        zs.push(reshape(sliceAxis(cur, 1, st.keep, st.out), [batch, -1]));
        cur = sliceAxis(cur, 1, 0, st.keep);
        prevScale = st.scale + 1;
        continue;
      }
      if (st.scale !== prevScale) {
        if (!this.config.factorOut) features.push(cur);
        prevScale = st.scale;
      }
      const out = st.layer.forward(cur, ctx);
      cur = out.y;
      if (out.logdet && !ctx.skipLogdet) logdet = logdet ? add(logdet, out.logdet) : out.logdet;
    }
    features.push(cur);
    zs.push(reshape(cur, [batch, -1]));
    const z = zs.length === 1 ? zs[0] : concat(zs, 1);
    const logpz = standardNormalLogProb(z);
    const logpx = ctx.skipLogdet ? null : logdet ? add(logpz, logdet) : logpz;
    return { z, logdet, logpz, logpx, features };
  }

  /**
   * The forward pass with every log-det exact (no graph): residual blocks by their full Jacobian
   * (exact_logdet.ts: one backward pass per input value of a block and a float64 LU on the host), the
   * other layers by their analytic log-dets. For small models and tests only. All returned tensors
   * belong to the caller.
   */
  async forwardExact(x: Tensor): Promise<ModelOutput> {
    const ctx: FlowContext = { training: false, rng: new Rng(0) };
    const batch = x.shape[0];
    const zs: Tensor[] = [];
    const features: Tensor[] = [];
    const temps: Tensor[] = [];
    let logdet: Tensor | null = null;
    let cur = x;
    let prevScale = 0;
    const addLogdet = (ld: Tensor) => {
      const next: Tensor = logdet ? noGrad(() => add(logdet!, ld)) : ld;
      if (logdet) {
        logdet.dispose();
        ld.dispose();
      }
      logdet = next;
    };
    try {
      for (const st of this.stages) {
        if (st.kind === "factorOut") {
          features.push(cur);
          zs.push(noGrad(() => tidy(() => reshape(sliceAxis(cur, 1, st.keep, st.out), [batch, -1]))));
          cur = noGrad(() => sliceAxis(cur, 1, 0, st.keep));
          temps.push(cur);
          prevScale = st.scale + 1;
          continue;
        }
        if (st.scale !== prevScale) {
          if (!this.config.factorOut) features.push(cur);
          prevScale = st.scale;
        }
        const input = cur;
        if (st.layer instanceof IResBlock) {
          const block = st.layer;
          const xg = requireGrad(input.detach());
          const gx = block.nnet.apply(xg);
          try {
            addLogdet(await exactLogdet(gx, xg));
          } finally {
            gx.dispose();
            xg.dispose();
          }
          cur = noGrad(() => block.forward(input, { ...ctx, skipLogdet: true }).y);
        } else {
          const out = noGrad(() => st.layer.forward(input, ctx));
          if (out.logdet) addLogdet(out.logdet);
          cur = out.y;
        }
        temps.push(cur);
      }
      features.push(cur);
      zs.push(noGrad(() => reshape(cur, [batch, -1])));
      const z = zs.length === 1 ? zs[0] : noGrad(() => concat(zs, 1));
      const logpz = noGrad(() => standardNormalLogProb(z));
      const ld: Tensor = logdet ?? noGrad(() => mul(logpz, 0));
      const logpx = noGrad(() => add(logpz, ld));
      if (zs.length > 1) zs.forEach((t) => t.dispose());
      const keep = new Set<Tensor>(features);
      temps.forEach((t) => keep.has(t) || t.dispose());
      return { z, logdet: ld, logpz, logpx, features };
    } catch (e) {
      temps.forEach((t) => t.dispose());
      zs.forEach((t) => t.dispose());
      (logdet as Tensor | null)?.dispose();
      throw e;
    }
  }

  /** Bits/dim per example [B] from log p(x) (uniform dequantisation bound, SPEC 4.6); take the mean for a batch figure. */
  bitsPerDim(logpx: Tensor): Tensor {
    return bitsPerDim(logpx, { dims: this.dims, nvals: this.config.nvals });
  }

  /** The inverse: x ∈ [0, 1] images from latents z [B, D] (residual blocks by fixed-point iteration). */
  async inverse(z: Tensor, ctx: FlowContext): Promise<Tensor> {
    const batch = z.shape[0];
    // Sizes of the factored pieces in forward order, then the final tensor.
    const pieces: { stage: number; shape: number[] }[] = [];
    for (let i = 0; i < this.stages.length; i++) {
      const st = this.stages[i];
      if (st.kind === "factorOut") {
        const [, h, w] = this.scaleShapes[st.scale].end;
        pieces.push({ stage: i, shape: [batch, st.out, h, w] });
      }
    }
    const last = this.scaleShapes[this.scaleShapes.length - 1].end;
    const finalShape = [batch, ...last];
    const sizes = [...pieces.map((p) => p.shape[1] * p.shape[2] * p.shape[3]), last[0] * last[1] * last[2]];
    if (z.rank !== 2 || z.shape[1] !== sizes.reduce((a, b) => a + b, 0)) {
      throw new Error(
        `Cannot invert latents of shape [${z.shape}]: expected [B, ${sizes.reduce((a, b) => a + b, 0)}]`,
      );
    }
    const offsets: number[] = [];
    sizes.reduce((o, s) => (offsets.push(o), o + s), 0);
    let cur = noGrad(() =>
      tidy(() => reshape(sliceAxis(z, 1, offsets[offsets.length - 1], sizes[sizes.length - 1]), finalShape))
    );
    let piece = pieces.length - 1;
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const st = this.stages[i];
      const prev = cur;
      if (st.kind === "factorOut") {
        const p = pieces[piece];
        cur = noGrad(() =>
          tidy(() => concat([prev, reshape(sliceAxis(z, 1, offsets[piece], sizes[piece]), p.shape)], 1))
        );
        piece--;
      } else {
        cur = await noGrad(() => st.layer.inverse(prev, ctx));
      }
      if (prev !== cur) prev.dispose();
    }
    return cur;
  }

  /** Frees every parameter and buffer (the model cannot be used afterwards). */
  dispose(): void {
    for (const p of this.parameters()) p.value.dispose();
    for (const b of this.buffers()) b.set(null);
    // Backward-in-forward's upstream-spread diagnostic is kept outside the buffers (non-CPU devices).
    for (const blk of this.residualBlocks()) {
      blk.lastUpstreamSpread?.dispose();
      blk.lastUpstreamSpread = null;
    }
  }

  /** Draws `n` images by inverting z ~ N(0, T²I) (temperature T). */
  async sample(n: number, ctx: FlowContext, temperature = 1): Promise<Tensor> {
    const d = this.stages.length ? this.parameters()[0]?.value.device : undefined;
    if (!d) throw new Error("Cannot sample from a model without parameters");
    const z = samplePrior([n, this.dims], ctx.rng, d, temperature);
    try {
      return await this.inverse(z, ctx);
    } finally {
      z.dispose();
    }
  }
}
