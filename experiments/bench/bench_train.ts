/**
 * `deno task bench:train`: the issue-6 training benchmark. Builds the configuration the authors'
 * PyTorch code was timed with on these 2-core machines (MNIST, batch 64, 2 scales of 4 residual blocks,
 * hidden 64, LipSwish, ActNorm, 4 FC end blocks of width 128, Poisson(2) roulette with 2 exact terms,
 * Neumann gradients and backward-in-forward, Adam) and measures, on the chosen device: seconds per
 * training iteration (median over `--iters` after warm-up; every iteration draws its N and probes from a
 * fixed seed, so every run does the same work), seconds per evaluation batch of 64 (20 exact terms +
 * roulette), seconds per sampling batch of 64 (fixed-point inversion), and achieved GFLOP/s (matrix and
 * convolution work). Writes `results/bench/train.json` with the ratio to the PyTorch reference.
 * A benchmark, not a test.
 * @module
 */
import { writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import { gitCommit } from "../../lib/artifacts/artifact.ts";
import { OptionError, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { loadDataset } from "../../lib/data/mod.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { flopCount, resetFlops } from "../../lib/engine/flops.ts";
import { Rng } from "../../lib/engine/random.ts";
import { noGrad, tidy } from "../../lib/engine/tensor.ts";
import { mean } from "../../lib/engine/ops/reduce.ts";
import { makeConfig } from "../../lib/flow/config.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { Trainer } from "../../lib/train/trainer.ts";
import { evaluateBitsPerDim } from "../../lib/train/evaluate.ts";
import { median } from "../framework/stats.ts";

/** The PyTorch reference measured on these machines (issue 6): seconds. */
export const PYTORCH_REFERENCE = {
  trainIterationSeconds: 1.95,
  evalBatchSeconds: 3.1,
  sampleBatchSeconds: 0.77,
  gflopPerIteration: 36,
  source: "authors' code, Debian PyTorch 1.13, 2 threads, oneDNN, same 2-core machine kind (issue 6)",
} as const;

/** The benchmarked model: the small MNIST configuration. */
export function benchConfig() {
  return makeConfig({
    inputShape: [1, 28, 28],
    nBlocks: [4, 4],
    hiddenChannels: 64,
    activation: "lipswish",
    actnorm: true,
    fcEnd: true,
    fcHidden: 128,
    fcBlocks: 4,
    logitAlpha: 1e-6,
    estimator: {
      kind: "unbiased",
      nTruncated: 5,
      nDist: "poisson",
      nDistParam: 2,
      nExactTerms: 2,
      evalExactTerms: 20,
      neumannGrad: true,
      backwardInForward: true,
    },
  });
}

const OPTIONS = {
  device: { type: "string" as const, default: "webgpu", help: "webgpu or cpu" },
  iters: { type: "string" as const, default: "10", help: "timed training iterations (median reported)" },
  warmup: {
    type: "string" as const,
    default: "2",
    help: "untimed warm-up iterations (pipeline compilation)",
  },
  "eval-batches": { type: "string" as const, default: "2", help: "timed evaluation batches of 64" },
  "sample-batches": { type: "string" as const, default: "1", help: "timed sampling batches of 64" },
  out: { type: "string" as const, default: "results/bench/train.json", help: "where to write the figures" },
};

/** Runs the benchmark; returns the exit status (failures are thrown for {@link runMain}). */
async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(
    "deno task bench:train",
    "Training-step benchmark against the authors' PyTorch timing.",
    OPTIONS,
    argv,
  );
  if (args === null) return 0;
  if (args.device !== "webgpu" && args.device !== "cpu") {
    throw new OptionError(`Cannot use --device ${JSON.stringify(args.device)}: expected webgpu or cpu`);
  }
  const device = await createDevice(args.device);
  const cfg = benchConfig();
  const model = new ResidualFlow(cfg, { rng: new Rng(0), device });
  await model.convergeLipschitz();
  const train = loadDataset("mnist", { split: "train" });
  const test = loadDataset("mnist", { split: "test" });
  const trainer = new Trainer({
    model,
    device,
    data: await train,
    batchSize: 64,
    seed: 1234,
    adam: { lr: 1e-3 },
    logEvery: 1_000_000,
  });
  const nParams = model.parameters().reduce((n, p) => n + p.value.size, 0);
  console.log(
    `Device: ${device.backend.description}; ${nParams} parameters; config 4-4, hidden 64, FC end, Poisson(2)+2, Neumann + backward-in-forward`,
  );
  const warm = Number(args.warmup);
  const iters = Number(args.iters);
  const times: number[] = [];
  let flops = 0;
  for (let i = 0; i < warm + iters; i++) {
    resetFlops();
    const t0 = performance.now();
    const r = await trainer.trainStep();
    const sec = (performance.now() - t0) / 1000;
    if (i >= warm) {
      times.push(sec);
      flops += flopCount();
    }
    console.log(
      `${i < warm ? "warm-up" : "iteration"} ${i}: ${sec.toFixed(3)} s, loss ${r.loss.toFixed(3)}${
        r.accepted ? "" : " (rejected)"
      }`,
    );
  }
  const trainSec = median(times);
  const gflopPerIter = flops / iters / 1e9;
  // Evaluation batches of 64 with the eval estimator (20 exact terms + roulette), EMA weights.
  const testSet = await test;
  const evalTimes: number[] = [];
  for (let b = 0; b < Number(args["eval-batches"]) + 1; b++) {
    const t0 = performance.now();
    await evaluateBitsPerDim(
      model,
      {
        ...testSet,
        count: 64,
        images: testSet.images.subarray(b * 64 * 784, (b + 1) * 64 * 784),
        labels: null,
      },
      device,
      { seed: b, batchSize: 64 },
    );
    if (b > 0) evalTimes.push((performance.now() - t0) / 1000);
  }
  const sampleTimes: number[] = [];
  for (let b = 0; b < Number(args["sample-batches"]) + 1; b++) {
    const t0 = performance.now();
    const x = await model.sample(64, { training: false, rng: new Rng(100 + b), skipLogdet: true });
    const check = noGrad(() => tidy(() => mean(x)));
    await check.item();
    check.dispose();
    x.dispose();
    if (b > 0) sampleTimes.push((performance.now() - t0) / 1000);
  }
  const result = {
    schemaVersion: 1,
    benchmark: "train",
    date: new Date().toISOString(),
    commit: await gitCommit(),
    denoVersion: Deno.version.deno,
    backend: device.name,
    adapter: device.backend.description,
    config: cfg,
    batchSize: 64,
    parameters: nParams,
    warmupIterations: warm,
    timedIterations: iters,
    trainIterationSeconds: trainSec,
    trainIterationSecondsAll: times,
    gflopPerIteration: gflopPerIter,
    achievedGflops: gflopPerIter / trainSec,
    evalBatchSeconds: median(evalTimes),
    sampleBatchSeconds: median(sampleTimes),
    reference: PYTORCH_REFERENCE,
    ratioToReference: {
      train: trainSec / PYTORCH_REFERENCE.trainIterationSeconds,
      eval: median(evalTimes) / PYTORCH_REFERENCE.evalBatchSeconds,
      sample: median(sampleTimes) / PYTORCH_REFERENCE.sampleBatchSeconds,
    },
  };
  console.log(
    `train ${trainSec.toFixed(3)} s/iter (${(trainSec / 1.95).toFixed(2)}x PyTorch's 1.95 s), ${
      gflopPerIter.toFixed(1)
    } GFLOP/iter, ${result.achievedGflops.toFixed(1)} GFLOP/s; eval ${
      result.evalBatchSeconds.toFixed(2)
    } s/batch (${result.ratioToReference.eval.toFixed(2)}x 3.1 s); sample ${
      result.sampleBatchSeconds.toFixed(2)
    } s/batch (${result.ratioToReference.sample.toFixed(2)}x 0.77 s)`,
  );
  await writeJsonAtomic(String(args.out), result);
  console.log(`wrote ${args.out}`);
  return 0;
}

if (import.meta.main) await runMain("deno task bench:train", main);
