/**
 * Datasets: readers of the official formats, the registry, the downloader and batching.
 * Independent of the tensor engine: images are `Uint8Array` `[N, C, H, W]`, batches `Float32Array`.
 * @module
 */
export {
  type Batch,
  Batcher,
  type BatchOptions,
  type BatchSource,
  dequantize,
  flipHorizontal,
  reflectPadCrop,
} from "./batches.ts";
export { CELEBA_FILE, CELEBA_TEST_COUNT, type CelebaOptions, loadCeleba5bit } from "./celeba.ts";
export {
  CIFAR10_EXACT_NAME,
  type CifarOptions,
  type CifarRecords,
  loadCifar10,
  loadCifar10Exact,
  parseCifarBinary,
} from "./cifar10.ts";
export {
  CIFAR10_EXACT_SHA256,
  CIFAR10_EXACT_SOURCE_BATCH,
  deriveCifar10Exact,
  type DeriveExactOptions,
} from "./cifar10_exact.ts";
export {
  CIFAR10_CLASSES,
  type Dataset,
  DIGIT_CLASSES,
  imageSize,
  type Labels,
  type Split,
} from "./dataset.ts";
export {
  type DatasetDownload,
  downloadDataset,
  type DownloadFile,
  downloadFile,
  type DownloadOptions,
  type DownloadReport,
  OFFICIAL_DOWNLOADS,
} from "./download.ts";
export {
  type DataState,
  type DataStatus,
  ensureData,
  type EnsureOptions,
  fetchCommand,
  hasDataset,
  obtainHint,
} from "./ensure.ts";
export { DatasetError } from "./errors.ts";
export { type IdxArray, type IdxExpect, parseIdx } from "./idx.ts";
export { type ImagenetOptions, type ImagenetSize, loadImagenet } from "./imagenet.ts";
export { type MatArray, type MatData, type MatFile, parseMat5 } from "./mat5.ts";
export { loadMnist, MNIST_PACKAGE, type MnistOptions } from "./mnist.ts";
export { encodeNpy, type NpyArray, type NpyData, npyToNumbers, parseNpy } from "./npy.ts";
export { encodeNpz, parseNpz } from "./npz.ts";
export {
  DATA_DIR_ENV,
  DEFAULT_DATA_DIR,
  isDatasetName,
  loadDataset,
  type LoadOptions,
  resolveDataDir,
  SHARED_EXACT_DIR,
} from "./registry.ts";
export { Rng, shuffleInPlace } from "./rng.ts";
export {
  DATASET_LABELS,
  DATASET_NAMES,
  datasetLabel,
  type DatasetName,
  OFFICIAL_SOURCES,
} from "./sources.ts";
export { loadSvhn, type SvhnOptions } from "./svhn.ts";
