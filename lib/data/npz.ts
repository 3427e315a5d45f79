/**
 * NumPy `.npz` archives: a ZIP of `.npy` files (stored by `np.savez`, deflated by
 * `np.savez_compressed`). Keys are the entry names without `.npy`. Pickles are never executed.
 * @module
 */
import { DatasetError } from "./errors.ts";
import { MAX_INFLATED_BYTES } from "./inflate.ts";
import { type NpyArray, parseNpy } from "./npy.ts";
import { encodeZip, listZip, readZipEntry } from "./zip.ts";

/**
 * Reads the arrays of an `.npz` file held in memory. With `keys`, only those arrays are decoded,
 * and each must be present (a {@link DatasetError} lists the keys found otherwise). No entry may
 * inflate to more than `maxBytes` (default {@link MAX_INFLATED_BYTES}) or than its declared size.
 */
export function parseNpz(
  bytes: Uint8Array,
  file = ".npz file",
  keys?: readonly string[],
  maxBytes = MAX_INFLATED_BYTES,
): Map<string, NpyArray> {
  const entries = listZip(bytes, file);
  const byKey = new Map(entries.map((e) => [e.name.replace(/\.npy$/, ""), e]));
  if (keys) {
    const missing = keys.filter((k) => !byKey.has(k));
    if (missing.length) {
      throw new DatasetError(
        `Cannot read ${file}: no array ${missing.join(", ")}; it holds [${[...byKey.keys()].join(", ")}], ` +
          `expected [${keys.join(", ")}].`,
        file,
      );
    }
  }
  const out = new Map<string, NpyArray>();
  for (const [key, entry] of byKey) {
    if (keys && !keys.includes(key)) continue;
    out.set(key, parseNpy(readZipEntry(bytes, entry, file, maxBytes), `${file} (array ${key})`));
  }
  return out;
}

/** Writes an `.npz` archive of already-encoded `.npy` files (keys without `.npy`). Used to write fixtures. */
export function encodeNpz(arrays: Record<string, Uint8Array>, compressed = false): Uint8Array {
  return encodeZip(Object.entries(arrays).map(([k, data]) => ({ name: `${k}.npy`, data })), compressed);
}
