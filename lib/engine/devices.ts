/**
 * Device creation and the default device used by tensor factories when none is given.
 * @module
 */
import { createCpuBackend } from "./cpu/cpu_backend.ts";
import { createMetaBackend } from "./meta_backend.ts";
import { Device } from "./tensor.ts";

/** Names accepted by {@link createDevice}: "cpu" (float32), "cpu64" (float64 reference), "webgpu", "meta". */
export type DeviceKind = "cpu" | "cpu64" | "webgpu" | "meta";

let defaultDevice: Device | null = null;

/**
 * Creates a device. "webgpu" needs an adapter (Mesa's llvmpipe works without a GPU) and throws a clear
 * error when none exists; "meta" runs shapes only, for memory measurements.
 *
 * @example
 * ```ts
 * const dev = await createDevice("cpu");
 * setDefaultDevice(dev);
 * ```
 */
export async function createDevice(kind: DeviceKind): Promise<Device> {
  switch (kind) {
    case "cpu":
      return new Device(createCpuBackend("float32"));
    case "cpu64":
      return new Device(createCpuBackend("float64"));
    case "meta":
      return new Device(createMetaBackend());
    case "webgpu": {
      // Loaded on demand so CPU-only users never load the WebGPU code.
      const { createWebGpuBackend } = await import("./webgpu/webgpu_backend.ts");
      return new Device(await createWebGpuBackend());
    }
    default:
      throw new Error(`Cannot create device "${kind}": expected one of cpu, cpu64, webgpu, meta`);
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
