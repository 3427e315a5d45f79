/**
 * The `--device` option of every command: the kinds it accepts, its help text, its check, and the
 * device it opens (saying on stderr which backend "auto" chose when it is not WebGPU, and why).
 * @module
 */
import { OptionError } from "./args.ts";
import { createDevice } from "../engine/devices.ts";
import type { Device } from "../engine/tensor.ts";

/** The device kinds a command's `--device` accepts. */
export const CLI_DEVICE_KINDS = ["auto", "webgpu", "wasm", "cpu"] as const;

/** One of {@link CLI_DEVICE_KINDS}. */
export type CliDeviceKind = typeof CLI_DEVICE_KINDS[number];

/** The help text of `--device`. */
export const DEVICE_HELP =
  "auto (WebGPU on a GPU, the WebAssembly backend when the only adapter is a software " +
  "rasterizer, the CPU reference without an adapter), webgpu, wasm or cpu";

/**
 * `value` as a device kind, or an {@link OptionError} naming it and the kinds accepted.
 *
 * @example
 * ```ts
 * parseDeviceOption("wasm"); // "wasm"
 * ```
 */
export function parseDeviceOption(value: unknown): CliDeviceKind {
  const kind = String(value);
  if (!(CLI_DEVICE_KINDS as readonly string[]).includes(kind)) {
    throw new OptionError(
      `Cannot use --device ${JSON.stringify(value)}: expected ${
        CLI_DEVICE_KINDS.slice(0, -1).join(", ")
      } or ` +
        CLI_DEVICE_KINDS[CLI_DEVICE_KINDS.length - 1],
    );
  }
  return kind as CliDeviceKind;
}

/**
 * Opens a device of `kind`; with "auto", prints one line on stderr when it did not choose WebGPU:
 * the wasm backend (the only adapter is a software rasterizer) or the CPU reference (no adapter).
 *
 * @example
 * ```ts
 * const device = await openDevice("cpu");
 * console.log(device.name); // "cpu"
 * ```
 */
export async function openDevice(kind: CliDeviceKind): Promise<Device> {
  let reason: string | null = null;
  const device = await createDevice(kind, { onFallback: (why) => (reason = why) });
  if (reason !== null) {
    console.error(
      device.name === "cpu"
        ? `WebGPU unavailable (${reason}); using the CPU backend.`
        : `Using the ${device.name} backend: ${reason}.`,
    );
  }
  return device;
}
