/**
 * Copy kernels with index math: one strided copy serves permute, slice, pad (after a fill) and concat
 * (one dispatch per input into its slab of the output), plus the zero-padded transpose used to repack
 * convolution weights.
 * @module
 */
import { entry1d, type KernelSource, paramStruct, stridedFields, stridedIndexCode } from "./common.ts";

/**
 * dst[o_dst] = src[o_src] for every index of the box `p.d0 .. p.d{rank-1}` (p.n elements), where each
 * offset is a base plus the index dotted with that operand's strides.
 */
export function stridedCopyKernel(rank: number): KernelSource {
  const fields = stridedFields(rank, ["dst", "src"]);
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
${entry1d("p.n", `${stridedIndexCode(rank, ["dst", "src"])}\n  dst[o_dst] = src[o_src];`)}`;
  return { code, fields };
}

/**
 * Zero-padded batched transpose: src is [A, B, C] and dst is [A, C, BP] with BP >= B, and
 * dst[a, c, b] = b < B ? src[a, b, c] : 0. One invocation per dst element (p.n = A * C * BP).
 */
export function transposePadKernel(): KernelSource {
  const fields = [["n", "u32"], ["nb", "u32"], ["nc", "u32"], ["bp", "u32"]] as const;
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
${
    entry1d(
      "p.n",
      `  let b = i % p.bp;
  let ac = i / p.bp;
  let c = ac % p.nc;
  let a = ac / p.nc;
  let srcIndex = (a * p.nb + min(b, p.nb - 1u)) * p.nc + c;
  dst[i] = select(0.0, src[srcIndex], b < p.nb);`,
    )
  }`;
  return { code, fields };
}
