/**
 * Shared pieces of the storage-buffer WGSL kernels: the uniform parameter struct and the entry point of
 * one-dimensional kernels whose grid may be folded into two dimensions.
 *
 * Conventions of every kernel in this folder (except the texture kernels):
 * - binding 0 is the uniform parameter struct `p`, binding 1 the output, bindings 2.. the inputs;
 * - every declared binding is used, so the pipeline's "auto" layout keeps all of them;
 * - 1-D kernels use {@link WG1} invocations per workgroup and compute their linear index as
 *   `gid.x + gid.y * nwg.x * WG1`, so a dispatch needing more than `maxComputeWorkgroupsPerDimension`
 *   workgroups can be folded into an (x, y) grid by the host.
 * @module
 */

/** Type of one uniform parameter. */
export type ParamType = "u32" | "i32" | "f32";

/** One named field of a kernel's uniform parameter struct. */
export type ParamField = readonly [name: string, type: ParamType];

/** Workgroup size of every 1-D kernel. */
export const WG1 = 64;

/** WGSL declaration of the uniform struct `P` holding `fields` in order, bound at group 0 binding 0 as `p`. */
export function paramStruct(fields: readonly ParamField[]): string {
  if (fields.length === 0) {
    throw new Error("Cannot declare a parameter struct: it has no fields");
  }
  const body = fields.map(([n, t]) => `  ${n}: ${t},`).join("\n");
  return `struct P {\n${body}\n}\n@group(0) @binding(0) var<uniform> p: P;\n`;
}

/**
 * The entry point of a 1-D kernel: declares `i`, the linear invocation index, and returns early when
 * `i >= limit` (a WGSL expression, e.g. `p.n`). `body` follows.
 */
export function entry1d(limit: string, body: string): string {
  return `@compute @workgroup_size(${WG1})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG1}u;
  if (i >= ${limit}) {
    return;
  }
${body}
}
`;
}

/** Names `prefix0 .. prefix{n-1}` as u32 parameter fields. */
export function u32Fields(prefix: string, n: number): ParamField[] {
  return Array.from({ length: n }, (_, d) => [`${prefix}${d}`, "u32"] as const);
}

/**
 * WGSL statements that split the linear index `i` over the dims `p.d0 .. p.d{rank-1}` (row-major) and
 * accumulate, for each name in `operands`, the offset `o_<name> = p.<name>_base + sum_d idx_d * p.<name>_s<d>`.
 * The host passes the dims as fields `d<d>`, and per operand the fields `<name>_base` and `<name>_s<d>`
 * (see {@link stridedFields}).
 */
export function stridedIndexCode(rank: number, operands: readonly string[]): string {
  const lines = ["  var rem = i;"];
  for (const o of operands) lines.push(`  var o_${o} = p.${o}_base;`);
  for (let d = rank - 1; d >= 0; d--) {
    if (d > 0) {
      lines.push(`  let q${d} = rem / p.d${d};`, `  let c${d} = rem - q${d} * p.d${d};`, `  rem = q${d};`);
    } else {
      lines.push(`  let c${d} = rem;`);
    }
    for (const o of operands) lines.push(`  o_${o} += c${d} * p.${o}_s${d};`);
  }
  return lines.join("\n");
}

/** The parameter fields read by {@link stridedIndexCode}: `n`, dims, then per operand base and strides. */
export function stridedFields(rank: number, operands: readonly string[]): ParamField[] {
  const f: ParamField[] = [["n", "u32"], ...u32Fields("d", rank)];
  for (const o of operands) f.push([`${o}_base`, "u32"], ...u32Fields(`${o}_s`, rank));
  return f;
}

/** A generated kernel: its WGSL (entry point `main`) and the order of its uniform parameters. */
export interface KernelSource {
  /** WGSL source. */
  readonly code: string;
  /** Uniform fields, in struct order. */
  readonly fields: readonly ParamField[];
}
