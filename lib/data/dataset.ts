/**
 * The in-memory form of an image dataset, shared by every reader: 8-bit (or 5-bit) pixels in a
 * `Uint8Array` laid out `[N, C, H, W]` row-major, plus integer labels. Independent of the tensor engine.
 * @module
 */

/** Which part of a dataset. */
export type Split = "train" | "test";

/** Integer class labels, one per image (`Uint8Array` for ≤ 256 classes, `Int32Array` for ImageNet). */
export type Labels = Uint8Array | Int32Array;

/** A dataset split held in memory. */
export interface Dataset {
  /** Registry id, e.g. `"mnist"`, `"cifar10-exact"`. */
  readonly id: string;
  /** Display name to use in results, e.g. `"CIFAR-10 exact subset (4k train / 1k test)"`. */
  readonly name: string;
  /** One line: what was loaded, from where, how many images. */
  readonly description: string;
  /** Which split this is. */
  readonly split: Split;
  /** Image shape `[C, H, W]`. */
  readonly shape: readonly [number, number, number];
  /** Number of images N. */
  readonly count: number;
  /** Pixels, `N·C·H·W` bytes, `[N, C, H, W]` row-major; every value is below `nvals`. */
  readonly images: Uint8Array;
  /** Labels `0 … numClasses-1`, or null for unlabelled data (CelebA). */
  readonly labels: Labels | null;
  /** Number of pixel levels: 256 for 8-bit data, 32 for 5-bit CelebA. Dequantize with `(k + u) / nvals`. */
  readonly nvals: 256 | 32;
  /** Class names by label, when known. */
  readonly classes?: readonly string[];
  /** The files the data was read from. */
  readonly files: readonly string[];
}

/** Pixels per image, `C·H·W`. */
export function imageSize(ds: Pick<Dataset, "shape">): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** The ten CIFAR-10 class names, label 0 … 9 (from the official `batches.meta.txt`). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** Digit class names `"0" … "9"` (MNIST, SVHN after mapping label 10 to 0). */
export const DIGIT_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
