/**
 * Device creation and the default device used by tensor factories when none is given.
 * @module
 */
import { createCpuBackend } from "./cpu/cpu_backend.ts";
import { createMetaBackend } from "./meta_backend.ts";
import { createWasmBackend } from "./wasm/wasm_backend.ts";
import { Device } from "./tensor.ts";

/**
 * Names accepted by {@link createDevice}: "cpu" (float32), "cpu64" (float64 reference), "webgpu", "wasm"
 * (float32, matrix products and convolutions in WebAssembly SIMD), "meta", and "auto" (WebGPU when an
 * adapter exists, else the float32 CPU backend).
 */
export type DeviceKind = "cpu" | "cpu64" | "webgpu" | "wasm" | "meta" | "auto";

/** The device kinds {@link createDevice} accepts, in the order its error message lists them. */
export const DEVICE_KINDS: readonly DeviceKind[] = ["auto", "webgpu", "wasm", "cpu", "cpu64", "meta"];

/** Options of {@link createDevice}. */
export interface CreateDeviceOptions {
  /** With "auto": called with the reason when WebGPU is unavailable and the CPU backend is used. */
  readonly onFallback?: (reason: string) => void;
}

let defaultDevice: Device | null = null;

/**
 * Creates a device. "webgpu" needs an adapter (Mesa's llvmpipe works without a GPU) and throws a clear
 * error when none exists; "auto" uses WebGPU when an adapter exists and the float32 CPU backend
 * otherwise; "meta" runs shapes only, for memory measurements.
 *
 * @example
 * ```ts
 * const dev = await createDevice("auto", { onFallback: (why) => console.error(`CPU backend: ${why}`) });
 * setDefaultDevice(dev);
 * console.log(dev.name); // "webgpu" or "cpu"
 * ```
 */
export async function createDevice(kind: DeviceKind, opts: CreateDeviceOptions = {}): Promise<Device> {
  switch (kind) {
    case "auto":
      try {
        return await createDevice("webgpu");
      } catch (e) {
        opts.onFallback?.((e as Error).message.split("\n")[0]);
        return new Device(createCpuBackend("float32"));
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
