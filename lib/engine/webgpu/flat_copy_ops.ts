/**
 * Host side of the flat multi-tensor copies of kernels/multi_copy.ts: {@link gatherFlat} packs storages
 * into consecutive ranges of one storage and {@link splitFlatOp} unpacks one storage into several, each
 * with one dispatch per {@link flatCopyGroup} storages (the strided copy takes one per storage).
 * @module
 */
import { gatherKernel, scatterKernel } from "../../../kernels/multi_copy.ts";
import { MAX_FUSED_BINDINGS } from "./fusion.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";

/** Storages copied per dispatch: the storage bindings allowed (at most 16), less the flat one. */
export function flatCopyGroup(d: Dispatcher): number {
  return Math.min(MAX_FUSED_BINDINGS, d.limits.maxStorageBuffersPerShaderStage) - 1;
}

/** Groups of consecutive non-empty pieces, at most `max` per group, as [first, end) index pairs. */
function groups(sizes: readonly number[], max: number): [number, number][] {
  const out: [number, number][] = [];
  let start = -1, count = 0;
  for (let j = 0; j < sizes.length; j++) {
    if (sizes[j] === 0) continue;
    if (start < 0) [start, count] = [j, 0];
    if (++count === max) {
      out.push([start, j + 1]);
      start = -1;
    }
  }
  if (start >= 0) out.push([start, sizes.length]);
  return out;
}

function rangeValues(base: number, sizes: readonly number[]): Record<string, number> {
  const values: Record<string, number> = { base };
  let end = 0;
  sizes.forEach((s, j) => {
    end += s;
    values[`e${j}`] = end;
  });
  return values;
}

/** Writes `xs` one after another into `out` starting at element `offset` (sizes must fit). */
export function gatherFlat(d: Dispatcher, out: GpuStorage, xs: readonly GpuStorage[], offset = 0): void {
  const total = xs.reduce((n, x) => n + x.size, 0);
  if (offset + total > out.size) {
    throw new Error(
      `Cannot gather ${total} values at offset ${offset}: the destination holds ${out.size}`,
    );
  }
  const starts: number[] = [];
  let at = offset;
  for (const x of xs) {
    starts.push(at);
    at += x.size;
  }
  for (const [a, b] of groups(xs.map((x) => x.size), flatCopyGroup(d))) {
    const part = xs.slice(a, b).filter((x) => x.size > 0);
    const sizes = part.map((x) => x.size);
    const k = d.kernel(`gather:${part.length}`, () => gatherKernel(part.length));
    const n = sizes.reduce((s, v) => s + v, 0);
    d.dispatch(k, rangeValues(starts[a], sizes), out, part, d.grid1d(n, k.label));
  }
}

/** Consecutive pieces of `x` of the given sizes (their sum must be x's size), in few dispatches. */
export function splitFlatOp(d: Dispatcher, x: GpuStorage, sizes: readonly number[]): GpuStorage[] {
  const total = sizes.reduce((n, s) => n + s, 0);
  if (total !== x.size || sizes.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new Error(
      `Cannot split ${x.size} values into pieces of [${sizes.join(", ")}]: expected non-negative ` +
        `integer sizes summing to ${x.size}`,
    );
  }
  const outs = sizes.map((s) => d.alloc(s, "split"));
  const starts: number[] = [];
  let at = 0;
  for (const s of sizes) {
    starts.push(at);
    at += s;
  }
  d.checkBinding(x, "split");
  for (const [a, b] of groups(sizes, flatCopyGroup(d))) {
    const part = outs.slice(a, b).filter((o) => o.size > 0);
    const k = d.kernel(`scatter:${part.length}`, () => scatterKernel(part.length));
    for (const o of part) d.checkBinding(o, k.label);
    const n = part.reduce((s, o) => s + o.size, 0);
    d.dispatchBindings(
      k,
      rangeValues(starts[a], part.map((o) => o.size)),
      [...part, x],
      d.grid1d(n, k.label),
    );
  }
  return outs;
}
