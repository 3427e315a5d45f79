/**
 * Fused element-wise kernels: a small DAG of unary, binary and `where` ops over operands of one flat size
 * (or single broadcast values) computed in one pass, reading each input once and writing only the results
 * still needed. Used by the WebGPU backend to defer and batch consecutive element-wise ops.
 *
 * Every op is the exact expression of its stand-alone kernel in `elementwise.ts`, applied to vec4s, and
 * every op's result passes through an opaque identity (`bitcast` and `xor` with the uniform `p.z`, which
 * the host sets to 0) before any other op reads it. The shader compiler therefore cannot rewrite across
 * op boundaries (e.g. contract `a * b + c` into an fma, or factor `a*b + a*c`), so a fused kernel gives
 * bit-for-bit the results of the separate kernels.
 * @module
 */
import type { KernelSource, ParamField } from "./common.ts";
import { entry1d, paramStruct } from "./common.ts";
import {
  BINARY_HELPERS,
  binaryExpr,
  type BinaryOp,
  HELPERS,
  unaryExpr,
  type UnaryOp,
} from "./elementwise.ts";

/** One op of a fused kernel. */
export type FusedOp =
  | { readonly kind: "unary"; readonly op: UnaryOp }
  | { readonly kind: "binary"; readonly op: BinaryOp }
  | { readonly kind: "where" };

/** A node of a fused kernel: its op, its arguments and whether its result is written out. */
export interface FusedNodeSpec {
  /** The op. */
  readonly op: FusedOp;
  /**
   * Argument values: `j < leaves.length` is leaf j, otherwise node `j - leaves.length` (an earlier node).
   * Unary ops take 1, binary 2 (a, b), `where` 3 (cond, a, b).
   */
  readonly args: readonly number[];
  /** Write this node's result to the next output binding. */
  readonly store: boolean;
}

/** How a leaf is read: a full array of vec4s, or its element 0 broadcast. */
export type LeafKind = "vec" | "scalar";

/** The shape of a fused kernel. */
export interface FusedSpec {
  /** Input storages, in binding order after the outputs. */
  readonly leaves: readonly LeafKind[];
  /** Nodes in evaluation order. */
  readonly nodes: readonly FusedNodeSpec[];
}

/** Uniform fields of every fused kernel: vec4 count and the zero of the opaque identity. */
export const FUSED_FIELDS: readonly ParamField[] = [["n4", "u32"], ["z", "u32"]];

const ARITY = { unary: 1, binary: 2, where: 3 } as const;

function opName(op: FusedOp): string {
  return op.kind === "where" ? "w_select" : `${op.kind === "unary" ? "u" : "b"}_${op.op}`;
}

/** A short key identifying the kernel of `spec` (equal keys, equal kernels). */
export function fusedKey(spec: FusedSpec): string {
  const leaves = spec.leaves.map((l) => (l === "vec" ? "v" : "s")).join("");
  const nodes = spec.nodes.map((n) => `${opName(n.op)}(${n.args.join(",")})${n.store ? "*" : ""}`);
  return `fused:${leaves}|${nodes.join(";")}`;
}

/** Checks the wiring of `spec`; throws naming the first bad node. */
function checkSpec(spec: FusedSpec): void {
  const nl = spec.leaves.length;
  if (!spec.nodes.some((n) => n.store)) {
    throw new Error("Cannot generate a fused kernel: no node is stored");
  }
  spec.nodes.forEach((n, j) => {
    const bad = n.args.length !== ARITY[n.op.kind] ||
      n.args.some((a) => !Number.isInteger(a) || a < 0 || a >= nl + j);
    if (bad) {
      throw new Error(
        `Cannot generate a fused kernel: node ${j} (${opName(n.op)}) has arguments [${n.args}], expected ${
          ARITY[n.op.kind]
        } of leaves 0..${nl - 1} or earlier nodes`,
      );
    }
  });
}

/** WGSL of a chain's per-element evaluation, shared by the fused kernels (see {@link chainCode}). */
export interface ChainCode {
  /** Binding declarations: stored nodes' outputs `so<j>`, then leaves `sl<j>`. */
  readonly decls: string;
  /** Helper functions (the ops' expressions and the opaque identity). */
  readonly fns: string;
  /** Statements computing `v<k>` (leaves then nodes, vec4f) at the element index `idx` and storing outputs. */
  readonly body: string;
  /** Name of the vec4f value of node `j`. */
  value(j: number): string;
  /** Number of bindings declared. */
  readonly bindings: number;
}

/**
 * The chain of `spec` evaluated at one index: with `scalar` false, `idx` indexes vec4s (arrays of
 * vec4f); with `scalar` true it indexes single values (arrays of f32, each value splatted to a vec4f
 * whose x lane is stored). Declarations start at binding `first`. Needs the uniform field `p.z` (0).
 */
export function chainCode(spec: FusedSpec, first: number, scalar: boolean, idx: string): ChainCode {
  checkSpec(spec);
  const nl = spec.leaves.length;
  const elem = scalar ? "f32" : "vec4f";
  const decls: string[] = [];
  const body: string[] = [];
  let binding = first;
  const stored = spec.nodes.map((n, j) => (n.store ? j : -1)).filter((j) => j >= 0);
  for (const j of stored) {
    decls.push(`@group(0) @binding(${binding++}) var<storage, read_write> so${j}: array<${elem}>;`);
  }
  spec.leaves.forEach((kind, j) => {
    const t = kind === "vec" ? `array<${elem}>` : "array<f32>";
    decls.push(`@group(0) @binding(${binding++}) var<storage, read> sl${j}: ${t};`);
    const read = kind === "scalar" ? `vec4f(sl${j}[0])` : scalar ? `vec4f(sl${j}[${idx}])` : `sl${j}[${idx}]`;
    body.push(`  let v${j} = ${read};`);
  });
  const fns = new Map<string, string>();
  spec.nodes.forEach((n, j) => {
    const name = opName(n.op);
    if (!fns.has(name)) {
      const op = n.op;
      fns.set(
        name,
        op.kind === "unary"
          ? `fn ${name}(x: vec4f) -> vec4f {\n  return ${unaryExpr(op.op)};\n}`
          : op.kind === "binary"
          ? `fn ${name}(a: vec4f, b: vec4f) -> vec4f {\n  return ${binaryExpr(op.op)};\n}`
          : `fn ${name}(c: vec4f, a: vec4f, b: vec4f) -> vec4f {\n  return select(b, a, c != vec4f(0.0));\n}`,
      );
    }
    body.push(`  let v${nl + j} = opaque(${name}(${n.args.map((a) => `v${a}`).join(", ")}));`);
  });
  for (const j of stored) body.push(`  so${j}[${idx}] = v${nl + j}${scalar ? ".x" : ""};`);
  return {
    decls: decls.join("\n"),
    fns: `${HELPERS}
${BINARY_HELPERS}
// Identity the compiler cannot see through (p.z is 0): keeps every op's rounding separate.
fn opaque(v: vec4f) -> vec4f {
  return bitcast<vec4f>(bitcast<vec4u>(v) ^ vec4u(p.z));
}
${[...fns.values()].join("\n")}`,
    body: body.join("\n"),
    value: (j) => `v${nl + j}`,
    bindings: binding - first,
  };
}

/** The fused kernel of `spec`: outputs at bindings 1.. (stored nodes in order), then the leaves. */
export function fusedElementwiseKernel(spec: FusedSpec): KernelSource {
  const c = chainCode(spec, 1, false, "i");
  const code = `${paramStruct(FUSED_FIELDS)}
${c.decls}
${c.fns}
${entry1d("p.n4", c.body)}`;
  return { code, fields: FUSED_FIELDS };
}
