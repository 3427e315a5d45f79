/**
 * One entry point for every model file the commands accept: an authors' PyTorch checkpoint (`.pth`, ZIP
 * or legacy format) or a checkpoint of this suite (safetensors, written by `deno task train` or `deno
 * task convert`). Either way the result is a ready model: the chosen weights (EMA by default) in place
 * and the power-iteration vectors refreshed for them, as the authors do before evaluating or sampling.
 * @module
 */
import type { Device } from "../engine/tensor.ts";
import { Rng } from "../engine/random.ts";
import { makeConfig, type ResidualFlowConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import { readCheckpoint, restoreCheckpoint } from "../train/checkpoint.ts";
import { Ema } from "../train/ema.ts";
import { readTorchCheckpoint } from "../torch/mod.ts";
import type { TorchValue } from "../torch/values.ts";
import {
  buildOfficialModel,
  type OfficialCheckpoint,
  type OfficialWeights,
  parseOfficialCheckpoint,
} from "./load.ts";

/** The file formats {@link loadModelFile} reads. */
export type ModelFileFormat = "zip" | "legacy" | "safetensors";

/** A model loaded from a file, with what is known about where it came from. */
export interface LoadedModelFile {
  /** The file. */
  readonly path: string;
  /** Its format. */
  readonly format: ModelFileFormat;
  /** "official" (the authors' train_img.py) or "suite" (this suite's checkpoint). */
  readonly origin: "official" | "suite";
  /** The model, ready for eval mode and sampling. */
  readonly model: ResidualFlow;
  /** Its configuration. */
  readonly config: ResidualFlowConfig;
  /** The weights in use. */
  readonly weights: OfficialWeights;
  /** Our dataset name the model was trained on, when the file says. */
  readonly dataset: string | null;
  /** The authors' options (official files) or the suite's metadata `extra` (suite files). */
  readonly args: unknown;
  /** The authors' checkpoint as read (official files only; for `deno task convert`). */
  readonly official: OfficialCheckpoint | null;
}

/** Options of {@link loadModelFile}. */
export interface LoadModelFileOptions {
  /** Device of the model. */
  readonly device: Device;
  /** "ema" (default) or "raw" (the training weights). */
  readonly weights?: OfficialWeights;
  /** Refresh u, v for the weights in use (default true; false keeps the file's vectors). */
  readonly refreshLipschitz?: boolean;
}

/** True when the bytes start like a safetensors file (8-byte header length, then a JSON object). */
export function isSafetensorsHeader(head: Uint8Array): boolean {
  return head.length >= 9 && head[8] === 0x7b;
}

/** True when the bytes start like a file `torch.save` writes (a ZIP archive or a pickle). */
function isTorchHeader(head: Uint8Array): boolean {
  const zip = head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 &&
    head[3] === 0x04;
  return zip || (head.length >= 1 && head[0] === 0x80);
}

async function readHead(path: string): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) throw new Error("it is a folder, expected a checkpoint file");
    // A device (/dev/zero), FIFO or socket would be read forever.
    if (!st.isFile) throw new Error("it is not a regular file (a device, FIFO or socket)");
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new Error(`Cannot read model file ${path}: ${(e as Error).message}`);
  }
  try {
    const buf = new Uint8Array(16);
    const n = (await file.read(buf)) ?? 0;
    return buf.subarray(0, n);
  } finally {
    file.close();
  }
}

/** Reads an authors' checkpoint file into its parts (no model yet). */
export async function readOfficialCheckpoint(
  path: string,
): Promise<{ checkpoint: OfficialCheckpoint; format: "zip" | "legacy" }> {
  const { format, root } = await readTorchCheckpoint(path);
  return { checkpoint: parseOfficialCheckpoint(root as TorchValue, path), format };
}

/** Loads a model file of either origin (see the module doc). */
export async function loadModelFile(path: string, opts: LoadModelFileOptions): Promise<LoadedModelFile> {
  const weights = opts.weights ?? "ema";
  if (weights !== "ema" && weights !== "raw") {
    throw new Error(`Cannot use weights ${JSON.stringify(weights)}: expected ema or raw`);
  }
  const head = await readHead(path);
  let loaded: LoadedModelFile;
  // Anything that does not start like a torch.save file is read as this suite's safetensors checkpoint,
  // whose reader names what is wrong with it (header length, JSON, offsets).
  if (isSafetensorsHeader(head) || !isTorchHeader(head)) {
    const ck = await readCheckpoint(path);
    let config: ResidualFlowConfig;
    try {
      config = makeConfig(ck.meta.config as ResidualFlowConfig);
    } catch (e) {
      throw new Error(
        `Cannot load checkpoint ${path}: its configuration is invalid (${(e as Error).message})`,
      );
    }
    const model = new ResidualFlow(config, { rng: new Rng(ck.meta.seed), device: opts.device });
    const ema = new Ema(model.parameters());
    try {
      restoreCheckpoint(ck, { module: model, ema }, {
        device: opts.device,
        config: JSON.parse(JSON.stringify(config)),
      });
      if (weights === "ema") {
        if (!ema.initialized) {
          throw new Error(`Cannot use the EMA weights of ${path}: it holds no EMA (use --weights raw)`);
        }
        const shadow = ema.shadow();
        for (const p of model.parameters()) p.set(shadow.get(p.name)!.detach());
      }
    } catch (e) {
      model.dispose();
      throw e;
    } finally {
      ema.dispose();
    }
    loaded = {
      path,
      format: "safetensors",
      origin: "suite",
      model,
      config,
      weights,
      dataset: ck.meta.data?.dataset ?? null,
      args: ck.meta.extra ?? null,
      official: null,
    };
  } else {
    const { checkpoint, format } = await readOfficialCheckpoint(path);
    const built = buildOfficialModel(checkpoint, { device: opts.device, weights });
    loaded = {
      path,
      format,
      origin: "official",
      model: built.model,
      config: built.spec.config,
      weights,
      dataset: built.spec.dataset,
      args: checkpoint.args,
      official: checkpoint,
    };
  }
  if (opts.refreshLipschitz ?? true) await loaded.model.updateLipschitz();
  return loaded;
}
