/**
 * `deno task evaluate`: test bits/dim of a model file under the paper's protocol, for the authors'
 * released checkpoints (`.pth`) and for this suite's own (safetensors): the EMA weights (default), the
 * power-iteration vectors refreshed for them, eval mode (20 exact terms then the roulette in every
 * residual block), uniform dequantisation of the stored pixel levels, the test images in file order.
 * Prints bits/dim ± its standard error over images; `--json` also writes every image's value (the mean
 * of `--repeats` independent evaluations) and the provenance, atomically.
 * @module
 */
import { runMain } from "../../lib/cli/main.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import { DEVICE_HELP, openDevice, parseDeviceOption } from "../../lib/cli/device_option.ts";
import { loadDataset } from "../../lib/data/registry.ts";
import { gitCommit } from "../../lib/artifacts/artifact.ts";
import { writeJsonAtomic } from "../../lib/artifacts/atomic.ts";
import { type OptionSpec, type ParsedArgs, parseOptions } from "../../lib/cli/args.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";
import { loadModelFile } from "../../lib/official/model_file.ts";
import { evaluatePerImage } from "../../lib/train/evaluate_images.ts";

const COMMAND = "deno task evaluate";
const SUMMARY = "Test bits/dim of a checkpoint (the authors' .pth or this suite's), paper protocol.";

/** The options of `deno task evaluate`. */
export const EVALUATE_OPTIONS: Record<string, OptionSpec> = {
  checkpoint: { type: "string", help: "Model file: an authors' .pth or a .safetensors of this suite" },
  dataset: { type: "string", help: "Test set (default: the one the file names)" },
  "data-dir": { type: "string", help: "Data folder (default $RESFLOW_DATA_DIR, else ./data)" },
  limit: { type: "string", help: "Evaluate only the first N test images (default: all)" },
  repeats: { type: "string", default: "1", help: "Independent evaluations per image, averaged" },
  weights: { type: "string", default: "ema", help: "ema (as the paper) or raw (the training weights)" },
  device: { type: "string", default: "webgpu", help: `Compute device: ${DEVICE_HELP}` },
  seed: { type: "string", default: "0", help: "Seed of the noise and the estimator's draws" },
  batch: { type: "string", default: "200", help: "Images per forward pass" },
  json: { type: "string", help: "Also write the result with per-image values to this JSON file" },
};

/** What `deno task evaluate --json` writes. */
export interface EvaluateReport {
  /** Images evaluated. */
  readonly n: number;
  /** Evaluations per image. */
  readonly repeats: number;
  /** Mean bits/dim over images and its standard error. */
  readonly bitsPerDim: { readonly mean: number; readonly stderr: number };
  /** Bits/dim of image i of the test set (file order), the mean over repeats; null if not finite. */
  readonly perImage: readonly (number | null)[];
  /** Images whose value was not finite (left out of the mean). */
  readonly nonFinite: number;
  /** The test set. */
  readonly dataset: string;
  /** Where the number came from. */
  readonly provenance: {
    readonly file: string;
    readonly format: string;
    readonly origin: string;
    readonly args: unknown;
    readonly weights: string;
    readonly device: string;
    readonly seed: number;
    readonly batch: number;
    readonly commit: string;
    readonly suiteVersion: string;
    readonly date: string;
    readonly seconds: number;
    readonly config: unknown;
  };
}

function intOption(args: ParsedArgs, name: string, min: number): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`Cannot use --${name} ${JSON.stringify(args[name])}: expected an integer >= ${min}`);
  }
  return v;
}

/** Plain JSON of the options read from a file (bigints as strings, tensors left out). */
function plainArgs(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v ?? null, (_k, x) => (typeof x === "bigint" ? String(x) : x)));
}

/** Loads the model and the test set, evaluates, and (with --json) writes the report. */
export async function evaluate(args: ParsedArgs): Promise<EvaluateReport> {
  if (args.checkpoint === undefined) throw new Error("Cannot evaluate: give --checkpoint <file>");
  const path = String(args.checkpoint);
  const device = parseDeviceOption(args.device);
  const weights = String(args.weights);
  if (weights !== "ema" && weights !== "raw") {
    throw new Error(`Cannot use --weights ${JSON.stringify(weights)}: expected ema or raw`);
  }
  const repeats = intOption(args, "repeats", 1);
  const seed = intOption(args, "seed", 0);
  const batch = intOption(args, "batch", 1);
  const limit = args.limit !== undefined ? intOption(args, "limit", 1) : undefined;
  const start = performance.now();
  const dev = await openDevice(device);
  const loaded = await loadModelFile(path, { device: dev, weights });
  try {
    const dataset = args.dataset !== undefined ? String(args.dataset) : loaded.dataset;
    if (dataset === null) {
      throw new Error(`Cannot evaluate ${path}: the file does not name its dataset; give --dataset`);
    }
    const data = await loadDataset(dataset, {
      dataDir: args["data-dir"] !== undefined ? String(args["data-dir"]) : undefined,
      split: "test",
      limit,
    });
    const shape = loaded.config.inputShape;
    if (data.shape.some((v, i) => v !== shape[i]) || data.nvals !== loaded.config.nvals) {
      throw new Error(
        `Cannot evaluate ${path} on ${dataset}: the model takes [${shape}] images with ${loaded.config.nvals} levels, the data are [${data.shape}] with ${data.nvals}`,
      );
    }
    const n = data.count;
    const bar = new ProgressBar({ total: n * repeats, label: `evaluate ${dataset}`, unit: "img" });
    const r = await evaluatePerImage(loaded.model, data, dev, {
      seed,
      repeats,
      batchSize: batch,
      onProgress: (done) => bar.update(done),
    });
    bar.finish();
    const report: EvaluateReport = {
      n,
      repeats,
      bitsPerDim: { mean: r.bitsPerDim, stderr: r.standardError },
      perImage: Array.from(r.perImage, (v) => (Number.isFinite(v) ? v : null)),
      nonFinite: r.nonFinite,
      dataset,
      provenance: {
        file: path,
        format: loaded.format,
        origin: loaded.origin,
        args: plainArgs(loaded.args),
        weights,
        device: `${dev.name} (${dev.backend.description})`,
        seed,
        batch,
        commit: await gitCommit(),
        suiteVersion: denoConfig.version,
        date: new Date().toISOString(),
        seconds: (performance.now() - start) / 1000,
        config: plainArgs(loaded.config),
      },
    };
    if (args.json !== undefined) await writeJsonAtomic(String(args.json), report);
    return report;
  } finally {
    loaded.model.dispose();
  }
}

/** Parses `argv`, evaluates, prints the result; returns the exit status (failures are thrown for {@link runMain}). */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(COMMAND, SUMMARY, EVALUATE_OPTIONS, argv);
  if (args === null) return 0;
  const r = await evaluate(args);
  const se = r.bitsPerDim.stderr;
  console.log(
    `Test bits/dim of ${r.provenance.file} on ${r.dataset} (${r.n} images × ${r.repeats} repeats, ${r.provenance.weights} weights): ${
      r.bitsPerDim.mean.toFixed(4)
    } ± ${se.toFixed(4)} (standard error)${r.nonFinite ? `; ${r.nonFinite} non-finite values left out` : ""}`,
  );
  if (args.json !== undefined) console.log(`Wrote ${args.json}`);
  return 0;
}

if (import.meta.main) await runMain(COMMAND, main);
