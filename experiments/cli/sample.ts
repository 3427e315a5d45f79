/**
 * `deno task sample`: draws images from a trained density model (SPEC 5). Loads a checkpoint written
 * by `deno task train` or `deno task convert`, or an authors' PyTorch checkpoint (`.pth`), swaps in the EMA weights, refreshes the power-iteration vectors for them, draws
 * z ~ N(0, T²I), inverts the flow in eval mode (residual blocks by fixed-point iteration) and writes a
 * PNG grid atomically. Prints the fixed-point iteration counts of every residual block.
 * @module
 */
import { DEVICE_HELP, openDevice, parseDeviceOption } from "../../lib/cli/device_option.ts";
import { Rng } from "../../lib/engine/random.ts";
import { loadModelFile } from "../../lib/official/model_file.ts";
import { imageGridPng, pngInfo } from "../../lib/artifacts/png.ts";
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { OptionError, type OptionSpec, type ParsedArgs, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { prepareOutputDir } from "../../lib/cli/output.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";

const COMMAND = "deno task sample";
const SUMMARY = "Sample images from a checkpoint of deno task train (EMA weights) into a PNG grid.";

/** Tag of the sampling generator (derived from --seed). */
export const SAMPLE_RNG_TAG = 0x73616d70; // "samp"

/** The options of `deno task sample`. */
export const SAMPLE_OPTIONS: Record<string, OptionSpec> = {
  checkpoint: {
    type: "string",
    help: "Checkpoint file: this suite's or an authors' .pth (default <run>/checkpoint.safetensors)",
  },
  run: { type: "string", help: "Output folder of deno task train holding checkpoint.safetensors" },
  device: {
    type: "string",
    default: "webgpu",
    help: `Compute device: ${DEVICE_HELP}`,
  },
  n: { type: "string", default: "64", help: "Number of images" },
  temperature: { type: "string", default: "1", help: "Prior temperature T: z ~ N(0, T²I)" },
  batch: { type: "string", default: "64", help: "Images inverted at once" },
  seed: { type: "string", default: "0", help: "Seed of the latent draws" },
  weights: {
    type: "string",
    default: "ema",
    help: "ema (as the paper) or train (the raw weights; also: raw)",
  },
  nrow: { type: "string", default: "8", help: "Images per grid row" },
  scale: { type: "string", default: "1", help: "Integer upscaling of the grid" },
  out: { type: "string", help: "PNG path (default: samples_T<temperature>.png beside the checkpoint)" },
};

/** Iteration counts of one residual block's fixed-point inverse over every batch. */
export interface InverseStats {
  /** The block, e.g. "block 2". */
  readonly block: string;
  /** Largest iteration count over the batches. */
  readonly maxIterations: number;
  /** Mean iteration count over the batches. */
  readonly meanIterations: number;
  /** Whether every batch converged. */
  readonly converged: boolean;
}

/** Everything the command produced. */
export interface SampleResult {
  /** PNG path. */
  readonly path: string;
  /** PNG width and height. */
  readonly width: number;
  /** PNG height. */
  readonly height: number;
  /** Per-block fixed-point statistics. */
  readonly inverse: readonly InverseStats[];
}

/** Upper bounds of the size options: beyond them the grid would not fit in memory or a PNG. */
export const SAMPLE_LIMITS: Readonly<Record<string, number>> = {
  n: 10_000,
  batch: 10_000,
  nrow: 1000,
  scale: 16,
};

function positiveInt(args: ParsedArgs, name: string): number {
  const v = Number(args[name]);
  const max = SAMPLE_LIMITS[name] ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new OptionError(
      `Cannot use --${name} ${JSON.stringify(args[name])}: expected an integer from 1 to ${max}`,
    );
  }
  return v;
}

/** Loads the checkpoint, samples and writes the PNG grid. */
export async function sample(args: ParsedArgs): Promise<SampleResult> {
  const ckPath = args.checkpoint !== undefined
    ? String(args.checkpoint)
    : args.run !== undefined
    ? `${args.run}/checkpoint.safetensors`
    : null;
  if (ckPath === null) {
    throw new OptionError("Cannot sample: give --checkpoint <file> or --run <folder of deno task train>");
  }
  const device = parseDeviceOption(args.device);
  const weights = String(args.weights);
  if (weights !== "ema" && weights !== "train" && weights !== "raw") {
    throw new OptionError(`Cannot use --weights ${JSON.stringify(weights)}: expected ema, or train (or raw)`);
  }
  const n = positiveInt(args, "n");
  const batch = positiveInt(args, "batch");
  const nrow = positiveInt(args, "nrow");
  const scale = positiveInt(args, "scale");
  const seed = Number(args.seed);
  if (!Number.isInteger(seed) || seed < 0 || args.seed === "") {
    throw new OptionError(`Cannot use --seed ${JSON.stringify(args.seed)}: expected an integer >= 0`);
  }
  const temperature = Number(args.temperature);
  if (!(temperature >= 0 && Number.isFinite(temperature)) || args.temperature === "") {
    throw new OptionError(
      `Cannot use --temperature ${JSON.stringify(args.temperature)}: expected a number >= 0`,
    );
  }
  const dir = ckPath.includes("/") ? ckPath.slice(0, ckPath.lastIndexOf("/")) : ".";
  const path = args.out !== undefined ? String(args.out) : `${dir}/samples_T${temperature}.png`;
  if (path === "" || path.endsWith("/")) {
    throw new OptionError(`Cannot use --out ${JSON.stringify(path)}: expected a PNG file path`);
  }
  await prepareOutputDir(
    path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".",
    "the folder of --out",
  );
  const dev = await openDevice(device);
  // An authors' .pth or a checkpoint of this suite: the chosen weights, u and v refreshed for them.
  const loaded = await loadModelFile(ckPath, { device: dev, weights: weights === "ema" ? "ema" : "raw" });
  const { model, config } = loaded;

  const [c, h, w] = config.inputShape;
  const per = c * h * w;
  const images = new Float32Array(n * per);
  const blocks = model.residualBlocks();
  const iters: number[][] = blocks.map(() => []);
  const converged = blocks.map(() => true);
  const rng = new Rng(seed).fork(SAMPLE_RNG_TAG);
  const bar = new ProgressBar({ total: n, label: `sample ${ckPath}`, unit: "img" });
  for (let done = 0; done < n; done += batch) {
    const k = Math.min(batch, n - done);
    const x = await model.sample(k, { training: false, rng }, temperature);
    images.set(await x.read(), done * per);
    x.dispose();
    blocks.forEach((b, i) => {
      if (b.lastInverse) {
        iters[i].push(b.lastInverse.iterations);
        converged[i] &&= b.lastInverse.converged;
      }
    });
    bar.update(done + k);
  }
  bar.finish();
  const inverse = blocks.map((b, i): InverseStats => ({
    block: `block ${b.parameters()[0]?.name.split(".")[0] ?? i}`,
    maxIterations: Math.max(0, ...iters[i]),
    meanIterations: iters[i].length ? iters[i].reduce((a, v) => a + v, 0) / iters[i].length : 0,
    converged: converged[i],
  }));
  const png = await imageGridPng(images, [n, c, h, w], { nrow, scale });
  await writeFileAtomic(path, png);
  const info = await pngInfo(png);
  return { path, width: info.width, height: info.height, inverse };
}

/** Parses `argv`, samples, prints the result; returns the exit status (failures are thrown for {@link runMain}). */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(COMMAND, SUMMARY, SAMPLE_OPTIONS, argv);
  if (args === null) return 0;
  const r = await sample(args);
  console.log(
    `Wrote ${r.path}: ${r.width}×${r.height}, ${args.n} samples at temperature ${args.temperature}`,
  );
  console.log("Fixed-point inverse iterations per residual block (max / mean over batches):");
  for (const s of r.inverse) {
    console.log(
      `  ${s.block}: ${s.maxIterations} / ${s.meanIterations.toFixed(1)}${
        s.converged ? "" : " (NOT converged)"
      }`,
    );
  }
  return 0;
}

if (import.meta.main) await runMain(COMMAND, main);
