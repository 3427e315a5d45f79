/**
 * Row kernels of the power iteration, one workgroup per row of a dense [rows, cols] matrix (rows folded
 * into an (x, y) grid by the host), each reducing its row in workgroup memory:
 *
 * - {@link rowNormalizeKernel}: out[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps) (the official `F.normalize` per
 *   row) in one dispatch, where the composed ops take a square, a (possibly two-pass) sum, a root and a
 *   broadcast division;
 * - {@link rowsConvergedKernel}: the power iteration's stopping test of two pairs of row matrices in one
 *   dispatch: out[r] = 1 when rms(a[r] − b[r]) < atol + rtol·max(a[r]) and the same holds for (c[r], d[r]),
 *   else 0.
 *
 * - {@link rowNormalizeTestKernel}: both in one dispatch for the second half of a power-iteration step:
 *   y[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps) and the flag of the pairs (y[r], v[r]) and (a[r], b[r]).
 *
 * The square root is WGSL's `sqrt` (the composed ops use `pow(·, 0.5)`), and the sums run in another
 * order than the reduction kernel's, so results agree with the composed ops up to float rounding.
 * @module
 */
import type { KernelSource, ParamField } from "./common.ts";
import { paramStruct } from "./common.ts";

/** Invocations per workgroup (one workgroup per row); a power of two. */
export const ROW_WG = 128;

const NORMALIZE_FIELDS: readonly ParamField[] = [
  ["rows", "u32"],
  ["cols", "u32"],
  ["eps", "f32"],
];

const CONVERGED_FIELDS: readonly ParamField[] = [
  ["rows", "u32"],
  ["colsA", "u32"],
  ["colsC", "u32"],
  ["atol", "f32"],
  ["rtol", "f32"],
];

const ENTRY = `@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) {
    return;
  }`;

const NORMALIZE_TEST_FIELDS: readonly ParamField[] = [
  ["rows", "u32"],
  ["cols", "u32"],
  ["colsA", "u32"],
  ["eps", "f32"],
  ["atol", "f32"],
  ["rtol", "f32"],
];

/** Tree reduction of `arr` (workgroup array of ROW_WG) with `comb`; every invocation must call it. */
function treeReduce(arrays: readonly string[], comb: readonly ((a: string, b: string) => string)[]): string {
  const steps = arrays.map((a, i) => `      ${a}[t] = ${comb[i](`${a}[t]`, `${a}[t + h]`)};`).join("\n");
  return `  workgroupBarrier();
  for (var h = ${ROW_WG / 2}u; h > 0u; h = h >> 1u) {
    if (t < h) {
${steps}
    }
    workgroupBarrier();
  }`;
}

/**
 * Row `r` of xs scaled to unit l2 norm (floored at p.eps) into out, by the threads `t` of its workgroup
 * (a strided sum of squares, a tree reduction in `ss`); leaves `base` and `norm` defined.
 */
function normalizeRowBody(): string {
  return `  let base = r * p.cols;
  var s = 0.0;
  for (var j = t; j < p.cols; j += ${ROW_WG}u) {
    let v = xs[base + j];
    s += v * v;
  }
  ss[t] = s;
${treeReduce(["ss"], [(a, b) => `${a} + ${b}`])}
  let norm = max(sqrt(ss[0]), p.eps);
  for (var j = t; j < p.cols; j += ${ROW_WG}u) {
    out[base + j] = xs[base + j] / norm;
  }`;
}

/** The row normalisation kernel: out (binding 1) = x (binding 2) with each row scaled to unit l2 norm. */
export function rowNormalizeKernel(): KernelSource {
  const code = `${paramStruct(NORMALIZE_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
var<workgroup> ss: array<f32, ${ROW_WG}>;
${ENTRY}
${normalizeRowBody()}
}
`;
  return { code, fields: NORMALIZE_FIELDS };
}

/**
 * WGSL statements testing one pair of rows (`x`, `y`: arrays, or `val(j)`/`ref(j)` expressions of the
 * column j) into `ok<tag>`: rms(x − y) < atol + rtol·max(x). Uses the workgroup arrays `ss`, `sm`.
 */
function pair(val: (j: string) => string, ref: (j: string) => string, cols: string, tag: string): string {
  return `
  var s${tag} = 0.0;
  var m${tag} = -3.40282347e38;
  for (var j = t; j < ${cols}; j += ${ROW_WG}u) {
    let v = ${val("j")};
    let e = v - ${ref("j")};
    s${tag} += e * e;
    m${tag} = max(m${tag}, v);
  }
  ss[t] = s${tag};
  sm[t] = m${tag};
${treeReduce(["ss", "sm"], [(a, b) => `${a} + ${b}`, (a, b) => `max(${a}, ${b})`])}
  let ok${tag} = sqrt(ss[0] / f32(${cols})) < p.atol + sm[0] * p.rtol;
  workgroupBarrier();`;
}

/**
 * The stopping test of two pairs: out[r] (binding 1) from a, b (bindings 2, 3; [rows, colsA]) and c, d
 * (bindings 4, 5; [rows, colsC]).
 */
export function rowsConvergedKernel(): KernelSource {
  const code = `${paramStruct(CONVERGED_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;
@group(0) @binding(5) var<storage, read> d: array<f32>;
var<workgroup> ss: array<f32, ${ROW_WG}>;
var<workgroup> sm: array<f32, ${ROW_WG}>;
${ENTRY}${pair((j) => `a[r * p.colsA + ${j}]`, (j) => `b[r * p.colsA + ${j}]`, "p.colsA", "A")}${
    pair((j) => `c[r * p.colsC + ${j}]`, (j) => `d[r * p.colsC + ${j}]`, "p.colsC", "C")
  }
  if (t == 0u) {
    out[r] = select(0.0, 1.0, okA && okC);
  }
}
`;
  return { code, fields: CONVERGED_FIELDS };
}

/**
 * Normalisation and stopping test in one: y (binding 1) = x (binding 3) with each row scaled to unit l2
 * norm, flags (binding 2) per row from the pairs (y, v) (v at binding 4, [rows, cols]) and (a, b) (bindings
 * 5, 6, [rows, colsA]), as {@link rowNormalizeKernel} followed by {@link rowsConvergedKernel}.
 */
export function rowNormalizeTestKernel(): KernelSource {
  const code = `${paramStruct(NORMALIZE_TEST_FIELDS)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> flags: array<f32>;
@group(0) @binding(3) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read> vs: array<f32>;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
var<workgroup> ss: array<f32, ${ROW_WG}>;
var<workgroup> sm: array<f32, ${ROW_WG}>;
${ENTRY}
${normalizeRowBody()}
  workgroupBarrier();${pair((j) => `(xs[base + ${j}] / norm)`, (j) => `vs[base + ${j}]`, "p.cols", "V")}${
    pair((j) => `a[r * p.colsA + ${j}]`, (j) => `b[r * p.colsA + ${j}]`, "p.colsA", "A")
  }
  if (t == 0u) {
    flags[r] = select(0.0, 1.0, okV && okA);
  }
}
`;
  return { code, fields: NORMALIZE_TEST_FIELDS };
}
