/**
 * Element-wise ops of the "wasm" backend on the SIMD kernels of kernels/wasm_elementwise.wat: the
 * operands are copied into the arena, the kernel runs over each broadcast row (contiguous or a repeated
 * scalar), and the result is copied out. Ops or layouts the kernels do not cover return false so the
 * caller runs the CPU reference's code.
 * @module
 */
import type { BinaryOp, Shape, UnaryOp } from "../backend.ts";
import { broadcastLayout, forEachRow } from "../cpu/cpu_broadcast.ts";
import { HEADER_BYTES, roundUp, type WasmRuntime } from "./wasm_runtime.ts";

/** First usable float index of the arena. */
const BASE = HEADER_BYTES / 4;
/** Binary ops with a kernel: float32 arithmetic, bit for bit the CPU reference's double-then-round. */
export const WASM_BINARY_OPS: ReadonlySet<BinaryOp> = new Set(["add", "sub", "mul", "div", "max", "min"]);
/** Unary ops with a kernel (all bit for bit the reference except sigmoid, whose exp is float32). */
export const WASM_UNARY_OPS: ReadonlySet<UnaryOp> = new Set([
  "neg",
  "abs",
  "sqrt",
  "square",
  "recip",
  "relu",
  "step",
  "sigmoid",
]);
/** Below this many elements the copies and calls cost more than the CPU loop saves. */
export const MIN_ELEMENTS = 256;
/** Broadcast rows shorter than this stay on the CPU path (one kernel call per row). */
const MIN_ROW = 16;

/** out[i] = op(x[i]) with the kernel; false (nothing written) when `op` has none or x is small. */
export function unaryWasm(rt: WasmRuntime, op: UnaryOp, x: Float32Array, out: Float32Array): boolean {
  const n = x.length;
  if (!WASM_UNARY_OPS.has(op) || n < MIN_ELEMENTS) return false;
  const xAt = BASE, oAt = xAt + roundUp(n, 4);
  const mem = rt.reserve(oAt + roundUp(n, 4) - BASE);
  mem.set(x, xAt);
  rt.unaryKernel(op)(4 * xAt, 4 * oAt, n);
  out.set(mem.subarray(oAt, oAt + n));
  return true;
}

/**
 * out = op(a, b) broadcast to `outShape` with the kernel; false (nothing written) when `op` has none,
 * the output is small or its broadcast rows are short.
 */
export function binaryWasm(
  rt: WasmRuntime,
  op: BinaryOp,
  a: Float32Array,
  aShape: Shape,
  b: Float32Array,
  bShape: Shape,
  outShape: Shape,
  out: Float32Array,
): boolean {
  if (!WASM_BINARY_OPS.has(op) || out.length < MIN_ELEMENTS) return false;
  const layout = broadcastLayout(outShape, [aShape, bShape]);
  const last = layout.sizes.length - 1;
  if (layout.sizes[last] < MIN_ROW) return false;
  const sa = layout.strides[0][last], sb = layout.strides[1][last];
  // Scalar slots (4 copies of a broadcast value) for each side, then a, b and the output with slack.
  const aSlot = BASE, bSlot = BASE + 4;
  const aAt = BASE + 8, bAt = aAt + roundUp(a.length, 4) + 4, oAt = bAt + roundUp(b.length, 4) + 4;
  const mem = rt.reserve(oAt + roundUp(out.length, 4) + 4 - BASE);
  mem.set(a, aAt);
  mem.set(b, bAt);
  const kernel = rt.binaryKernel(op);
  forEachRow(layout, (off, o, n) => {
    let pa = aAt + off[0], pb = bAt + off[1];
    if (sa === 0) {
      mem.fill(a[off[0]], aSlot, aSlot + 4);
      pa = aSlot;
    }
    if (sb === 0) {
      mem.fill(b[off[1]], bSlot, bSlot + 4);
      pb = bSlot;
    }
    kernel(4 * pa, sa === 0 ? 0 : 16, 4 * pb, sb === 0 ? 0 : 16, 4 * (oAt + o), n);
  });
  out.set(mem.subarray(oAt, oAt + out.length));
  return true;
}
