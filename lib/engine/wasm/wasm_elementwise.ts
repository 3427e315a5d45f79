/**
 * Element-wise ops of the "wasm" backend on the SIMD kernels of kernels/wasm_elementwise.wat, reading
 * and writing storages in place in the WebAssembly memory (float indices): the kernel runs over each
 * broadcast row, contiguous or a repeated scalar. Ops, sizes or layouts the kernels do not cover are
 * reported by {@link unaryKernelFits} / {@link binaryWasm} so the caller runs the CPU reference's code.
 * @module
 */
import type { BinaryOp, Shape, UnaryOp } from "../backend.ts";
import { broadcastLayout, forEachRow } from "../cpu/cpu_broadcast.ts";
import { BINARY_KERNELS, UNARY_KERNELS, type WasmRuntime } from "./wasm_runtime.ts";

/**
 * Binary ops with a kernel (those the element-wise module exports): float32 arithmetic, bit for bit the
 * CPU reference's double-then-round.
 */
export const WASM_BINARY_OPS: ReadonlySet<BinaryOp> = new Set(BINARY_KERNELS);
/**
 * Unary ops with a kernel (those the element-wise module exports; all bit for bit the reference except
 * sigmoid, whose exp is float32).
 */
export const WASM_UNARY_OPS: ReadonlySet<UnaryOp> = new Set(UNARY_KERNELS);
/** Below this many elements a kernel call saves less than its overhead: the CPU loop runs instead. */
export const MIN_ELEMENTS = 256;
/** Broadcast rows shorter than this stay on the CPU path (one kernel call per row). */
const MIN_ROW = 16;

/** Whether {@link unaryWasm} handles `op` on `n` elements. */
export function unaryKernelFits(op: UnaryOp, n: number): boolean {
  return WASM_UNARY_OPS.has(op) && n >= MIN_ELEMENTS;
}

/** o[i] = op(x[i]) for i < n on blocks at float indices `xAt` and `oAt` (see {@link unaryKernelFits}). */
export function unaryWasm(rt: WasmRuntime, op: UnaryOp, xAt: number, n: number, oAt: number): void {
  rt.unary(op, xAt, oAt, n);
}

/**
 * Whether {@link binaryWasm} handles `op` broadcast to `outShape`: an op with a kernel, a large output
 * and long innermost broadcast rows.
 */
export function binaryKernelFits(
  op: BinaryOp,
  aShape: Shape,
  bShape: Shape,
  outShape: Shape,
  n: number,
): boolean {
  if (!WASM_BINARY_OPS.has(op) || n < MIN_ELEMENTS) return false;
  const layout = broadcastLayout(outShape, [aShape, bShape]);
  return layout.sizes[layout.sizes.length - 1] >= MIN_ROW;
}

/**
 * out = op(a, b) broadcast to `outShape`, on blocks at float indices `aAt`, `bAt`, `oAt` (see
 * {@link binaryKernelFits}); a broadcast scalar is splatted into 4 floats of the scratch block.
 */
export function binaryWasm(
  rt: WasmRuntime,
  op: BinaryOp,
  aAt: number,
  aShape: Shape,
  bAt: number,
  bShape: Shape,
  outShape: Shape,
  oAt: number,
): void {
  const layout = broadcastLayout(outShape, [aShape, bShape]);
  const last = layout.sizes.length - 1;
  const sa = layout.strides[0][last], sb = layout.strides[1][last];
  const aSlot = sa === 0 || sb === 0 ? rt.reserve(8) : 0, bSlot = aSlot + 4;
  const mem = rt.f32;
  forEachRow(layout, (off, o, n) => {
    let pa = aAt + off[0], pb = bAt + off[1];
    if (sa === 0) {
      mem.fill(mem[pa], aSlot, aSlot + 4);
      pa = aSlot;
    }
    if (sb === 0) {
      mem.fill(mem[pb], bSlot, bSlot + 4);
      pb = bSlot;
    }
    rt.binary(op, pa, sa === 0 ? 0 : 1, pb, sb === 0 ? 0 : 1, oAt + o, n);
  });
}
