/**
 * Shared helpers for the CPU backend tests: a seeded generator, index arithmetic for the naive
 * reference implementations, and the per-dtype tolerances. Test support only.
 * @module
 */
import type { DType, Shape, Storage } from "../backend.ts";
import type { Tolerance } from "../../testing/asserts.ts";
import { CpuBackend } from "./cpu_backend.ts";

/** Both dtypes every CPU test runs on. */
export const DTYPES: readonly DType[] = ["float32", "float64"];

/**
 * Tolerance of a result against a float64 naive reference computed from the same inputs: the
 * float64 backend differs only by summation order; float32 results are rounded once.
 */
export const REF_TOL: Record<DType, Tolerance> = {
  float32: { atol: 1e-6, rtol: 1e-6 },
  float64: { atol: 1e-11, rtol: 1e-11 },
};

/** Tolerance of the conv adjoint identities (inner products of rounded results). */
export const ADJOINT_TOL: Record<DType, Tolerance> = {
  float32: { atol: 1e-4, rtol: 1e-5 },
  float64: { atol: 1e-10, rtol: 1e-12 },
};

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function rng(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = -1, hi = 1) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return lo + (hi - lo) * u;
  };
}

/** `n` numbers from `r`, already representable in `dtype` (so naive references see the stored values). */
export function randomValues(r: () => number, n: number, dtype: DType): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = dtype === "float32" ? Math.fround(r()) : r();
  return out;
}

/** Number of elements of a shape. */
export function count(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Multi-index of flat position `i` in a row-major `shape`. */
export function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Flat position of multi-index `idx` in a row-major `shape`. */
export function ravel(idx: readonly number[], shape: Shape): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + idx[d];
  return i;
}

/** Reads a storage into a plain array. */
export async function readAll(be: CpuBackend, s: Storage): Promise<number[]> {
  return Array.from(await be.read(s));
}

/** A fresh backend of `dtype`. */
export function backend(dtype: DType): CpuBackend {
  return new CpuBackend(dtype);
}
