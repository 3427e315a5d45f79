/**
 * Loads a checkpoint written by the authors' `train_img.py` into one of our models: the pickled `args`
 * build the model (args.ts), then every tensor of `state_dict` (with or without the `module.` prefix of
 * `DataParallel`) or of the EMA's `shadow_params` is mapped by the structural walk of names.ts. The EMA
 * holds parameters only, so buffers (u, v, ActNorm's flag) always come from `state_dict`. Every tensor
 * of the file is mapped or on the documented bookkeeping list; anything missing, unexpected or
 * misshapen is one error that lists the names.
 * @module
 */
import type { Device } from "../engine/tensor.ts";
import { Rng } from "../engine/random.ts";
import { makeConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import { setTensor } from "../flow/named.ts";
import {
  asTensorMap,
  describeValue,
  isObject,
  namespaceToRecord,
  objectAttributes,
  type TorchTensor,
  type TorchValue,
} from "../torch/values.ts";
import { officialConfig, type OfficialModelSpec } from "./args.ts";
import { isRequiredRole, officialNames, type OfficialRole } from "./names.ts";

/** The prefix `torch.nn.DataParallel` adds to every name. */
export const DATA_PARALLEL_PREFIX = "module.";

/** Names listed in full in an error before "and N more". */
const MAX_LISTED = 12;

/** The parts of an authors' checkpoint this suite uses. */
export interface OfficialCheckpoint {
  /** Where it came from (for messages). */
  readonly source: string;
  /** The run's options, as read. */
  readonly args: Readonly<Record<string, TorchValue>>;
  /** `state_dict` with the `module.` prefix removed. */
  readonly stateDict: ReadonlyMap<string, TorchTensor>;
  /** Whether `state_dict` names carried the `module.` prefix. */
  readonly prefixed: boolean;
  /** The EMA's `shadow_params` (names without prefix), or null when the file has no EMA. */
  readonly shadow: ReadonlyMap<string, TorchTensor> | null;
  /** The file's `test_bpd` when it is a finite number. */
  readonly testBpd: number | null;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).join(", ");
  return names.length > MAX_LISTED ? `${shown} and ${names.length - MAX_LISTED} more` : shown;
}

/**
 * Picks `args`, `state_dict` and the EMA out of the dictionary an authors' checkpoint holds. Throws
 * "Cannot read official checkpoint <source>: ..." naming the missing or malformed entry.
 */
export function parseOfficialCheckpoint(root: TorchValue, source: string): OfficialCheckpoint {
  const fail = (what: string): never => {
    throw new Error(`Cannot read official checkpoint ${source}: ${what}`);
  };
  if (!(root instanceof Map)) fail(`its top level is ${describeValue(root)}, expected a dict`);
  const top = root as Map<TorchValue, TorchValue>;
  for (const key of ["args", "state_dict"]) {
    if (!top.has(key)) {
      fail(`it has no "${key}" entry (keys: ${[...top.keys()].map((k) => String(k)).join(", ")})`);
    }
  }
  let args: Record<string, TorchValue> = {};
  let raw: Map<string, TorchTensor> = new Map();
  try {
    args = namespaceToRecord(top.get("args"), "args");
    raw = asTensorMap(top.get("state_dict"), "state_dict");
  } catch (e) {
    fail((e as Error).message.replace(/^Cannot read /, "cannot read "));
  }
  const names = [...raw.keys()];
  const withPrefix = names.filter((n) => n.startsWith(DATA_PARALLEL_PREFIX));
  if (withPrefix.length && withPrefix.length !== names.length) {
    const without = names.filter((n) => !n.startsWith(DATA_PARALLEL_PREFIX));
    fail(
      `state_dict mixes names with and without the "${DATA_PARALLEL_PREFIX}" prefix (without: ${
        listNames(without)
      })`,
    );
  }
  const prefixed = withPrefix.length > 0;
  const stateDict = new Map<string, TorchTensor>();
  for (const [n, t] of raw) stateDict.set(prefixed ? n.slice(DATA_PARALLEL_PREFIX.length) : n, t);
  let shadow: Map<string, TorchTensor> | null = null;
  const ema = top.get("ema");
  if (ema !== undefined && ema !== null) {
    try {
      const attrs = isObject(ema) ? objectAttributes(ema, "ema") : (ema as Map<string, TorchValue>);
      if (!(attrs instanceof Map)) fail(`its "ema" entry is ${describeValue(ema)}, expected an EMA object`);
      shadow = asTensorMap(attrs.get("shadow_params"), "ema.shadow_params");
    } catch (e) {
      fail((e as Error).message.replace(/^Cannot read /, "cannot read "));
    }
  }
  const tb = top.get("test_bpd");
  const testBpd = typeof tb === "number" && Number.isFinite(tb)
    ? tb
    : tb && typeof tb === "object" && "kind" in tb && tb.kind === "tensor" && tb.data.length === 1
    ? Number(tb.data[0])
    : null;
  return { source, args, stateDict, prefixed, shadow, testBpd: Number.isFinite(testBpd) ? testBpd : null };
}

/** The values of a tensor as float numbers (int64 and bool included). */
export function tensorNumbers(t: TorchTensor): Float32Array | Float64Array {
  if (t.data instanceof Float32Array || t.data instanceof Float64Array) return t.data;
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** Which weights to load: the EMA's averages (the paper's evaluation and samples) or the raw ones. */
export type OfficialWeights = "ema" | "raw";

/** What was loaded, for provenance and reports. */
export interface OfficialLoadReport {
  /** The weights used. */
  readonly weights: OfficialWeights;
  /** Tensors copied into the model (parameters and buffers). */
  readonly mapped: number;
  /** Authors' names not loaded because they are bookkeeping, with the reason. */
  readonly bookkeeping: readonly string[];
  /** The roulette's distribution parameter read from the blocks (λ or p). */
  readonly nDistParam: number;
  /** Options present in the file that this suite does not know. */
  readonly unknownArgs: readonly string[];
}

/** A model built and loaded from an authors' checkpoint. */
export interface OfficialModel {
  /** The model, weights loaded (power-iteration vectors as in the file: call `updateLipschitz()`). */
  readonly model: ResidualFlow;
  /** Configuration and dataset derived from the options. */
  readonly spec: OfficialModelSpec;
  /** Loading details. */
  readonly report: OfficialLoadReport;
}

/** Options of {@link buildOfficialModel}. */
export interface OfficialLoadOptions {
  /** Device of the model. */
  readonly device: Device;
  /** "ema" (default, as the authors evaluate and sample) or "raw". */
  readonly weights?: OfficialWeights;
  /** Seed of the builder's initial values (all overwritten by the file's; default 0). */
  readonly seed?: number;
}

/**
 * λ (Poisson) or p (geometric) of the file's residual blocks (their `lamb` / `geom_p`, the logit of p),
 * read before the model is built since the roulette's distribution is part of it; all blocks must agree.
 * Null when the file has none. (The names are checked with every other name once the model exists.)
 */
function estimatorParam(
  source: ReadonlyMap<string, TorchTensor>,
  dist: "poisson" | "geometric",
  file: string,
): number | null {
  const want = dist === "poisson" ? "lamb" : "geom_p";
  const values: number[] = [];
  for (const [name, t] of source) {
    if (!name.endsWith(`.${want}`) || t.data.length !== 1) continue;
    const v = Number(tensorNumbers(t)[0]);
    values.push(dist === "poisson" ? v : 1 / (1 + Math.exp(-v)));
  }
  if (!values.length) return null;
  const spread = Math.max(...values) - Math.min(...values);
  if (spread > 1e-6 * Math.max(1, Math.abs(values[0]))) {
    throw new Error(
      `Cannot load official checkpoint ${file}: the residual blocks' ${want} differ (${
        Math.min(...values)
      } to ${Math.max(...values)}); this suite uses one roulette distribution for all blocks`,
    );
  }
  return values[0];
}

/**
 * Builds our model from an authors' checkpoint and loads its weights (see the module doc). The
 * power-iteration vectors are the file's: the authors refresh them with `update_lipschitz` after swapping
 * in the EMA weights before evaluating or sampling, so call `await model.updateLipschitz()` before use.
 */
export function buildOfficialModel(ck: OfficialCheckpoint, opts: OfficialLoadOptions): OfficialModel {
  const weights = opts.weights ?? "ema";
  if (weights !== "ema" && weights !== "raw") {
    throw new Error(`Cannot load official weights ${JSON.stringify(weights)}: expected ema or raw`);
  }
  const spec0 = officialConfig(ck.args);
  const params = weights === "ema" ? ck.shadow : ck.stateDict;
  if (params === null) {
    throw new Error(
      `Cannot load the EMA weights of ${ck.source}: the file has no "ema" entry (use the raw weights)`,
    );
  }
  const dist = spec0.config.estimator.nDist;
  const param = estimatorParam(params, dist, ck.source) ?? estimatorParam(ck.stateDict, dist, ck.source) ??
    spec0.config.estimator.nDistParam;
  const config = makeConfig({
    ...spec0.config,
    estimator: { ...spec0.config.estimator, nDistParam: param },
  });
  const spec: OfficialModelSpec = { ...spec0, config };
  const model = new ResidualFlow(config, { rng: new Rng(opts.seed ?? 0), device: opts.device });
  try {
    const report = loadOfficialTensors(model, ck, weights, spec);
    return { model, spec, report: { ...report, nDistParam: param } };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Copies the file's tensors into `model` (built from the same options). Checks everything first and
 * changes nothing unless every name is accounted for and every shape matches.
 */
export function loadOfficialTensors(
  model: ResidualFlow,
  ck: OfficialCheckpoint,
  weights: OfficialWeights,
  spec: OfficialModelSpec,
): Omit<OfficialLoadReport, "nDistParam"> {
  const scales = new Set(model.stages.map((s) => s.scale)).size;
  if (scales !== spec.nScales) {
    throw new Error(
      `Cannot load official checkpoint ${ck.source}: the authors' model has ${spec.nScales} scales, ours ${scales}`,
    );
  }
  const roles = officialNames(model);
  const ours = new Map<string, readonly number[]>();
  for (const p of model.parameters()) ours.set(p.name, p.value.shape);
  for (const b of model.buffers()) if (b.value) ours.set(b.name, b.value.shape);
  const problems: string[] = [];
  const extra = [...ck.stateDict.keys()].filter((n) => !roles.has(n));
  const missing = [...roles].filter(([n, r]) => isRequiredRole(r) && !ck.stateDict.has(n)).map(([n]) => n);
  const prefix = ck.prefixed ? DATA_PARALLEL_PREFIX : "";
  if (missing.length) {
    problems.push(
      `state_dict lacks ${missing.length} tensor(s): ${listNames(missing.map((n) => prefix + n))}`,
    );
  }
  if (extra.length) {
    problems.push(
      `state_dict has ${extra.length} tensor(s) this model does not have: ${
        listNames(extra.map((n) => prefix + n))
      }`,
    );
  }
  const paramRoles = [...roles].filter(([, r]) => r.role === "parameter" || r.role === "estimator");
  if (weights === "ema" && ck.shadow) {
    const expected = new Set(paramRoles.map(([n]) => n));
    const lacking = [...expected].filter((n) => !ck.shadow!.has(n));
    const surplus = [...ck.shadow.keys()].filter((n) => !expected.has(n));
    if (lacking.length) {
      problems.push(`ema.shadow_params lacks ${lacking.length} parameter(s): ${listNames(lacking)}`);
    }
    if (surplus.length) {
      problems.push(`ema.shadow_params has ${surplus.length} unknown name(s): ${listNames(surplus)}`);
    }
  }
  const source = (name: string, role: OfficialRole): TorchTensor | undefined =>
    role.role === "parameter" && weights === "ema" ? ck.shadow?.get(name) : ck.stateDict.get(name);
  const misshapen: string[] = [];
  for (const [name, role] of roles) {
    const t = source(name, role);
    if (!t) continue;
    if (role.role === "parameter") {
      if (!sameShape(t.shape, ours.get(role.ours)!)) {
        misshapen.push(`${name} [${t.shape}] vs ours [${ours.get(role.ours)}]`);
      }
    } else if (role.role === "buffer") {
      const mine = ours.get(role.ours);
      const size = t.shape.reduce((a, b) => a * b, 1);
      const mySize = mine ? mine.reduce((a, b) => a * b, 1) : size;
      if (size !== mySize) misshapen.push(`${name} [${t.shape}] vs ours [${mine}]`);
    } else if (role.role === "spatialDims") {
      const hw = role.layer.inputHW;
      const d = tensorNumbers(t);
      const flag = ck.stateDict.get(name.replace(/spatial_dims$/, "initialized"));
      const initialised = !flag || Number(flag.data[0]) !== 0;
      if (initialised && !role.layer.isPointwise && hw && (d[0] !== hw[0] || d[1] !== hw[1])) {
        misshapen.push(`${name} records ${d[0]}x${d[1]} vs ours ${hw[0]}x${hw[1]}`);
      }
    }
  }
  if (misshapen.length) problems.push(`shapes differ: ${listNames(misshapen)}`);
  if (problems.length) {
    throw new Error(`Cannot load official checkpoint ${ck.source}: ${problems.join("; ")}`);
  }

  // Everything checked: copy.
  const skipUV = new Set<string>();
  for (const [name, role] of roles) {
    if (role.role !== "convFlag") continue;
    const t = ck.stateDict.get(name);
    if (t && Number(t.data[0]) === 0) {
      const base = role.layer.weight.name.slice(0, role.layer.weight.name.lastIndexOf("."));
      skipUV.add(`${base}.u`).add(`${base}.v`);
    }
  }
  let mapped = 0;
  const bookkeeping: string[] = [];
  for (const [name, role] of roles) {
    const t = source(name, role);
    if (!t) continue;
    if (role.role === "parameter") {
      setTensor(model, role.ours, { data: tensorNumbers(t), shape: t.shape });
      mapped++;
    } else if (role.role === "buffer") {
      if (skipUV.has(role.ours)) continue;
      const shape = ours.get(role.ours) ?? t.shape;
      setTensor(model, role.ours, { data: tensorNumbers(t), shape });
      mapped++;
    } else if (role.role === "actnormFlag") {
      if (Number(t.data[0]) !== 0) {
        setTensor(model, role.ours, { data: [1], shape: [] });
        mapped++;
      }
    } else if (role.role === "bookkeeping") bookkeeping.push(name);
  }
  return { weights, mapped, bookkeeping, unknownArgs: spec.unknownArgs };
}
