/**
 * Storages of the CPU reference backend: a dense typed array (Float32Array or Float64Array)
 * plus a freed flag, and the cheap checks every CPU op runs on its inputs.
 * @module
 */
import type { DType, Storage } from "../backend.ts";

/** The typed array behind a CPU storage. */
export type CpuArray = Float32Array | Float64Array;

/** A CPU storage: owns one dense typed array whose length is `size`. */
export class CpuStorage implements Storage {
  /** Set by `free`; any later use throws. */
  freed = false;

  /** Wraps `data` (not copied: the caller hands over ownership). */
  constructor(readonly data: CpuArray) {}

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }
}

/** Allocates a zero-filled typed array of the backend's dtype. */
export function allocArray(dtype: DType, n: number): CpuArray {
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

/**
 * Returns the typed array of `s` after checking that it is a live CPU storage of `expected`
 * elements (skip the size check with `expected = -1`). Throws "Cannot <op>: ..." otherwise.
 */
export function arrayOf(s: Storage, op: string, what: string, expected: number): CpuArray {
  if (!(s instanceof CpuStorage)) {
    throw new Error(`Cannot ${op}: ${what} is not a CPU storage (got ${describe(s)})`);
  }
  if (s.freed) throw new Error(`Cannot ${op}: ${what} was freed`);
  if (expected >= 0 && s.data.length !== expected) {
    throw new Error(`Cannot ${op}: ${what} has ${s.data.length} elements but its shape needs ${expected}`);
  }
  return s.data;
}

function describe(s: unknown): string {
  if (s === null || typeof s !== "object") return String(s);
  return (s as object).constructor?.name ?? "object";
}
