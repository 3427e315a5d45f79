/**
 * The "wasm" backend: float32 storages of the CPU reference backend (plain Float32Arrays, synchronous,
 * no dispatch or readback), with the hot products (matmul, conv2d and its two adjoints) run by the
 * WebAssembly SIMD kernel of kernels/wasm_gemm.wat and the common element-wise ops (arithmetic, max,
 * min, sigmoid and a few simple unary functions) by kernels/wasm_elementwise.wat. Every other op is the
 * CPU reference's own code.
 * Meant for machines whose only WebGPU adapter is a software rasterizer.
 * @module
 */
import type { BinaryOp, Conv2dGeometry, Shape, Storage, UnaryOp } from "../backend.ts";
import { broadcastShapes, conv2dOutputShape, fmt, sizeOf } from "../backend.ts";
import { CpuBackend } from "../cpu/cpu_backend.ts";
import type { MatmulDims } from "../cpu/cpu_gemm.ts";
import { arrayOf } from "../cpu/cpu_storage.ts";
import { WasmRuntime } from "./wasm_runtime.ts";
import { binaryWasm, unaryWasm } from "./wasm_elementwise.ts";
import { conv2dInputGradWasm, conv2dWasm, conv2dWeightGradWasm, matmulWasm } from "./wasm_products.ts";

/** The CPU reference backend (float32) with its matrix products and convolutions in WebAssembly SIMD. */
export class WasmBackend extends CpuBackend {
  /** Always "wasm". */
  override readonly name: string = "wasm";
  /** "WebAssembly SIMD (float32)". */
  override readonly description: string = "WebAssembly SIMD (float32)";
  readonly #rt: WasmRuntime;

  /** Compiles the kernel; throws "Cannot create the wasm backend: ..." where WebAssembly SIMD is missing. */
  constructor() {
    super("float32");
    this.#rt = new WasmRuntime();
  }

  /** Bytes of the WebAssembly scratch memory (grown to the largest operation so far, never shrunk). */
  override poolBytes(): number {
    return this.#rt.bytes;
  }

  /** out[i] = op(x[i]): a SIMD kernel for the common ops on large inputs, else the CPU reference. */
  override unary(op: UnaryOp, x: Storage): Storage {
    const xa = f32(arrayOf(x, `apply ${op}`, "x", -1));
    const out = new Float32Array(xa.length);
    return unaryWasm(this.#rt, op, xa, out) ? this.wrap(out) : super.unary(op, x);
  }

  /** out = op(a, b) with broadcasting: a SIMD kernel for arithmetic, max and min on large outputs. */
  override binary(op: BinaryOp, a: Storage, aShape: Shape, b: Storage, bShape: Shape): Storage {
    const what = `apply ${op}`;
    const aa = f32(arrayOf(a, what, `a ${fmt(aShape)}`, sizeOf(aShape)));
    const ba = f32(arrayOf(b, what, `b ${fmt(bShape)}`, sizeOf(bShape)));
    const outShape = broadcastShapes(aShape, bShape);
    const out = new Float32Array(sizeOf(outShape));
    return binaryWasm(this.#rt, op, aa, aShape, ba, bShape, outShape, out)
      ? this.wrap(out)
      : super.binary(op, a, aShape, b, bShape);
  }

  /** Batched matrix product with optional transposes and size-1 batch broadcasting. */
  override matmul(a: Storage, b: Storage, dims: MatmulDims): Storage {
    const { batch, aBatch, bBatch, m, k, n } = dims;
    const aa = f32(arrayOf(a, "matmul", `a (batch ${aBatch}, ${m}x${k})`, aBatch * m * k));
    const ba = f32(arrayOf(b, "matmul", `b (batch ${bBatch}, ${k}x${n})`, bBatch * k * n));
    if ((aBatch !== batch && aBatch !== 1) || (bBatch !== batch && bBatch !== 1)) {
      throw new Error(`Cannot matmul: batches a ${aBatch} and b ${bBatch} must each be ${batch} or 1`);
    }
    const out = new Float32Array(batch * m * n);
    matmulWasm(this.#rt, aa, ba, dims, out);
    return this.wrap(out);
  }

  /** y = conv2d(x, w). */
  override conv2d(x: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const xa = f32(arrayOf(x, "convolve", `x ${fmt(g.x)}`, sizeOf(g.x)));
    const wa = f32(arrayOf(w, "convolve", `w ${fmt(g.w)}`, sizeOf(g.w)));
    const out = new Float32Array(sizeOf(conv2dOutputShape(g)));
    conv2dWasm(this.#rt, xa, wa, g, out);
    return this.wrap(out);
  }

  /** dx from dy: the adjoint of conv2d in x (shape g.x). */
  override conv2dInputGrad(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const what = "compute conv2d input gradient";
    const yShape = conv2dOutputShape(g);
    const dya = f32(arrayOf(dy, what, `dy ${fmt(yShape)}`, sizeOf(yShape)));
    const wa = f32(arrayOf(w, what, `w ${fmt(g.w)}`, sizeOf(g.w)));
    const out = new Float32Array(sizeOf(g.x));
    conv2dInputGradWasm(this.#rt, dya, wa, g, out);
    return this.wrap(out);
  }

  /** dw from x and dy: the adjoint of conv2d in w (shape g.w). */
  override conv2dWeightGrad(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const what = "compute conv2d weight gradient";
    const yShape = conv2dOutputShape(g);
    const xa = f32(arrayOf(x, what, `x ${fmt(g.x)}`, sizeOf(g.x)));
    const dya = f32(arrayOf(dy, what, `dy ${fmt(yShape)}`, sizeOf(yShape)));
    const out = new Float32Array(sizeOf(g.w));
    conv2dWeightGradWasm(this.#rt, xa, dya, g, out);
    return this.wrap(out);
  }
}

/** Storages of a float32 backend are Float32Arrays; anything else is a bug upstream. */
function f32(a: Float32Array | Float64Array): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error("Cannot run a wasm kernel: storage is not float32");
  return a;
}

/** Creates the wasm backend (throws "Cannot create the wasm backend: ..." where unsupported). */
export function createWasmBackend(): WasmBackend {
  return new WasmBackend();
}
