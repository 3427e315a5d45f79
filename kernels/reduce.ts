/**
 * Reduction kernel (sum or max) over a canonical 4-group view of the input, [K1, R1, K2, R2], reducing
 * R1 and R2: out[o1, o2] = op over (r1, r2) of x[((o1 R1 + r1) K2 + o2) R2 + r2]. The host merges any
 * axis set into this form (permuting first when it has more than two reduced groups).
 *
 * Each invocation reduces one chunk (c1, c2) of one output element: r1 in [c1 ch1, (c1+1) ch1) and r2 in
 * [c2 ch2, (c2+1) ch2), writing out[o * cc + c1 * c2n + c2]. With one chunk this is the final result; with
 * several the host reduces the [O, cc] partials in a second pass, so a full sum of millions of elements is
 * spread over many invocations.
 * @module
 */
import { entry1d, type KernelSource, paramStruct } from "./common.ts";

/** Reductions with kernels here (the engine's `ReduceOp`). */
export type ReduceOp = "sum" | "max";

/** Uniform fields of {@link reduceKernel}: `init` is the identity (0 or -Infinity, passed as bits). */
export const REDUCE_FIELDS = [
  ["n", "u32"],
  ["k2", "u32"],
  ["r1", "u32"],
  ["r2", "u32"],
  ["cc", "u32"],
  ["c2n", "u32"],
  ["ch1", "u32"],
  ["ch2", "u32"],
  ["init", "f32"],
] as const;

/**
 * The reduction kernel. With `vec4` the R2 loop reads vec4s: the host guarantees R2 % 4 == 0 and
 * ch2 % 4 == 0.
 */
export function reduceKernel(op: ReduceOp, vec4: boolean): KernelSource {
  if (op !== "sum" && op !== "max") throw new Error(`Cannot generate reduce kernel: unknown op "${op}"`);
  const comb = (a: string, b: string) => op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`;
  const inner = vec4
    ? `    let base4 = (((o1 * p.r1 + a) * p.k2 + o2) * p.r2) / 4u;
    for (var b = r2s / 4u; b < r2e / 4u; b++) {
      acc4 = ${comb("acc4", "xs[base4 + b]")};
    }`
    : `    let base = ((o1 * p.r1 + a) * p.k2 + o2) * p.r2;
    for (var b = r2s; b < r2e; b++) {
      acc = ${comb("acc", "xs[base + b]")};
    }`;
  const finish = vec4 ? `  acc = ${comb(comb("acc4.x", "acc4.y"), comb("acc4.z", "acc4.w"))};\n` : "";
  const code = `${paramStruct(REDUCE_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<${vec4 ? "vec4f" : "f32"}>;
${
    entry1d(
      "p.n",
      chunkedReduceBody(inner, finish),
    )
  }`;
  return { code, fields: REDUCE_FIELDS };
}

/**
 * The body of a chunked reduction's entry point (also used by `fused_reduce.ts`): output `i` is
 * chunk (c1, c2) of output position (o1, o2); it loops over its rows of the first reduced axis
 * around `inner` (which folds elements into `acc` or `acc4`), then runs `finish` and stores `acc`.
 */
export function chunkedReduceBody(inner: string, finish: string): string {
  return `  let o = i / p.cc;
  let c = i - o * p.cc;
  let c1 = c / p.c2n;
  let c2 = c - c1 * p.c2n;
  let o1 = o / p.k2;
  let o2 = o - o1 * p.k2;
  let r1s = c1 * p.ch1;
  let r1e = min(p.r1, r1s + p.ch1);
  let r2s = c2 * p.ch2;
  let r2e = min(p.r2, r2s + p.ch2);
  var acc = p.init;
  var acc4 = vec4f(p.init);
  for (var a = r1s; a < r1e; a++) {
${inner}
  }
${finish}  out[i] = acc;`;
}
