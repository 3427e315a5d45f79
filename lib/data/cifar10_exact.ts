/**
 * Derives the project's exact CIFAR-10 subset (`train_exact_4000.bin`, `test_exact_1000.bin`,
 * `batches.meta.txt`) from the official CIFAR-10 binary batches: the first 4,000 records of
 * `data_batch_1.bin` and the first 1,000 of `test_batch.bin`, byte for byte. Each derived file is
 * checked against the SHA-256 of the project's reference copy before anything is written, and written
 * through a temporary name, so a folder never holds a wrong or half-written subset.
 * @module
 */
import { createHash } from "node:crypto";
import { CIFAR10_EXACT_FILES, CIFAR10_RECORD_BYTES, findCifarDir, parseCifarBinary } from "./cifar10.ts";
import { CIFAR10_CLASSES, type Split } from "./dataset.ts";
import { DatasetError, fmtBytes, readDataFile } from "./errors.ts";
import { sourceHint } from "./sources.ts";

/**
 * SHA-256 of the subset files. Source: the project's reference copy, `shared/data/cifar10-exact/SOURCE.md`
 * (recorded there, and recomputed with `sha256sum` on `shared/data/cifar10-exact/*.bin`: the same values).
 */
export const CIFAR10_EXACT_SHA256: Readonly<Record<Split, string>> = {
  train: "0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330",
  test: "8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5",
};

/** The official batch each subset file is cut from (its first records, same order). */
export const CIFAR10_EXACT_SOURCE_BATCH: Readonly<Record<Split, string>> = {
  train: "data_batch_1.bin",
  test: "test_batch.bin",
};

/** The class list written beside the subset, as in the reference copy: one name a line, label order. */
export const CIFAR10_EXACT_META = CIFAR10_CLASSES.join("\n") + "\n";

/** Options of {@link deriveCifar10Exact}. */
export interface DeriveExactOptions {
  /** Folder the subset is written to (default `<dataDir>/cifar10-exact`). */
  readonly outDir?: string;
  /** Expected SHA-256 per split instead of {@link CIFAR10_EXACT_SHA256} (tests with synthetic batches). */
  readonly sha256?: Readonly<Record<Split, string>>;
}

/** Hex SHA-256 of `bytes`. */
function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Cuts the exact subset out of the official batches found under `dataDir` (in `cifar-10-batches-bin/`
 * or `dataDir` itself) and writes it to `<dataDir>/cifar10-exact/`; returns the paths written. Throws a
 * {@link DatasetError} naming the batch when it is missing, too short, not CIFAR-10 records, or when
 * the cut's SHA-256 differs from the reference (then nothing is written).
 */
export async function deriveCifar10Exact(dataDir: string, opts: DeriveExactOptions = {}): Promise<string[]> {
  const src = await findCifarDir(dataDir);
  const outDir = opts.outDir ?? `${dataDir}/cifar10-exact`;
  const hint = sourceHint("cifar10");
  const files: { path: string; data: Uint8Array }[] = [];
  for (const split of ["train", "test"] as const) {
    const { file, records } = CIFAR10_EXACT_FILES[split];
    const batch = `${src}/${CIFAR10_EXACT_SOURCE_BATCH[split]}`;
    const bytes = await readDataFile(batch, "an official CIFAR-10 binary batch", hint);
    const need = records * CIFAR10_RECORD_BYTES;
    if (bytes.length < need) {
      throw new DatasetError(
        `Cannot derive ${outDir}/${file}: ${batch} holds ${fmtBytes(bytes.length)}, expected at least ` +
          `${fmtBytes(need)} (${records} records); it is not the official batch.\n${hint}`,
        batch,
      );
    }
    const cut = bytes.subarray(0, need);
    parseCifarBinary(cut, batch, records, hint);
    const got = sha256Hex(cut);
    const want = (opts.sha256 ?? CIFAR10_EXACT_SHA256)[split];
    if (got !== want) {
      throw new DatasetError(
        `Cannot derive ${outDir}/${file}: the first ${records} records of ${batch} have SHA-256 ${got}, ` +
          `expected ${want}; it is not the official batch (nothing was written).\n${hint}`,
        batch,
      );
    }
    files.push({ path: `${outDir}/${file}`, data: cut });
  }
  files.push({ path: `${outDir}/batches.meta.txt`, data: new TextEncoder().encode(CIFAR10_EXACT_META) });
  await Deno.mkdir(outDir, { recursive: true });
  for (const { path, data } of files) {
    const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.part`;
    try {
      await Deno.writeFile(tmp, data);
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }
  return files.map((f) => f.path);
}
