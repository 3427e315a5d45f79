/**
 * SVHN cropped digits (format 2) from the official `train_32x32.mat` / `test_32x32.mat`:
 * `X` is uint8 `[32, 32, 3, N]` column-major (row, column, channel, image), `y` is `[N, 1]` with
 * labels 1–10 where 10 means digit 0; returned as `[N, 3, 32, 32]` with labels 0–9.
 * @module
 */
import { type Dataset, DIGIT_CLASSES, type Split } from "./dataset.ts";
import { DatasetError, fileSize, readDataFile } from "./errors.ts";
import { parseMat5 } from "./mat5.ts";
import { sourceHint } from "./sources.ts";

/** Official file of each split. */
export const SVHN_FILES: Readonly<Record<Split, string>> = {
  train: "train_32x32.mat",
  test: "test_32x32.mat",
};

/** Image counts of the official files. */
export const SVHN_COUNTS: Readonly<Record<Split, number>> = { train: 73257, test: 26032 };

/** Options of {@link loadSvhn}. */
export interface SvhnOptions {
  /** Which split (default "train"). */
  readonly split?: Split;
  /** Keep only the first `limit` images. */
  readonly limit?: number;
  /** Accept any image count (fixtures); by default the official count of the split is required. */
  readonly anyCount?: boolean;
}

/** Finds `name` in `dir/svhn/` or `dir/`; a {@link DatasetError} names both places when it is in neither. */
export async function findSvhnFile(dir: string, name: string): Promise<string> {
  for (const cand of [`${dir}/svhn/${name}`, `${dir}/${name}`]) {
    if ((await fileSize(cand)) !== null) return cand;
  }
  throw new DatasetError(
    `Cannot load SVHN: no file ${dir}/svhn/${name} or ${dir}/${name}; expected the official ${name}.\n${
      sourceHint("svhn")
    }`,
    dir,
  );
}

/** Converts SVHN's `X` (column-major `[32,32,3,N]`) and `y` (1–10) into `[N,3,32,32]` images and 0–9 labels. */
export function svhnFromMat(
  X: Uint8Array,
  xdims: readonly number[],
  y: ArrayLike<number>,
  file: string,
  limit = Infinity,
): { images: Uint8Array; labels: Uint8Array } {
  const n = xdims[3];
  if (xdims.length !== 4 || xdims[0] !== 32 || xdims[1] !== 32 || xdims[2] !== 3) {
    throw new DatasetError(
      `Cannot read ${file}: X has dims [${xdims.join(", ")}], expected [32, 32, 3, N].`,
      file,
    );
  }
  if (y.length !== n) {
    throw new DatasetError(
      `Cannot read ${file}: y has ${y.length} labels for ${n} images in X, expected ${n}.`,
      file,
    );
  }
  const count = Math.min(n, limit);
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const l = y[i];
    if (!(Number.isInteger(l) && l >= 1 && l <= 10)) {
      throw new DatasetError(
        `Cannot read ${file}: y[${i}] = ${l}, expected an integer 1–10 (10 means digit 0).`,
        file,
      );
    }
    labels[i] = l % 10;
    const src = i * 3072;
    for (let ch = 0; ch < 3; ch++) {
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 32; c++) images[src + ch * 1024 + r * 32 + c] = X[src + ch * 1024 + c * 32 + r];
      }
    }
  }
  return { images, labels };
}

/** Loads an SVHN split from `dir/svhn/<file>` or `dir/<file>`. */
export async function loadSvhn(dir: string, opts: SvhnOptions = {}): Promise<Dataset> {
  const split = opts.split ?? "train";
  const path = await findSvhnFile(dir, SVHN_FILES[split]);
  const hint = sourceHint("svhn");
  const mat = parseMat5(await readDataFile(path, "a MATLAB 5 MAT-file with X and y", hint), path);
  const X = mat.vars.get("X");
  const y = mat.vars.get("y");
  if (!X || !y) {
    throw new DatasetError(
      `Cannot read ${path}: variables [${
        [...mat.vars.keys()].join(", ")
      }], expected X (uint8 32×32×3×N) and y.\n${hint}`,
      path,
    );
  }
  if (X.className !== "uint8") {
    throw new DatasetError(`Cannot read ${path}: X is ${X.className}, expected uint8.\n${hint}`, path);
  }
  const want = SVHN_COUNTS[split];
  if (!opts.anyCount && X.dims[3] !== want) {
    throw new DatasetError(
      `Cannot read ${path}: X holds ${
        X.dims[3]
      } images, expected ${want} (the official ${split} split).\n${hint}`,
      path,
    );
  }
  const { images, labels } = svhnFromMat(X.data as Uint8Array, X.dims, y.data, path, opts.limit);
  return {
    id: "svhn",
    name: "SVHN",
    description: `SVHN ${split}: ${labels.length} images 3×32×32 from ${path}`,
    split,
    shape: [3, 32, 32],
    count: labels.length,
    images,
    labels,
    nvals: 256,
    classes: DIGIT_CLASSES,
    files: [path],
  };
}
