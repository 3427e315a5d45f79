/**
 * Element-wise WGSL kernels: unary functions, binary functions (same shape, scalar operand, or general
 * broadcasting through strides), `where`, and fill. Same-shape and scalar paths work on vec4s: storages are
 * allocated in whole vec4s, so the tail of the last vec4 is scratch that is computed and never read back.
 * @module
 */
import { entry1d, type KernelSource, paramStruct, stridedFields, stridedIndexCode } from "./common.ts";

/** Unary functions with kernels here (the engine's `UnaryOp`; kernels do not import the engine). */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "log1p"
  | "sqrt"
  | "abs"
  | "sign"
  | "sigmoid"
  | "softplus"
  | "tanh"
  | "elu"
  | "relu"
  | "step"
  | "recip"
  | "square";

/** Binary functions with kernels here (the engine's `BinaryOp`). */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "max"
  | "min"
  | "gt"
  | "ge"
  | "lt"
  | "le"
  | "eq"
  | "ne";

/** Stable helpers shared by the unary functions (vec4 arguments). */
export const HELPERS = `
// e^x - 1 without cancellation (Kahan): exact where u == 1 or u - 1 == -1.
fn expm1v(x: vec4f) -> vec4f {
  let u = exp(x);
  let um1 = u - 1.0;
  let r = um1 * x / log(u);
  return select(select(r, vec4f(-1.0), um1 == vec4f(-1.0)), x, u == vec4f(1.0));
}
// log(1 + x) without cancellation (Goldberg).
fn log1pv(x: vec4f) -> vec4f {
  let u = 1.0 + x;
  return select(log(u) * x / (u - 1.0), x, u == vec4f(1.0));
}
fn sigmoidv(x: vec4f) -> vec4f {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= vec4f(0.0));
}
// tanh(|x|) = -t / (2 + t) with t = expm1(-2|x|): accurate near 0 and saturating for large |x|.
fn tanhv(x: vec4f) -> vec4f {
  let t = expm1v(-2.0 * abs(x));
  return sign(x) * (-t / (2.0 + t));
}
`;

/** WGSL expression of a unary op applied to the vec4 `x` (may call the functions in {@link HELPERS}). */
export function unaryExpr(op: UnaryOp): string {
  switch (op) {
    case "neg":
      return "-x";
    case "exp":
      return "exp(x)";
    case "log":
      return "log(x)";
    case "log1p":
      return "log1pv(x)";
    case "sqrt":
      return "sqrt(x)";
    case "abs":
      return "abs(x)";
    case "sign":
      return "sign(x)";
    case "sigmoid":
      return "sigmoidv(x)";
    case "softplus":
      return "max(x, vec4f(0.0)) + log1pv(exp(-abs(x)))";
    case "tanh":
      return "tanhv(x)";
    case "elu":
      return "select(expm1v(min(x, vec4f(0.0))), x, x > vec4f(0.0))";
    case "relu":
      return "select(x, vec4f(0.0), x <= vec4f(0.0))";
    case "step":
      return "select(vec4f(0.0), vec4f(1.0), x > vec4f(0.0))";
    case "recip":
      return "1.0 / x";
    case "square":
      return "x * x";
    default:
      throw new Error(`Cannot generate unary kernel: unknown op "${op as string}"`);
  }
}

/** Helpers of the binary ops (vec4 arguments). */
export const BINARY_HELPERS = `
// Math.pow semantics: negative bases with integer exponents keep their sign; pow(x, 0) = 1.
fn powv(a: vec4f, b: vec4f) -> vec4f {
  let r = exp2(b * log2(abs(a)));
  let isInt = floor(b) == b;
  let isOdd = isInt & ((b - 2.0 * floor(b * 0.5)) == vec4f(1.0));
  var s = select(r, -r, (a < vec4f(0.0)) & isOdd);
  s = select(s, sqrt(-1.0 - abs(a)), (a < vec4f(0.0)) & !isInt);
  s = select(s, a * a, b == vec4f(2.0));
  s = select(s, a, b == vec4f(1.0));
  s = select(s, sqrt(a), b == vec4f(0.5));
  // exp2/log2 of llvmpipe do not give the limits at 0: pow(0, b > 0) = 0, pow(0, b < 0) = inf.
  s = select(s, select(vec4f(0.0), 1.0 / abs(a), b < vec4f(0.0)), a == vec4f(0.0));
  return select(s, vec4f(1.0), b == vec4f(0.0));
}
`;

/** WGSL expression of a binary op on the vec4s `a` and `b` (may call {@link BINARY_HELPERS}). */
export function binaryExpr(op: BinaryOp): string {
  const cmp = (c: string) => `select(vec4f(0.0), vec4f(1.0), a ${c} b)`;
  switch (op) {
    case "add":
      return "a + b";
    case "sub":
      return "a - b";
    case "mul":
      return "a * b";
    case "div":
      return "a / b";
    case "pow":
      return "powv(a, b)";
    case "max":
      return "max(a, b)";
    case "min":
      return "min(a, b)";
    case "gt":
      return cmp(">");
    case "ge":
      return cmp(">=");
    case "lt":
      return cmp("<");
    case "le":
      return cmp("<=");
    case "eq":
      return cmp("==");
    case "ne":
      return cmp("!=");
    default:
      throw new Error(`Cannot generate binary kernel: unknown op "${op as string}"`);
  }
}

/** out[i] = op(x[i]) over `p.n4` vec4s. */
export function unaryKernel(op: UnaryOp): KernelSource {
  const fields = [["n4", "u32"]] as const;
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(2) var<storage, read> xs: array<vec4f>;
${HELPERS}
${entry1d("p.n4", `  let x = xs[i];\n  out[i] = ${unaryExpr(op)};`)}`;
  return { code, fields };
}

/** How a vec4 binary kernel reads its operands: both full, or one of them a single broadcast value. */
export type BinaryMode = "same" | "scalarA" | "scalarB";

/** out = op(a, b) over `p.n4` vec4s; in the scalar modes that operand's element 0 is broadcast. */
export function binaryKernel(op: BinaryOp, mode: BinaryMode): KernelSource {
  const fields = [["n4", "u32"]] as const;
  const aDecl = mode === "scalarA" ? "array<f32>" : "array<vec4f>";
  const bDecl = mode === "scalarB" ? "array<f32>" : "array<vec4f>";
  const aRead = mode === "scalarA" ? "vec4f(as_[0])" : "as_[i]";
  const bRead = mode === "scalarB" ? "vec4f(bs[0])" : "bs[i]";
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(2) var<storage, read> as_: ${aDecl};
@group(0) @binding(3) var<storage, read> bs: ${bDecl};
${BINARY_HELPERS}
${entry1d("p.n4", `  let a = ${aRead};\n  let b = ${bRead};\n  out[i] = ${binaryExpr(op)};`)}`;
  return { code, fields };
}

/**
 * out[i] = op(a[o_a], b[o_b]) with broadcasting through strides (0 on stretched axes); `rank` is the rank
 * of the (simplified) output. Without `vec4`, one element per invocation. With `vec4`, each invocation
 * computes 4 consecutive outputs along the innermost axis (its extent a multiple of 4, counted in vec4s
 * by the host): an operand marked true has innermost stride 1 and is read as vec4s (its strides given in
 * vec4 units), one marked false has innermost stride 0 and its single value is splatted.
 */
export function binaryBroadcastKernel(
  op: BinaryOp,
  rank: number,
  vec4: { readonly a: boolean; readonly b: boolean } | null = null,
): KernelSource {
  const fields = stridedFields(rank, ["a", "b"]);
  const t = (v: boolean) => v ? "vec4f" : "f32";
  const read = (arr: string, idx: string, v: boolean) => v ? `${arr}[${idx}]` : `vec4f(${arr}[${idx}])`;
  const av = vec4?.a ?? false, bv = vec4?.b ?? false;
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<${t(vec4 !== null)}>;
@group(0) @binding(2) var<storage, read> as_: array<${t(av)}>;
@group(0) @binding(3) var<storage, read> bs: array<${t(bv)}>;
${BINARY_HELPERS}
${
    entry1d(
      "p.n",
      `${stridedIndexCode(rank, ["a", "b"])}
  let a = ${read("as_", "o_a", av)};
  let b = ${read("bs", "o_b", bv)};
  out[i] = (${binaryExpr(op)})${vec4 ? "" : ".x"};`,
    )
  }`;
  return { code, fields };
}

/** out = cond != 0 ? a : b; `rank` 0 means all three have the output's shape (vec4 path). */
export function whereKernel(rank: number): KernelSource {
  if (rank === 0) {
    const fields = [["n4", "u32"]] as const;
    const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(2) var<storage, read> cs: array<vec4f>;
@group(0) @binding(3) var<storage, read> as_: array<vec4f>;
@group(0) @binding(4) var<storage, read> bs: array<vec4f>;
${entry1d("p.n4", "  out[i] = select(bs[i], as_[i], cs[i] != vec4f(0.0));")}`;
    return { code, fields };
  }
  const fields = stridedFields(rank, ["c", "a", "b"]);
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> as_: array<f32>;
@group(0) @binding(4) var<storage, read> bs: array<f32>;
${
    entry1d(
      "p.n",
      `${stridedIndexCode(rank, ["c", "a", "b"])}
  out[i] = select(bs[o_b], as_[o_a], cs[o_c] != 0.0);`,
    )
  }`;
  return { code, fields };
}

/** out[i] = p.v over `p.n4` vec4s. */
export function fillKernel(): KernelSource {
  const fields = [["n4", "u32"], ["v", "f32"]] as const;
  const code = `${paramStruct(fields)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
${entry1d("p.n4", "  out[i] = vec4f(p.v);")}`;
  return { code, fields };
}
