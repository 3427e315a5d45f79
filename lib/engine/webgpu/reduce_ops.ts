/**
 * Host side of reductions: canonical 4-group form (permuting first when needed), and a two-pass split
 * of long reductions with few outputs so no single invocation walks millions of elements.
 * @module
 */
import type { ReduceOp, Shape } from "../backend.ts";
import { reduceKernel } from "../../../kernels/reduce.ts";
import { fusedReduceKernel } from "../../../kernels/fused_reduce.ts";
import { fusedKey } from "../../../kernels/fused.ts";
import { reduceWorkgroupKernel } from "../../../kernels/reduce_wg.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import { fillInto } from "./elementwise_ops.ts";
import { permuteOp } from "./layout_ops.ts";
import { type ReduceForm, reduceForm } from "./shape_utils.ts";

/**
 * Switches for measuring effects, both default on. `enabled`: a pending element-wise chain is fused into
 * the reduction of its result (results bit-for-bit the same either way). `onePass`: reductions that would
 * be split in two passes run as one workgroup per output instead when at most {@link ONE_PASS_MAX_LENGTH}
 * long (kernels/reduce_wg.ts; the same sums in another order).
 */
export const reduceFusionOptions: { enabled: boolean; onePass: boolean } = { enabled: true, onePass: true };

/**
 * Longest reduction run as one workgroup per output instead of two passes: 512 terms per invocation.
 * Longer ones keep the two passes, which spread one output over many workgroups (llvmpipe runs a
 * workgroup on one thread, and a GPU one workgroup on one compute unit).
 */
export const ONE_PASS_MAX_LENGTH = 65536;

/** Below this many outputs, reductions longer than {@link SPLIT_MIN_LENGTH} are split in two passes. */
const SPLIT_MAX_OUTPUTS = 1024;
/** Reductions at most this long always run in one pass. */
const SPLIT_MIN_LENGTH = 4096;
/** Target number of invocations of a split first pass. */
const SPLIT_TARGET_INVOCATIONS = 4096;
/** Minimum elements per chunk of a split first pass. */
const SPLIT_MIN_CHUNK = 2048;

/** How a reduction is cut into chunks: per output, c1 chunks of ch1 along R1 times c2 chunks of ch2 along R2. */
export interface ReduceChunks {
  /** Chunks along R1. */
  readonly c1: number;
  /** R1 entries per chunk. */
  readonly ch1: number;
  /** Chunks along R2. */
  readonly c2: number;
  /** R2 entries per chunk (a multiple of 4 when c2 > 1). */
  readonly ch2: number;
}

/** Chooses the chunking of reduction `f` (one chunk unless it is long and has few outputs). */
export function reduceChunks(f: ReduceForm): ReduceChunks {
  const outputs = f.k1 * f.k2, len = f.r1 * f.r2;
  if (outputs >= SPLIT_MAX_OUTPUTS || len <= SPLIT_MIN_LENGTH) return { c1: 1, ch1: f.r1, c2: 1, ch2: f.r2 };
  const want = Math.max(
    2,
    Math.min(Math.ceil(len / SPLIT_MIN_CHUNK), Math.ceil(SPLIT_TARGET_INVOCATIONS / outputs)),
  );
  if (f.r1 >= want) {
    const ch1 = Math.ceil(f.r1 / want);
    return { c1: Math.ceil(f.r1 / ch1), ch1, c2: 1, ch2: f.r2 };
  }
  const per = Math.ceil(want / f.r1);
  const ch2 = Math.ceil(Math.ceil(f.r2 / per) / 4) * 4;
  return { c1: f.r1, ch1: 1, c2: Math.ceil(f.r2 / ch2), ch2 };
}

/** Reduces `axes` of `shape` with `op`. */
export function reduceOp(
  d: Dispatcher,
  op: ReduceOp,
  x: GpuStorage,
  shape: Shape,
  axes: readonly number[],
): GpuStorage {
  const form = reduceForm(shape, axes);
  if (form) return reduceCanonical(d, op, x, form);
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...kept, ...axes];
  const tmp = permuteOp(d, x, shape, perm);
  const pForm = reduceForm(perm.map((i) => shape[i]), axes.map((_, j) => kept.length + j));
  if (!pForm) throw new Error(`Cannot reduce axes [${axes.join(", ")}]: the permuted form is not canonical`);
  const out = reduceCanonical(d, op, tmp, pForm);
  d.release(tmp);
  return out;
}

function reduceCanonical(d: Dispatcher, op: ReduceOp, x: GpuStorage, f: ReduceForm): GpuStorage {
  const outputs = f.k1 * f.k2;
  const init = op === "sum" ? 0 : -Infinity;
  if (f.r1 * f.r2 === 0 || outputs === 0) {
    const out = d.alloc(outputs, `reduce ${op}`);
    if (outputs > 0) fillInto(d, out, init);
    return out;
  }
  const ch = reduceChunks(f);
  const cc = ch.c1 * ch.c2;
  if (cc > 1 && reduceFusionOptions.onePass && f.r1 * f.r2 <= ONE_PASS_MAX_LENGTH) {
    return reduceWorkgroup(d, op, x, f, init);
  }
  const vec4 = f.r2 % 4 === 0 && ch.ch2 % 4 === 0;
  const n = outputs * cc;
  const part = d.alloc(n, `reduce ${op}`);
  const values = { n, k2: f.k2, r1: f.r1, r2: f.r2, cc, c2n: ch.c2, ch1: ch.ch1, ch2: ch.ch2, init };
  // x still pending in the element-wise fuser: its chain is evaluated inside the reduction (one dispatch).
  const g = reduceFusionOptions.enabled && d.fuser?.isPending(x) ? d.fuser.take(x, 1) : null;
  if (g) {
    const key = `reduce:${op}:${vec4 ? "vec4" : "scalar"}:t${g.target}:${fusedKey(g.spec)}`;
    const k = d.kernel(key, () => fusedReduceKernel(op, vec4, g.spec, g.target));
    d.checkBinding(part, k.label);
    d.dispatchBindings(k, { ...values, z: 0 }, [part, ...g.outs, ...g.leaves], d.grid1d(n, k.label));
  } else {
    const k = d.kernel(`reduce:${op}:${vec4 ? "vec4" : "scalar"}`, () => reduceKernel(op, vec4));
    d.dispatch(k, values, part, [x], d.grid1d(n, k.label));
  }
  if (cc === 1) return part;
  const out = reduceCanonical(d, op, part, { k1: outputs, r1: 1, k2: 1, r2: cc });
  d.release(part);
  return out;
}

/** One workgroup per output (few long outputs), fusing a pending chain that produces x. */
function reduceWorkgroup(
  d: Dispatcher,
  op: ReduceOp,
  x: GpuStorage,
  f: ReduceForm,
  init: number,
): GpuStorage {
  const outputs = f.k1 * f.k2;
  const vec4 = f.r2 % 4 === 0;
  const out = d.alloc(outputs, `reduce ${op}`);
  d.checkBinding(out, `reduce ${op}`);
  const values = { outputs, k2: f.k2, r1: f.r1, r2: f.r2, init, z: 0 };
  const [gx, gy] = d.fold(outputs, `reduce ${op}`);
  const g = reduceFusionOptions.enabled && d.fuser?.isPending(x) ? d.fuser.take(x, 1) : null;
  const base = `reduce-wg:${op}:${vec4 ? "vec4" : "scalar"}`;
  if (g) {
    const key = `${base}:t${g.target}:${fusedKey(g.spec)}`;
    const k = d.kernel(key, () => reduceWorkgroupKernel(op, vec4, { spec: g.spec, target: g.target }));
    d.dispatchBindings(k, values, [out, ...g.outs, ...g.leaves], [gx, gy, 1]);
  } else {
    const k = d.kernel(base, () => reduceWorkgroupKernel(op, vec4, null));
    d.dispatch(k, values, out, [x], [gx, gy, 1]);
  }
  return out;
}
