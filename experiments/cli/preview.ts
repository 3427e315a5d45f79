/**
 * `deno task preview`: writes PNG previews of the real data into `results/preview/` (or `--out`):
 *
 * - `mnist_grid.png`: the first 64 MNIST training images, 8×8 grid, 2 px padding (242×242, gray);
 * - `cifar10_grid.png`: the first 64 images of the CIFAR-10 exact subset (274×274, RGB), skipped with
 *   a message when the subset is not found (a user's clone has none);
 * - `example_plot.png`: two panels measured on the MNIST training set: the images per class (train
 *   and test) as a bar chart, and the mean pixel intensity of each image row as a line plot (all
 *   digits, digits 0 and 1).
 *
 * Every file is written atomically. Expected failures print their message alone and exit 1.
 * @module
 */
import { type Dataset, DatasetError, loadDataset, resolveDataDir } from "../../lib/data/mod.ts";
import { findExactDir } from "../../lib/data/registry.ts";
import { decodePng, encodePng, imageGridPng, pngInfo, type RawImage } from "../../lib/artifacts/png.ts";
import { barChartPng, linePlotPng } from "../../lib/artifacts/plot.ts";
import { writeFileAtomic } from "../../lib/artifacts/atomic.ts";
import { type OptionSpec, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { prepareOutputDir } from "../../lib/cli/output.ts";

/** Images per grid (8 rows of 8). */
export const GRID_IMAGES = 64;
/** Tiles per grid row. */
export const GRID_NROW = 8;
/** Pixels between tiles and around the border. */
export const GRID_PADDING = 2;
/** Width and height of one panel of the example plot. */
export const PLOT_PANEL = { width: 640, height: 440 } as const;

/** The options of `deno task preview`. */
export const PREVIEW_OPTIONS: Record<string, OptionSpec> = {
  out: { type: "string", default: "results/preview", help: "Folder the PNGs are written to" },
  "data-dir": {
    type: "string",
    help: "Data folder searched for cifar10-exact/ (default: $RESFLOW_DATA_DIR, else ./data)",
  },
};

/** The first `n` images of `ds` as floats in [0, 1] (`k / (nvals − 1)`), for a grid. */
export function toUnit(ds: Dataset, n: number): Float32Array {
  const size = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const src = ds.images.subarray(0, n * size);
  const scale = 1 / (ds.nvals - 1);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] * scale;
  return out;
}

/** A grid PNG of the first {@link GRID_IMAGES} images of `ds`, written atomically to `path`. */
async function writeGrid(ds: Dataset, path: string): Promise<string> {
  const n = Math.min(GRID_IMAGES, ds.count);
  const png = await imageGridPng(toUnit(ds, n), [n, ...ds.shape], {
    nrow: GRID_NROW,
    padding: GRID_PADDING,
  });
  await writeFileAtomic(path, png);
  const { width, height } = await pngInfo(png);
  return `${path}: ${width}×${height}, grid of the first ${n} images (${ds.description})`;
}

/** Images per class label (labels 0–9). */
export function classCounts(ds: Dataset): number[] {
  const counts = new Array(10).fill(0);
  for (const l of ds.labels ?? []) counts[l]++;
  return counts;
}

/**
 * Mean pixel value in [0, 1] of each image row, over the images whose label is `digit` (all images
 * when `digit` is null). Single-channel datasets only.
 */
export function rowMeans(ds: Dataset, digit: number | null): number[] {
  const [c, h, w] = ds.shape;
  if (c !== 1) throw new Error(`Cannot average rows of ${ds.id}: ${c} channels, expected 1`);
  const sums = new Float64Array(h);
  let n = 0;
  for (let i = 0; i < ds.count; i++) {
    if (digit !== null && ds.labels?.[i] !== digit) continue;
    n++;
    const base = i * h * w;
    for (let y = 0; y < h; y++) {
      let s = 0;
      for (let x = 0; x < w; x++) s += ds.images[base + y * w + x];
      sums[y] += s;
    }
  }
  if (n === 0) throw new Error(`Cannot average rows of ${ds.id}: no image with label ${digit}`);
  return Array.from(sums, (s) => s / (n * w * (ds.nvals - 1)));
}

/** Places images side by side (same height and channel count), left to right. */
export function sideBySide(images: readonly RawImage[]): RawImage {
  const { height, channels } = images[0];
  for (const im of images) {
    if (im.height !== height || im.channels !== channels) {
      throw new Error(
        `Cannot join panels: ${im.width}×${im.height}×${im.channels}, expected height ${height} and ${channels} channels`,
      );
    }
  }
  const width = images.reduce((s, im) => s + im.width, 0);
  const pixels = new Uint8Array(width * height * channels);
  let x0 = 0;
  for (const im of images) {
    const row = im.width * channels;
    for (let y = 0; y < height; y++) {
      pixels.set(im.pixels.subarray(y * row, (y + 1) * row), (y * width + x0) * channels);
    }
    x0 += im.width;
  }
  return { pixels, width, height, channels };
}

/** The two-panel example plot of MNIST, written atomically to `path`. */
async function writeExamplePlot(train: Dataset, test: Dataset, path: string): Promise<string> {
  const bars = await barChartPng({
    title: "MNIST: images per class",
    ...PLOT_PANEL,
    categories: Array.from({ length: 10 }, (_, i) => String(i)),
    series: [
      { name: `train (${train.count})`, values: classCounts(train) },
      { name: `test (${test.count})`, values: classCounts(test) },
    ],
    xLabel: "digit",
    yLabel: "images",
    // The bar labels round to 3 significant digits (5923 would read 5920): leave the counts to the axis.
    valueLabels: false,
  });
  const rows = Array.from({ length: train.shape[1] }, (_, y) => y);
  const lines = await linePlotPng({
    title: "MNIST train: mean intensity per row",
    ...PLOT_PANEL,
    xLabel: "row (0 = top)",
    yLabel: "mean pixel value (0–1)",
    series: [
      { name: "all digits", x: rows, y: rowMeans(train, null) },
      { name: "digit 0", x: rows, y: rowMeans(train, 0), style: "dashed" },
      { name: "digit 1", x: rows, y: rowMeans(train, 1), style: "dotted" },
    ],
  });
  const png = await encodePng(sideBySide([await decodePng(bars), await decodePng(lines)]));
  await writeFileAtomic(path, png);
  const { width, height } = await pngInfo(png);
  return `${path}: ${width}×${height}, class counts and row means of MNIST (train ${train.count}, test ${test.count})`;
}

/** Writes the previews into `out`; returns the exit status (0, or 1 when a dataset was damaged). */
export async function preview(out: string, dataDir: string): Promise<number> {
  let status = 0;
  const mnistTrain = await loadDataset("mnist", { split: "train" });
  const mnistTest = await loadDataset("mnist", { split: "test" });
  console.log(await writeGrid(mnistTrain, `${out}/mnist_grid.png`));

  let exactDir: string | null = null;
  try {
    exactDir = await findExactDir(dataDir, undefined, "train");
  } catch (err) {
    if (!(err instanceof DatasetError)) throw err;
    console.log(`Skipped ${out}/cifar10_grid.png: the CIFAR-10 exact subset was not found.\n${err.message}`);
  }
  if (exactDir !== null) {
    try {
      const cifar = await loadDataset("cifar10-exact", { dir: exactDir, split: "train", limit: GRID_IMAGES });
      console.log(await writeGrid(cifar, `${out}/cifar10_grid.png`));
    } catch (err) {
      if (!(err instanceof DatasetError)) throw err;
      console.error(`Cannot write ${out}/cifar10_grid.png: ${err.message}`);
      status = 1;
    }
  }

  console.log(await writeExamplePlot(mnistTrain, mnistTest, `${out}/example_plot.png`));
  return status;
}

/** Parses `argv` and writes the previews; returns the exit status (failures are thrown for {@link runMain}). */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(
    "deno task preview",
    "Write PNG previews of real MNIST and CIFAR-10 images and an example plot.",
    PREVIEW_OPTIONS,
    argv,
  );
  if (args === null) return 0;
  await prepareOutputDir(String(args.out));
  return await preview(String(args.out), resolveDataDir(args["data-dir"] as string | undefined));
}

if (import.meta.main) await runMain("deno task preview", main);
