/**
 * Uniform dequantisation (SPEC §4.6): x = (k + u)/nvals with integer pixels k ∈ [0, nvals) and
 * u ~ U[0, 1) per value, so x ∈ [0, 1). nvals = 256 for 8-bit data and 32 for 5-bit data (the clean
 * partition the spec recommends for CelebA-HQ, rather than the official 256² path's misaligned one).
 * @module
 */
import { fmt } from "../engine/backend.ts";
import { tensor } from "../engine/ops/creation.ts";
import { add, div } from "../engine/ops/elementwise.ts";
import { rand, type Rng } from "../engine/random.ts";
import { type Device, type Tensor, tidy } from "../engine/tensor.ts";

function checkNvals(nvals: number): void {
  if (!Number.isInteger(nvals) || nvals < 2) {
    throw new Error(`Cannot dequantise with nvals ${nvals}: expected an integer >= 2`);
  }
}

/**
 * (k + u)/nvals for a tensor of integer pixels k, with u ~ U[0, 1) drawn from `rng` (host-seeded, so
 * every backend gets the same noise).
 *
 * @example
 * ```ts
 * import { createDevice, Rng, tensor } from "../engine/mod.ts";
 *
 * const pixels = tensor([0, 17, 255, 128], [1, 1, 2, 2], await createDevice("cpu")); // integer values
 * const x = dequantize(pixels, new Rng(0), 256); // (k + u) / 256 with u ~ U[0, 1)
 * ```
 */
export function dequantize(pixels: Tensor, rng: Rng, nvals = 256): Tensor {
  checkNvals(nvals);
  return tidy(() => div(add(pixels, rand(pixels.shape, rng, pixels.device)), nvals));
}

/** Host pixels (checked to be integers in [0, nvals)) to a dequantised tensor. */
export function dequantizeHost(
  pixels: ArrayLike<number>,
  shape: readonly number[],
  rng: Rng,
  device: Device,
  nvals = 256,
): Tensor {
  checkNvals(nvals);
  for (let i = 0; i < pixels.length; i++) {
    const k = pixels[i];
    if (!Number.isInteger(k) || k < 0 || k >= nvals) {
      throw new Error(`Cannot dequantise pixel ${k} at index ${i}: expected an integer in [0, ${nvals})`);
    }
  }
  const k = tensor(pixels, shape, device);
  const x = dequantize(k, rng, nvals);
  k.dispose();
  return x;
}

/** 8-bit pixels reduced to `bits` bits: floor(k / 2^(8 − bits)) (official `reduce_bits`, as integers). */
export function reduceBits(pixels: ArrayLike<number>, bits: number): Float64Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new Error(`Cannot reduce pixels to ${bits} bits: expected an integer in [1, 8]`);
  }
  const d = 2 ** (8 - bits);
  return Float64Array.from(pixels, (k, i) => {
    if (!Number.isInteger(k) || k < 0 || k > 255) {
      throw new Error(
        `Cannot reduce pixel ${k} at index ${i} (shape ${fmt([pixels.length])}): expected 0..255`,
      );
    }
    return Math.floor(k / d);
  });
}
