/**
 * Downsampled ImageNet 32×32 and 64×64 (Chrabaszcz, Loshchilov & Hutter 2017) from the official
 * `.npz` batches: `train_data_batch_1.npz … train_data_batch_10.npz` and `val_data.npz`, each with
 * `data` (N × 3·S·S uint8, channel-planar: all red, then green, then blue, each S×S row-major) and
 * `labels` (1–1000, returned as 0–999). The full training set does not fit in memory at 64×64:
 * use `batches` or `limit`.
 * @module
 */
import type { Dataset, Split } from "./dataset.ts";
import { DatasetError, fileSize, isDir, readDataFile } from "./errors.ts";
import { npyToNumbers } from "./npy.ts";
import { parseNpz } from "./npz.ts";
import { sourceHint } from "./sources.ts";

/** The two resolutions. */
export type ImagenetSize = 32 | 64;

/**
 * The most images one official file may hold (a training batch has about 128,117): with the `.npy`
 * header allowance, it bounds how far each `.npz` entry may inflate.
 */
export const IMAGENET_MAX_PER_FILE = 130_000;

/** Options of {@link loadImagenet}. */
export interface ImagenetOptions {
  /** Which split (default "train"; "test" reads `val_data.npz`). */
  readonly split?: Split;
  /** Training batch numbers to read (default 1–10). */
  readonly batches?: readonly number[];
  /** Keep only the first `limit` images (later files are then not read). */
  readonly limit?: number;
}

/** The official file names of a split. */
export function imagenetFiles(
  split: Split,
  batches: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
): string[] {
  return split === "test" ? ["val_data.npz"] : batches.map((b) => `train_data_batch_${b}.npz`);
}

/**
 * Finds an official file of `imagenet<size>`: in `dir/imagenet<size>/`, in a folder directly inside it
 * (the unzipped `Imagenet32_train_npz/` etc.), or in `dir/` itself.
 */
export async function findImagenetFile(dir: string, size: ImagenetSize, name: string): Promise<string> {
  const root = `${dir}/imagenet${size}`;
  const places = [root];
  if (await isDir(root)) {
    for await (const e of Deno.readDir(root)) if (e.isDirectory) places.push(`${root}/${e.name}`);
  }
  places.push(dir);
  for (const p of places) if ((await fileSize(`${p}/${name}`)) !== null) return `${p}/${name}`;
  throw new DatasetError(
    `Cannot load imagenet${size}: no file ${name} in ${root} (or a folder inside it) or in ${dir}.\n${
      sourceHint(size === 32 ? "imagenet32" : "imagenet64")
    }`,
    root,
  );
}

/** Decodes one official batch: checks `data` is N×3·S·S uint8 and `labels` N values in 1–1000. */
export function parseImagenetBatch(
  bytes: Uint8Array,
  file: string,
  size: ImagenetSize,
): { images: Uint8Array; labels: Int32Array } {
  const maxBytes = (1 << 16) + IMAGENET_MAX_PER_FILE * 3 * size * size;
  const arrays = parseNpz(bytes, file, ["data", "labels"], maxBytes);
  const data = arrays.get("data")!;
  const lab = arrays.get("labels")!;
  const d = 3 * size * size;
  if (data.dtype !== "uint8" || data.shape.length !== 2 || data.shape[1] !== d) {
    throw new DatasetError(
      `Cannot read ${file}: data is ${data.dtype} of shape (${
        data.shape.join(", ")
      }), expected uint8 (N, ${d}) ` +
        `for ${size}×${size} images.`,
      file,
    );
  }
  const n = data.shape[0];
  if (lab.data.length !== n || lab.dtype === "float32" || lab.dtype === "float64") {
    throw new DatasetError(
      `Cannot read ${file}: labels is ${lab.dtype} of shape (${
        lab.shape.join(", ")
      }), expected ${n} integers 1–1000.`,
      file,
    );
  }
  const nums = npyToNumbers(lab, file);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (!(nums[i] >= 1 && nums[i] <= 1000)) {
      throw new DatasetError(`Cannot read ${file}: labels[${i}] = ${nums[i]}, expected 1–1000.`, file);
    }
    labels[i] = nums[i] - 1;
  }
  return { images: data.data as Uint8Array, labels };
}

/** Loads downsampled ImageNet at `size` from the data folder `dir`. */
export async function loadImagenet(
  dir: string,
  size: ImagenetSize,
  opts: ImagenetOptions = {},
): Promise<Dataset> {
  const split = opts.split ?? "train";
  const id = size === 32 ? "imagenet32" : "imagenet64";
  const hint = sourceHint(id);
  const d = 3 * size * size;
  const limit = opts.limit ?? Infinity;
  const parts: { images: Uint8Array; labels: Int32Array }[] = [];
  const files: string[] = [];
  let count = 0;
  for (const name of imagenetFiles(split, opts.batches)) {
    if (count >= limit) break;
    const path = await findImagenetFile(dir, size, name);
    const part = parseImagenetBatch(
      await readDataFile(path, `an .npz batch of ${size}×${size} images (keys data, labels)`, hint),
      path,
      size,
    );
    const take = Math.min(part.labels.length, limit - count);
    parts.push({ images: part.images.subarray(0, take * d), labels: part.labels.subarray(0, take) });
    files.push(path);
    count += take;
  }
  const images = parts.length === 1 && parts[0].images.length === count * d
    ? parts[0].images
    : new Uint8Array(count * d);
  const labels = new Int32Array(count);
  let o = 0;
  for (const p of parts) {
    if (images !== p.images) images.set(p.images, o * d);
    labels.set(p.labels, o);
    o += p.labels.length;
  }
  return {
    id,
    name: `ImageNet ${size}×${size}`,
    description: `Downsampled ImageNet ${size}×${size} ${split}: ${count} images 3×${size}×${size} from ${
      files.length === 1 ? files[0] : `${files.length} files in ${files[0].replace(/\/[^/]*$/, "")}`
    }`,
    split,
    shape: [3, size, size],
    count,
    images,
    labels,
    nvals: 256,
    files,
  };
}
