/**
 * `deno task bench`: kernel benchmark. Measures GFLOP/s of matmul 1024³ and of conv2d 3×3, 64→64
 * channels, batch 64, 28×28 (forward, input gradient, weight gradient) on the WebGPU backend, beside
 * the CPU reference backend measured in the same run, prints the ratios and writes
 * `results/bench/kernels.json`. A benchmark, not a test: nothing here asserts a time.
 * @module
 */
import { type Conv2dGeometry, conv2dOutputShape, sizeOf } from "../lib/engine/backend.ts";
import { createDevice } from "../lib/engine/devices.ts";
import type { Device } from "../lib/engine/tensor.ts";
import { Rng } from "../lib/engine/random.ts";
import { writeJsonAtomic } from "../lib/artifacts/atomic.ts";
import { parseOptions } from "../lib/cli/args.ts";
import { gitCommit } from "../lib/artifacts/artifact.ts";

/** One measured kernel. */
export interface KernelFigure {
  kernel: string;
  shape: string;
  backend: string;
  adapter: string;
  gflops: number;
  /** Median seconds per call. */
  seconds: number;
  /** The CPU reference's GFLOP/s on the same shape in the same run (null when not measured). */
  baseline: number | null;
  /** gflops / baseline. */
  ratio: number | null;
  reps: number;
  date: string;
  commit: string;
}

interface Work {
  kernel: string;
  shape: string;
  flops: number;
  /** Allocates inputs on `d` and returns a function that records one call (returns the output storage to free). */
  setup(d: Device): { run: () => void; cleanup: () => void };
}

function randomStorage(d: Device, n: number, seed: number) {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.uniform() - 0.5;
  return d.backend.fromArray(a);
}

function matmulWork(m: number, k: number, n: number): Work {
  return {
    kernel: "matmul",
    shape: `${m}x${k}x${n}`,
    flops: 2 * m * k * n,
    setup(d) {
      const a = randomStorage(d, m * k, 1);
      const b = randomStorage(d, k * n, 2);
      const dims = { batch: 1, aBatch: 1, bBatch: 1, m, k, n, transA: false, transB: false };
      return {
        run: () => d.backend.free(d.backend.matmul(a, b, dims)),
        cleanup: () => [a, b].forEach((s) => d.backend.free(s)),
      };
    },
  };
}

function convWork(which: "forward" | "inputGrad" | "weightGrad", g: Conv2dGeometry): Work {
  const y = conv2dOutputShape(g);
  const [, c, ,] = g.x;
  const [, , kh, kw] = g.w;
  const flops = 2 * sizeOf(y) * c * kh * kw;
  return {
    kernel: `conv2d_${which}`,
    shape: `x[${g.x.join(",")}] w[${g.w.join(",")}] stride ${g.stride} pad ${g.pad}`,
    flops,
    setup(d) {
      const x = randomStorage(d, sizeOf(g.x), 3);
      const w = randomStorage(d, sizeOf(g.w), 4);
      const dy = randomStorage(d, sizeOf(y), 5);
      const run = which === "forward"
        ? () => d.backend.free(d.backend.conv2d(x, w, g))
        : which === "inputGrad"
        ? () => d.backend.free(d.backend.conv2dInputGrad(dy, w, g))
        : () => d.backend.free(d.backend.conv2dWeightGrad(x, dy, g));
      return { run, cleanup: () => [x, w, dy].forEach((s) => d.backend.free(s)) };
    },
  };
}

async function measure(d: Device, w: Work, reps: number, perRep: number): Promise<number> {
  const { run, cleanup } = w.setup(d);
  run(); // warm-up: compiles pipelines (Mesa JITs on the first dispatch)
  await d.backend.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    for (let j = 0; j < perRep; j++) run();
    await d.backend.sync();
    times.push((performance.now() - t0) / 1000 / perRep);
  }
  cleanup();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const OPTIONS = {
  reps: { type: "string" as const, default: "5", help: "timed repetitions per kernel (median reported)" },
  "per-rep": { type: "string" as const, default: "3", help: "calls recorded per repetition on WebGPU" },
  "cpu-reps": { type: "string" as const, default: "1", help: "repetitions of the CPU reference baseline" },
  out: { type: "string" as const, default: "results/bench/kernels.json", help: "where to write the figures" },
};

if (import.meta.main) {
  const args = parseOptions(
    "deno task bench",
    "Kernel benchmark: WebGPU vs the CPU reference, same process.",
    OPTIONS,
    Deno.args,
  );
  if (args === null) Deno.exit(0);
  const reps = Number(args.reps);
  const perRep = Number(args["per-rep"]);
  const cpuReps = Number(args["cpu-reps"]);
  const conv: Conv2dGeometry = { x: [64, 64, 28, 28], w: [64, 64, 3, 3], stride: 1, pad: 1 };
  const works = [
    matmulWork(1024, 1024, 1024),
    convWork("forward", conv),
    convWork("inputGrad", conv),
    convWork("weightGrad", conv),
  ];
  const cpu = await createDevice("cpu");
  let gpu: Device | null = null;
  try {
    gpu = await createDevice("webgpu");
  } catch (e) {
    console.error(`WebGPU unavailable, measuring the CPU reference only: ${(e as Error).message}`);
  }
  const date = new Date().toISOString();
  const commit = await gitCommit();
  const figures: KernelFigure[] = [];
  for (const w of works) {
    const cpuSec = await measure(cpu, w, cpuReps, 1);
    const cpuGflops = w.flops / cpuSec / 1e9;
    figures.push({
      kernel: w.kernel,
      shape: w.shape,
      backend: "cpu",
      adapter: cpu.backend.description,
      gflops: cpuGflops,
      seconds: cpuSec,
      baseline: null,
      ratio: null,
      reps: cpuReps,
      date,
      commit,
    });
    let line = `${w.kernel.padEnd(18)} ${w.shape.padEnd(44)} cpu ${cpuGflops.toFixed(2).padStart(7)} GFLOP/s`;
    if (gpu) {
      const sec = await measure(gpu, w, reps, perRep);
      const gflops = w.flops / sec / 1e9;
      figures.push({
        kernel: w.kernel,
        shape: w.shape,
        backend: "webgpu",
        adapter: gpu.backend.description,
        gflops,
        seconds: sec,
        baseline: cpuGflops,
        ratio: gflops / cpuGflops,
        reps,
        date,
        commit,
      });
      line += ` | webgpu ${gflops.toFixed(2).padStart(7)} GFLOP/s (${
        (gflops / cpuGflops).toFixed(1)
      }x the CPU reference)`;
    }
    console.log(line);
  }
  await writeJsonAtomic(String(args.out), { schemaVersion: 1, figures });
  console.log(`wrote ${args.out}`);
}
