/**
 * One entry point for every dataset: `loadDataset(name, { dataDir, split })`. The data folder comes
 * from the option, else the environment variable `RESFLOW_DATA_DIR`, else `./data`. MNIST needs no
 * folder (it is embedded) but is read from `<data-dir>/mnist/` when its IDX files are there. Every expected failure is a {@link DatasetError} with a printable message.
 * @module
 */
import { loadCeleba5bit } from "./celeba.ts";
import { loadCifar10, loadCifar10Exact } from "./cifar10.ts";
import type { Dataset, Split } from "./dataset.ts";
import { DatasetError, fileSize } from "./errors.ts";
import { loadImagenet } from "./imagenet.ts";
import { findMnistDir, loadMnist } from "./mnist.ts";
import { DATASET_NAMES, type DatasetName, sourceHint } from "./sources.ts";
import { loadSvhn } from "./svhn.ts";

export { DatasetError } from "./errors.ts";
export { DATASET_NAMES, type DatasetName } from "./sources.ts";

/** The environment variable naming the data folder. */
export const DATA_DIR_ENV = "RESFLOW_DATA_DIR";

/** The data folder used when neither the option nor the environment variable gives one. */
export const DEFAULT_DATA_DIR = "data";

/** Where the project's exact CIFAR-10 subset lives relative to a clone's root (absent in a user's clone). */
export const SHARED_EXACT_DIR = "../shared/data/cifar10-exact";

/** Options of {@link loadDataset}. */
export interface LoadOptions {
  /** The data folder (default: `$RESFLOW_DATA_DIR`, else `./data`). */
  readonly dataDir?: string;
  /** Which split (default "train"). */
  readonly split?: Split;
  /** Keep only the first `limit` images. */
  readonly limit?: number;
  /**
   * An explicit folder holding this dataset's files, used instead of looking under `dataDir`
   * (MNIST: a folder with the IDX files instead of the embedded package).
   */
  readonly dir?: string;
  /** ImageNet only: the training batch numbers to read (default 1–10). */
  readonly batches?: readonly number[];
}

/** True when `name` is a dataset name of the registry. */
export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/** The data folder: the given one, else `$RESFLOW_DATA_DIR`, else {@link DEFAULT_DATA_DIR}. */
export function resolveDataDir(dataDir?: string): string {
  if (dataDir) return dataDir;
  let env: string | undefined;
  try {
    env = Deno.env.get(DATA_DIR_ENV);
  } catch {
    env = undefined; // no --allow-env: fall back to the default
  }
  return env || DEFAULT_DATA_DIR;
}

/** Loads one split of a dataset by name. */
export async function loadDataset(name: string, opts: LoadOptions = {}): Promise<Dataset> {
  if (!isDatasetName(name)) {
    throw new DatasetError(
      `Cannot load dataset ${JSON.stringify(name)}: unknown name, expected one of ${
        DATASET_NAMES.join(", ")
      }.`,
    );
  }
  const split = opts.split ?? "train";
  if (split !== "train" && split !== "test") {
    throw new DatasetError(
      `Cannot load ${name}: split ${JSON.stringify(split)}, expected "train" or "test".`,
    );
  }
  const dataDir = resolveDataDir(opts.dataDir);
  const common = { split, limit: opts.limit };
  switch (name) {
    case "mnist":
      return await loadMnist({ ...common, dir: opts.dir ?? (await findMnistDir(dataDir)) ?? undefined });
    case "cifar10":
      return await loadCifar10(opts.dir ?? dataDir, common);
    case "cifar10-exact":
      return await loadCifar10Exact(await findExactDir(dataDir, opts.dir, split), common);
    case "svhn":
      return await loadSvhn(opts.dir ?? dataDir, common);
    case "imagenet32":
    case "imagenet64":
      return await loadImagenet(opts.dir ?? dataDir, name === "imagenet32" ? 32 : 64, {
        ...common,
        batches: opts.batches,
      });
    case "celeba5bit":
      return await loadCeleba5bit(opts.dir ?? dataDir, common);
  }
}

/**
 * Finds the exact subset: the explicit folder if given, else `<dataDir>/cifar10-exact`, else
 * {@link SHARED_EXACT_DIR} (relative to the working folder).
 */
export async function findExactDir(dataDir: string, dir: string | undefined, split: Split): Promise<string> {
  if (dir) return dir;
  const file = split === "train" ? "train_exact_4000.bin" : "test_exact_1000.bin";
  const places = [`${dataDir}/cifar10-exact`, SHARED_EXACT_DIR];
  for (const p of places) if ((await fileSize(`${p}/${file}`)) !== null) return p;
  throw new DatasetError(
    `Cannot load cifar10-exact: no file ${file} in ${places.join(" or ")}; pass the folder explicitly.\n${
      sourceHint("cifar10-exact")
    }`,
    places[0],
  );
}
