/**
 * Copies between one flat buffer and several: {@link gatherKernel} writes up to `count` inputs into
 * consecutive ranges of one output (a flat concatenation), {@link scatterKernel} copies consecutive
 * ranges of one input into up to `count` outputs (a flat split). One dispatch moves many small tensors,
 * where the strided copy needs one per tensor (the optimizer's multi-tensor path packs ~150 parameter
 * tensors this way).
 *
 * Both take the range ends `e0 < e1 < ... < e{count-1}` (element offsets within the dispatch's span,
 * `e{count-1}` its length) and the span's start `base` in the flat buffer.
 * @module
 */
import { entry1d, type KernelSource, type ParamField, paramStruct } from "./common.ts";

function fieldsOf(count: number): ParamField[] {
  return [["base", "u32"], ...Array.from({ length: count }, (_, j) => [`e${j}`, "u32"] as const)];
}

function checkCount(count: number, what: string): void {
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`Cannot generate the ${what} kernel: count ${count} is not a positive integer`);
  }
}

/** Chain of `if` branches choosing the range of `i`; `body(j)` handles range j, whose start is `s`. */
function rangeChain(count: number, body: (j: number) => string): string {
  const parts: string[] = [];
  for (let j = 0; j < count; j++) {
    const start = j === 0 ? "0u" : `p.e${j - 1}`;
    const cond = j === count - 1 ? "" : `if (i < p.e${j}) `;
    parts.push(`${cond}{\n    let s = ${start};\n    ${body(j)}\n  }`);
  }
  return `  ${parts.join(" else ")}`;
}

/** dst[base + i] = in_j[i - start_j] for i in range j (bindings: dst at 1, in_0.. at 2..). */
export function gatherKernel(count: number): KernelSource {
  checkCount(count, "gather");
  const fields = fieldsOf(count);
  const decl = Array.from(
    { length: count },
    (_, j) => `@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<f32>;`,
  ).join("\n");
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
${decl}
${entry1d(`p.e${count - 1}`, rangeChain(count, (j) => `dst[p.base + i] = in${j}[i - s];`))}`;
  return { code, fields };
}

/** out_j[i - start_j] = src[base + i] for i in range j (bindings: out_0.. at 1.., src last). */
export function scatterKernel(count: number): KernelSource {
  checkCount(count, "scatter");
  const fields = fieldsOf(count);
  const decl = Array.from(
    { length: count },
    (_, j) => `@group(0) @binding(${1 + j}) var<storage, read_write> out${j}: array<f32>;`,
  ).join("\n");
  const code = `${paramStruct(fields)}
${decl}
@group(0) @binding(${1 + count}) var<storage, read> src: array<f32>;
${entry1d(`p.e${count - 1}`, rangeChain(count, (j) => `out${j}[i - s] = src[p.base + i];`))}`;
  return { code, fields };
}
