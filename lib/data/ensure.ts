/**
 * Makes sure the datasets a run needs are in the data folder before it starts (`deno task reproduce`
 * calls {@link ensureData}): a dataset already there is left alone; a missing one is fetched from its
 * official address with the checked downloader (size, SHA-256/MD5, format; atomic renames) when
 * downloads are allowed, and the exact CIFAR-10 subset is derived from the official batches. A dataset
 * that stays missing gets one line naming the one command that fetches it; ImageNet needs a login and
 * is never fetched (its line says where to get it). MNIST is embedded.
 * @module
 */
import { CIFAR10_FILES, findCifarDir } from "./cifar10.ts";
import { CIFAR10_EXACT_SOURCE_BATCH, deriveCifar10Exact } from "./cifar10_exact.ts";
import { findCelebaFile } from "./celeba.ts";
import { type DatasetDownload, downloadDataset, type DownloadFile, OFFICIAL_DOWNLOADS } from "./download.ts";
import { DatasetError, fileSize } from "./errors.ts";
import { findImagenetFile } from "./imagenet.ts";
import { DEFAULT_DATA_DIR, findExactDir, resolveDataDir } from "./registry.ts";
import { DATASET_LABELS, type DatasetName } from "./sources.ts";
import { findSvhnFile, SVHN_FILES } from "./svhn.ts";

/** What {@link ensureData} found or did for one dataset. */
export type DataState = "embedded" | "present" | "downloaded" | "derived" | "missing";

/** The outcome for one dataset. */
export interface DataStatus {
  /** The dataset. */
  readonly name: DatasetName;
  /** What was found or done. */
  readonly state: DataState;
  /** One line for the log; for a missing dataset it names the command (or the page) that gets it. */
  readonly line: string;
}

/** Options of {@link ensureData}. */
export interface EnsureOptions {
  /** The data folder (default: `$RESFLOW_DATA_DIR`, else `./data`). */
  readonly dataDir?: string;
  /** Whether missing datasets may be fetched from the network. */
  readonly download: boolean;
  /** Called as bytes arrive; `total` is null when the server sends no length. */
  readonly onProgress?: (file: string, received: number, total: number | null) => void;
  /** Fetch `${baseUrl}/${official file name}` instead of the official address (a mirror, a test server). */
  readonly baseUrl?: string;
  /** Replace a dataset's download entries (a mirror with other checksums, or test fixtures). */
  readonly files?: Readonly<Partial<Record<DatasetName, readonly DownloadFile[]>>>;
  /** Expected SHA-256 of the derived exact subset instead of the reference values (tests only). */
  readonly exactSha256?: Readonly<Record<"train" | "test", string>>;
  /** Aborts the transfers. */
  readonly signal?: AbortSignal;
}

/** Quotes a shell word when it needs it. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The one command that fetches dataset `name` into `dataDir` (`deno task data <name>`, with
 * `--data-dir` unless it is the default folder), or null when it cannot be fetched automatically.
 */
export function fetchCommand(name: DatasetName, dataDir?: string): string | null {
  const entry: DatasetDownload = OFFICIAL_DOWNLOADS[name];
  if (name !== "cifar10-exact" && (entry.manual !== undefined || entry.files.length === 0)) return null;
  const dir = resolveDataDir(dataDir);
  return `deno task data ${name}${dir === DEFAULT_DATA_DIR ? "" : ` --data-dir ${shellWord(dir)}`}`;
}

/**
 * What a user does to get dataset `name`: "fetch it with `deno task data cifar10`", or, for datasets
 * that cannot be fetched automatically, the manual steps. One line.
 */
export function obtainHint(name: DatasetName, dataDir?: string): string {
  const cmd = fetchCommand(name, dataDir);
  if (cmd) return `fetch it with \`${cmd}\``;
  const manual = OFFICIAL_DOWNLOADS[name].manual ?? "";
  return name === "mnist" ? manual : `it is never downloaded automatically: ${manual}`;
}

async function found(find: () => Promise<unknown>): Promise<boolean> {
  try {
    await find();
    return true;
  } catch (err) {
    if (err instanceof DatasetError) return false;
    throw err;
  }
}

/** True when the data folder holds the CIFAR-10 batches listed (default: all six). */
async function hasCifarBatches(dir: string, names: readonly string[]): Promise<boolean> {
  if (!await found(() => findCifarDir(dir))) return false;
  const folder = await findCifarDir(dir);
  for (const n of names) if ((await fileSize(`${folder}/${n}`)) === null) return false;
  return true;
}

/**
 * True when the files dataset `name` is read from are in `dataDir` (for the exact subset: also the
 * project's shared folder). Only presence is checked; the loaders check the contents.
 */
export async function hasDataset(name: DatasetName, dataDir?: string): Promise<boolean> {
  const dir = resolveDataDir(dataDir);
  switch (name) {
    case "mnist":
      return true;
    case "cifar10":
      return await hasCifarBatches(dir, [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]);
    case "cifar10-exact":
      return await found(() => findExactDir(dir, undefined, "train")) &&
        await found(() => findExactDir(dir, undefined, "test"));
    case "svhn":
      return await found(() => findSvhnFile(dir, SVHN_FILES.train)) &&
        await found(() => findSvhnFile(dir, SVHN_FILES.test));
    case "imagenet32":
    case "imagenet64":
      return await found(() => findImagenetFile(dir, name === "imagenet32" ? 32 : 64, "val_data.npz"));
    case "celeba5bit":
      return await found(() => findCelebaFile(dir));
  }
}

/** True for failures of a download that leave the dataset missing (not programming errors). */
function isFetchFailure(err: unknown): boolean {
  return err instanceof DatasetError || Object.values(Deno.errors).some((E) => err instanceof E);
}

/**
 * Makes each dataset of `names` available in the data folder (see the module documentation); returns
 * one status per distinct name, in order. Never throws for a dataset that stays missing: its status
 * says why and what to run.
 */
export async function ensureData(names: readonly DatasetName[], opts: EnsureOptions): Promise<DataStatus[]> {
  const dir = resolveDataDir(opts.dataDir);
  const out: DataStatus[] = [];
  for (const name of [...new Set(names)]) {
    const label = DATASET_LABELS[name];
    if (name === "mnist") {
      out.push({ name, state: "embedded", line: `${label}: embedded, nothing to fetch` });
      continue;
    }
    if (await hasDataset(name, dir)) {
      out.push({ name, state: "present", line: `${label}: present` });
      continue;
    }
    const where = name === "cifar10-exact" ? `${dir}/cifar10-exact` : dir;
    const hint = obtainHint(name, dir);
    if (fetchCommand(name, dir) === null) {
      out.push({ name, state: "missing", line: `${label}: not in ${where}; ${hint}` });
      continue;
    }
    if (!opts.download) {
      out.push({ name, state: "missing", line: `${label}: not in ${where} and downloading is off; ${hint}` });
      continue;
    }
    try {
      out.push(await obtain(name, dir, opts));
    } catch (err) {
      if (!isFetchFailure(err)) throw err;
      const why = (err as Error).message.split("\n")[0];
      out.push({
        name,
        state: "missing",
        line: `${label}: not in ${where} and could not be fetched (${why}); ${hint}`,
      });
    }
  }
  return out;
}

/** Downloads (and for the exact subset, derives) one missing dataset. */
async function obtain(name: DatasetName, dir: string, opts: EnsureOptions): Promise<DataStatus> {
  const label = DATASET_LABELS[name];
  const fetch = async (what: DatasetName) => {
    const files = opts.files?.[what];
    return await downloadDataset(what, dir, {
      baseUrl: opts.baseUrl,
      onProgress: opts.onProgress,
      signal: opts.signal,
      ...(files ? { files } : {}),
    });
  };
  if (name !== "cifar10-exact") {
    const r = await fetch(name);
    return {
      name,
      state: "downloaded",
      line: `${label}: downloaded into ${dir} (${r.written.length} file(s); ${r.verified.join("; ")})`,
    };
  }
  const sources = Object.values(CIFAR10_EXACT_SOURCE_BATCH);
  let how = `from the official batches in ${dir}`;
  if (!await hasCifarBatches(dir, sources)) {
    const r = await fetch("cifar10");
    how = `from the official CIFAR-10 archive, downloaded into ${dir} (${r.verified.join("; ")})`;
  }
  const written = await deriveCifar10Exact(dir, opts.exactSha256 ? { sha256: opts.exactSha256 } : {});
  return {
    name,
    state: "derived",
    line: `${label}: derived ${written.map((p) => p.split("/").pop()).join(", ")} ${how}; SHA-256 checked`,
  };
}
