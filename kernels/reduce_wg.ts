/**
 * One-pass reduction for few long outputs: one workgroup per output element of the canonical form
 * [K1, R1, K2, R2] of kernels/reduce.ts (reducing R1 and R2), whose invocations stride over the output's
 * R1·R2 terms and combine their partial results in workgroup memory. It replaces the two passes
 * (chunked partials, then their reduction) that reduce.ts needs when a long reduction has too few outputs
 * to spread over invocations. Optionally the reduced input is the value of node `target` of a pending
 * fused element-wise chain (kernels/fused.ts), evaluated where it is read, its stored results written
 * there (each term is visited once), as in kernels/fused_reduce.ts.
 *
 * Bindings: 1 the output, then the input (plain) or the chain's outputs and leaves (fused).
 * @module
 */
import { type KernelSource, type ParamField, paramStruct } from "./common.ts";
import { chainCode, type FusedSpec } from "./fused.ts";
import type { ReduceOp } from "./reduce.ts";

/** Invocations per workgroup (one workgroup per output); a power of two. */
export const REDUCE_WG = 128;

const FIELDS: readonly ParamField[] = [
  ["outputs", "u32"],
  ["k2", "u32"],
  ["r1", "u32"],
  ["r2", "u32"],
  ["init", "f32"],
  ["z", "u32"],
];

/** The chain a fused variant evaluates: its spec and the node reduced. */
export interface ReduceChain {
  /** The pending chain. */
  readonly spec: FusedSpec;
  /** Index of the reduced node. */
  readonly target: number;
}

/**
 * The workgroup reduction kernel. With `vec4` the terms are read as vec4s along R2 (the host guarantees
 * R2 % 4 == 0). With `chain` the input is the chain's node `chain.target`.
 */
export function reduceWorkgroupKernel(op: ReduceOp, vec4: boolean, chain: ReduceChain | null): KernelSource {
  if (op !== "sum" && op !== "max") {
    throw new Error(`Cannot generate a workgroup reduction: unknown op "${op}"`);
  }
  const comb = (a: string, b: string) => op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`;
  const w = vec4 ? 4 : 1;
  let decls: string, fns = "", read: string;
  if (chain) {
    const c = chainCode(chain.spec, 2, !vec4, "e");
    decls = c.decls;
    fns = c.fns;
    const indent = c.body.split("\n").map((l) => `    ${l}`).join("\n");
    read = `${indent}\n      let x = ${c.value(chain.target)}${vec4 ? "" : ".x"};`;
  } else {
    decls = `@group(0) @binding(2) var<storage, read> xs: array<${vec4 ? "vec4f" : "f32"}>;`;
    read = `      let x = xs[e];`;
  }
  const code = `${paramStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${decls}
var<workgroup> sh: array<f32, ${REDUCE_WG}>;
${fns}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= p.outputs) {
    return;
  }
  let o1 = o / p.k2;
  let o2 = o - o1 * p.k2;
  let rw = p.r2 / ${w}u;
  let total = p.r1 * rw;
  var acc = ${vec4 ? "vec4f(p.init)" : "p.init"};
  for (var j = t; j < total; j += ${REDUCE_WG}u) {
    let a = j / rw;
    let e = ((o1 * p.r1 + a) * p.k2 + o2) * rw + (j - a * rw);
${read}
    acc = ${comb("acc", "x")};
  }
  sh[t] = ${vec4 ? comb(comb("acc.x", "acc.y"), comb("acc.z", "acc.w")) : "acc"};
  workgroupBarrier();
  for (var h = ${REDUCE_WG / 2}u; h > 0u; h = h >> 1u) {
    if (t < h) {
      sh[t] = ${comb("sh[t]", "sh[t + h]")};
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    out[o] = sh[0];
  }
}
`;
  return { code, fields: FIELDS };
}
