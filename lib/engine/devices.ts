/**
 * Device creation and the default device used by tensor factories when none is given.
 * @module
 */
import { createCpuBackend } from "./cpu/cpu_backend.ts";
import { createMetaBackend } from "./meta_backend.ts";
import { createWasmBackend } from "./wasm/wasm_backend.ts";
import { wasmUnavailableReason } from "./wasm/wasm_runtime.ts";
import { type AdapterFacts, isSoftwareAdapter } from "./webgpu/gemm_select.ts";
import { Device } from "./tensor.ts";

/**
 * Names accepted by {@link createDevice}: "cpu" (float32), "cpu64" (float64 reference), "webgpu", "wasm"
 * (float32, matrix products, convolutions and common element-wise ops in WebAssembly SIMD on both cores),
 * "meta", and "auto" (see {@link autoDeviceChoice}).
 */
export type DeviceKind = "cpu" | "cpu64" | "webgpu" | "wasm" | "meta" | "auto";

/** The device kinds {@link createDevice} accepts, in the order its error message lists them. */
export const DEVICE_KINDS: readonly DeviceKind[] = ["auto", "webgpu", "wasm", "cpu", "cpu64", "meta"];

/** Options of {@link createDevice}. */
export interface CreateDeviceOptions {
  /**
   * With "auto": called with the reason when WebGPU is not used: unavailable (the float32 CPU backend
   * runs), or its only adapter is a software rasterizer (the wasm backend runs).
   */
  readonly onFallback?: (reason: string) => void;
}

/** What "auto" creates and why (the reason is null when WebGPU runs on a hardware adapter). */
export interface AutoChoice {
  /** The device kind created. */
  readonly kind: "webgpu" | "wasm";
  /** One line for {@link CreateDeviceOptions.onFallback}, or null. */
  readonly reason: string | null;
}

/**
 * The rule of "auto" given the default WebGPU adapter's facts: a hardware adapter runs WebGPU; a
 * software rasterizer (llvmpipe, lavapipe, SwiftShader, WARP, a fallback adapter) runs the wasm
 * backend when WebAssembly SIMD is available (`wasmUnavailable` null), since on the CPU cores that
 * rasterizer would use the wasm kernels train faster (results/bench/WASM.md); otherwise WebGPU.
 */
export function autoDeviceChoice(adapter: AdapterFacts, wasmUnavailable: string | null): AutoChoice {
  if (!isSoftwareAdapter(adapter)) return { kind: "webgpu", reason: null };
  const name = adapter.description || [adapter.vendor, adapter.architecture, adapter.device].filter(Boolean)
    .join(" ") ||
    "unnamed adapter";
  if (wasmUnavailable !== null) return { kind: "webgpu", reason: null };
  return {
    kind: "wasm",
    reason:
      `the only WebGPU adapter is a software rasterizer (${name}); the wasm backend (WebAssembly SIMD) ` +
      `is faster on these CPU cores`,
  };
}

let defaultDevice: Device | null = null;

/**
 * Creates a device. "webgpu" needs an adapter (Mesa's llvmpipe works without a GPU) and throws a clear
 * error when none exists; "auto" uses WebGPU on a hardware adapter, the wasm backend when the only
 * adapter is a software rasterizer ({@link autoDeviceChoice}), and the float32 CPU backend when there is
 * no adapter; "meta" runs shapes only, for memory measurements.
 *
 * @example
 * ```ts
 * const dev = await createDevice("auto", { onFallback: (why) => console.error(`CPU backend: ${why}`) });
 * setDefaultDevice(dev);
 * console.log(dev.name); // "webgpu", "wasm" or "cpu"
 * ```
 */
export async function createDevice(kind: DeviceKind, opts: CreateDeviceOptions = {}): Promise<Device> {
  switch (kind) {
    case "auto": {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
      if (adapter) {
        const choice = autoDeviceChoice(adapter.info, wasmUnavailableReason());
        if (choice.kind === "wasm") {
          opts.onFallback?.(choice.reason!);
          return await createDevice("wasm");
        }
      }
      try {
        return await createDevice("webgpu");
      } catch (e) {
        opts.onFallback?.((e as Error).message.split("\n")[0]);
        return new Device(createCpuBackend("float32"));
      }
    }
    case "cpu":
      return new Device(createCpuBackend("float32"));
    case "cpu64":
      return new Device(createCpuBackend("float64"));
    case "wasm": {
      const backend = createWasmBackend();
      // Both cores where there are two; without a worker the products simply stay on this thread.
      if ((globalThis.navigator?.hardwareConcurrency ?? 1) > 1) await backend.startThread().catch(() => {});
      return new Device(backend);
    }
    case "meta":
      return new Device(createMetaBackend());
    case "webgpu": {
      // Loaded on demand so CPU-only users never load the WebGPU code.
      const { createWebGpuBackend } = await import("./webgpu/webgpu_backend.ts");
      return new Device(await createWebGpuBackend());
    }
    default:
      throw new Error(`Cannot create device "${kind}": expected one of ${DEVICE_KINDS.join(", ")}`);
  }
}

/** Sets the device used when a factory is given none. */
export function setDefaultDevice(device: Device): void {
  defaultDevice = device;
}

/** The default device (a float32 CPU device unless set). */
export function getDefaultDevice(): Device {
  if (defaultDevice === null) defaultDevice = new Device(createCpuBackend("float32"));
  return defaultDevice;
}

/** Runs `fn` with `device` as the default, restoring the previous default afterwards. */
export function withDevice<T>(device: Device, fn: () => T): T {
  const prev = defaultDevice;
  defaultDevice = device;
  try {
    return fn();
  } finally {
    defaultDevice = prev;
  }
}
