/**
 * `deno task bench:train`: the training benchmark. Builds the small MNIST configuration (batch 64, 2 scales
 * of 4 residual blocks, hidden 64, LipSwish, ActNorm, 4 FC end blocks of width 128, Poisson(2) roulette
 * with 2 exact terms, Neumann gradients and backward-in-forward, Adam) and measures on the chosen device
 * seconds per training iteration (every iteration draws its N and probes from a fixed seed), achieved
 * GFLOP/s, seconds per evaluation batch of 64 (20 exact terms + roulette) and per sampling batch of 64
 * (fixed-point inversion).
 *
 * The baseline is measured in the same run, never typed in: when the authors' code is present
 * (`--pytorch DIR`, default `../shared/peers/residual-flows` with `time_official.py` beside it) and
 * `/usr/bin/python3` imports torch, rounds of our iterations alternate with rounds of theirs on the same
 * configuration (ABAB: ours, theirs, ours, theirs...), each of their rounds a fresh process whose first
 * `--pytorch-warmup` iterations are dropped, so drift of the shared machine hits both alike. The ratio is
 * reported with its standard error. `time_official.py` times training iterations only, so evaluation and
 * sampling have no baseline. Writes `results/bench/train.json`. A benchmark, not a test.
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
import { type Device, noGrad, tidy } from "../../lib/engine/tensor.ts";
import { mean } from "../../lib/engine/ops/reduce.ts";
import { makeConfig } from "../../lib/flow/config.ts";
import { ResidualFlow } from "../../lib/flow/model.ts";
import { Trainer } from "../../lib/train/trainer.ts";
import { evaluateBitsPerDim } from "../../lib/train/evaluate.ts";
import type { WebGpuBackend, WebGpuStats } from "../../lib/engine/webgpu/webgpu_backend.ts";
import { gradWalk, gradWalkOptions } from "../../lib/engine/autograd.ts";
import { powerBatchOptions } from "../../lib/flow/power_batch.ts";
import { rowOpsOptions } from "../../lib/engine/ops/rows.ts";
import { reduceFusionOptions } from "../../lib/engine/webgpu/reduce_ops.ts";
import {
  AUTHORS_TRAIN_ARGS,
  AUTHORS_WARMUP_ITERS,
  DEFAULT_PYTORCH_DIR,
  findPytorchBaseline,
  mnistDataroot,
  type PytorchBaseline,
  timeAuthors,
} from "./bench_pytorch.ts";
import { median } from "../framework/stats.ts";

/** The benchmarked model: the issue's small MNIST configuration. */
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

/** Mean, sample standard deviation and standard error of the mean of `xs`. */
export interface Summary {
  /** Number of values. */
  readonly n: number;
  /** Arithmetic mean. */
  readonly mean: number;
  /** Standard error of the mean (sd/√n; NaN for n < 2). */
  readonly se: number;
  /** Median. */
  readonly median: number;
}

/** {@link Summary} of `xs`. */
export function summarize(xs: readonly number[]): Summary {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1) : NaN;
  return { n, mean: m, se: Math.sqrt(v / n), median: median(xs) };
}

/**
 * a.mean / b.mean with its standard error by the delta method (independent samples):
 * r·√((se_a/mean_a)² + (se_b/mean_b)²).
 */
export function ratioOfMeans(a: Summary, b: Summary): { ratio: number; se: number } {
  const r = a.mean / b.mean;
  return { ratio: r, se: r * Math.hypot(a.se / a.mean, b.se / b.mean) };
}

/** What one training iteration did on the device: counts and the split of its wall time. */
export interface StepFigures {
  /** Wall seconds. */
  readonly seconds: number;
  /** Kernel dispatches recorded. */
  readonly dispatches: number;
  /** Queue submits. */
  readonly submits: number;
  /** Readbacks to host memory. */
  readonly readbacks: number;
  /** Bytes of new device buffers (pool growth plus readback staging buffers). */
  readonly bytesAllocated: number;
  /** Bind groups created. */
  readonly bindGroups: number;
  /** Milliseconds inside `queue.submit` plus awaiting readbacks and syncs: the device side. */
  readonly deviceMs: number;
  /** Wall milliseconds minus {@link deviceMs}: JavaScript (recording, autograd, encoding). */
  readonly hostMs: number;
  /** Graph nodes examined by the backward walks of the iteration. */
  readonly gradNodesVisited: number;
  /** Dispatches that reused a cached bind group. */
  readonly bindGroupHits: number;
  /**
   * CPU milliseconds of the JavaScript (main) thread (10 ms ticks; null where /proc is unreadable): the
   * host work, insensitive to other jobs on the machine, unlike {@link hostMs}; it also counts what the
   * driver does on that thread inside submits.
   */
  readonly mainThreadCpuMs: number | null;
}

/** CPU milliseconds the main thread has used, from /proc (null where unreadable). */
export function mainThreadCpuMs(): number | null {
  try {
    const f = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, USER_HZ = 100
  } catch {
    return null;
  }
}

/**
 * Levers that `--lever` switches off and on in alternate iterations (ABAB) to measure each one's effect
 * in the same run; results are the same either way.
 */
export const LEVERS: Record<string, (on: boolean, device: Device) => void> = {
  "restrict-walk": (on) => {
    gradWalkOptions.restrict = on;
  },
  "batched-power": (on) => {
    powerBatchOptions.enabled = on;
  },
  "fused-rows": (on) => {
    rowOpsOptions.fused = on;
  },
  "fused-reduce": (on) => {
    reduceFusionOptions.enabled = on;
  },
  "one-pass-reduce": (on) => {
    reduceFusionOptions.onePass = on;
  },
  "bind-group-cache": (on, device) => {
    (device.backend as Partial<WebGpuBackend>).setBindGroupReuse?.(on);
  },
};

/** The figures of one iteration from counter snapshots taken before and after it. */
export function stepFigures(
  seconds: number,
  a: WebGpuStats,
  b: WebGpuStats,
  gradNodesVisited: number,
  mainThreadCpuMs: number | null,
): StepFigures {
  const deviceMs = b.submitMs - a.submitMs + b.waitMs - a.waitMs;
  return {
    seconds,
    dispatches: b.dispatches - a.dispatches,
    submits: b.submits - a.submits,
    readbacks: b.readbacks - a.readbacks,
    bytesAllocated: b.bytesAllocatedTotal - a.bytesAllocatedTotal + b.stagingBytes - a.stagingBytes,
    bindGroups: b.bindGroups - a.bindGroups,
    deviceMs,
    hostMs: seconds * 1000 - deviceMs,
    gradNodesVisited,
    bindGroupHits: b.bindGroupHits - a.bindGroupHits,
    mainThreadCpuMs,
  };
}

/** A deep copy of `x` with every non-finite number replaced by null (JSON cannot hold NaN). */
export function finiteOrNull<T>(x: T): T {
  return JSON.parse(JSON.stringify(x, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
}

const OPTIONS = {
  device: { type: "string" as const, default: "webgpu", help: "webgpu, wasm or cpu" },
  rounds: { type: "string" as const, default: "2", help: "ABAB rounds (ours then theirs, each round)" },
  iters: { type: "string" as const, default: "5", help: "timed training iterations per round, each side" },
  warmup: {
    type: "string" as const,
    default: "2",
    help: "our untimed warm-up iterations before the first round (pipeline compilation)",
  },
  pytorch: {
    type: "string" as const,
    default: DEFAULT_PYTORCH_DIR,
    help: "the authors' checkout (time_official.py beside it); 'none' to skip the baseline",
  },
  "pytorch-warmup": {
    type: "string" as const,
    default: "4",
    help:
      "iterations each of their processes runs before the timed ones (first power iterations to tolerance are slow)",
  },
  lever: {
    type: "string" as const,
    default: "",
    help: `measure one lever: off in even, on in odd timed iterations (${Object.keys(LEVERS).join(", ")})`,
  },
  threads: {
    type: "string" as const,
    default: "",
    help: "OMP_NUM_THREADS of the authors' code (default: CPU count)",
  },
  "eval-batches": { type: "string" as const, default: "2", help: "timed evaluation batches of 64" },
  "sample-batches": { type: "string" as const, default: "1", help: "timed sampling batches of 64" },
  out: { type: "string" as const, default: "results/bench/train.json", help: "where to write the figures" },
};

function positiveInt(v: unknown, name: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new OptionError(
      `Cannot run the training benchmark: --${name} is ${v}, expected an integer >= ${min}`,
    );
  }
  return n;
}

const f3 = (x: number) => x.toFixed(3);

/** Runs the benchmark; returns the exit status (failures are thrown for {@link runMain}). */
async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(
    "deno task bench:train",
    "Training-step benchmark beside the authors' PyTorch code, measured in the same run (ABAB).",
    OPTIONS,
    argv,
  );
  if (args === null) return 0;
  if (args.device !== "webgpu" && args.device !== "wasm" && args.device !== "cpu") {
    throw new OptionError(`Cannot use --device ${JSON.stringify(args.device)}: expected webgpu, wasm or cpu`);
  }
  const rounds = positiveInt(args.rounds, "rounds");
  const iters = positiveInt(args.iters, "iters");
  const warm = positiveInt(args.warmup, "warmup", 0);
  const theirWarm = positiveInt(args["pytorch-warmup"], "pytorch-warmup", 0);
  const threads = args.threads ? positiveInt(args.threads, "threads") : navigator.hardwareConcurrency;
  const lever = String(args.lever);
  if (lever && !(lever in LEVERS)) {
    throw new OptionError(
      `Cannot run the training benchmark: --lever is "${lever}", expected one of ${
        Object.keys(LEVERS).join(", ")
      }`,
    );
  }
  const evalBatches = positiveInt(args["eval-batches"], "eval-batches", 0);
  const sampleBatches = positiveInt(args["sample-batches"], "sample-batches", 0);

  let baseline: PytorchBaseline | null = null;
  let noBaseline: string | null = null;
  if (String(args.pytorch) === "none") noBaseline = "skipped (--pytorch none)";
  else {
    const found = await findPytorchBaseline(String(args.pytorch));
    if ("reason" in found) noBaseline = found.reason;
    else baseline = found;
  }
  console.log(
    baseline
      ? `Baseline: the authors' code at ${baseline.dir}, torch ${baseline.torchVersion}, ${threads} threads, ABAB`
      : `Baseline: none (${noBaseline}); our figures only, no ratio measured`,
  );

  const device = await createDevice(String(args.device) as "webgpu" | "wasm" | "cpu");
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
    // The authors' train_img.py warms the learning rate up linearly over 1000 iterations (--warmup-iters).
    adam: { lr: 1e-3, warmupIters: AUTHORS_WARMUP_ITERS },
    logEvery: 1_000_000,
  });
  const nParams = model.parameters().reduce((n, p) => n + p.value.size, 0);
  console.log(
    `Device: ${device.backend.description} (matrix products: ${
      gemmKernelOf(device.backend) ?? (device.name === "wasm" ? "WebAssembly SIMD, 6x8 tiles" : "CPU")
    }); ${nParams} parameters; config 4-4, hidden 64, FC end, Poisson(2)+2, Neumann + backward-in-forward`,
  );
  const dataroot = baseline ? await mnistDataroot() : null;
  const ours: number[] = [];
  const theirs: number[] = [];
  const perRound: { round: number; ours: number[]; theirs: number[]; theirProcessSeconds: number | null }[] =
    [];
  let flops = 0;
  const backendStats = (device.backend as { stats?: () => WebGpuStats }).stats?.bind(device.backend);
  const steps: StepFigures[] = [];
  const leverSteps: { on: StepFigures[]; off: StepFigures[] } = { on: [], off: [] };
  let timedCount = 0;
  const ourIteration = async (label: string, timed: boolean) => {
    const on = timedCount % 2 === 1;
    if (lever && timed) {
      LEVERS[lever](on, device);
      label += ` (${lever} ${on ? "on" : "off"})`;
    }
    resetFlops();
    const s0 = backendStats?.();
    const n0 = gradWalk.nodesVisited;
    const c0 = mainThreadCpuMs();
    const t0 = performance.now();
    const r = await trainer.trainStep();
    const sec = (performance.now() - t0) / 1000;
    const c1 = mainThreadCpuMs();
    const cpu = c0 === null || c1 === null ? null : c1 - c0;
    const fig = s0 && backendStats
      ? stepFigures(sec, s0, backendStats(), gradWalk.nodesVisited - n0, cpu)
      : null;
    if (lever && timed) LEVERS[lever](true, device);
    if (timed) {
      timedCount++;
      flops += flopCount();
      if (fig) steps.push(fig);
      if (fig && lever) leverSteps[on ? "on" : "off"].push(fig);
    }
    console.log(
      `  ours ${label}: ${f3(sec)} s, loss ${r.loss.toFixed(3)}${r.accepted ? "" : " (rejected)"}${
        fig
          ? `; ${fig.dispatches} dispatches, ${fig.submits} submits, ${fig.readbacks} readbacks, ${
            (fig.bytesAllocated / 2 ** 20).toFixed(1)
          } MiB allocated, host ${fig.hostMs.toFixed(0)} ms, device ${
            fig.deviceMs.toFixed(0)
          } ms, JS thread CPU ${
            fig.mainThreadCpuMs ?? "?"
          } ms, ${fig.bindGroupHits} bind groups reused, ${fig.gradNodesVisited} nodes walked`
          : ""
      }`,
    );
    return sec;
  };
  try {
    for (let i = 0; i < warm; i++) await ourIteration(`warm-up ${i}`, false);
    for (let r = 0; r < rounds; r++) {
      console.log(`round ${r + 1}/${rounds}`);
      const mine: number[] = [];
      for (let i = 0; i < iters; i++) mine.push(await ourIteration(`iteration ${i}`, true));
      ours.push(...mine);
      let their: number[] = [];
      let processSeconds: number | null = null;
      if (baseline && dataroot) {
        const run = await timeAuthors(baseline, dataroot, { iters, warmup: theirWarm, threads });
        their = run.secondsPerIteration.slice(run.warmup);
        processSeconds = run.processSeconds;
        theirs.push(...their);
        console.log(
          `  theirs: ${their.map(f3).join(", ")} s (warm-up ${
            run.secondsPerIteration.slice(0, run.warmup).map(f3).join(", ")
          }; process ${processSeconds.toFixed(1)} s)`,
        );
      }
      perRound.push({ round: r + 1, ours: mine, theirs: their, theirProcessSeconds: processSeconds });
    }
  } finally {
    if (dataroot) await Deno.remove(dataroot, { recursive: true });
  }
  const oursSummary = summarize(ours);
  const theirsSummary = baseline ? summarize(theirs) : null;
  const gflopPerIter = flops / ours.length / 1e9;

  // Evaluation batches of 64 with the eval estimator (20 exact terms + roulette), EMA weights; the first
  // batch is warm-up.
  const testSet = await test;
  const evalTimes: number[] = [];
  for (let b = 0; b < evalBatches + 1; b++) {
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
  for (let b = 0; b < sampleBatches + 1; b++) {
    const t0 = performance.now();
    const x = await model.sample(64, { training: false, rng: new Rng(100 + b), skipLogdet: true });
    const check = noGrad(() => tidy(() => mean(x)));
    await check.item();
    check.dispose();
    x.dispose();
    if (b > 0) sampleTimes.push((performance.now() - t0) / 1000);
  }
  const ratio = theirsSummary ? ratioOfMeans(oursSummary, theirsSummary) : null;
  type LeverFigure = { off: Summary; on: Summary; ratio: { ratio: number; se: number } };
  const leverFigures: Record<string, LeverFigure> = {};
  if (lever) {
    for (
      const k of [
        "seconds",
        "hostMs",
        "mainThreadCpuMs",
        "deviceMs",
        "dispatches",
        "bindGroups",
        "gradNodesVisited",
      ] as const
    ) {
      const off = summarize(leverSteps.off.map((f) => f[k] ?? NaN));
      const on = summarize(leverSteps.on.map((f) => f[k] ?? NaN));
      leverFigures[k] = { off, on, ratio: ratioOfMeans(on, off) };
    }
  }
  const result = {
    schemaVersion: 2,
    benchmark: "train",
    date: new Date().toISOString(),
    commit: await gitCommit(),
    denoVersion: Deno.version.deno,
    backend: device.name,
    adapter: device.backend.description,
    // The matrix-product kernels the WebGPU backend chose for this adapter (null on other backends).
    gemmKernel: gemmKernelOf(device.backend),
    loadAverage: Deno.loadavg(),
    config: cfg,
    batchSize: 64,
    parameters: nParams,
    method: baseline
      ? `ABAB: ${rounds} rounds of ${iters} iterations each side; ours after ${warm} warm-up iterations, ` +
        `theirs in a fresh process per round after ${theirWarm} warm-up iterations`
      : `${rounds} rounds of ${iters} iterations after ${warm} warm-up iterations; no baseline: ${noBaseline}`,
    train: {
      ours: { ...oursSummary, seconds: ours },
      theirs: theirsSummary ? { ...theirsSummary, seconds: theirs } : null,
      ratioOfMeans: ratio,
      ratioOfMedians: theirsSummary ? oursSummary.median / theirsSummary.median : null,
      rounds: perRound,
    },
    perIteration: steps.length
      ? {
        note: "per timed training iteration of ours; deviceMs = time in queue.submit (lavapipe runs the " +
          "work there) + awaiting readbacks; hostMs = wall − deviceMs (JavaScript)",
        dispatches: summarize(steps.map((f) => f.dispatches)),
        submits: summarize(steps.map((f) => f.submits)),
        readbacks: summarize(steps.map((f) => f.readbacks)),
        bytesAllocated: summarize(steps.map((f) => f.bytesAllocated)),
        bindGroups: summarize(steps.map((f) => f.bindGroups)),
        hostMs: summarize(steps.map((f) => f.hostMs)),
        deviceMs: summarize(steps.map((f) => f.deviceMs)),
        gradNodesVisited: summarize(steps.map((f) => f.gradNodesVisited)),
        bindGroupHits: summarize(steps.map((f) => f.bindGroupHits)),
        mainThreadCpuMs: steps.every((f) => f.mainThreadCpuMs !== null)
          ? summarize(steps.map((f) => f.mainThreadCpuMs!))
          : null,
        all: steps,
      }
      : null,
    lever: lever
      ? {
        name: lever,
        note: "off in even, on in odd timed iterations of ours (ABAB); ratio = on / off",
        leverFigures,
      }
      : null,
    gflopPerIteration: gflopPerIter,
    achievedGflops: gflopPerIter / oursSummary.mean,
    eval: { ours: evalTimes.length ? summarize(evalTimes) : null, seconds: evalTimes, theirs: null },
    sample: { ours: sampleTimes.length ? summarize(sampleTimes) : null, seconds: sampleTimes, theirs: null },
    baseline: baseline
      ? {
        code: "rtqichen/residual-flows train_img.py, timed by time_official.py (per-iteration Time it logs)",
        dir: baseline.dir,
        python: baseline.python,
        torch: baseline.torchVersion,
        threads,
        args: AUTHORS_TRAIN_ARGS,
        evalAndSample: "not measured: time_official.py times training iterations only",
      }
      : { none: noBaseline },
  };
  if (lever) {
    for (const [k, v] of Object.entries(leverFigures)) {
      console.log(
        `lever ${lever}: ${k} off ${v.off.mean.toFixed(3)} ± ${v.off.se.toFixed(3)}, on ${
          v.on.mean.toFixed(3)
        } ± ${v.on.se.toFixed(3)} (on/off ${v.ratio.ratio.toFixed(3)} ± ${v.ratio.se.toFixed(3)})`,
      );
    }
  }
  const sum = (s: Summary) => `${f3(s.mean)} ± ${f3(s.se)} s (median ${f3(s.median)}, n = ${s.n})`;
  console.log(`train: ours ${sum(oursSummary)}`);
  if (result.perIteration) {
    const p = result.perIteration;
    console.log(
      `per iteration (mean): ${p.dispatches.mean.toFixed(0)} dispatches, ${
        p.submits.mean.toFixed(0)
      } submits, ${p.readbacks.mean.toFixed(1)} readbacks, ${
        (p.bytesAllocated.mean / 2 ** 20).toFixed(1)
      } MiB allocated; host ${p.hostMs.mean.toFixed(0)} ± ${p.hostMs.se.toFixed(0)} ms, device ${
        p.deviceMs.mean.toFixed(0)
      } ± ${p.deviceMs.se.toFixed(0)} ms; JS thread CPU ${
        p.mainThreadCpuMs ? `${p.mainThreadCpuMs.mean.toFixed(0)} ± ${p.mainThreadCpuMs.se.toFixed(0)}` : "?"
      } ms`,
    );
  }
  if (theirsSummary && ratio) {
    console.log(`train: theirs ${sum(theirsSummary)}`);
    console.log(
      `ratio ours/theirs ${ratio.ratio.toFixed(2)} ± ${ratio.se.toFixed(2)} (means), ${
        result.train.ratioOfMedians!.toFixed(2)
      } (medians), measured in this run`,
    );
  } else console.log(`no ratio measured: ${noBaseline}`);
  console.log(
    `${gflopPerIter.toFixed(1)} GFLOP/iter, ${result.achievedGflops.toFixed(1)} GFLOP/s; eval ${
      f3(median(evalTimes))
    } s/batch; sample ${f3(median(sampleTimes))} s/batch (no baseline for these)`,
  );
  // A standard error of one value (a single sampling batch) is NaN: written as null.
  await writeJsonAtomic(String(args.out), finiteOrNull(result));
  console.log(`wrote ${args.out}`);
  return 0;
}

if (import.meta.main) await runMain("deno task bench:train", main);

/** The WebGPU backend's matrix-product kernel family with its reason, or null on another backend. */
function gemmKernelOf(backend: object): string | null {
  const b = backend as Partial<Pick<WebGpuBackend, "gemmKernel" | "gemmKernelReason">>;
  return b.gemmKernel ? `${b.gemmKernel}: ${b.gemmKernelReason}` : null;
}
