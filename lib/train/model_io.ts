/**
 * Saving and loading a whole model in one call: the weights, buffers (power-iteration vectors, ActNorm
 * state) and the configuration go into one safetensors checkpoint of the suite's format
 * (`checkpoint.ts`), and {@link loadModel} rebuilds the model from the stored configuration. It reads
 * the checkpoints of `deno task train` too (optimizer moments are ignored; `weights: "ema"` takes the
 * averaged weights).
 * @module
 */
import { Rng } from "../engine/random.ts";
import type { Device } from "../engine/tensor.ts";
import { makeConfig, type ResidualFlowConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import { type CheckpointMeta, readCheckpoint, restoreCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { Ema } from "./ema.ts";

/** The RNG rule recorded by {@link saveModel}: such a file holds no training state to resume. */
export const SAVE_MODEL_RNG_RULE = "none: written by saveModel (weights and configuration only)";

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /** An EMA of the weights to store beside them (read back with `loadModel(path, { weights: "ema" })`). */
  readonly ema?: Ema;
  /** The seed the model was built with (recorded; default 0). */
  readonly seed?: number;
  /** The suite version to record (default "unknown"). */
  readonly suiteVersion?: string;
  /** Free-form data stored with the model (JSON). */
  readonly extra?: unknown;
}

/**
 * Saves `model` (weights, buffers and configuration) to `path`, atomically, as a safetensors
 * checkpoint; {@link loadModel} rebuilds it.
 *
 * @example
 * ```ts
 * import { createDevice, loadModel, makeConfig, ResidualFlow, Rng, saveModel } from "../../mod.ts";
 *
 * const device = await createDevice("cpu");
 * const config = makeConfig({ inputShape: [1, 8, 8], nBlocks: [1, 1], hiddenChannels: 8, fcEnd: false });
 * const model = new ResidualFlow(config, { rng: new Rng(0), device });
 * await saveModel(model, "model.safetensors");
 * const again = await loadModel("model.safetensors", { device });
 * ```
 */
export async function saveModel(
  model: ResidualFlow,
  path: string,
  opts: SaveModelOptions = {},
): Promise<void> {
  const seed = opts.seed ?? 0;
  const meta: CheckpointMeta = {
    step: 0,
    optimizerStep: 0,
    seed,
    suiteVersion: opts.suiteVersion ?? "unknown",
    config: model.config,
    rng: { rule: SAVE_MODEL_RNG_RULE, root: { seed, counter: 0 } },
    data: { epoch: 0, index: 0, batchSize: 0, count: 0 },
    train: {},
    emaInitialized: opts.ema?.initialized ?? false,
    history: null,
    wallSeconds: 0,
    ...(opts.extra !== undefined ? { extra: opts.extra } : {}),
  };
  await saveCheckpoint(path, { module: model, ema: opts.ema?.initialized ? opts.ema : undefined }, meta);
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** The device the model is built on. */
  readonly device: Device;
  /**
   * "train" (default): the stored weights and power-iteration vectors, so the model computes exactly what
   * the saved one did. "ema": the stored moving average of the weights (the file must hold one), with the
   * power iteration refreshed for them.
   */
  readonly weights?: "train" | "ema";
}

/**
 * Loads a model written by {@link saveModel} or by `deno task train`: builds a {@link ResidualFlow} from
 * the stored configuration and fills in every parameter and buffer. Errors name the file and what is
 * wrong ("Cannot load model <path>: ...").
 */
export async function loadModel(path: string, opts: LoadModelOptions): Promise<ResidualFlow> {
  const weights = opts.weights ?? "train";
  if (weights !== "train" && weights !== "ema") {
    throw new Error(
      `Cannot load model ${path}: weights is ${JSON.stringify(weights)}, expected "train" or "ema"`,
    );
  }
  const ck = await readCheckpoint(path);
  let config: ResidualFlowConfig;
  try {
    config = makeConfig(ck.meta.config as ResidualFlowConfig);
  } catch (e) {
    throw new Error(`Cannot load model ${path}: its configuration is invalid (${(e as Error).message})`);
  }
  if (weights === "ema" && !ck.meta.emaInitialized) {
    throw new Error(`Cannot load model ${path} with EMA weights: the file holds no EMA`);
  }
  const model = new ResidualFlow(config, { rng: new Rng(ck.meta.seed), device: opts.device });
  const ema = weights === "ema" ? new Ema(model.parameters()) : undefined;
  restoreCheckpoint(ck, { module: model, ema }, { device: opts.device });
  if (ema) {
    const shadow = ema.shadow();
    for (const p of model.parameters()) p.set(shadow.get(p.name)!.detach());
    ema.dispose();
    // The stored u, v belong to the training weights: refresh them for the averaged ones.
    await model.updateLipschitz();
  }
  return model;
}
