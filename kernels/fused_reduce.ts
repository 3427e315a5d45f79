/**
 * A reduction whose input is the last value of a fused element-wise chain (kernels/fused.ts), in one
 * kernel: each invocation evaluates the chain at the elements it reduces, writes the chain's stored
 * results there, and accumulates the reduced node's value. The reduction's canonical form and chunking are
 * those of kernels/reduce.ts, which visit every element exactly once, so each stored result is written
 * once; the chain's ops keep their opaque rounding boundaries and the accumulation order is the
 * reduction kernel's, so results are bit-for-bit those of the fused kernel followed by the reduction.
 *
 * Bindings: 1 the reduction's output (partials when chunked), then the chain's outputs and leaves.
 * @module
 */
import { entry1d, type KernelSource, type ParamField, paramStruct } from "./common.ts";
import { chainCode, type FusedSpec } from "./fused.ts";
import { chunkedReduceBody, REDUCE_FIELDS, type ReduceOp } from "./reduce.ts";

/** Uniform fields: those of the reduction kernel plus the chain's opaque zero `z`. */
const FIELDS: readonly ParamField[] = [...REDUCE_FIELDS, ["z", "u32"]];

/**
 * The kernel reducing node `target` of `spec` with `op`. With `vec4` the innermost loop runs over vec4s
 * (the host guarantees R2 % 4 == 0 and ch2 % 4 == 0), reading the chain's vector leaves as vec4s.
 */
export function fusedReduceKernel(
  op: ReduceOp,
  vec4: boolean,
  spec: FusedSpec,
  target: number,
): KernelSource {
  if (op !== "sum" && op !== "max") throw new Error(`Cannot generate a fused reduction: unknown op "${op}"`);
  if (!Number.isInteger(target) || target < 0 || target >= spec.nodes.length) {
    throw new Error(
      `Cannot generate a fused reduction: target node ${target} is not one of ${spec.nodes.length}`,
    );
  }
  const comb = (a: string, b: string) => op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`;
  const c = chainCode(spec, 2, !vec4, "e");
  const indent = (s: string) => s.split("\n").map((l) => `    ${l}`).join("\n");
  const inner = vec4
    ? `    let base4 = (((o1 * p.r1 + a) * p.k2 + o2) * p.r2) / 4u;
    for (var b = r2s / 4u; b < r2e / 4u; b++) {
      let e = base4 + b;
${indent(c.body)}
      acc4 = ${comb("acc4", c.value(target))};
    }`
    : `    let base = ((o1 * p.r1 + a) * p.k2 + o2) * p.r2;
    for (var b = r2s; b < r2e; b++) {
      let e = base + b;
${indent(c.body)}
      acc = ${comb("acc", `${c.value(target)}.x`)};
    }`;
  const finish = vec4 ? `  acc = ${comb(comb("acc4.x", "acc4.y"), comb("acc4.z", "acc4.w"))};\n` : "";
  const code = `${paramStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${c.decls}
${c.fns}
${
    entry1d(
      "p.n",
      chunkedReduceBody(inner, finish),
    )
  }`;
  return { code, fields: FIELDS };
}
