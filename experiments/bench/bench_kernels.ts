/**
 * `deno task bench`: kernel benchmark. Measures GFLOP/s of matmul 1024³ and of conv2d 3×3, 64→64
 * channels, batch 64, 28×28 (forward, input gradient, weight gradient) on the WebGPU backend, beside
 * the CPU reference backend and the JavaScript peers a user could pick instead (tfjs-wasm, jax-js on
 * wasm and webgpu; see `bench_peers.ts`), all on the same operands in the same process. Every output is
 * checked against the CPU reference. The timed repetitions of WebGPU and the peers are interleaved
 * round by round, so load from other jobs on the machine hits them alike. Prints our ratio to each
 * peer and a summary against the goals of issue 6 (ours ≥ 1.5× the best peer, ≥ 50 % of the CPU's sgemm
 * ceiling, measured in the same run before and after the kernels: numpy's BLAS and PyTorch's oneDNN through
 * /usr/bin/python3 when installed, see bench_pytorch.ts) and writes `results/bench/kernels.json`. A benchmark, not a test: nothing here
 * asserts a time.
 * @module
 */
import type { Conv2dGeometry, Storage } from "../../lib/engine/backend.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import type { Device } from "../../lib/engine/tensor.ts";
import { Rng } from "../../lib/engine/random.ts";
import { writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import { OptionError, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { gitCommit } from "../../lib/artifacts/artifact.ts";
import { measureSgemm, type SgemmCeiling } from "./bench_pytorch.ts";
import {
  convOutputShape,
  type KernelSpec,
  loadPeers,
  type Operands,
  type Peer,
  PEER_NAMES,
  type PeerRun,
} from "./bench_peers.ts";
import { median } from "../framework/stats.ts";

/** Our own backends: the summary's "ours" is the faster of them; every other contender but the CPU reference is a peer. */
const OUR_BACKENDS: readonly string[] = ["webgpu", "wasm"];

/** Goal of issue 6: our GFLOP/s at least this multiple of the best peer's on each shape. */
export const PEER_RATIO_GOAL = 1.5;
/** Goal of issue 6: our GFLOP/s at least this share of the CPU's sgemm ceiling (measured in the same run). */
export const CEILING_SHARE_GOAL = 0.5;
/** Relative error (max |out - ref| / max |ref|) above which a check against the CPU reference is flagged. */
export const CHECK_TOLERANCE = 1e-3;

/** One measured kernel on one backend. */
export interface KernelFigure {
  /** "matmul", "conv2d_forward", "conv2d_inputGrad" or "conv2d_weightGrad". */
  kernel: string;
  /** The kernel's operand shapes in words. */
  shape: string;
  /** "cpu" (the reference), "webgpu" (ours), "wasm" (ours, with --wasm) or a peer: "tfjs-wasm", "jax-js-wasm", "jax-js-webgpu". */
  backend: string;
  /** Device or library version the backend ran on. */
  adapter: string;
  /** 10⁻⁹ · FLOPs per call / median wall seconds per call. */
  gflops: number;
  /** Median seconds per call. */
  seconds: number;
  /**
   * GFLOP per CPU-second of the whole process during the timed repetitions (median; all threads
   * counted: lavapipe's, jax-js's workers), a figure less sensitive to other jobs on the machine than
   * wall-clock GFLOP/s. Null where /proc/self/stat is unreadable.
   */
  gflopsPerCpuSecond: number | null;
  /**
   * For "webgpu": the CPU reference's GFLOP/s on the same shape in the same run. For a peer: our
   * WebGPU GFLOP/s. Null when not measured.
   */
  baseline: number | null;
  /** What `ratio` divides: "webgpu / cpu" on our rows, "webgpu / <peer>" (ours / peer) on peer rows. */
  ratioOf: string | null;
  /** webgpu / cpu on our rows; ours / peer on peer rows (>1: ours is faster). */
  ratio: number | null;
  /** Max |output − CPU reference| / max |CPU reference| on the first call (null for the reference). */
  check: number | null;
  /** How the backend computes the kernel when it is not one library call. */
  note: string | null;
  /** Timed repetitions (median taken) and calls per repetition. */
  reps: number;
  /** Calls per timed repetition (one sync per repetition). */
  perRep: number;
  /** ISO date of the run. */
  date: string;
  /** Git commit of the run (the engine's working tree may differ: see `uncommittedEngineFiles`). */
  commit: string;
}

/** Ours against the fastest peer on one kernel. */
export interface KernelSummary {
  /** Kernel name, as in {@link KernelFigure.kernel}. */
  kernel: string;
  /** Operand shapes in words. */
  shape: string;
  /** GFLOP/s of the faster of our backends (webgpu; wasm with --wasm), null when neither ran. */
  ours: number | null;
  /** Which of our backends that was. */
  oursBackend: string | null;
  /** The fastest peer whose output matched the reference (null when none was measured). */
  bestPeer: string | null;
  /** That peer's GFLOP/s. */
  bestPeerGflops: number | null;
  /** ours / best peer. */
  ratio: number | null;
  /** ours / the sgemm ceiling measured in the same run (null when not measured). */
  ceilingShare: number | null;
  /** ratio ≥ {@link PEER_RATIO_GOAL}. */
  peerGoalMet: boolean | null;
  /** ceilingShare ≥ {@link CEILING_SHARE_GOAL}. */
  ceilingGoalMet: boolean | null;
}

/** A benchmarked kernel: its backend-independent spec plus how our engine runs it. */
interface Work {
  spec: KernelSpec;
  shape: string;
  flops: number;
  /** Seeds its operands (engine layouts). */
  operands(): Operands;
  /** Uploads operands to `d`; `run` records one call and returns its output (caller frees it). */
  setup(d: Device, ops: Operands): { run: () => Storage; cleanup: () => void };
}

function randomArray(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.uniform() - 0.5;
  return a;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function operand(ops: Operands, name: string): Float32Array {
  const v = ops[name];
  if (v === undefined) throw new Error(`Cannot set up the kernel: operand "${name}" is missing`);
  return v;
}

function matmulWork(m: number, k: number, n: number): Work {
  return {
    spec: { op: "matmul", m, k, n },
    shape: `${m}x${k}x${n}`,
    flops: 2 * m * k * n,
    operands: () => ({ a: randomArray(m * k, 1), b: randomArray(k * n, 2) }),
    setup(d, ops) {
      const a = d.backend.fromArray(operand(ops, "a"));
      const b = d.backend.fromArray(operand(ops, "b"));
      const dims = { batch: 1, aBatch: 1, bBatch: 1, m, k, n, transA: false, transB: false };
      return {
        run: () => d.backend.matmul(a, b, dims),
        cleanup: () => [a, b].forEach((s) => d.backend.free(s)),
      };
    },
  };
}

function convWork(
  op: "conv2d_forward" | "conv2d_inputGrad" | "conv2d_weightGrad",
  x: [number, number, number, number],
  w: [number, number, number, number],
  pad: number,
): Work {
  const spec = { op, x, w, pad } as const;
  const y = convOutputShape(spec);
  const g: Conv2dGeometry = { x, w, stride: 1, pad };
  const [, c, ,] = x;
  const [, , kh, kw] = w;
  return {
    spec,
    shape: `x[${x.join(",")}] w[${w.join(",")}] stride 1 pad ${pad}`,
    flops: 2 * prod(y) * c * kh * kw,
    operands: () => ({ x: randomArray(prod(x), 3), w: randomArray(prod(w), 4), dy: randomArray(prod(y), 5) }),
    setup(d, ops) {
      const xs = d.backend.fromArray(operand(ops, "x"));
      const ws = d.backend.fromArray(operand(ops, "w"));
      const dys = d.backend.fromArray(operand(ops, "dy"));
      const run = op === "conv2d_forward"
        ? () => d.backend.conv2d(xs, ws, g)
        : op === "conv2d_inputGrad"
        ? () => d.backend.conv2dInputGrad(dys, ws, g)
        : () => d.backend.conv2dWeightGrad(xs, dys, g);
      return { run, cleanup: () => [xs, ws, dys].forEach((s) => d.backend.free(s)) };
    },
  };
}

/** Max |out − ref| / max |ref|, or +Infinity when the lengths differ. */
export function relativeError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Number.POSITIVE_INFINITY;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(out[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? err : err / scale;
}

/** Wraps one of our devices as a {@link PeerRun}, so it is timed by the same loop as the peers. */
function engineRun(d: Device, w: Work, ops: Operands): PeerRun {
  const { run, cleanup } = w.setup(d, ops);
  const pending: Storage[] = [];
  return {
    note: null,
    run: () => void pending.push(run()),
    async sync() {
      await d.backend.sync();
      for (const s of pending.splice(0)) d.backend.free(s);
    },
    async read() {
      const s = run();
      const out = await d.backend.read(s);
      d.backend.free(s);
      return Float32Array.from(out);
    },
    dispose: cleanup,
  };
}

/** A backend being timed on one kernel. */
interface Contender {
  backend: string;
  adapter: string;
  run: PeerRun;
  perRep: number;
  check: number | null;
  /** Wall seconds per call, one entry per timed repetition. */
  times: number[];
  /** Process CPU seconds per call, one entry per repetition (empty when unreadable). */
  cpuTimes: number[];
  spent: number;
}

/** USER_HZ of Linux's /proc figures (100 on every mainstream configuration). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds of this process so far (all threads), or null off Linux. */
function processCpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

/** Times one repetition of `calls` calls and the final sync; returns wall seconds per call. */
async function timedRep(c: Contender, calls: number): Promise<number> {
  const cpu0 = processCpuSeconds();
  const t0 = performance.now();
  for (let j = 0; j < calls; j++) c.run.run();
  await c.run.sync();
  const sec = (performance.now() - t0) / 1000;
  const cpu1 = processCpuSeconds();
  c.spent += sec;
  c.times.push(sec / calls);
  if (cpu0 !== null && cpu1 !== null) c.cpuTimes.push((cpu1 - cpu0) / calls);
  return sec / calls;
}

/**
 * Warm-up (compiles pipelines / JITs kernels; Mesa JITs on the first dispatch) and correctness check of
 * one contender against the CPU reference's output.
 */
async function warmUpAndCheck(c: Contender, ref: Float32Array): Promise<void> {
  c.check = relativeError(await c.run.read(), ref);
}

/** Calls slower than this after warm-up are timed one per repetition. */
const SLOW_CALL_SECONDS = 0.5;

function perCpuSecond(flops: number, c: Contender): number | null {
  return c.cpuTimes.length === 0 || median(c.cpuTimes) <= 0 ? null : flops / median(c.cpuTimes) / 1e9;
}

/** Files under lib/ and kernels/ that differ from the commit (the figures measure the working tree). */
async function uncommittedEngineFiles(): Promise<string[] | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["status", "--porcelain", "--", "lib", "kernels"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim() !== "").map((l) =>
      l.slice(3)
    );
  } catch {
    return null;
  }
}

const OPTIONS = {
  reps: { type: "string" as const, default: "5", help: "timed repetitions per kernel and backend (median)" },
  "per-rep": {
    type: "string" as const,
    default: "3",
    help: "calls per repetition (1 for a backend whose call takes over 0.5 s after warm-up)",
  },
  "cpu-reps": { type: "string" as const, default: "1", help: "repetitions of the CPU reference baseline" },
  peers: { type: "boolean" as const, default: true, help: "also measure the JavaScript peers" },
  "no-peers": { type: "boolean" as const, default: false, help: "measure our backends only" },
  wasm: {
    type: "boolean" as const,
    default: false,
    help: "also measure our wasm device (WebAssembly SIMD, both cores), timed like a peer beside webgpu",
  },
  "peer-list": {
    type: "string" as const,
    default: PEER_NAMES.join(","),
    help: "comma-separated peers to measure",
  },
  "peer-budget": {
    type: "string" as const,
    default: "30",
    help: "seconds a peer may spend per kernel before it stops after 2 repetitions",
  },
  out: { type: "string" as const, default: "results/bench/kernels.json", help: "where to write the figures" },
};

function fmt(x: number | null, digits = 2): string {
  return x === null ? "–" : x.toFixed(digits);
}

function loadavg(): number[] | null {
  try {
    return Deno.loadavg();
  } catch {
    return null;
  }
}

function positiveInt(value: unknown, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new OptionError(`Cannot use --${name} ${JSON.stringify(value)}: expected an integer ≥ 1`);
  }
  return n;
}

/** Runs the benchmark; returns the exit status (failures are thrown for {@link runMain}). */
async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(
    "deno task bench",
    "Kernel benchmark: WebGPU vs the CPU reference and the JavaScript peers, same process.",
    OPTIONS,
    argv,
  );
  if (args === null) return 0;
  const reps = positiveInt(args.reps, "reps");
  const perRep = positiveInt(args["per-rep"], "per-rep");
  const cpuReps = positiveInt(args["cpu-reps"], "cpu-reps");
  const peerBudget = Number(args["peer-budget"]);
  const withPeers = args.peers !== false && args["no-peers"] !== true;
  const x: [number, number, number, number] = [64, 64, 28, 28];
  const w: [number, number, number, number] = [64, 64, 3, 3];
  const works = [
    matmulWork(1024, 1024, 1024),
    convWork("conv2d_forward", x, w, 1),
    convWork("conv2d_inputGrad", x, w, 1),
    convWork("conv2d_weightGrad", x, w, 1),
  ];
  const cpu = await createDevice("cpu");
  let gpu: Device | null = null;
  try {
    gpu = await createDevice("webgpu");
  } catch (e) {
    console.error(`WebGPU unavailable, measuring the CPU reference and peers only: ${(e as Error).message}`);
  }
  const wasm = args.wasm === true ? await createDevice("wasm") : null;
  let peers: Peer[] = [];
  const peerFailures: { backend: string; reason: string }[] = [];
  if (withPeers) {
    const names = String(args["peer-list"]).split(",").map((s) => s.trim()).filter((s) => s !== "");
    const load = await loadPeers(names);
    peers = load.peers;
    peerFailures.push(...load.failures);
    for (const p of peers) console.log(`peer ${p.backend}: ${p.adapter}`);
    for (const f of load.failures) console.log(`peer ${f.backend} not measured: ${f.reason}`);
  }
  const date = new Date().toISOString();
  const commit = await gitCommit();
  const uncommitted = await uncommittedEngineFiles();
  if (uncommitted !== null && uncommitted.length > 0) {
    console.log(
      `note: ${uncommitted.length} file(s) under lib/ or kernels/ differ from commit ${commit.slice(0, 7)}`,
    );
  }
  const loadStart = loadavg();
  console.log("sgemm ceiling (before the kernels)...");
  const sgemmBefore = await measureSgemm();
  console.log(`  ${sgemmBefore.gflops === null ? sgemmBefore.note : `${fmt(sgemmBefore.gflops)} GFLOP/s`}`);
  const ceiling = sgemmBefore.gflops;
  const figures: KernelFigure[] = [];
  const skipped: { kernel: string; backend: string; reason: string }[] = [];
  const summary: KernelSummary[] = [];
  const row = (f: Omit<KernelFigure, "date" | "commit">) => figures.push({ ...f, date, commit });

  for (const work of works) {
    const kernel = work.spec.op;
    console.log(`\n${kernel} ${work.shape} (${(work.flops / 1e9).toFixed(2)} GFLOP per call)`);
    const ops = work.operands();

    // The CPU reference: baseline and the output every other backend is checked against.
    const cpuC: Contender = {
      backend: "cpu",
      adapter: cpu.backend.description,
      run: engineRun(cpu, work, ops),
      perRep: 1,
      check: null,
      times: [],
      cpuTimes: [],
      spent: 0,
    };
    const ref = await cpuC.run.read();
    for (let i = 0; i < cpuReps; i++) await timedRep(cpuC, 1);
    cpuC.run.dispose();
    const cpuGflops = work.flops / median(cpuC.times) / 1e9;
    row({
      kernel,
      shape: work.shape,
      backend: "cpu",
      adapter: cpuC.adapter,
      gflops: cpuGflops,
      seconds: median(cpuC.times),
      gflopsPerCpuSecond: perCpuSecond(work.flops, cpuC),
      baseline: null,
      ratioOf: null,
      ratio: null,
      check: null,
      note: null,
      reps: cpuC.times.length,
      perRep: 1,
    });
    console.log(
      `  ${"cpu".padEnd(14)} ${fmt(cpuGflops).padStart(8)} GFLOP/s ${
        fmt(perCpuSecond(work.flops, cpuC)).padStart(7)
      } per CPU-s`,
    );

    // Our WebGPU backend and the peers, warmed up and checked, then timed in interleaved rounds.
    const contenders: Contender[] = [];
    const candidates: { backend: string; adapter: string; make: () => Promise<PeerRun> }[] = [];
    if (gpu) {
      const g = gpu;
      candidates.push({
        backend: "webgpu",
        adapter: g.backend.description,
        make: () => Promise.resolve(engineRun(g, work, ops)),
      });
    }
    if (wasm) {
      const d = wasm;
      candidates.push({
        backend: "wasm",
        adapter: d.backend.description,
        make: () => Promise.resolve(engineRun(d, work, ops)),
      });
    }
    for (const p of peers) {
      candidates.push({ backend: p.backend, adapter: p.adapter, make: () => p.prepare(work.spec, ops) });
    }
    for (const cand of candidates) {
      let c: Contender | null = null;
      try {
        c = { ...cand, run: await cand.make(), perRep, check: null, times: [], cpuTimes: [], spent: 0 };
        await warmUpAndCheck(c, ref);
        // A second call decides the calls per repetition; a slow one (> 0.5 s) counts as the first
        // repetition, a fast one is discarded as further warm-up.
        if ((await timedRep(c, 1)) > SLOW_CALL_SECONDS) c.perRep = 1;
        else Object.assign(c, { times: [], cpuTimes: [], spent: 0 });
        contenders.push(c);
        if (c.check !== null && !(c.check <= CHECK_TOLERANCE)) {
          console.log(`  ${cand.backend}: output differs from the CPU reference (relative error ${c.check})`);
        }
      } catch (e) {
        const reason = (e as Error).message ?? String(e);
        skipped.push({ kernel, backend: cand.backend, reason });
        console.log(`  ${cand.backend.padEnd(14)} not measured: ${reason}`);
        try {
          c?.run.dispose();
        } catch { /* already failing */ }
      }
    }
    for (let r = 0; r < reps; r++) {
      for (const c of contenders) {
        const isPeer = c.backend !== "webgpu";
        if (c.times.length >= reps || (isPeer && c.times.length >= 2 && c.spent > peerBudget)) continue;
        await timedRep(c, c.perRep);
      }
    }
    for (const c of contenders) c.run.dispose();

    const ours = contenders.find((c) => c.backend === "webgpu");
    const oursGflops = ours ? work.flops / median(ours.times) / 1e9 : null;
    for (const c of contenders) {
      const sec = median(c.times);
      const gflops = work.flops / sec / 1e9;
      const isOurs = c === ours;
      const ratio = isOurs ? gflops / cpuGflops : oursGflops === null ? null : oursGflops / gflops;
      row({
        kernel,
        shape: work.shape,
        backend: c.backend,
        adapter: c.adapter,
        gflops,
        seconds: sec,
        gflopsPerCpuSecond: perCpuSecond(work.flops, c),
        baseline: isOurs ? cpuGflops : oursGflops,
        ratioOf: isOurs ? "webgpu / cpu" : oursGflops === null ? null : `webgpu / ${c.backend}`,
        ratio,
        check: c.check !== null && Number.isFinite(c.check) ? c.check : null,
        note: c.run.note,
        reps: c.times.length,
        perRep: c.perRep,
      });
      const vs = isOurs ? `${fmt(ratio, 1)}x the CPU reference` : `ours / ${c.backend} = ${fmt(ratio)}`;
      const perCpu = perCpuSecond(work.flops, c);
      console.log(
        `  ${c.backend.padEnd(14)} ${fmt(gflops).padStart(8)} GFLOP/s ${
          fmt(perCpu).padStart(7)
        } per CPU-s  ` +
          `(${vs}; ${c.times.length}x${c.perRep} calls, check ${
            c.check === null ? "–" : c.check.toExponential(1)
          })`,
      );
    }
    // The summary's "ours" is the faster of our own backends (webgpu, and wasm with --wasm); a
    // contender whose output disagrees with the reference counts neither as ours nor as a peer.
    const fastest = (rows: typeof contenders) => {
      let best: { backend: string; gflops: number } | null = null;
      for (const c of rows) {
        const gf = work.flops / median(c.times) / 1e9;
        if (best === null || gf > best.gflops) best = { backend: c.backend, gflops: gf };
      }
      return best;
    };
    const matching = contenders.filter((c) => c.check !== null && c.check <= CHECK_TOLERANCE);
    const oursBest = fastest(matching.filter((c) => OUR_BACKENDS.includes(c.backend)));
    const best = fastest(matching.filter((c) => !OUR_BACKENDS.includes(c.backend) && c.backend !== "cpu"));
    const oursSummary = oursBest?.gflops ?? null;
    const ratio = oursSummary !== null && best !== null ? oursSummary / best.gflops : null;
    const share = oursSummary === null || ceiling === null ? null : oursSummary / ceiling;
    summary.push({
      kernel,
      shape: work.shape,
      ours: oursSummary,
      oursBackend: oursBest?.backend ?? null,
      bestPeer: best?.backend ?? null,
      bestPeerGflops: best?.gflops ?? null,
      ratio,
      ceilingShare: share,
      peerGoalMet: ratio === null ? null : ratio >= PEER_RATIO_GOAL,
      ceilingGoalMet: share === null ? null : share >= CEILING_SHARE_GOAL,
    });
  }
  const loadEnd = loadavg();
  const sgemmAfter: SgemmCeiling = await measureSgemm();
  const sgemm = { before: sgemmBefore, after: sgemmAfter };
  for (const [when, c] of Object.entries(sgemm)) {
    for (const f of c.figures) {
      console.log(`sgemm ${when}: ${f.library} ${fmt(f.gflops)} GFLOP/s (${f.version})`);
    }
    if (c.gflops === null) console.log(`sgemm ${when}: ${c.note}`);
  }

  console.log(
    `\nSummary (goal: ours ≥ ${PEER_RATIO_GOAL}x the best peer and ≥ ${CEILING_SHARE_GOAL * 100} % of ` +
      `${ceiling === null ? "an unmeasured" : fmt(ceiling)} GFLOP/s sgemm; load average ${
        loadStart?.map((l) => l.toFixed(1)).join(" ") ?? "?"
      } → ` +
      `${loadEnd?.map((l) => l.toFixed(1)).join(" ") ?? "?"})`,
  );
  console.log(
    `${"kernel".padEnd(18)} ${"ours".padEnd(7)} ${"GFLOP/s".padStart(8)} ${"best peer".padEnd(14)} ${
      "peer".padStart(8)
    } ` +
      `${"ours/peer".padStart(9)} ${"%sgemm".padStart(6)}  goals`,
  );
  for (const s of summary) {
    const goals = [
      s.peerGoalMet === null ? "peer ?" : s.peerGoalMet ? "peer ok" : "peer MISSED",
      s.ceilingGoalMet === null ? "ceiling ?" : s.ceilingGoalMet ? "ceiling ok" : "ceiling MISSED",
    ].join(", ");
    console.log(
      `${s.kernel.padEnd(18)} ${(s.oursBackend ?? "–").padEnd(7)} ${fmt(s.ours).padStart(8)} ${
        (s.bestPeer ?? "–").padEnd(14)
      } ` +
        `${fmt(s.bestPeerGflops).padStart(8)} ${fmt(s.ratio).padStart(9)} ` +
        `${fmt(s.ceilingShare === null ? null : s.ceilingShare * 100, 1).padStart(6)}  ${goals}`,
    );
  }
  await writeJsonAtomic(String(args.out), {
    schemaVersion: 2,
    date,
    commit,
    uncommittedEngineFiles: uncommitted,
    goals: {
      peerRatio: PEER_RATIO_GOAL,
      ceilingShare: CEILING_SHARE_GOAL,
    },
    sgemmCeilingGflops: ceiling,
    sgemm,
    loadAverage: { start: loadStart, end: loadEnd },
    figures,
    summary,
    skipped,
    peerFailures,
  });
  console.log(`wrote ${args.out}`);
  // jax-js's wasm worker pool keeps the event loop alive: runMain exits once the benchmark is done.
  return 0;
}

if (import.meta.main) await runMain("deno task bench", main);
