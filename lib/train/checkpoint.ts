/**
 * Training checkpoints in the safetensors format (readable by PyTorch's `safetensors.torch.load_file`):
 * tensors "param.<name>", "buffer.<name>" (power-iteration u/v, ActNorm's initialised flag, estimator
 * diagnostics), "adam.m.<name>", "adam.v.<name>" and "ema.<name>", and a `__metadata__` map whose
 * values are JSON texts (NaN and ±Infinity kept as the strings "NaN", "Infinity", "-Infinity"): the model configuration, the step, the seeds, the RNG rule and root state,
 * the data position, the trainer's settings, the run's history and the suite version. Files are
 * written atomically (temporary name, then rename). Loading checks every name and shape against the
 * model (and the configuration against the model's) and reports every mismatch in one error.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import { describeDiff, diffCheckpoint, isExactMatch } from "../artifacts/checkpoint_match.ts";
import {
  loadSafetensors,
  type SafeTensor,
  type SafeTensorInput,
  type SafeTensorsFile,
  saveSafetensors,
} from "../artifacts/safetensors.ts";
import type { BufferState, Module, Parameter } from "../flow/module.ts";
import { upgradeLegacyConfig } from "../flow/config.ts";
import type { Adam } from "./optimizer.ts";
import type { Ema } from "./ema.ts";

/** The value of the metadata key "format". */
export const CHECKPOINT_FORMAT = "resflow-checkpoint";
/** Version of the checkpoint layout; bumped when names or metadata change incompatibly. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** What a checkpoint holds besides tensors (stored as JSON texts in `__metadata__`). */
export interface CheckpointMeta {
  /** Iterations done: the index of the next step (the data position and the step RNG derive from it). */
  readonly step: number;
  /** Optimizer updates applied (iterations minus rejected non-finite steps). */
  readonly optimizerStep: number;
  /** The run's seed (model init, data order, step RNG). */
  readonly seed: number;
  /** The suite version that wrote the file (deno.json "version"). */
  readonly suiteVersion: string;
  /** The model configuration. */
  readonly config: unknown;
  /** How every random number of a step is derived, and the root generator's state. */
  readonly rng: { readonly rule: string; readonly root: { readonly seed: number; readonly counter: number } };
  /** The data position: next epoch and batch index, batch size and dataset size. */
  readonly data: {
    readonly epoch: number;
    readonly index: number;
    readonly batchSize: number;
    readonly count: number;
    readonly dataset?: string;
  };
  /** Trainer settings that must agree when resuming. */
  readonly train: Readonly<Record<string, unknown>>;
  /** Whether the EMA shadow exists (it is created after the first optimizer step). */
  readonly emaInitialized: boolean;
  /** Logs, evaluations and failure reports so far (so a resumed run reports its whole history). */
  readonly history: unknown;
  /** Accumulated wall-clock seconds of training over every process. */
  readonly wallSeconds: number;
  /** Free-form data of the caller (e.g. the command-line options). */
  readonly extra?: unknown;
}

/** The live objects a checkpoint is written from and restored into. */
export interface CheckpointParts {
  /** Parameters and buffers (a model, or a model with a classifier head). */
  readonly module: Module;
  /** The optimizer (omit when loading for sampling: its tensors are then ignored). */
  readonly optimizer?: Adam;
  /** The EMA (omit to ignore its tensors). */
  readonly ema?: Ema;
}

/** A checkpoint read from disk, not yet applied. */
export interface LoadedCheckpoint {
  /** The file it came from. */
  readonly path: string;
  /** Its tensors. */
  readonly tensors: ReadonlyMap<string, SafeTensor>;
  /** The parsed metadata. */
  readonly meta: CheckpointMeta;
}

const META_KEYS = [
  "step",
  "optimizerStep",
  "seed",
  "suiteVersion",
  "config",
  "rng",
  "data",
  "train",
  "emaInitialized",
  "history",
  "wallSeconds",
] as const;

/** JSON text that keeps NaN and ±Infinity (as the strings "NaN", "Infinity", "-Infinity"). */
export function encodeMetaJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
}

/** Parses {@link encodeMetaJson} text, turning "NaN", "Infinity" and "-Infinity" back into numbers. */
export function decodeMetaJson(text: string): unknown {
  return JSON.parse(text, (_k, v) => (v === "NaN" || v === "Infinity" || v === "-Infinity" ? Number(v) : v));
}

async function hostTensor(t: Tensor): Promise<SafeTensorInput> {
  const data = await t.read();
  return { shape: [...t.shape], data: data.slice() };
}

/** Every tensor of a checkpoint by its stored name (reads the device). */
export async function checkpointTensors(parts: CheckpointParts): Promise<Map<string, SafeTensorInput>> {
  const out = new Map<string, SafeTensorInput>();
  for (const p of parts.module.parameters()) out.set(`param.${p.name}`, await hostTensor(p.value));
  for (const b of parts.module.buffers()) {
    if (b.value !== null) out.set(`buffer.${b.name}`, await hostTensor(b.value));
  }
  if (parts.optimizer) {
    const s = parts.optimizer.state();
    for (const [n, t] of s.m) out.set(`adam.m.${n}`, await hostTensor(t));
    for (const [n, t] of s.v) out.set(`adam.v.${n}`, await hostTensor(t));
  }
  if (parts.ema) { for (const [n, t] of parts.ema.shadow()) out.set(`ema.${n}`, await hostTensor(t)); }
  return out;
}

/** Writes a checkpoint atomically to `path`. */
export async function saveCheckpoint(
  path: string,
  parts: CheckpointParts,
  meta: CheckpointMeta,
): Promise<void> {
  const names = new Set<string>();
  for (const p of parts.module.parameters()) {
    if (names.has(p.name)) {
      throw new Error(`Cannot save checkpoint ${path}: two parameters are named ${p.name}`);
    }
    names.add(p.name);
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    format_version: String(CHECKPOINT_FORMAT_VERSION),
  };
  for (const k of META_KEYS) metadata[k] = encodeMetaJson(meta[k]);
  if (meta.extra !== undefined) metadata.extra = encodeMetaJson(meta.extra);
  await saveSafetensors(path, await checkpointTensors(parts), metadata);
}

/** Parses the metadata of a checkpoint file, naming the key that is missing or not JSON. */
export function parseCheckpointMeta(file: SafeTensorsFile, path: string): CheckpointMeta {
  const md = file.metadata;
  if (md.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `Cannot load checkpoint ${path}: metadata "format" is ${
        JSON.stringify(md.format ?? null)
      }, expected "${CHECKPOINT_FORMAT}" (not a training checkpoint of this suite)`,
    );
  }
  if (Number(md.format_version) !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(
      `Cannot load checkpoint ${path}: format_version ${md.format_version}, expected ${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const k of [...META_KEYS, "extra"]) {
    const text = md[k];
    if (text === undefined) {
      if (k === "extra") continue;
      throw new Error(`Cannot load checkpoint ${path}: metadata key "${k}" is missing`);
    }
    try {
      out[k] = decodeMetaJson(text);
    } catch (e) {
      throw new Error(
        `Cannot load checkpoint ${path}: metadata "${k}" is not JSON (${(e as Error).message})`,
      );
    }
  }
  if (!Number.isInteger(out.step) || (out.step as number) < 0) {
    throw new Error(`Cannot load checkpoint ${path}: metadata step is ${md.step}, expected an integer >= 0`);
  }
  return out as unknown as CheckpointMeta;
}

/** Reads and parses a checkpoint (nothing is applied yet). */
export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file = await loadSafetensors(path);
  return { path, tensors: file.tensors, meta: parseCheckpointMeta(file, path) };
}

/** Top-level fields of two JSON values that differ, as "field: file X, model Y". */
export function diffJson(file: unknown, model: unknown): string[] {
  const a = (file ?? {}) as Record<string, unknown>;
  const b = (model ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) =>
    `${k}: file ${JSON.stringify(a[k] ?? null)}, expected ${JSON.stringify(b[k] ?? null)}`
  );
}

/**
 * Estimator diagnostics (the last step's log-det moments and sampled N): they describe the last forward,
 * may be non-finite after a rejected step, and are overwritten by the next one, so they are not checked.
 */
const DIAGNOSTIC_BUFFER = /^buffer\.(?:.*\.)?last_[a-z_]+$/;

/**
 * Names of the state tensors (parameters, buffers other than diagnostics, optimizer moments, EMA) that
 * hold a NaN or an infinity, each with how many of its values are non-finite.
 */
export function nonFiniteTensors(tensors: ReadonlyMap<string, SafeTensor>): string[] {
  const bad: string[] = [];
  for (const [name, t] of tensors) {
    if (DIAGNOSTIC_BUFFER.test(name) || (t.dtype !== "F32" && t.dtype !== "F64")) continue;
    const data = t.data as Float32Array | Float64Array;
    let k = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) k++;
    if (k) bad.push(`${name}: ${k} of ${data.length} values`);
  }
  return bad;
}

/** Options of {@link restoreCheckpoint}. */
export interface RestoreOptions {
  /** The device the tensors are created on. */
  readonly device: Device;
  /** When given, the file's configuration must equal it (every differing field is reported). */
  readonly config?: unknown;
  /** When given, the file's trainer settings must equal these (for resuming). */
  readonly train?: Readonly<Record<string, unknown>>;
}

/**
 * Checks a loaded checkpoint against the live objects and applies it: parameters, buffers, and (when
 * given) optimizer moments and step, EMA shadow. Every problem (missing, unexpected or misshapen
 * tensors, unsupported dtypes, NaN or Infinity in a state tensor, configuration or trainer-setting
 * differences) is reported in one
 * error "Cannot load checkpoint <path>: ..."; nothing is changed unless everything matches.
 *
 * Buffers that are still empty in the model (ActNorm before its first batch, diagnostics) accept the
 * file's shape; empty buffers absent from the file stay empty.
 */
export function restoreCheckpoint(ck: LoadedCheckpoint, parts: CheckpointParts, opts: RestoreOptions): void {
  const params: Parameter[] = parts.module.parameters();
  const buffers: BufferState[] = parts.module.buffers();
  const expected = new Map<string, readonly number[]>();
  for (const p of params) expected.set(`param.${p.name}`, p.value.shape);
  for (const b of buffers) {
    const key = `buffer.${b.name}`;
    if (b.value !== null) expected.set(key, b.value.shape);
    else if (ck.tensors.has(key)) expected.set(key, ck.tensors.get(key)!.shape);
  }
  const ignoredPrefixes: string[] = [];
  if (parts.optimizer) {
    for (const p of parts.optimizer.params) {
      expected.set(`adam.m.${p.name}`, p.value.shape);
      expected.set(`adam.v.${p.name}`, p.value.shape);
    }
  } else ignoredPrefixes.push("adam.");
  if (parts.ema) {
    if (ck.meta.emaInitialized) {
      for (const p of parts.ema.params) expected.set(`ema.${p.name}`, p.value.shape);
    }
  } else ignoredPrefixes.push("ema.");
  const loaded = new Map<string, SafeTensor>();
  for (const [n, t] of ck.tensors) if (!ignoredPrefixes.some((pre) => n.startsWith(pre))) loaded.set(n, t);

  const problems: string[] = [];
  const diff = diffCheckpoint(expected, loaded);
  if (!isExactMatch(diff)) problems.push(describeDiff(diff));
  const badDtype = [...loaded].filter(([, t]) => t.dtype !== "F32" && t.dtype !== "F64");
  if (badDtype.length) {
    problems.push(
      `unsupported dtypes (${badDtype.map(([n, t]) => `${n}: ${t.dtype}`).join(", ")}; expected F32 or F64)`,
    );
  }
  const nonFinite = nonFiniteTensors(loaded);
  if (nonFinite.length) {
    problems.push(
      `${nonFinite.length} tensor${nonFinite.length === 1 ? " holds" : "s hold"} NaN or Infinity (${
        nonFinite.join(", ")
      }; expected finite values: training from it would reject every step)`,
    );
  }
  if (opts.config !== undefined) {
    const d = diffJson(upgradeLegacyConfig(ck.meta.config), opts.config);
    if (d.length) problems.push(`the model configuration differs (${d.join("; ")})`);
  }
  if (opts.train !== undefined) {
    const d = diffJson(ck.meta.train, opts.train);
    if (d.length) problems.push(`the training settings differ (${d.join("; ")})`);
  }
  if (problems.length) throw new Error(`Cannot load checkpoint ${ck.path}: ${problems.join("; ")}`);

  const make = (name: string): Tensor => {
    const t = loaded.get(name)!;
    return tensor(t.data as Float32Array | Float64Array, t.shape, opts.device);
  };
  for (const p of params) p.set(make(`param.${p.name}`));
  for (const b of buffers) {
    const key = `buffer.${b.name}`;
    if (loaded.has(key)) b.set(make(key));
  }
  if (parts.optimizer) {
    const m = new Map<string, Tensor>();
    const v = new Map<string, Tensor>();
    for (const p of parts.optimizer.params) {
      m.set(p.name, make(`adam.m.${p.name}`));
      v.set(p.name, make(`adam.v.${p.name}`));
    }
    parts.optimizer.loadState({ step: ck.meta.optimizerStep, m, v });
  }
  if (parts.ema) {
    if (ck.meta.emaInitialized) {
      const s = new Map<string, Tensor>();
      for (const p of parts.ema.params) s.set(p.name, make(`ema.${p.name}`));
      parts.ema.loadShadow(s);
    } else parts.ema.dispose();
  }
}
