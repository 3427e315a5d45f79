/**
 * A trained density model back from its run folder, ready to sample (SPEC 5): the checkpoint's
 * weights, the EMA weights swapped in, the power-iteration vectors refreshed for them; then sample
 * grids (z ~ N(0, T²I) inverted by fixed-point iteration) and reconstructions x → z → x, each with the
 * fixed-point iteration counts of every residual block.
 * @module
 */
import { tensor } from "../../lib/engine/ops/creation.ts";
import { Rng } from "../../lib/engine/random.ts";
import { type Device, noGrad, tidy } from "../../lib/engine/tensor.ts";
import { Batcher, type BatchSource } from "../../lib/data/mod.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { readCheckpoint, restoreCheckpoint } from "../../lib/train/checkpoint.ts";
import { Ema } from "../../lib/train/ema.ts";
import type { TrainRunResult } from "./train_run.ts";

/** Fixed-point iteration counts of the residual blocks in one inversion. */
export interface InverseSummary {
  /** Iterations of each residual block (forward order). */
  readonly perBlock: readonly number[];
  /** Largest count over the blocks. */
  readonly max: number;
  /** Mean count over the blocks. */
  readonly mean: number;
  /** Whether every block met its tolerance. */
  readonly converged: boolean;
  /** Blocks whose inverse reached the iteration cap without meeting its tolerance. */
  readonly unconverged: number;
  /** Blocks whose inverse stopped at the float32 rounding floor (see `FixedPointReport.atFloor`). */
  readonly atFloor: number;
}

/** Images drawn from a model. */
export interface DrawnImages {
  /** Pixels in [0, 1], `[n, C, H, W]`. */
  readonly images: Float32Array;
  /** `[n, C, H, W]`. */
  readonly shape: readonly [number, number, number, number];
  /** Iteration counts, one summary per inverted batch. */
  readonly inverse: readonly InverseSummary[];
}

/** Builds the model of a finished run with its EMA weights and refreshed power-iteration vectors. */
export async function loadTrainedModel(
  dir: string,
  result: TrainRunResult,
  device: Device,
): Promise<ResidualFlow> {
  const ck = await readCheckpoint(`${dir}/${result.checkpoint}`);
  const config = result.spec.model;
  const model = new ResidualFlow(config, { rng: new Rng(result.spec.seed), device });
  const ema = new Ema(model.parameters());
  try {
    restoreCheckpoint(ck, { module: model, ema }, { device, config: JSON.parse(JSON.stringify(config)) });
    if (ema.initialized) {
      const shadow = ema.shadow();
      for (const p of model.parameters()) p.set(shadow.get(p.name)!.detach());
    }
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    ema.dispose();
  }
  // u, v of the checkpoint belong to the training weights: refresh them for the EMA weights.
  await model.updateLipschitz();
  return model;
}

function summarize(model: ResidualFlow): InverseSummary {
  const reports = model.residualBlocks().map((b) => b.lastInverse);
  const perBlock = reports.map((r) => r?.iterations ?? 0);
  return {
    perBlock,
    max: Math.max(0, ...perBlock),
    mean: perBlock.length ? perBlock.reduce((a, b) => a + b, 0) / perBlock.length : 0,
    converged: reports.every((r) => r === null || r.converged),
    unconverged: reports.filter((r) => r !== null && !r.converged).length,
    atFloor: reports.filter((r) => r?.atFloor).length,
  };
}

/** Draws `n` images at temperature `T` in batches of `batch`, with the inverse's iteration counts. */
export async function drawSamples(
  model: ResidualFlow,
  opts: { n: number; temperature: number; seed: number; batch?: number },
): Promise<DrawnImages> {
  const [c, h, w] = model.config.inputShape;
  const per = c * h * w;
  const images = new Float32Array(opts.n * per);
  const rng = new Rng(opts.seed);
  const batch = opts.batch ?? 64;
  const inverse: InverseSummary[] = [];
  for (let done = 0; done < opts.n; done += batch) {
    const k = Math.min(batch, opts.n - done);
    // Non-convergence is measured (counted in the summary), not an error.
    const x = await model.sample(k, { training: false, rng, onUnconverged: "report" }, opts.temperature);
    try {
      images.set(await x.read(), done * per);
    } finally {
      x.dispose();
    }
    inverse.push(summarize(model));
  }
  return { images, shape: [opts.n, c, h, w], inverse };
}

/** Reconstructions of test images: x (dequantised) → z → x̂. */
export interface Reconstruction {
  /** The dequantised inputs x in [0, 1), `[n, C, H, W]`. */
  readonly inputs: Float32Array;
  /** x̂ = f⁻¹(f(x)). */
  readonly outputs: Float32Array;
  /** `[n, C, H, W]`. */
  readonly shape: readonly [number, number, number, number];
  /** max |x̂ − x| over every pixel. */
  readonly maxAbsError: number;
  /** Mean |x̂ − x| over every pixel. */
  readonly meanAbsError: number;
  /** Iteration counts of the inverse. */
  readonly inverse: InverseSummary;
}

/** Reconstructs the first `n` images of `data` (dequantised with `seed`) through z and back. */
export async function reconstruct(
  model: ResidualFlow,
  data: BatchSource,
  opts: { n: number; seed: number },
): Promise<Reconstruction> {
  const n = Math.min(opts.n, data.count);
  const batch = new Batcher(data, { batchSize: n, seed: opts.seed, shuffle: false }).batch(0, 0);
  const device = model.parameters()[0].value.device;
  const shape = [n, ...data.shape] as [number, number, number, number];
  const x = tensor(batch.x, shape, device);
  const z = noGrad(() =>
    tidy(() => model.forward(x, { training: false, rng: new Rng(opts.seed), skipLogdet: true }).z)
  );
  let outputs: Float32Array;
  try {
    const xr = await model.inverse(z, { training: false, rng: new Rng(opts.seed), onUnconverged: "report" });
    try {
      outputs = Float32Array.from(await xr.read());
    } finally {
      xr.dispose();
    }
  } finally {
    z.dispose();
    x.dispose();
  }
  let maxErr = 0;
  let sumErr = 0;
  for (let i = 0; i < outputs.length; i++) {
    const e = Math.abs(outputs[i] - batch.x[i]);
    sumErr += e;
    if (!(e <= maxErr)) maxErr = e; // NaN propagates as the maximum
  }
  return {
    inputs: batch.x.slice(0, n * data.shape[0] * data.shape[1] * data.shape[2]),
    outputs,
    shape,
    maxAbsError: maxErr,
    meanAbsError: sumErr / outputs.length,
    inverse: summarize(model),
  };
}
