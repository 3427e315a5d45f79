/**
 * An authors' checkpoint rewritten as a checkpoint of this suite (safetensors, lib/train/checkpoint.ts):
 * the raw training weights as the parameters, the EMA's averages as the EMA shadow, the file's
 * power-iteration vectors and ActNorm flags as buffers, the configuration derived from the options, and
 * the options themselves under metadata `extra.convertedFrom`. Every command that reads the suite's
 * checkpoints (evaluate, sample) then gives the same numbers on the converted file as on the original.
 * The optimizer's state is not converted (so the file cannot resume training); the step is 0.
 * @module
 */
import type { Device, Tensor } from "../engine/tensor.ts";
import { tensor } from "../engine/ops/creation.ts";
import { type CheckpointMeta, saveCheckpoint } from "../train/checkpoint.ts";
import { Ema } from "../train/ema.ts";
import { buildOfficialModel } from "./load.ts";
import { officialNames } from "./names.ts";
import { readOfficialCheckpoint } from "./model_file.ts";
import { tensorNumbers } from "./load.ts";

/** What {@link convertOfficialCheckpoint} wrote. */
export interface ConvertResult {
  /** The output file. */
  readonly out: string;
  /** The input's format. */
  readonly format: "zip" | "legacy";
  /** Our dataset name. */
  readonly dataset: string;
  /** Parameters written (each also in the EMA when the file has one). */
  readonly parameters: number;
  /** Whether an EMA was written. */
  readonly ema: boolean;
}

/** Converts the authors' checkpoint `path` into the suite's checkpoint `out` (written atomically). */
export async function convertOfficialCheckpoint(
  path: string,
  out: string,
  opts: { readonly device: Device; readonly suiteVersion: string },
): Promise<ConvertResult> {
  const { checkpoint, format } = await readOfficialCheckpoint(path);
  const { model, spec } = buildOfficialModel(checkpoint, { device: opts.device, weights: "raw" });
  const ema = new Ema(model.parameters());
  try {
    if (checkpoint.shadow) {
      const byOurs = new Map<string, Tensor>();
      for (const [name, role] of officialNames(model)) {
        if (role.role !== "parameter") continue;
        const t = checkpoint.shadow.get(name)!;
        byOurs.set(role.ours, tensor(tensorNumbers(t), [...t.shape], opts.device));
      }
      ema.loadShadow(byOurs);
    }
    const args = JSON.parse(
      JSON.stringify(checkpoint.args, (_k, x) => (typeof x === "bigint" ? String(x) : x)),
    ) as Record<string, unknown>;
    const meta: CheckpointMeta = {
      step: 0,
      optimizerStep: 0,
      seed: 0,
      suiteVersion: opts.suiteVersion,
      config: JSON.parse(JSON.stringify(spec.config)),
      rng: {
        rule: "converted from an authors' checkpoint: no training stream",
        root: { seed: 0, counter: 0 },
      },
      data: {
        epoch: 0,
        index: 0,
        batchSize: typeof args.batchsize === "number" ? args.batchsize : 0,
        count: 0,
        dataset: spec.dataset,
      },
      train: {},
      emaInitialized: checkpoint.shadow !== null,
      history: [],
      wallSeconds: 0,
      extra: {
        convertedFrom: {
          file: path,
          format,
          args,
          testBpd: checkpoint.testBpd,
          officialData: spec.officialData,
        },
      },
    };
    await saveCheckpoint(out, { module: model, ema: checkpoint.shadow ? ema : undefined }, meta);
    return {
      out,
      format,
      dataset: spec.dataset,
      parameters: model.parameters().length,
      ema: checkpoint.shadow !== null,
    };
  } finally {
    ema.dispose();
    model.dispose();
  }
}
