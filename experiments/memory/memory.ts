/**
 * Experiment "memory": the paper's memory figure (Fig. 3, SPEC 1.11). Peak bytes of one training step
 * (forward, mean bits/dim, gradients of every parameter; the optimizer is excluded) with n = 10 series
 * terms and batch 64, for naive backprop, the Neumann gradient series, backward-in-forward and both,
 * on the paper's three architectures (MNIST; CIFAR-10 with immediate downsampling; CIFAR-10) with ELU
 * and LipSwish, measured on the meta device (shapes only, the same byte accounting as a real device) at
 * the paper's full size. A second unit checks on the real device, at a reduced size, that its peaks
 * equal the meta device's to the byte.
 *
 * Units: "figure3" (all 24 cells, the "relative" column and the bar charts) and "device_check".
 * @module
 */
import { barChartPng } from "../../lib/artifacts/plot.ts";
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { makeFigure, publishedValue } from "../published.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import type { Preset } from "../framework/presets.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import type { Device } from "../../lib/engine/tensor.ts";
import {
  type ActivationName,
  makeConfig,
  PAPER_CONFIGS,
  type ResidualFlowConfig,
} from "../../lib/flow/config.ts";
import type { Claim, Experiment, Unit, UnitContext, UnitResult } from "../framework/experiment.ts";
import {
  BYTES_PER_GB,
  measureStepPeak,
  MEMORY_METHODS,
  type MemoryMethod,
  METHOD_LABELS,
  methodConfig,
  type StepMemory,
  variantConfig,
} from "./memory_measure.ts";
import { finiteFigure } from "../framework/figures.ts";

/** The published table the figures belong to. */
export const MEMORY_TABLE = "memory_gb";
/** The project's own table of the real-device check. */
export const DEVICE_CHECK_TABLE = "memory_device_check";
/** Column of the memory table with the mean ratio to naive backprop (written by figure3, read by the claims). */
export const RELATIVE_COLUMN = "relative";
/** Column of the device check with real minus meta bytes (written by device_check, read by the claims). */
export const DIFFERENCE_COLUMN = "difference_bytes";
/** The project's own table of bytes resident before the step (parameters, buffers, the batch). */
export const RESIDENT_TABLE = "memory_resident_gb";

/** The paper's architectures (keys of PAPER_CONFIGS) and their labels. */
export const MEMORY_ARCHS = [
  { key: "mnist", label: "MNIST" },
  { key: "cifar10_small", label: "CIFAR-10 small" },
  { key: "cifar10", label: "CIFAR-10" },
] as const;

/** The activations compared. */
export const MEMORY_ACTIVATIONS: readonly { key: "elu" | "lipswish"; label: string }[] = [
  { key: "elu", label: "ELU" },
  { key: "lipswish", label: "LipSwish" },
];

/** Column names of the memory table, in the published order ("mnist_elu", ..., "cifar10_lipswish"). */
export const MEMORY_COLUMNS: readonly string[] = MEMORY_ARCHS.flatMap((a) =>
  MEMORY_ACTIVATIONS.map((act) => `${a.key}_${act.key}`)
);

/** Series terms per block (the paper's n = 10). */
export const N_TERMS = 10;
/** Batch size (the paper's 64). */
export const BATCH = 64;
/** The "factor of ten" of the paper's headline claim. */
export const REDUCTION_FACTOR = 10;
/** Largest mean ratio both/naive accepted for the claim (the paper: 7.1 %). */
export const BOTH_RATIO_MAX = 0.1;

/** The measurement plan of the figure unit at a preset. */
export interface MemoryPlan {
  /** Blocks per scale, or null for the paper's 16-16-16. */
  readonly blocksPerScale: number | null;
  /** Batch size. */
  readonly batch: number;
  /** Series terms. */
  readonly nTerms: number;
  /** The words of each figure's `scale`. */
  readonly scale: string;
}

/** The figure unit's plan: the paper's full size, except depth 2 under `smoke` (for the test suite). */
export function memoryPlan(preset: Preset): MemoryPlan {
  const smoke = preset === "smoke";
  return {
    blocksPerScale: smoke ? 2 : null,
    batch: BATCH,
    nTerms: N_TERMS,
    scale: smoke
      ? `smoke: depth reduced to 2-2-2 blocks (paper 16-16-16), width 512, FC end blocks, batch ${BATCH}, n = ${N_TERMS}, meta device`
      : `paper size: 16-16-16 blocks of width 512, 4 FC end blocks, batch ${BATCH}, n = ${N_TERMS}, meta device`,
  };
}

/** The reduced model of the real-device check (the same at every preset but `smoke`, which is smaller). */
export function deviceCheckConfig(preset: Preset): { config: ResidualFlowConfig; batch: number } {
  const smoke = preset === "smoke";
  return {
    config: makeConfig({
      inputShape: smoke ? [1, 8, 8] : [3, 16, 16],
      nBlocks: [2, 2],
      hiddenChannels: smoke ? 8 : 16,
      fcHidden: smoke ? 8 : 16,
      fcBlocks: smoke ? 1 : 2,
      activation: "lipswish",
    }),
    batch: smoke ? 4 : 8,
  };
}

function archConfig(arch: string, act: ActivationName, plan: MemoryPlan): ResidualFlowConfig {
  const base = PAPER_CONFIGS[arch];
  if (!base) throw new Error(`Cannot measure architecture "${arch}": it is not in PAPER_CONFIGS`);
  return variantConfig(base, act, plan.blocksPerScale ?? undefined);
}

function gb(bytes: number): number {
  return bytes / BYTES_PER_GB;
}

async function runFigure3(ctx: UnitContext): Promise<UnitResult> {
  const plan = memoryPlan(ctx.preset);
  const cells = new Map<string, StepMemory>();
  const bar = ctx.progress("memory (meta device)", MEMORY_COLUMNS.length * MEMORY_METHODS.length, "cells");
  const configs: Record<string, unknown> = {};
  for (const arch of MEMORY_ARCHS) {
    for (const act of MEMORY_ACTIVATIONS) {
      const column = `${arch.key}_${act.key}`;
      const cfg = archConfig(arch.key, act.key, plan);
      configs[column] = {
        nBlocks: cfg.nBlocks,
        hiddenChannels: cfg.hiddenChannels,
        squeezeFirst: cfg.squeezeFirst,
      };
      for (const method of MEMORY_METHODS) {
        // A fresh meta device per cell: nothing but this model and this step is counted.
        const meta = await createDevice("meta");
        const m = measureStepPeak(methodConfig(cfg, method, plan.nTerms), meta, {
          batch: plan.batch,
          seed: ctx.seed,
        });
        if (m.leakedBytes !== 0) {
          ctx.log(`memory: ${column} ${method} left ${m.leakedBytes} bytes live after the step`);
        }
        cells.set(`${method}:${column}`, m);
        bar.tick(1, `${column} ${method} ${gb(m.peakBytes).toFixed(1)} GB`);
      }
    }
  }
  bar.finish();
  const figures: Figure[] = [];
  const ratios = new Map<MemoryMethod, number[]>();
  for (const column of MEMORY_COLUMNS) {
    const naive = cells.get(`naive_backprop:${column}`)!;
    for (const method of MEMORY_METHODS) {
      const m = cells.get(`${method}:${column}`)!;
      figures.push(makeFigure({
        table: MEMORY_TABLE,
        row: method,
        column,
        value: gb(m.peakBytes),
        stderr: null,
        unit: "GB",
        scale: plan.scale,
        n: 1,
        note: `peak of one step (deterministic byte count, 1 GB = 1e9 bytes); ${
          gb(m.stepBytes).toFixed(2)
        } GB above the ${gb(m.startBytes).toFixed(3)} GB resident before it; ratio to naive ${
          (m.peakBytes / naive.peakBytes).toFixed(4)
        }`,
      }));
      const r = ratios.get(method) ?? [];
      r.push(m.peakBytes / naive.peakBytes);
      ratios.set(method, r);
    }
    const start = cells.get(`both:${column}`)!;
    figures.push(makeFigure({
      table: RESIDENT_TABLE,
      row: "parameters_buffers_batch",
      column,
      value: gb(start.startBytes),
      stderr: null,
      unit: "GB",
      scale: plan.scale,
      n: 1,
      note: `${start.parameters} parameters (${
        gb(start.parameterBytes).toFixed(3)
      } GB); Adam's moments, not counted, would add twice that`,
    }));
  }
  for (const method of MEMORY_METHODS) {
    const r = ratios.get(method)!;
    figures.push(makeFigure({
      table: MEMORY_TABLE,
      row: method,
      column: RELATIVE_COLUMN,
      value: mean(r),
      stderr: stderrOf(r),
      unit: "ratio",
      scale: plan.scale,
      n: r.length,
      note: `mean over the six architectures of peak(method) / peak(naive); per architecture: ${
        r.map((v) => v.toFixed(4)).join(", ")
      }`,
    }));
  }
  const files = await writeCharts(ctx.outDir, cells, ratios, plan);
  return {
    figures,
    files,
    config: {
      unit: "figure3",
      device: "meta",
      batch: plan.batch,
      nTerms: plan.nTerms,
      estimator: "fixed truncation of n terms per block (every block computes exactly n VJPs)",
      blocksPerScale: plan.blocksPerScale ?? "paper (16-16-16)",
      bytesPerGB: BYTES_PER_GB,
      step:
        "forward + mean bits/dim + gradients of every parameter; optimizer excluded; peak after a warm-up step",
      architectures: configs,
    },
    seeds: [ctx.seed],
    backend: "meta",
    adapter: "meta (shapes only, no data)",
    complete: true,
    notes: [
      "Peak bytes are counted by the engine's allocator accounting (live tensor storages), the same on the meta device and on a real one; 1 GB = 1e9 bytes.",
      "The step is forward, mean bits/dim and the gradients of every parameter after a warm-up step (ActNorm initialisation); Adam's state and update are excluded.",
      "Absolute GB differ from the paper's PyTorch/CUDA numbers (another framework's saved tensors and workspace); the ratios to naive backprop are the comparable quantity.",
    ],
  };
}

async function writeCharts(
  outDir: string,
  cells: Map<string, StepMemory>,
  ratios: Map<MemoryMethod, number[]>,
  plan: MemoryPlan,
): Promise<string[]> {
  const categories = MEMORY_ARCHS.flatMap((a) => MEMORY_ACTIVATIONS.map((act) => `${a.label} ${act.label}`));
  const depth = plan.blocksPerScale === null ? "16-16-16" : `${plan.blocksPerScale}-each (smoke)`;
  const gbPng = await barChartPng({
    title: `Peak memory of one training step (batch ${plan.batch}, n = ${plan.nTerms}, ${depth} blocks)`,
    categories,
    series: MEMORY_METHODS.map((method) => ({
      name: METHOD_LABELS[method],
      values: MEMORY_COLUMNS.map((c) => gb(cells.get(`${method}:${c}`)!.peakBytes)),
    })),
    yLabel: "GB (1e9 bytes), log scale",
    yLog: true,
    width: 960,
    height: 520,
  });
  const relPng = await barChartPng({
    title: `Memory relative to naive backprop (mean over the six architectures, ${depth} blocks)`,
    categories: MEMORY_METHODS.map((m) => METHOD_LABELS[m]),
    series: [
      {
        name: "this reproduction (± standard error over the six)",
        values: MEMORY_METHODS.map((m) => mean(ratios.get(m)!)),
        errors: MEMORY_METHODS.map((m) => stderrOf(ratios.get(m)!)),
      },
      {
        name: "paper",
        values: MEMORY_METHODS.map((m) => {
          const p = publishedValue(MEMORY_TABLE, m, RELATIVE_COLUMN);
          return typeof p === "number" ? p : null;
        }),
      },
    ],
    yLabel: "peak / peak of naive backprop",
    width: 720,
    height: 450,
  });
  const files = ["memory_gb.png", "memory_relative.png"];
  await writeFileAtomic(`${outDir}/${files[0]}`, gbPng);
  await writeFileAtomic(`${outDir}/${files[1]}`, relPng);
  return files;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Standard error of the mean (sample standard deviation / √n). */
function stderrOf(xs: readonly number[]): number {
  const m = mean(xs);
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return sd / Math.sqrt(xs.length);
}

async function runDeviceCheck(ctx: UnitContext): Promise<UnitResult> {
  const { config, batch } = deviceCheckConfig(ctx.preset);
  const device: Device = ctx.device;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const scale = `reduced model: input ${config.inputShape.join("x")}, blocks ${
    config.nBlocks.join("-")
  } of width ${config.hiddenChannels}, ${config.fcBlocks} FC blocks of width ${config.fcHidden}, LipSwish, batch ${batch}, n = ${N_TERMS}`;
  const bar = ctx.progress("memory check (real device vs meta)", MEMORY_METHODS.length, "methods");
  let allEqual = true;
  for (const method of MEMORY_METHODS) {
    const cfg = methodConfig(config, method, N_TERMS);
    const real = measureStepPeak(cfg, device, { batch, seed: ctx.seed });
    const meta = measureStepPeak(cfg, await createDevice("meta"), { batch, seed: ctx.seed });
    const diff = real.stepBytes - meta.stepBytes;
    if (diff !== 0) allEqual = false;
    const base = { table: DEVICE_CHECK_TABLE, row: method, stderr: null, scale, n: 1 } as const;
    figures.push(
      makeFigure({ ...base, column: "device_step_bytes", value: real.stepBytes, unit: "bytes" }),
      makeFigure({ ...base, column: "meta_step_bytes", value: meta.stepBytes, unit: "bytes" }),
      makeFigure({
        ...base,
        column: DIFFERENCE_COLUMN,
        value: diff,
        unit: "bytes",
        note:
          `absolute peaks: device ${real.peakBytes}, meta ${meta.peakBytes} bytes (resident ${real.startBytes} vs ${meta.startBytes})`,
      }),
    );
    if (real.startBytes !== meta.startBytes) {
      notes.push(
        `${method}: ${
          real.startBytes - meta.startBytes
        } more bytes resident on ${device.name} before the step (backward-in-forward keeps one 4-byte upstream-spread diagnostic per block on non-CPU devices; the meta device skips it)`,
      );
    }
    bar.tick(1, `${method}: ${diff === 0 ? "equal" : `differs by ${diff} bytes`}`);
  }
  bar.finish();
  notes.unshift(
    allEqual
      ? `The step's tensor-storage peak above its starting bytes is identical on ${device.name} and on the meta device for all four methods (both from the engine's tensor counter: this validates the meta device's accounting, not the memory the device holds in its buffer pool or GEMM scratch).`
      : `The step's tensor-storage peak differs between ${device.name} and the meta device for some method (see difference_bytes).`,
  );
  return {
    figures,
    config: {
      unit: "device_check",
      device: device.name,
      batch,
      nTerms: N_TERMS,
      model: {
        inputShape: config.inputShape,
        nBlocks: config.nBlocks,
        hiddenChannels: config.hiddenChannels,
        fcBlocks: config.fcBlocks,
        fcHidden: config.fcHidden,
        activation: config.activation,
      },
    },
    seeds: [ctx.seed],
    backend: `${device.name}+meta`,
    adapter: device.backend.description,
    complete: true,
    notes,
  };
}

/** The memory experiment (paper Fig. 3). */
export const memoryExperiment: Experiment = {
  name: "memory",
  title: "Memory of one training step by gradient method (Fig. 3)",
  claimsVersion: 1,
  units(preset: Preset): Unit[] {
    const p = memoryPlan(preset);
    const { config, batch } = deviceCheckConfig(preset);
    return [
      {
        name: "figure3",
        budget: `24 cells (3 architectures x 2 activations x 4 methods) on the meta device, ${
          p.blocksPerScale === null ? "16-16-16 blocks of width 512" : `depth ${p.blocksPerScale} per scale`
        }, batch ${p.batch}, n = ${p.nTerms}, 2 steps each`,
        run: runFigure3,
      },
      {
        name: "device_check",
        budget: `4 methods on the real device and on meta: input ${config.inputShape.join("x")}, blocks ${
          config.nBlocks.join("-")
        }, width ${config.hiddenChannels}, batch ${batch}, n = ${N_TERMS}, 2 steps each`,
        run: runDeviceCheck,
      },
    ];
  },
  claims(figures: readonly Figure[]): Claim[] {
    return memoryClaims(figures);
  },
};

function cell(figures: readonly Figure[], table: string, row: string, column: string): number | null {
  return finiteFigure(figures, table, row, column)?.value ?? null;
}

/** The paper's qualitative claims about memory, checked on the measured cells. */
export function memoryClaims(figures: readonly Figure[]): Claim[] {
  const claims: Claim[] = [];
  const fmt = (v: number | null) => (v === null ? "missing" : v.toFixed(2));
  for (const column of MEMORY_COLUMNS) {
    const vals = MEMORY_METHODS.map((m) => cell(figures, MEMORY_TABLE, m, column));
    const known = vals.every((v) => v !== null);
    const v = vals as number[];
    claims.push({
      table: MEMORY_TABLE,
      statement: `naive backprop > Neumann series > backward-in-forward > both on ${column}`,
      holds: known ? v[0] > v[1] && v[1] > v[2] && v[2] > v[3] : null,
      detail: MEMORY_METHODS.map((m, i) => `${m} ${fmt(vals[i])} GB`).join(", "),
    });
  }
  const rel = cell(figures, MEMORY_TABLE, "both", RELATIVE_COLUMN);
  claims.push({
    table: MEMORY_TABLE,
    statement: `both (Neumann + backward-in-forward) needs at most ${
      BOTH_RATIO_MAX * 100
    } % of naive backprop's memory (paper: 7.1 %)`,
    holds: rel === null ? null : rel <= BOTH_RATIO_MAX,
    detail: rel === null ? "relative cell missing" : `mean ratio both / naive = ${(rel * 100).toFixed(2)} %`,
  });
  const factors = MEMORY_COLUMNS.map((c) => {
    const n = cell(figures, MEMORY_TABLE, "naive_backprop", c);
    const b = cell(figures, MEMORY_TABLE, "both", c);
    return n === null || b === null || b <= 0 ? null : n / b;
  });
  const allKnown = factors.every((f) => f !== null);
  claims.push({
    table: MEMORY_TABLE,
    statement:
      `memory reduced "by a factor of ten": naive / both >= ${REDUCTION_FACTOR} on every architecture`,
    holds: allKnown ? (factors as number[]).every((f) => f >= REDUCTION_FACTOR) : null,
    detail: MEMORY_COLUMNS.map((c, i) => `${c} ${factors[i] === null ? "missing" : factors[i]!.toFixed(1)}x`)
      .join(", "),
  });
  const diffs = MEMORY_METHODS.map((m) => cell(figures, DEVICE_CHECK_TABLE, m, DIFFERENCE_COLUMN));
  claims.push({
    table: DEVICE_CHECK_TABLE,
    statement:
      "(validation) the meta device's shape-only accounting of a step's tensor storage equals the real device's tensor-storage peak to the byte, for every method (the engine's tensor counter on both: what the figure counts; the buffer pool and GEMM scratch are outside it)",
    holds: diffs.every((d) => d !== null) ? diffs.every((d) => d === 0) : null,
    detail: MEMORY_METHODS.map((m, i) => `${m} ${diffs[i] === null ? "missing" : `${diffs[i]} bytes`}`).join(
      ", ",
    ),
  });
  return claims;
}
