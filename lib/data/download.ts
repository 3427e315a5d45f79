/**
 * Downloads a dataset's official files into a data folder, for `deno task data <name>`.
 *
 * Each file is streamed to a temporary name beside its destination, checked (size, SHA-256 and the
 * published MD5 where known, then the format parser), and only then renamed into place, so a failed
 * or interrupted download never leaves a file at the final path. The CIFAR-10 archive is unpacked
 * with the project's own tar reader (only the expected members, at safe paths).
 *
 * Checksums: only values known for certain are recorded; where none is known the entry holds null
 * and the file is verified by its format parser instead (see {@link OFFICIAL_DOWNLOADS}).
 * ImageNet needs an image-net.org login and cannot be fetched automatically.
 * @module
 */
import { createHash } from "node:crypto";
import { removeStaleTemps, writeFileAtomic } from "../artifacts/atomic.ts";
import { CELEBA_FILE, celebaFromArray } from "./celeba.ts";
import { CIFAR10_FILES, parseCifarBinary } from "./cifar10.ts";
import { DatasetError, fileSize, fmtBytes } from "./errors.ts";
import { inflateBounded } from "./inflate.ts";
import { parseNpy } from "./npy.ts";
import { DATASET_NAMES, type DatasetName, OFFICIAL_SOURCES } from "./sources.ts";
import { SVHN_COUNTS, svhnFromMat } from "./svhn.ts";
import { parseMat5 } from "./mat5.ts";
import { isSafeTarPath, listTar } from "./tar.ts";

/** One file to fetch. */
export interface DownloadFile {
  /** The official address. */
  readonly url: string;
  /** Destination, relative to the data folder. */
  readonly dest: string;
  /** Known SHA-256 (hex), or null when no value is known for certain. */
  readonly sha256: string | null;
  /** MD5 published with the file (hex), or null. */
  readonly md5: string | null;
  /** Exact size in bytes, or null when not known. */
  readonly size: number | null;
  /** Where the exact size is not known: the most bytes accepted (the transfer stops beyond it). */
  readonly maxSize?: number;
  /** Where the checksums come from, or why there are none. */
  readonly note: string;
  /** Format check run on the downloaded bytes before the file is renamed into place. */
  readonly check?: (bytes: Uint8Array, path: string) => void;
  /** After verification: "cifar10-tar" unpacks the CIFAR-10 archive (and removes it unless kept). */
  readonly extract?: "cifar10-tar";
}

/** How one dataset is obtained. */
export interface DatasetDownload {
  /** The dataset. */
  readonly name: DatasetName;
  /** Its official files (empty when {@link DatasetDownload.manual} is set). */
  readonly files: readonly DownloadFile[];
  /** Set when the files cannot be fetched automatically: the reason and the manual steps. */
  readonly manual?: string;
}

function checkSvhn(split: "train" | "test") {
  return (bytes: Uint8Array, path: string) => {
    const mat = parseMat5(bytes, path);
    const X = mat.vars.get("X");
    const y = mat.vars.get("y");
    if (!X || !y || X.className !== "uint8") {
      throw new DatasetError(
        `Cannot verify ${path}: expected uint8 X and y variables of an SVHN .mat file.`,
        path,
      );
    }
    if (X.dims[3] !== SVHN_COUNTS[split]) {
      throw new DatasetError(
        `Cannot verify ${path}: X holds ${X.dims[3]} images, expected ${SVHN_COUNTS[split]}.`,
        path,
      );
    }
    svhnFromMat(X.data as Uint8Array, X.dims, y.data, path);
  };
}

function checkCeleba(bytes: Uint8Array, path: string): void {
  const arr = parseNpy(bytes, path);
  if (arr.dtype !== "uint8") {
    throw new DatasetError(`Cannot verify ${path}: dtype ${arr.dtype}, expected uint8.`, path);
  }
  celebaFromArray(arr.data as Uint8Array, arr.shape, path);
}

/** Upper bound of an SVHN `.mat` file (train_32x32.mat is about 182 MB). */
export const SVHN_MAX_FILE_BYTES = 256 * 2 ** 20;
/** Upper bound of the CelebA 5-bit `.npy` (202,599 images of 64×64×3 bytes: about 2.49 GB). */
export const CELEBA_MAX_FILE_BYTES = 2_600_000_000;
/** Upper bound of the unpacked CIFAR-10 archive (six 30,730,000-byte batches and two small files). */
export const CIFAR10_TAR_MAX_BYTES = 200_000_000;
/** Names of the downloader's temporary files: `<dest>.<pid>.<8 hex>.part` (and `<dest>.<pid>.part`, of earlier versions). */
export const PART_PATTERN: RegExp = /^.+\.(\d+)(?:\.[0-9a-f]{8})?\.part$/;

/** The official files of every dataset, with what is known of their checksums. */
export const OFFICIAL_DOWNLOADS: Readonly<Record<DatasetName, DatasetDownload>> = {
  mnist: { name: "mnist", files: [], manual: OFFICIAL_SOURCES.mnist },
  cifar10: {
    name: "cifar10",
    files: [{
      url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
      dest: "cifar-10-binary.tar.gz",
      sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
      md5: "c32a1d4ab5d03f1284b67883e8d87530",
      size: 170052171,
      note: "MD5 as published on https://www.cs.toronto.edu/~kriz/cifar.html; SHA-256 and size as recorded " +
        "independently by several projects that verify this archive",
      extract: "cifar10-tar",
    }],
  },
  "cifar10-exact": {
    name: "cifar10-exact",
    files: [],
    manual: `The exact subset is not downloaded. ${OFFICIAL_SOURCES["cifar10-exact"]}`,
  },
  svhn: {
    name: "svhn",
    files: (["train", "test"] as const).map((split) => ({
      url: `http://ufldl.stanford.edu/housenumbers/${split}_32x32.mat`,
      dest: `svhn/${split}_32x32.mat`,
      sha256: null,
      md5: split === "train" ? "e26dedcc434d2e4c54c9b2d4a06d8373" : "eb5a983be6a315427106f1b164d9cef3",
      size: null,
      maxSize: SVHN_MAX_FILE_BYTES,
      note:
        "no SHA-256 known for certain: verified by the MD5 used by torchvision's SVHN loader and by the " +
        "MAT-file parser (X uint8 32×32×3×N with the official N, labels 1–10)",
      check: checkSvhn(split),
    })),
  },
  imagenet32: {
    name: "imagenet32",
    files: [],
    manual: `Downsampled ImageNet needs an image-net.org account, so it is not fetched automatically. ` +
      `${OFFICIAL_SOURCES.imagenet32} Put the .npz files in <data-dir>/imagenet32/.`,
  },
  imagenet64: {
    name: "imagenet64",
    files: [],
    manual: `Downsampled ImageNet needs an image-net.org account, so it is not fetched automatically. ` +
      `${OFFICIAL_SOURCES.imagenet64} Put the .npz files in <data-dir>/imagenet64/.`,
  },
  celeba5bit: {
    name: "celeba5bit",
    files: [{
      url: "https://www.dropbox.com/s/vn5hqd7hflxhvrp/celeba_full_64x64_5bit.npy?dl=1",
      dest: `celeba/${CELEBA_FILE}`,
      sha256: null,
      md5: null,
      size: null,
      maxSize: CELEBA_MAX_FILE_BYTES,
      note: "no checksum is published: verified by the .npy parser (uint8, N×H×W×C, values 0–31)",
      check: checkCeleba,
    }],
  },
};

/** Options of {@link downloadDataset} and {@link downloadFile}. */
export interface DownloadOptions {
  /** Fetch `${baseUrl}/${file name}` instead of the official address (a mirror, or a test server). */
  readonly baseUrl?: string;
  /** Replace the table's entries (a mirror with other checksums, or test fixtures). */
  readonly files?: readonly DownloadFile[];
  /** Keep the CIFAR-10 archive after unpacking it (default: remove it). */
  readonly keepArchive?: boolean;
  /** Called as bytes arrive; `total` is null when the server sends no length. */
  readonly onProgress?: (file: string, received: number, total: number | null) => void;
  /** Aborts the transfers. */
  readonly signal?: AbortSignal;
  /** A transfer with no response or no data for this long fails (default {@link IDLE_TIMEOUT_MS}). */
  readonly idleTimeoutMs?: number;
}

/** How long a transfer may wait for the server's response or its next bytes before it fails. */
export const IDLE_TIMEOUT_MS = 30_000;

/** What {@link downloadDataset} did. */
export interface DownloadReport {
  /** The dataset. */
  readonly name: DatasetName;
  /** Files written (final paths). */
  readonly written: readonly string[];
  /** Files already present and valid, not fetched again. */
  readonly skipped: readonly string[];
  /** How each file was verified, one line each. */
  readonly verified: readonly string[];
}

/** The address a file is fetched from: the official one, or `${baseUrl}/${its last path segment}`. */
export function downloadUrl(file: DownloadFile, baseUrl?: string): string {
  if (!baseUrl) return file.url;
  const last = new URL(file.url).pathname.split("/").pop()!;
  return `${baseUrl.replace(/\/+$/, "")}/${last}`;
}

/**
 * Fetches one file to `dataDir/file.dest` through a temporary name, verifying size, SHA-256, MD5
 * and the format check; returns how it was verified. Nothing is left at the final path on failure.
 */
export async function downloadFile(
  file: DownloadFile,
  dataDir: string,
  opts: DownloadOptions = {},
): Promise<string> {
  const dest = `${dataDir}/${file.dest}`;
  const dir = dest.replace(/\/[^/]*$/, "");
  await Deno.mkdir(dir, { recursive: true });
  await removeStaleTemps(dir, PART_PATTERN);
  const tmp = `${dest}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.part`;
  const url = downloadUrl(file, opts.baseUrl);
  // Open and locked from creation until renamed, however long the transfer and the checks take: another
  // run never takes it for a killed run's leftover (the system drops the lock when a process dies).
  const out = await Deno.open(tmp, { write: true, read: true, createNew: true });
  try {
    await out.lock(true);
    const { sha256, md5, size } = await fetchTo(url, out, file, opts);
    const how = await verify(file, tmp, dest, { sha256, md5, size });
    await Deno.rename(tmp, dest);
    return how;
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    out.close();
  }
}

async function fetchTo(
  url: string,
  out: Deno.FsFile,
  file: DownloadFile,
  opts: DownloadOptions,
): Promise<{ sha256: string; md5: string; size: number }> {
  // Aborted by the caller's signal, or when the server sends nothing for idleMs (reset by every chunk).
  const idleMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  const ctl = new AbortController();
  const idle = () => new Error(`no response or data for ${idleMs / 1000} s`);
  let timer = setTimeout(() => ctl.abort(idle()), idleMs);
  const onAbort = () => ctl.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort);
  try {
    return await transfer(url, out, file, opts, ctl.signal, () => {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(idle()), idleMs);
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

async function transfer(
  url: string,
  out: Deno.FsFile,
  file: DownloadFile,
  opts: DownloadOptions,
  signal: AbortSignal,
  alive: () => void,
): Promise<{ sha256: string; md5: string; size: number }> {
  const label = file.dest;
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: "follow" });
  } catch (err) {
    if (opts.signal?.aborted) throw interrupted(url, 0);
    if (err instanceof Deno.errors.NotCapable) {
      throw new DatasetError(
        `Cannot download ${url}: no network permission for it (${err.message}); \`deno task data\` may ` +
          `reach only the official hosts and this machine (README, "Permissions").`,
      );
    }
    throw new DatasetError(`Cannot download ${url}: ${(err as Error).message} (is the network reachable?).`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new DatasetError(`Cannot download ${url}: HTTP ${res.status} ${res.statusText}, expected 200.`);
  }
  const lenHeader = res.headers.get("content-length");
  const total = lenHeader ? Number(lenHeader) : null;
  // The most bytes accepted: the known size, else the file's bound (the server's length is checked against it).
  const limit = file.size ?? file.maxSize ?? null;
  if (total !== null && limit !== null && total > limit) {
    await res.body.cancel();
    throw new DatasetError(
      `Cannot download ${url}: the server announces ${fmtBytes(total)}, expected ${
        file.size !== null ? "" : "at most "
      }${fmtBytes(limit)}; nothing was written.`,
    );
  }
  const sha = createHash("sha256");
  const md5 = createHash("md5");
  let received = 0;
  try {
    for await (const chunk of res.body) {
      if (limit !== null && received + chunk.length > limit) {
        throw new TooLarge(
          `Cannot download ${url}: the server sends more than the expected ${fmtBytes(limit)}; ` +
            `the transfer was stopped at ${fmtBytes(received)} and the partial file removed.`,
        );
      }
      alive();
      sha.update(chunk);
      md5.update(chunk);
      let w = 0;
      while (w < chunk.length) w += await out.write(chunk.subarray(w));
      received += chunk.length;
      opts.onProgress?.(label, received, total);
    }
  } catch (err) {
    if (err instanceof TooLarge) throw new DatasetError(err.message);
    if (opts.signal?.aborted) throw interrupted(url, received);
    throw new DatasetError(
      `Cannot download ${url}: the transfer failed after ${fmtBytes(received)} (${(err as Error).message}).`,
    );
  }
  if (total !== null && received !== total) {
    throw new DatasetError(
      `Cannot download ${url}: received ${fmtBytes(received)}, the server announced ${fmtBytes(total)}.`,
    );
  }
  return { sha256: sha.digest("hex"), md5: md5.digest("hex"), size: received };
}

class TooLarge extends Error {}

function interrupted(url: string, received: number): DatasetError {
  return new DatasetError(
    `Cannot download ${url}: interrupted after ${fmtBytes(received)}; the partial file was removed.`,
  );
}

async function verify(
  file: DownloadFile,
  path: string,
  dest: string,
  got: { sha256: string; md5: string; size: number },
): Promise<string> {
  const fail = (what: string) =>
    new DatasetError(
      `Cannot accept the download of ${dest}: ${what}; the file was rejected and not kept.`,
      dest,
    );
  if (file.size !== null && got.size !== file.size) {
    throw fail(`${fmtBytes(got.size)}, expected ${fmtBytes(file.size)}`);
  }
  if (file.sha256 !== null && got.sha256 !== file.sha256.toLowerCase()) {
    throw fail(`SHA-256 ${got.sha256}, expected ${file.sha256}`);
  }
  if (file.md5 !== null && got.md5 !== file.md5.toLowerCase()) {
    throw fail(`MD5 ${got.md5}, expected ${file.md5}`);
  }
  const parts: string[] = [];
  if (file.size !== null) parts.push("size");
  if (file.sha256 !== null) parts.push("SHA-256");
  if (file.md5 !== null) parts.push("MD5");
  if (file.check) {
    try {
      file.check(await Deno.readFile(path), dest);
    } catch (err) {
      if (err instanceof DatasetError) throw fail(`its format check failed: ${err.message}`);
      throw err;
    }
    parts.push("format parser");
  }
  if (parts.length === 0) throw fail("it has no checksum and no format check to verify it by");
  return `${dest}: verified by ${parts.join(", ")}`;
}

/** Unpacks the verified CIFAR-10 archive into `dataDir/cifar-10-batches-bin/`, checking every batch. */
export async function extractCifar10(archive: string, dataDir: string): Promise<string[]> {
  const gz = await Deno.readFile(archive);
  // gzip's trailer declares the unpacked size (mod 2^32; the archive is far smaller than 4 GiB).
  const declared = gz.length >= 18
    ? new DataView(gz.buffer, gz.byteOffset, gz.byteLength).getUint32(gz.length - 4, true)
    : 0;
  const tar = inflateBounded(
    gz,
    "gzip",
    declared,
    archive,
    archive,
    "its gzip trailer",
    CIFAR10_TAR_MAX_BYTES,
  );
  const wanted = new Set([...CIFAR10_FILES.train, ...CIFAR10_FILES.test, "batches.meta.txt", "readme.html"]
    .map((f) => `cifar-10-batches-bin/${f}`));
  const found = listTar(tar, archive).filter((e) =>
    e.type === "file" && isSafeTarPath(e.name) && wanted.has(e.name)
  );
  const missing = [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]
    .filter((f) => !found.some((e) => e.name === `cifar-10-batches-bin/${f}`));
  if (missing.length) {
    throw new DatasetError(
      `Cannot unpack ${archive}: it lacks cifar-10-batches-bin/${
        missing.join(", ")
      }; expected the official archive.`,
      archive,
    );
  }
  for (const e of found) if (e.name.endsWith(".bin")) parseCifarBinary(e.data, `${archive}:${e.name}`);
  await Deno.mkdir(`${dataDir}/cifar-10-batches-bin`, { recursive: true });
  await removeStaleTemps(`${dataDir}/cifar-10-batches-bin`, PART_PATTERN); // left by earlier versions
  await removeStaleTemps(`${dataDir}/cifar-10-batches-bin`);
  const written: string[] = [];
  for (const e of found) {
    const dest = `${dataDir}/${e.name}`;
    await writeFileAtomic(dest, e.data);
    written.push(dest);
  }
  return written;
}

/**
 * Downloads dataset `name` into `dataDir`. Files already present and valid are kept; datasets that
 * cannot be fetched (ImageNet, the exact subset, embedded MNIST) give a {@link DatasetError} whose
 * message says what to do instead.
 */
export async function downloadDataset(
  name: string,
  dataDir: string,
  opts: DownloadOptions = {},
): Promise<DownloadReport> {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new DatasetError(
      `Cannot download ${JSON.stringify(name)}: unknown name, expected one of ${DATASET_NAMES.join(", ")}.`,
    );
  }
  const entry = OFFICIAL_DOWNLOADS[name as DatasetName];
  const files = opts.files ?? entry.files;
  if (entry.manual && !opts.files) throw new DatasetError(`Cannot download ${name}: ${entry.manual}`);
  const written: string[] = [];
  const skipped: string[] = [];
  const verified: string[] = [];
  for (const file of files) {
    if (await alreadyThere(file, dataDir)) {
      skipped.push(
        file.extract === "cifar10-tar" ? `${dataDir}/cifar-10-batches-bin` : `${dataDir}/${file.dest}`,
      );
      continue;
    }
    verified.push(await downloadFile(file, dataDir, opts));
    const path = `${dataDir}/${file.dest}`;
    if (file.extract === "cifar10-tar") {
      written.push(...await extractCifar10(path, dataDir));
      if (!opts.keepArchive) await Deno.remove(path);
      else written.push(path);
    } else {
      written.push(path);
    }
  }
  return { name: entry.name, written, skipped, verified };
}

/** A file counts as present when it exists and passes every known check (CIFAR-10: every batch parses). */
async function alreadyThere(file: DownloadFile, dataDir: string): Promise<boolean> {
  try {
    if (file.extract === "cifar10-tar") {
      for (const f of [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]) {
        const p = `${dataDir}/cifar-10-batches-bin/${f}`;
        if ((await fileSize(p)) === null) return false;
        parseCifarBinary(await Deno.readFile(p), p, 10000);
      }
      return true;
    }
    const p = `${dataDir}/${file.dest}`;
    if ((await fileSize(p)) === null) return false;
    const bytes = await Deno.readFile(p);
    if (file.size !== null && bytes.length !== file.size) return false;
    if (
      file.sha256 !== null && createHash("sha256").update(bytes).digest("hex") !== file.sha256.toLowerCase()
    ) {
      return false;
    }
    if (file.md5 !== null && createHash("md5").update(bytes).digest("hex") !== file.md5.toLowerCase()) {
      return false;
    }
    if (file.check) file.check(bytes, p);
    return file.check !== undefined || file.sha256 !== null || file.md5 !== null;
  } catch (err) {
    if (err instanceof DatasetError) return false;
    throw err;
  }
}
