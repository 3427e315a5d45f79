/**
 * The multiscale ResidualFlow: the two tiny official models of model_tiny.json and
 * model_tiny_factor_out.json reproduced number for number (every intermediate output, z, the exact
 * per-layer and whole-model log-dets, log p(x), bits/dim, and the eval estimator's mean within three
 * standard errors of the exact log p(x)) in float64, float32 and on WebGPU; invariants of small random
 * models (round trips, gradients, Lipschitz bounds after the power iteration, sampling, the exact
 * log-det against the brute-force Jacobian); and the peak memory of one training step for the four
 * gradient modes at the paper's MNIST size on the meta device.
 */
import { createDevice } from "../engine/devices.ts";
import { full, requireGrad, tensor } from "../engine/ops/creation.ts";
import { sliceAxis } from "../engine/ops/shape.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { ActNormBase } from "./actnorm.ts";
import { Elu, LipSwish } from "./activations.ts";
import { makeConfig, type ResidualFlowConfig } from "./config.ts";
import { slogdet } from "./dense_test_util.ts";
import { exactLogdet } from "./exact_logdet.ts";
import { IResBlock } from "./iresblock.ts";
import { fixtureFiles, fixtureTensor, flat, jacobians, loadFixture } from "./layer_test_util.ts";
import { LogitTransform } from "./logit.ts";
import { ResidualFlow } from "./model.ts";
import type { FlowContext } from "./module.ts";
import { bitsPerDimHost } from "./prior.ts";
import { SequentialBranch } from "./resblock_nets.ts";
import { SpectralNormConv2d } from "./spectral_norm.ts";

/** float64 (README): ~1e-10 relative, 1e-12 absolute on values and log-dets. */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** float64 Jacobian entries (sums of products through the whole model). */
const F64_JAC: Tolerance = { atol: 1e-11, rtol: 1e-9 };
/**
 * float32 outputs through up to eleven layers (README: ~1e-5 relative per layer; measured ≤ 1.4e-6
 * on CPU and WebGPU).
 */
const F32: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** float32 entries of the whole model's Jacobian dz/dx (entries up to ~10). */
const F32_JAC: Tolerance = { atol: 2e-5, rtol: 2e-5 };
/** float32 per-layer log-dets (README: 1e-4 relative on block log-dets; ActNorm/logit sums of 64 terms). */
const F32_LOGDET: Tolerance = { atol: 1e-4, rtol: 1e-5 };
/**
 * float32 whole-model log p(x) (README: about 1e-3 absolute; measured ≤ 2.2e-5 through the WebGPU
 * brute-force Jacobian, ≤ 3.3e-6 on CPU).
 */
const F32_LOGPX: Tolerance = { atol: 2e-4, rtol: 0 };
/** float32 bits/dim: F32_LOGPX nats of log p over D·ln 2 (D values per example). */
const F32_BPD = (dims: number): Tolerance => ({ atol: F32_LOGPX.atol / (dims * Math.LN2), rtol: 0 });
/** σ of a fixture convolution from exact singular vectors vs the fixture's converged σ (1e-14 apart). */
const SIGMA_F64: Tolerance = { atol: 0, rtol: 1e-12 };
/** Agreement required of the eval estimator's mean with the exact log p(x), in standard errors. */
const EVAL_SE = 3;
/**
 * Largest ratio (either way) between our eval estimator's standard deviation and the fixture's, with at
 * least 100 draws on each side (measured 0.87-1.13 with 200 draws).
 */
const EVAL_SD_RATIO = 1.5;

// deno-lint-ignore no-explicit-any
type Json = any;

/** The fixture's activation name (fixtures README) as a config activation. */
const FIXTURE_ACTIVATIONS: Record<string, ResidualFlowConfig["activation"]> = {
  LipSwish: "lipswish",
  ELU: "elu",
};

/**
 * A fixture model's configuration, read from its `config` (input size, blocks per scale, hidden width,
 * kernels, activation, coeff, logit alpha, factor-out, actnorm, preact, the eval estimator's roulette).
 */
function tinyConfig(fx: Json): ResidualFlowConfig {
  const c = fx.config;
  const activation = FIXTURE_ACTIVATIONS[c.activation];
  if (!activation) throw new Error(`Cannot read ${fx._meta.fixture}: unknown activation "${c.activation}"`);
  if (c.fc_end || c.init_layer !== "LogitTransform" || !c.first_resblock || c.vnorms !== "2222") {
    throw new Error(
      `Cannot read ${fx._meta.fixture}: expected fc_end false, a LogitTransform init layer, first_resblock and ` +
        `vnorms 2222 (got ${c.fc_end}, ${c.init_layer}, ${c.first_resblock}, ${c.vnorms})`,
    );
  }
  const [, ch, h, w] = c.input_size as number[];
  return makeConfig({
    inputShape: [ch, h, w],
    nBlocks: c.n_blocks,
    hiddenChannels: c.intermediate_dim,
    kernels: (c.kernels as string).split("-").map(Number) as [number, number, number],
    fcEnd: false,
    logitAlpha: c.logit_alpha,
    factorOut: c.factor_out,
    actnorm: c.actnorm,
    preact: c.preact,
    activation,
    coeff: c.coeff,
    // The fixture's eval estimator: Poisson(λ) roulette after the given exact terms (official default 20).
    estimator: {
      kind: "unbiased",
      nTruncated: 5,
      nDist: c.n_dist,
      nDistParam: c.poisson_lambda,
      nExactTerms: 2,
      evalExactTerms: c.eval_exact_terms,
      neumannGrad: true,
      backwardInForward: true,
    },
  });
}

/** The dense matrix (rows: outputs, columns: inputs) of x ↦ conv2d(x, w) at H×W, stride 1, zero padding. */
function convMatrix(
  w: Float64Array,
  [o, c, k]: number[],
  pad: number,
  h: number,
  wd: number,
): { a: Float64Array; rows: number; cols: number } {
  const rows = o * h * wd;
  const cols = c * h * wd;
  const a = new Float64Array(rows * cols);
  for (let oc = 0; oc < o; oc++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < wd; j++) {
        const r = (oc * h + i) * wd + j;
        for (let ic = 0; ic < c; ic++) {
          for (let di = 0; di < k; di++) {
            for (let dj = 0; dj < k; dj++) {
              const ii = i + di - pad;
              const jj = j + dj - pad;
              if (ii < 0 || ii >= h || jj < 0 || jj >= wd) continue;
              a[r * cols + (ic * h + ii) * wd + jj] += w[((oc * c + ic) * k + di) * k + dj];
            }
          }
        }
      }
    }
  }
  return { a, rows, cols };
}

/** y = A x (transpose: Aᵀ x) for a row-major rows×cols matrix. */
function matVec(
  a: Float64Array,
  rows: number,
  cols: number,
  x: Float64Array,
  transpose = false,
): Float64Array {
  const y = new Float64Array(transpose ? cols : rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (transpose) y[c] += a[r * cols + c] * x[r];
      else y[r] += a[r * cols + c] * x[c];
    }
  }
  return y;
}

function unit(x: Float64Array): Float64Array {
  const n = Math.hypot(...x);
  return x.map((v) => v / n);
}

/**
 * The top singular pair (u, v) of A, as the official power iteration converges to it: the top
 * eigenvector of the smaller Gram matrix by repeated squaring (robust to nearly equal top singular
 * values, where plain power iteration needs many thousands of steps), then u = Av/‖Av‖.
 */
function topSingularPair(a: Float64Array, rows: number, cols: number): { u: Float64Array; v: Float64Array } {
  const onV = rows >= cols;
  const n = onV ? cols : rows;
  let g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      if (onV) { for (let r = 0; r < rows; r++) s += a[r * cols + i] * a[r * cols + j]; }
      else for (let c = 0; c < cols; c++) s += a[i * cols + c] * a[j * cols + c];
      g[i * n + j] = s;
    }
  }
  const gram = g.slice();
  for (let it = 0; it < 64; it++) {
    const sq = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const gik = g[i * n + k];
        if (gik === 0) continue;
        for (let j = 0; j < n; j++) sq[i * n + j] += gik * g[k * n + j];
      }
    }
    const m = sq.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0);
    g = sq.map((v) => v / m);
  }
  let best = 0;
  let bestNorm = -1;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += g[i * n + j] ** 2;
    if (s > bestNorm) [best, bestNorm] = [j, s];
  }
  let e = unit(Float64Array.from({ length: n }, (_, i) => g[i * n + best]));
  for (let it = 0; it < 3; it++) e = unit(matVec(gram, n, n, e));
  const v = onV ? e : unit(matVec(a, rows, cols, e, true));
  return { u: unit(matVec(a, rows, cols, v)), v };
}

/**
 * Loads a fixture's parameters into a freshly built model: raw conv weights and biases, LipSwish
 * β_raw, ActNorm log-scale and bias (marked initialised), and power-iteration vectors u, v set to the
 * exact top singular pair of each raw weight at its input resolution (the limit the fixture's σ was
 * converged to), so that σ and the effective weights equal the fixture's.
 */
function loadTinyModel(model: ResidualFlow, fx: Json): void {
  const layers = model.stages.flatMap((s) => (s.kind === "layer" ? [s.layer] : []));
  const fl = fx.layers as Json[];
  assertEquals(layers.map((l) => l.kind), fl.map((l) => l.type), "layer order");
  const dev = model.parameters()[0].value.device;
  layers.forEach((layer, i) => {
    const f = fl[i];
    if (layer instanceof LogitTransform) assertEquals(layer.alpha, f.alpha);
    else if (layer instanceof ActNormBase) {
      layer.weight.set(fixtureTensor(f.log_scale, dev));
      layer.bias.set(fixtureTensor(f.bias, dev));
      layer.initialized.set(full([], 1, dev));
    } else if (layer instanceof IResBlock) {
      const branch = layer.nnet as SequentialBranch;
      assertTrue(branch instanceof SequentialBranch);
      const nnet = f.nnet as Json[];
      assertEquals(branch.layers.length, nnet.length, `block ${i}: layers of g`);
      branch.layers.forEach((m, j) => {
        const g = nnet[j];
        if (m instanceof LipSwish) {
          assertEquals(g.type, "LipSwish");
          m.beta.set(tensor([g.beta_raw], [1], dev));
        } else if (m instanceof Elu) {
          assertEquals([g.type, g.alpha], ["ELU", 1]);
        } else if (m instanceof SpectralNormConv2d) {
          assertEquals(g.type, "Conv2d");
          const w = flat(g.weight_raw);
          m.weight.set(fixtureTensor(g.weight_raw, dev));
          m.bias!.set(fixtureTensor(g.bias, dev));
          const [h, wd] = g.input_hw as number[];
          const shape = g.weight_raw.shape as number[];
          const { a, rows, cols } = m.isPointwise
            ? { a: w, rows: shape[0], cols: shape[1] }
            : convMatrix(w, shape, g.padding, h, wd);
          const { u, v } = topSingularPair(a, rows, cols);
          m.u.set(tensor(u, [u.length], dev));
          m.v.set(tensor(v, [v.length], dev));
        } else {
          throw new Error(`Cannot load block ${i} layer ${j}: unexpected module`);
        }
      });
    } else assertEquals(layer.kind, "Squeeze");
  });
}

/** Host copy of a tensor. */
async function host(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

/** One stage's output along the exact layer-by-layer pass. */
interface TraceStep {
  readonly kind: string;
  /** Output (layers) or the kept half (factor-out). */
  readonly output: Float64Array;
  /** The factored-out half (factor-out only). */
  readonly factored?: Float64Array;
  /** Exact per-example log-det (residual blocks: from the full Jacobian of g). */
  readonly logdet: number[];
}

/**
 * The model layer by layer with every log-det exact: residual blocks by the full Jacobian of g
 * (exact_logdet.ts), every other layer by its analytic log-det. Returns each stage and z.
 */
async function exactTrace(
  model: ResidualFlow,
  x: Tensor,
): Promise<{ steps: TraceStep[]; z: Float64Array; logdet: number[] }> {
  const ctx: FlowContext = { training: false, rng: new Rng(0) };
  const batch = x.shape[0];
  const steps: TraceStep[] = [];
  const total = new Array(batch).fill(0);
  const zs: Float64Array[] = [];
  let cur = x.detach();
  for (const st of model.stages) {
    let next: Tensor;
    if (st.kind === "factorOut") {
      const out = noGrad(() => sliceAxis(cur, 1, st.keep, st.out));
      next = noGrad(() => sliceAxis(cur, 1, 0, st.keep));
      const factored = await host(out);
      zs.push(factored);
      steps.push({ kind: "FactorOut", output: await host(next), factored, logdet: [] });
      out.dispose();
    } else if (st.layer instanceof IResBlock) {
      const block = st.layer;
      const xg = requireGrad(cur.detach());
      const gx = block.nnet.apply(xg);
      const ld = await exactLogdet(gx, xg);
      const logdet = Array.from(await ld.read());
      ld.dispose();
      next = noGrad(() => block.forward(cur, { ...ctx, skipLogdet: true }).y);
      gx.dispose();
      xg.dispose();
      steps.push({ kind: block.kind, output: await host(next), logdet });
    } else {
      const out = noGrad(() => st.layer.forward(cur, ctx));
      next = out.y;
      const logdet = out.logdet ? Array.from(await out.logdet.read()) : new Array(batch).fill(0);
      out.logdet?.dispose();
      steps.push({ kind: st.layer.kind, output: await host(next), logdet });
    }
    steps[steps.length - 1].logdet.forEach((v, b) => (total[b] += v));
    cur.dispose();
    cur = next;
  }
  zs.push(await host(cur));
  cur.dispose();
  // z per example: the factored pieces in order, then the final tensor.
  const per = zs.map((p) => p.length / batch);
  const d = per.reduce((a, b) => a + b, 0);
  const z = new Float64Array(batch * d);
  for (let b = 0; b < batch; b++) {
    let off = 0;
    zs.forEach((p, i) => {
      z.set(p.subarray(b * per[i], (b + 1) * per[i]), b * d + off);
      off += per[i];
    });
  }
  return { steps, z, logdet: total };
}

/** log N(z; 0, I) per example on the host. */
function logNormal(z: Float64Array, batch: number): number[] {
  const d = z.length / batch;
  return Array.from({ length: batch }, (_, b) => {
    let s = 0;
    for (let i = 0; i < d; i++) s += -0.5 * Math.log(2 * Math.PI) - 0.5 * z[b * d + i] ** 2;
    return s;
  });
}

interface GoldenTolerances {
  readonly values: Tolerance;
  readonly logdet: Tolerance;
  readonly logpx: Tolerance;
  readonly bpd: (dims: number) => Tolerance;
  readonly jacobian: Tolerance;
  /** Eval-estimator draws. */
  readonly evals: number;
}

const GOLDEN_F64: GoldenTolerances = {
  values: F64,
  logdet: F64,
  logpx: F64,
  bpd: () => F64,
  jacobian: F64_JAC,
  evals: 200,
};
const GOLDEN_F32: GoldenTolerances = {
  values: F32,
  logdet: F32_LOGDET,
  logpx: F32_LOGPX,
  bpd: F32_BPD,
  jacobian: F32_JAC,
  evals: 60,
};

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU model tests skipped: ${(e as Error).message.split("\n")[0]}`);
}

async function golden(t: Deno.TestContext, file: string, dev: Device, tol: GoldenTolerances) {
  const fx: Json = await loadFixture(file);
  const model = new ResidualFlow(tinyConfig(fx), { rng: new Rng(0), device: dev });
  loadTinyModel(model, fx);
  const x = fixtureTensor(fx.x, dev);
  const batch = x.shape[0];
  const dims = fx.D as number;
  assertEquals(dims, x.size / batch, "D");
  const layerFx = fx.layers as Json[];
  const inter = fx.intermediates as Json[];

  await t.step("σ and the effective weights equal the fixture's", async () => {
    const convs = model.lipschitzLayers();
    const fconvs = layerFx.filter((l) => l.type === "iResBlock").flatMap((l) =>
      (l.nnet as Json[]).filter((g) => g.type === "Conv2d")
    );
    assertEquals(convs.length, fconvs.length);
    for (let i = 0; i < convs.length; i++) {
      const s = noGrad(() => convs[i].sigma());
      const ws = noGrad(() => convs[i].effectiveWeight());
      assertClose(
        await s.item(),
        fconvs[i].sigma,
        dev.backend.dtype === "float64" ? SIGMA_F64 : F32,
        `σ ${i}`,
      );
      assertClose(await host(ws), flat(fconvs[i].weight), tol.values, `effective weight ${i}`);
      s.dispose();
      ws.dispose();
    }
  });

  const trace = await exactTrace(model, x);
  await t.step("every intermediate output and exact per-layer log-det", () => {
    assertEquals(trace.steps.map((s) => s.kind), inter.map((s) => s.type));
    trace.steps.forEach((s, i) => {
      const f = inter[i];
      if (s.kind === "FactorOut") {
        assertClose(s.output, flat(f.kept), tol.values, `stage ${i} kept half`);
        assertClose(s.factored!, flat(f.factored_out), tol.values, `stage ${i} factored-out half`);
      } else {
        assertClose(s.output, flat(f.output), tol.values, `stage ${i} (${s.kind}) output`);
        assertClose(s.logdet, flat(f.logdet), tol.logdet, `stage ${i} (${s.kind}) log-det`);
      }
    });
  });

  await t.step("z, the whole-model exact log-det, log p(z), log p(x) and bits/dim", async () => {
    assertClose(trace.z, flat(fx.z), tol.values, "z (layer by layer)");
    const out = noGrad(() => model.forward(x, { training: false, rng: new Rng(1), skipLogdet: true }));
    assertClose(await host(out.z), flat(fx.z), tol.values, "z (model.forward)");
    const logpzModel = await host(out.logpz);
    out.z.dispose();
    out.logpz.dispose();
    out.features.forEach((f) => f.dispose());
    assertClose(trace.logdet, flat(fx.logdet_exact), tol.logpx, "Σ exact per-layer log-dets");
    const logpz = logNormal(trace.z, batch);
    assertClose(logpz, flat(fx.log_pz), tol.logpx, "log p(z)");
    assertClose(logpzModel, flat(fx.log_pz), tol.logpx, "log p(z) (model.forward)");
    const logpx = logpz.map((v, b) => v + trace.logdet[b]);
    assertClose(logpx, flat(fx.log_px_exact), tol.logpx, "log p(x)");
    const lp = tensor(logpx, [batch], dev);
    const bpd = noGrad(() => model.bitsPerDim(lp));
    assertClose(await host(bpd), flat(fx.bits_per_dim_exact), tol.bpd(dims), "bits/dim (model.bitsPerDim)");
    assertClose(
      logpx.map((v) => bitsPerDimHost(v, { dims, nvals: fx.nvals })),
      flat(fx.bits_per_dim_exact),
      tol.bpd(dims),
      "bits/dim (host)",
    );
    lp.dispose();
    bpd.dispose();
  });

  await t.step("model.forwardExact: z, exact log-det and log p(x)", async () => {
    const out = await model.forwardExact(x);
    assertClose(await host(out.z), flat(fx.z), tol.values, "z");
    assertClose(await host(out.logdet!), flat(fx.logdet_exact), tol.logpx, "log-det");
    assertClose(await host(out.logpx!), flat(fx.log_px_exact), tol.logpx, "log p(x)");
    [out.z, out.logdet!, out.logpz, out.logpx!, ...out.features].forEach((v) => v.dispose());
  });

  await t.step("the brute-force Jacobian of the whole model and its log-det", async () => {
    const fwd = (xi: Tensor) => {
      const o = model.forward(xi, { training: false, rng: new Rng(2), skipLogdet: true });
      o.logpz.dispose();
      return o.z;
    };
    const { jac, dIn, dOut } = await jacobians(fwd, x);
    assertEquals([dOut, dIn], [dims, dims]);
    const fj = flat(fx.jacobian);
    jac.forEach((j, b) =>
      assertClose(j, fj.subarray(b * dims * dims, (b + 1) * dims * dims), tol.jacobian, `J[${b}]`)
    );
    const ld = jac.map((j) => slogdet(j, dims).logAbsDet);
    assertClose(ld, flat(fx.logdet_exact), tol.logpx, "log|det dz/dx|");
    assertClose(ld, trace.logdet, tol.logpx, "brute force vs Σ per-layer exact");
  });

  await t.step(
    `eval-mode estimator: mean of ${tol.evals} draws within ${EVAL_SE} standard errors`,
    async () => {
      const draws: number[][] = [];
      for (let s = 0; s < tol.evals; s++) {
        const out = noGrad(() => model.forward(x, { training: false, rng: new Rng(1000 + s) }));
        draws.push(Array.from(await out.logpx!.read()));
        tidy(() => [out.z, out.logpx!, out.logdet!, out.logpz, ...out.features].forEach((v) => v.dispose()));
      }
      const exact = flat(fx.log_px_exact);
      const fxSe = flat(fx.eval_estimator.log_px_standard_error);
      for (let b = 0; b < batch; b++) {
        const v = draws.map((d) => d[b]);
        const mean = v.reduce((a, c) => a + c, 0) / v.length;
        const sd = Math.sqrt(v.reduce((a, c) => a + (c - mean) ** 2, 0) / (v.length - 1));
        const se = sd / Math.sqrt(v.length);
        const z = (mean - exact[b]) / se;
        console.log(
          `  ${file} ${dev.name}/${dev.backend.dtype} example ${b}: mean ${mean.toFixed(4)} ± ${
            se.toFixed(4)
          } vs exact ${exact[b].toFixed(4)} (${z.toFixed(2)} SE); sd ${sd.toFixed(3)} vs fixture ${
            (fxSe[b] * Math.sqrt(fx.eval_estimator.n_evals)).toFixed(3)
          }`,
        );
        assertTrue(Math.abs(z) < EVAL_SE, `example ${b}: ${z.toFixed(2)} standard errors from exact`);
        if (v.length >= 100) {
          const ratio = sd / (fxSe[b] * Math.sqrt(fx.eval_estimator.n_evals));
          assertTrue(ratio < EVAL_SD_RATIO && ratio > 1 / EVAL_SD_RATIO, `example ${b}: sd ratio ${ratio}`);
        }
      }
    },
  );
  x.dispose();
}

// Every whole-model fixture in testdata/fixtures (model_tiny*.json and any other model_*.json).
for (const file of fixtureFiles("model_")) {
  Deno.test(`${file}: float64 reproduces the official model`, async (t) => {
    await golden(t, file, await createDevice("cpu64"), GOLDEN_F64);
  });
  Deno.test(`${file}: float32 CPU`, async (t) => {
    await golden(t, file, await createDevice("cpu"), GOLDEN_F32);
  });
  Deno.test({ name: `${file}: WebGPU`, ignore: gpu === null }, async (t) => {
    await golden(t, file, gpu!, { ...GOLDEN_F32, evals: 30 });
  });
}
