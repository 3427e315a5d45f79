/**
 * CelebA(-HQ) 64×64 at 5 bits from Flow++'s `celeba_full_64x64_5bit.npy`: uint8 values 0–31, shape
 * N×H×W×C (as published) or N×C×H×W, returned as `[N, C, H, W]` with `nvals = 32`.
 *
 * Splits follow the Residual Flows code (SPEC 1.6): "test" is the first 5,000 images of the file and
 * "train" is the whole file (the official code trains on all of it, so the two overlap).
 * @module
 */
import type { Dataset, Split } from "./dataset.ts";
import { DatasetError, fileSize, readDataFile } from "./errors.ts";
import { parseNpy } from "./npy.ts";
import { sourceHint } from "./sources.ts";

/** The Flow++ file name. */
export const CELEBA_FILE = "celeba_full_64x64_5bit.npy";

/** Images in the test split (the first ones of the file). */
export const CELEBA_TEST_COUNT = 5000;

/** Options of {@link loadCeleba5bit}. */
export interface CelebaOptions {
  /** Which split (default "train"). */
  readonly split?: Split;
  /** Keep only the first `limit` images of the split. */
  readonly limit?: number;
}

/** Finds the file in `dir/celeba/`, `dir/celebahq64_5bit/` or `dir/`. */
export async function findCelebaFile(dir: string): Promise<string> {
  const places = [`${dir}/celeba`, `${dir}/celebahq64_5bit`, dir];
  for (const p of places) if ((await fileSize(`${p}/${CELEBA_FILE}`)) !== null) return `${p}/${CELEBA_FILE}`;
  throw new DatasetError(
    `Cannot load celeba5bit: no file ${CELEBA_FILE} in ${places.join(", ")}.\n${sourceHint("celeba5bit")}`,
    dir,
  );
}

/**
 * Converts a uint8 array of shape N×H×W×C or N×C×H×W (C = 1 or 3, values < 32) to `[N, C, H, W]`.
 * Channels-last is chosen when the last axis is 1 or 3 and the second is not.
 */
export function celebaFromArray(
  data: Uint8Array,
  shape: readonly number[],
  file: string,
): { images: Uint8Array; shape: [number, number, number] } {
  const isC = (k: number) => k === 1 || k === 3;
  if (shape.length !== 4 || !(isC(shape[3]) || isC(shape[1]))) {
    throw new DatasetError(
      `Cannot read ${file}: shape (${
        shape.join(", ")
      }) is neither N×H×W×C (channels last, as Flow++ writes it) ` +
        `nor N×C×H×W (channels first), with C = 1 or 3.`,
      file,
    );
  }
  for (let i = 0; i < data.length; i++) {
    if (data[i] > 31) {
      throw new DatasetError(
        `Cannot read ${file}: value ${
          data[i]
        } at flat index ${i}, expected 5-bit values 0–31 (this is not the ` +
          `5-bit file).`,
        file,
      );
    }
  }
  const [n] = shape;
  if (isC(shape[3]) && !isC(shape[1])) {
    const [, h, w, c] = shape;
    const out = new Uint8Array(data.length);
    const per = h * w * c;
    for (let i = 0; i < n; i++) {
      const b = i * per;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let ch = 0; ch < c; ch++) out[b + ch * h * w + y * w + x] = data[b + (y * w + x) * c + ch];
        }
      }
    }
    return { images: out, shape: [c, h, w] };
  }
  return { images: data, shape: [shape[1], shape[2], shape[3]] };
}

/** Loads CelebA 64×64 5-bit from the Flow++ `.npy` file in `dir` (see {@link findCelebaFile}). */
export async function loadCeleba5bit(dir: string, opts: CelebaOptions = {}): Promise<Dataset> {
  const split = opts.split ?? "train";
  const path = await findCelebaFile(dir);
  const arr = parseNpy(
    await readDataFile(path, "a uint8 .npy array N×64×64×3 of 5-bit values", sourceHint("celeba5bit")),
    path,
  );
  if (arr.dtype !== "uint8") {
    throw new DatasetError(
      `Cannot read ${path}: dtype ${arr.dtype}, expected uint8 (5-bit values 0–31).`,
      path,
    );
  }
  const n = arr.shape[0];
  const splitCount = split === "test" ? Math.min(CELEBA_TEST_COUNT, n) : n;
  const count = Math.min(splitCount, opts.limit ?? splitCount);
  const per = arr.shape.slice(1).reduce((a, b) => a * b, 1);
  const { images, shape } = celebaFromArray(
    (arr.data as Uint8Array).subarray(0, count * per),
    [count, ...arr.shape.slice(1)],
    path,
  );
  return {
    id: "celeba5bit",
    name: "CelebA-HQ 64×64 (5-bit)",
    description: `CelebA-HQ 64×64 5-bit ${split}: ${count} images ${shape.join("×")} from ${path}` +
      (split === "test"
        ? " (the first 5,000 images of the file)"
        : " (the whole file, as in the official code)"),
    split,
    shape,
    count,
    images,
    labels: null,
    nvals: 32,
    files: [path],
  };
}
