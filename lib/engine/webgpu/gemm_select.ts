/**
 * Which matrix-product kernels the WebGPU backend uses, chosen by adapter: on a software rasterizer
 * (Mesa llvmpipe / lavapipe, SwiftShader, WARP) the register-blocked buffer kernels and the texture GEMM
 * tuned for it ("texture"); on any other adapter the workgroup-memory tiled kernel of
 * kernels/gemm_tiled.ts, the norm on GPUs ("tiled"). An explicit choice overrides the adapter's.
 * @module
 */

/** The kernel families for matrix products. */
export type GemmKernel = "texture" | "tiled";

/** The backend option: a family, or "auto" to choose by adapter. */
export type GemmKernelOption = "auto" | GemmKernel;

/** The adapter facts the choice reads (the fields of `GPUAdapterInfo`, all optional for tests). */
export interface AdapterFacts {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  /** True on a fallback (software) adapter, where the implementation reports it. */
  readonly isFallbackAdapter?: boolean;
}

/** The choice and why it was made. */
export interface GemmSelection {
  /** The family used. */
  readonly kernel: GemmKernel;
  /** One line saying why, for logs and benchmark records. */
  readonly reason: string;
}

/** Names of software rasterizers in adapter descriptions (lower case). */
const SOFTWARE_NAMES = ["llvmpipe", "lavapipe", "swiftshader", "software", "microsoft basic render", "warp"];

/** True when the adapter is a software rasterizer (by its fallback flag or its name). */
export function isSoftwareAdapter(info: AdapterFacts): boolean {
  if (info.isFallbackAdapter) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ")
    .toLowerCase();
  return SOFTWARE_NAMES.some((name) => text.includes(name));
}

/** Picks the matrix-product kernels for an adapter; `option` other than "auto" wins. */
export function selectGemmKernel(info: AdapterFacts, option: GemmKernelOption = "auto"): GemmSelection {
  if (option === "texture" || option === "tiled") {
    return { kernel: option, reason: `${option} kernels requested by the gemmKernel option` };
  }
  if (option !== "auto") {
    throw new Error(
      `Cannot select matrix-product kernels: gemmKernel ${
        JSON.stringify(option)
      } is not one of auto, texture, tiled`,
    );
  }
  const name = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unnamed adapter";
  return isSoftwareAdapter(info)
    ? { kernel: "texture", reason: `software rasterizer (${name}): register-blocked and texture kernels` }
    : { kernel: "tiled", reason: `hardware adapter (${name}): workgroup-memory tiled kernel` };
}
