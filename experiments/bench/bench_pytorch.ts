/**
 * The authors' PyTorch code as a same-run baseline of `deno task bench:train`: finds it (a checkout of
 * rtqichen/residual-flows with `time_official.py` beside it, and a Python whose `import torch` works),
 * gives it MNIST in the layout torchvision reads (a temporary folder of links to the IDX files of the
 * package our loader uses) and times N training iterations of the benchmark's configuration in a fresh
 * process through `time_official.py`, which prints JSON. Also measures the CPU's sgemm ceiling with
 * numpy for `deno task bench`. Nothing here asserts a time.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { mnistPackageFile } from "../../lib/data/mnist.ts";

/** Where `--pytorch` points by default, relative to the repository root. */
export const DEFAULT_PYTORCH_DIR = "../shared/peers/residual-flows";
/** The Python that has Debian's python3-torch and python3-numpy. */
export const DEFAULT_PYTHON = "/usr/bin/python3";

/** The authors' learning-rate warm-up (`--warmup-iters`), passed explicitly and used on our side too. */
export const AUTHORS_WARMUP_ITERS = 1000;

/**
 * The authors' `train_img.py` flags for the configuration of `benchConfig()` in bench_train.ts (MNIST,
 * batch 64, 4-4 blocks of width 64, kernels 3-1-3, LipSwish (their "swish": x·σ(βx)/1.1), ActNorm, FC end of width 128, Poisson
 * roulette with 2 exact terms, Neumann gradients + backward-in-forward, spectral-norm tolerance 1e-3,
 * coeff 0.98, Adam lr 1e-3 warmed up over {@link AUTHORS_WARMUP_ITERS} iterations, no weight decay).
 */
export const AUTHORS_TRAIN_ARGS: readonly string[] = [
  "--data",
  "mnist",
  "--imagesize",
  "28",
  "--nblocks",
  "4-4",
  "--idim",
  "64",
  "--kernels",
  "3-1-3",
  "--act",
  "swish",
  "--actnorm",
  "True",
  "--fc-end",
  "True",
  "--fc-idim",
  "128",
  "--n-dist",
  "poisson",
  "--n-exact-terms",
  "2",
  "--neumann-grad",
  "True",
  "--mem-eff",
  "True",
  "--sn-tol",
  "1e-3",
  "--coeff",
  "0.98",
  "--batchsize",
  "64",
  "--lr",
  "1e-3",
  "--warmup-iters",
  String(AUTHORS_WARMUP_ITERS),
  "--wd",
  "0",
  "--seed",
  "1",
];

/** A usable PyTorch baseline. */
export interface PytorchBaseline {
  /** The authors' checkout. */
  readonly dir: string;
  /** `time_official.py` beside it. */
  readonly timer: string;
  /** The Python that imports torch. */
  readonly python: string;
  /** torch.__version__. */
  readonly torchVersion: string;
}

/** Output of a command, or null when it cannot be started. */
async function run(cmd: string, args: string[], env?: Record<string, string>) {
  try {
    const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The baseline at `dir` with `python`, or the reason there is none (a sentence). `time_official.py`
 * runs `<its folder>/residual-flows/train_img.py`, so `dir` must be that folder.
 */
export async function findPytorchBaseline(
  dir: string,
  python: string = DEFAULT_PYTHON,
): Promise<PytorchBaseline | { reason: string }> {
  const abs = resolve(dir);
  if (!(await exists(join(abs, "train_img.py")))) {
    return { reason: `no authors' checkout at ${abs} (train_img.py missing)` };
  }
  const timer = join(dirname(abs), "time_official.py");
  if (basename(abs) !== "residual-flows" || !(await exists(timer))) {
    return { reason: `no time_official.py beside ${abs} (it runs <its folder>/residual-flows)` };
  }
  const probe = await run(python, ["-c", "import torch; print(torch.__version__)"]);
  if (probe === null) return { reason: `${python} cannot be started` };
  if (probe.code !== 0) {
    return { reason: `${python} cannot import torch (${probe.stderr.trim().split("\n").pop()})` };
  }
  return { dir: abs, timer, python, torchVersion: probe.stdout.trim() };
}

/**
 * A temporary data root with `MNIST/raw/` holding copies of the four IDX files our loader reads, the
 * layout torchvision expects (copies, not links: `Deno.symlink` needs unscoped read and write
 * permissions, which the `bench:train` task does not have). The caller removes it.
 */
export async function mnistDataroot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "bench-mnist-" });
  const raw = join(root, "MNIST", "raw");
  await Deno.mkdir(raw, { recursive: true });
  for (
    const f of [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ]
  ) {
    await Deno.copyFile(await mnistPackageFile(f), join(raw, f));
  }
  return root;
}

/** One timed run of the authors' code. */
export interface AuthorsRun {
  /** Seconds of every logged iteration, warm-up included. */
  readonly secondsPerIteration: number[];
  /** Leading iterations that are warm-up. */
  readonly warmup: number;
  /** Wall seconds of the whole process (start-up, data loading, warm-up included). */
  readonly processSeconds: number;
}

/**
 * Times `warmup + iters` training iterations of the authors' code in a fresh process with
 * OMP_NUM_THREADS = `threads` (the per-iteration "Time" its training loop logs).
 */
export async function timeAuthors(
  base: PytorchBaseline,
  dataroot: string,
  opts: { iters: number; warmup: number; threads: number },
): Promise<AuthorsRun> {
  const t0 = performance.now();
  const out = await run(base.python, [
    base.timer,
    "--python",
    base.python,
    "--iters",
    String(opts.iters + opts.warmup),
    "--warmup",
    String(opts.warmup),
    "--",
    ...AUTHORS_TRAIN_ARGS,
    "--dataroot",
    dataroot,
  ], { OMP_NUM_THREADS: String(opts.threads) });
  const processSeconds = (performance.now() - t0) / 1000;
  if (out === null) throw new Error(`Cannot time the authors' code: ${base.python} cannot be started`);
  const line = out.stdout.trim().split("\n").pop() ?? "";
  if (out.code !== 0 || !line.startsWith("{")) {
    throw new Error(
      `Cannot time the authors' code: time_official.py exited with ${out.code}: ${
        (out.stderr.trim() || out.stdout.trim()).split("\n").slice(-3).join(" | ")
      }`,
    );
  }
  const parsed = JSON.parse(line) as { seconds_per_iteration: number[] };
  return { secondsPerIteration: parsed.seconds_per_iteration, warmup: opts.warmup, processSeconds };
}

/** One way of multiplying float32 matrices on the CPU, measured. */
export interface SgemmFigure {
  /** What ran: "numpy matmul" or "torch conv2d 1x1 (oneDNN)". */
  readonly library: string;
  /** Best GFLOP/s over the repetitions. */
  readonly gflops: number;
  /** Library version and BLAS. */
  readonly version: string;
}

/** What {@link measureSgemm} found. */
export interface SgemmCeiling {
  /** The best of {@link figures}, or null when nothing could be measured. */
  readonly gflops: number | null;
  /** Every library measured. */
  readonly figures: SgemmFigure[];
  /** How it was measured, or why not. */
  readonly note: string;
}

const SGEMM_SCRIPT = `
import json, sys, time
n, reps = int(sys.argv[1]), int(sys.argv[2])
out = []
def best(f):
    f()
    b = float("inf")
    for _ in range(reps):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return 2 * n ** 3 / b / 1e9
try:
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    c = rng.standard_normal((n, n), dtype=np.float32)
    info = np.__config__.get_info("blas_opt_info") if hasattr(np.__config__, "get_info") else {}
    out.append({"library": "numpy matmul", "gflops": best(lambda: a @ c),
                "version": "numpy " + np.__version__ + " (" + ", ".join(info.get("libraries", [])) + ")"})
except ImportError:
    pass
try:
    import torch
    x = torch.randn(1, n, n, 1)
    w = torch.randn(n, n, 1, 1)
    out.append({"library": "torch conv2d 1x1 (oneDNN)",
                "gflops": best(lambda: torch.nn.functional.conv2d(x, w)),
                "version": "torch " + torch.__version__ + ", mkldnn " + str(torch.backends.mkldnn.is_available())})
except ImportError:
    pass
print(json.dumps(out))
`;

/** Environment variables passed on to the sgemm subprocess (the task's --allow-env lists them). */
export const SUBPROCESS_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH"] as const;

/**
 * The CPU's sgemm ceiling: best of `reps` n×n×n float32 products in a Python subprocess on `threads`
 * threads, through numpy's BLAS and through PyTorch's oneDNN (a 1×1 convolution is one GEMM), whichever
 * are installed; the ceiling is the faster. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from that
 * subprocess's environment only, so an OpenBLAS picks its kernels for the real CPU.
 */
export async function measureSgemm(
  opts: { python?: string; n?: number; reps?: number; threads?: number } = {},
): Promise<SgemmCeiling> {
  const { python = DEFAULT_PYTHON, n = 2048, reps = 3, threads = navigator.hardwareConcurrency } = opts;
  // Only the variables the subprocess needs are passed (the task may read just these), without the two
  // OpenBLAS overrides.
  const env: Record<string, string> = { OMP_NUM_THREADS: String(threads) };
  for (const name of SUBPROCESS_ENV) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: ["-c", SGEMM_SCRIPT, String(n), String(reps)],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return {
      gflops: null,
      figures: [],
      note: `not measured: ${python} cannot be started (${(e as Error).message})`,
    };
  }
  const dec = new TextDecoder();
  if (out.code !== 0) {
    return {
      gflops: null,
      figures: [],
      note: `not measured: ${dec.decode(out.stderr).trim().split("\n").pop()}`,
    };
  }
  const figures = JSON.parse(dec.decode(out.stdout).trim()) as SgemmFigure[];
  if (figures.length === 0) {
    return { gflops: null, figures, note: `not measured: ${python} has neither numpy nor torch` };
  }
  return {
    gflops: Math.max(...figures.map((f) => f.gflops)),
    figures,
    note: `best of ${reps} ${n}³ float32 products on ${threads} threads, same run`,
  };
}
