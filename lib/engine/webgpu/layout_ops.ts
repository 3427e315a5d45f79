/**
 * Host side of the layout ops (permute, slice, pad, concat) as strided copies, plus the zero-padded
 * transpose used to repack convolution weights.
 * @module
 */
import type { Shape } from "../backend.ts";
import { sizeOf } from "../backend.ts";
import { stridedCopyKernel, transposePadKernel } from "../../../kernels/copy.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";
import { stridedValues } from "./elementwise_ops.ts";
import { fillInto } from "./elementwise_ops.ts";
import { contiguousStrides, simplifyStrided } from "./shape_utils.ts";
import { gatherFlat } from "./flat_copy_ops.ts";

/** dst[dstBase + idx·dstStrides] = src[srcBase + idx·srcStrides] over the box `dims`. */
export function stridedCopy(
  d: Dispatcher,
  dst: GpuStorage,
  dstBase: number,
  dstStrides: readonly number[],
  src: GpuStorage,
  srcBase: number,
  srcStrides: readonly number[],
  dims: Shape,
): void {
  const n = sizeOf(dims);
  if (n === 0) return;
  const lay = simplifyStrided(dims, [dstStrides, srcStrides]);
  const rank = lay.dims.length;
  const k = d.kernel(`copy:${rank}`, () => stridedCopyKernel(rank));
  const values = stridedValues(n, lay.dims, [
    { name: "dst", base: dstBase, strides: lay.strides[0] },
    { name: "src", base: srcBase, strides: lay.strides[1] },
  ]);
  d.dispatch(k, values, dst, [src], d.grid1d(n, k.label));
}

/** out = x with axes permuted: out shape is perm.map(i => shape[i]). */
export function permuteOp(d: Dispatcher, x: GpuStorage, shape: Shape, perm: readonly number[]): GpuStorage {
  const outShape = perm.map((i) => shape[i]);
  const out = d.alloc(x.size, "permute");
  const inStrides = contiguousStrides(shape);
  stridedCopy(d, out, 0, contiguousStrides(outShape), x, 0, perm.map((i) => inStrides[i]), outShape);
  return out;
}

/** The box at `starts` of extent `sizes`. */
export function sliceOp(
  d: Dispatcher,
  x: GpuStorage,
  shape: Shape,
  starts: readonly number[],
  sizes: readonly number[],
): GpuStorage {
  const out = d.alloc(sizeOf(sizes), "slice");
  const inStrides = contiguousStrides(shape);
  const base = starts.reduce((acc, s, i) => acc + s * inStrides[i], 0);
  stridedCopy(d, out, 0, contiguousStrides(sizes), x, base, inStrides, sizes);
  return out;
}

/** x padded with `value`: `before[i]` and `after[i]` extra entries on axis i. */
export function padOp(
  d: Dispatcher,
  x: GpuStorage,
  shape: Shape,
  before: readonly number[],
  after: readonly number[],
  value: number,
): GpuStorage {
  const outShape = shape.map((n, i) => n + before[i] + after[i]);
  const out = d.alloc(sizeOf(outShape), "pad");
  if (out.size === 0) return out;
  fillInto(d, out, value);
  const os = contiguousStrides(outShape);
  const base = before.reduce((acc, b, i) => acc + b * os[i], 0);
  stridedCopy(d, out, base, os, x, 0, contiguousStrides(shape), shape);
  return out;
}

/**
 * Concatenation along `axis`: when every input is one contiguous slab of the output (no axis before
 * `axis` longer than 1), a flat gather of up to 15 inputs per dispatch, else one copy per input.
 */
export function concatOp(
  d: Dispatcher,
  xs: readonly GpuStorage[],
  shapes: readonly Shape[],
  axis: number,
): GpuStorage {
  if (xs.length === 0) throw new Error("Cannot concatenate: no inputs");
  const outShape = [...shapes[0]];
  outShape[axis] = shapes.reduce((acc, s) => acc + s[axis], 0);
  const out = d.alloc(sizeOf(outShape), "concat");
  if (outShape.slice(0, axis).every((v) => v === 1)) {
    gatherFlat(d, out, xs);
    return out;
  }
  const os = contiguousStrides(outShape);
  let offset = 0;
  xs.forEach((x, j) => {
    stridedCopy(d, out, offset * os[axis], os, x, 0, contiguousStrides(shapes[j]), shapes[j]);
    offset += shapes[j][axis];
  });
  return out;
}

/** dst [A, C, BP] with dst[a, c, b] = b < B ? src[a, b, c] : 0, for src [A, B, C]. */
export function transposePad(
  d: Dispatcher,
  src: GpuStorage,
  a: number,
  b: number,
  c: number,
  bp: number,
): GpuStorage {
  const n = a * c * bp;
  const out = d.alloc(n, "weight repack");
  const k = d.kernel("transpose-pad", transposePadKernel);
  d.dispatch(k, { n, nb: b, nc: c, bp }, out, [src], d.grid1d(n, k.label));
  return out;
}
