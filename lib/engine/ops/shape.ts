/**
 * Shape ops: reshape (a view), expand (broadcast), permute, slice, pad and concat, each with its
 * adjoint as the backward rule.
 * @module
 */
import { broadcastShapes, fmt, type Shape, sizeOf } from "../backend.ts";
import { Node } from "../graph.ts";
import { isGradEnabled, type Tensor, viewAs } from "../tensor.ts";
import { scalarConst } from "./creation.ts";
import { record, sameDevice } from "./record.ts";
import { sumTo } from "./reduce.ts";

/** Same data, another shape (one axis may be -1 to infer it). No copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const sh = [...shape];
  const inferred = sh.indexOf(-1);
  if (inferred >= 0) {
    const rest = sizeOf(sh.filter((_, i) => i !== inferred));
    if (rest === 0 || x.size % rest !== 0) {
      throw new Error(
        `Cannot reshape ${fmt(x.shape)} to ${fmt(shape)}: ${x.size} elements do not divide by ${rest}`,
      );
    }
    sh[inferred] = x.size / rest;
  }
  const out = viewAs(x, sh);
  if (isGradEnabled() && x.node !== null) {
    const src = x.shape;
    const node = new Node("reshape", out.shape, [x.node], [], (g) => [reshape(g, src)]);
    node.retain();
    out.node = node;
  }
  return out;
}

/** Flattens all axes from `start` on into one. */
export function flatten(x: Tensor, start = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, start), -1]);
}

/** Broadcasts x to `shape` (materialised). The gradient sums back. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const target = broadcastShapes(x.shape, shape);
  if (target.length !== shape.length || target.some((v, i) => v !== shape[i])) {
    throw new Error(`Cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  if (x.shape.length === shape.length && x.shape.every((v, i) => v === shape[i])) return reshape(x, shape);
  const d = sameDevice("expand", x);
  const one = scalarConst(1, d);
  const s = d.backend.where(
    one.buffer.storage,
    [],
    x.buffer.storage,
    x.shape,
    x.buffer.storage,
    x.shape,
    shape,
  );
  return record("expand", d, s, shape, [x], [], (g) => [sumTo(g, x.shape)]);
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const d = sameDevice("permute", x);
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(
      `Cannot permute ${fmt(x.shape)} by ${fmt(perm)}: expected a permutation of 0..${x.rank - 1}`,
    );
  }
  if (perm.every((v, i) => v === i)) return reshape(x, x.shape);
  const shape = perm.map((i) => x.shape[i]);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  const s = d.backend.permute(x.buffer.storage, x.shape, perm);
  return record("permute", d, s, shape, [x], [], (g) => [permute(g, inv)]);
}

/** Swaps the last two axes. */
export function transpose(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return permute(x, perm);
}

/** The box [starts, starts + sizes) of x (sizes of -1 run to the end). */
export function slice(x: Tensor, starts: readonly number[], sizes: readonly number[]): Tensor {
  const d = sameDevice("slice", x);
  if (starts.length !== x.rank || sizes.length !== x.rank) {
    throw new Error(
      `Cannot slice ${fmt(x.shape)} with starts ${fmt(starts)} and sizes ${fmt(sizes)}: rank mismatch`,
    );
  }
  const sz = sizes.map((s, i) => (s < 0 ? x.shape[i] - starts[i] : s));
  for (let i = 0; i < x.rank; i++) {
    if (starts[i] < 0 || sz[i] < 0 || starts[i] + sz[i] > x.shape[i]) {
      throw new Error(
        `Cannot slice ${fmt(x.shape)} at ${fmt(starts)} size ${fmt(sz)}: axis ${i} out of range`,
      );
    }
  }
  if (sz.every((v, i) => v === x.shape[i])) return reshape(x, x.shape);
  const s = d.backend.slice(x.buffer.storage, x.shape, starts, sz);
  const after = x.shape.map((v, i) => v - starts[i] - sz[i]);
  return record("slice", d, s, sz, [x], [], (g) => [pad(g, starts, after, 0)]);
}

/** Slices `[start, start + size)` along one axis. */
export function sliceAxis(x: Tensor, axis: number, start: number, size: number): Tensor {
  const a = axis < 0 ? axis + x.rank : axis;
  const starts = x.shape.map((_, i) => (i === a ? start : 0));
  const sizes = x.shape.map((v, i) => (i === a ? size : v));
  return slice(x, starts, sizes);
}

/** Pads with a constant (default 0). */
export function pad(x: Tensor, before: readonly number[], after: readonly number[], value = 0): Tensor {
  const d = sameDevice("pad", x);
  if (before.length !== x.rank || after.length !== x.rank || [...before, ...after].some((v) => v < 0)) {
    throw new Error(
      `Cannot pad ${fmt(x.shape)} by ${fmt(before)} / ${
        fmt(after)
      }: expected ${x.rank} non-negative amounts each`,
    );
  }
  const shape = x.shape.map((v, i) => v + before[i] + after[i]);
  const s = d.backend.pad(x.buffer.storage, x.shape, before, after, value);
  return record("pad", d, s, shape, [x], [], (g) => [slice(g, before, x.shape)]);
}

/** Concatenates along `axis`. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error("Cannot concat an empty list of tensors");
  const d = sameDevice("concat", ...xs);
  const r = xs[0].rank;
  const a = axis < 0 ? axis + r : axis;
  for (const t of xs) {
    if (t.rank !== r || t.shape.some((v, i) => i !== a && v !== xs[0].shape[i])) {
      throw new Error(`Cannot concat ${xs.map((t) => fmt(t.shape)).join(", ")} along axis ${axis}`);
    }
  }
  if (xs.length === 1) return reshape(xs[0], xs[0].shape);
  const shape = xs[0].shape.map((v, i) => (i === a ? xs.reduce((n, t) => n + t.shape[a], 0) : v));
  const s = d.backend.concat(xs.map((t) => t.buffer.storage), xs.map((t) => t.shape), a);
  const offsets: number[] = [];
  let off = 0;
  for (const t of xs) {
    offsets.push(off);
    off += t.shape[a];
  }
  return record(
    "concat",
    d,
    s,
    shape,
    xs,
    [],
    (g, needs) => xs.map((t, i) => (needs[i] ? sliceAxis(g, a, offsets[i], t.shape[a]) : null)),
  );
}

/**
 * Splits x, read flat, into consecutive pieces of the given shapes (their sizes must sum to x's size):
 * the inverse of concatenating the flattened pieces. On backends with `splitFlat` (WebGPU) one dispatch
 * moves many pieces; elsewhere each piece is a slice. Each piece's gradient flows back into its range.
 */
export function splitFlat(x: Tensor, shapes: readonly Shape[]): Tensor[] {
  const d = sameDevice("splitFlat", x);
  const sizes = shapes.map((s) => sizeOf(s));
  const total = sizes.reduce((n, s) => n + s, 0);
  if (total !== x.size) {
    throw new Error(
      `Cannot split ${
        fmt(x.shape)
      } (${x.size} values) into pieces of ${total} values in all (${shapes.length} shapes)`,
    );
  }
  const flat = reshape(x, [x.size]);
  const starts: number[] = [];
  let at = 0;
  for (const s of sizes) {
    starts.push(at);
    at += s;
  }
  if (!d.backend.splitFlat) {
    return shapes.map((s, j) => reshape(slice(flat, [starts[j]], [sizes[j]]), s));
  }
  const storages = d.backend.splitFlat(flat.buffer.storage, sizes);
  return storages.map((st, j) =>
    record(
      "splitFlat",
      d,
      st,
      shapes[j],
      [flat],
      [],
      (g) => [pad(reshape(g, [sizes[j]]), [starts[j]], [total - starts[j] - sizes[j]], 0)],
    )
  );
}
