/**
 * CIFAR-10 in its official binary layout: records of 3,073 bytes (1 label byte 0–9, then 1,024 red,
 * 1,024 green and 1,024 blue bytes, each plane 32×32 row-major), `data_batch_1..5.bin` (10,000
 * records each) and `test_batch.bin` (10,000), in `cifar-10-batches-bin/`. Also the project's exact
 * subset (`train_exact_4000.bin`, `test_exact_1000.bin`): the same layout, fewer records.
 * @module
 */
import { CIFAR10_CLASSES, type Dataset, type Split } from "./dataset.ts";
import { DatasetError, fileSize, fmtBytes, isDir, readDataFile } from "./errors.ts";
import { sourceHint } from "./sources.ts";

/** Bytes per CIFAR-10 binary record: 1 label + 3·32·32 pixels. */
export const CIFAR10_RECORD_BYTES = 3073;

/** Records in each official batch file. */
export const CIFAR10_BATCH_RECORDS = 10000;

/** Official batch files of each split. */
export const CIFAR10_FILES: Readonly<Record<Split, readonly string[]>> = {
  train: ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
  test: ["test_batch.bin"],
};

/** Files and record counts of the exact subset. */
export const CIFAR10_EXACT_FILES: Readonly<Record<Split, { file: string; records: number }>> = {
  train: { file: "train_exact_4000.bin", records: 4000 },
  test: { file: "test_exact_1000.bin", records: 1000 },
};

/** The name results made on the exact subset must carry. */
export const CIFAR10_EXACT_NAME = "CIFAR-10 exact subset (4k train / 1k test)";

/** Decoded records: planar pixels `[N, 3, 32, 32]` and labels. */
export interface CifarRecords {
  /** Pixels `[N, 3, 32, 32]`. */
  readonly images: Uint8Array;
  /** Labels 0–9. */
  readonly labels: Uint8Array;
}

/**
 * Decodes CIFAR-10 binary records. `file` names the source in errors; `records`, when given, is the
 * exact record count expected. Checks the size is a whole number of records and every label is 0–9.
 */
export function parseCifarBinary(bytes: Uint8Array, file: string, records?: number, hint = ""): CifarRecords {
  const tail = hint ? "\n" + hint : "";
  if (
    bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0 ||
    (records !== undefined && bytes.length !== records * CIFAR10_RECORD_BYTES)
  ) {
    const want = records !== undefined
      ? `${fmtBytes(records * CIFAR10_RECORD_BYTES)} (${records} records of ${CIFAR10_RECORD_BYTES} bytes)`
      : `a non-zero multiple of ${CIFAR10_RECORD_BYTES} bytes (records of 1 label + 3,072 pixel bytes)`;
    const state = records !== undefined && bytes.length < records * CIFAR10_RECORD_BYTES
      ? "it is truncated"
      : "it is not a CIFAR-10 binary batch";
    throw new DatasetError(
      `Cannot read ${file}: ${fmtBytes(bytes.length)}, expected ${want}; ${state}.${tail}`,
      file,
    );
  }
  const n = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * CIFAR10_RECORD_BYTES;
    const l = bytes[o];
    if (l > 9) {
      throw new DatasetError(
        `Cannot read ${file}: record ${i} (byte ${o}) has label ${l}, expected 0–9; ` +
          `the file is not in the CIFAR-10 binary layout (CIFAR-100 records are 3,074 bytes).${tail}`,
        file,
      );
    }
    labels[i] = l;
    images.set(bytes.subarray(o + 1, o + CIFAR10_RECORD_BYTES), i * 3072);
  }
  return { images, labels };
}

/** Encodes images `[N,3,32,32]` and labels as CIFAR-10 binary records (the inverse of {@link parseCifarBinary}). */
export function encodeCifarBinary(images: Uint8Array, labels: ArrayLike<number>): Uint8Array {
  const n = labels.length;
  if (images.length !== n * 3072) {
    throw new RangeError(`Cannot encode CIFAR-10 records: ${images.length} pixel bytes for ${n} labels`);
  }
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR10_RECORD_BYTES] = labels[i];
    out.set(images.subarray(i * 3072, (i + 1) * 3072), i * CIFAR10_RECORD_BYTES + 1);
  }
  return out;
}

/** Options of the CIFAR-10 loaders. */
export interface CifarOptions {
  /** Which split (default "train"). */
  readonly split?: Split;
  /** Keep only the first `limit` images (later batch files are then not read). */
  readonly limit?: number;
}

/**
 * Finds the official batch folder under `dir`: `dir/cifar-10-batches-bin` when it exists, else `dir`
 * itself when it holds `test_batch.bin`; otherwise a {@link DatasetError} naming both places.
 */
export async function findCifarDir(dir: string): Promise<string> {
  const nested = `${dir}/cifar-10-batches-bin`;
  if (await isDir(nested)) return nested;
  if (
    (await fileSize(`${dir}/test_batch.bin`)) !== null || (await fileSize(`${dir}/data_batch_1.bin`)) !== null
  ) {
    return dir;
  }
  throw new DatasetError(
    `Cannot load CIFAR-10: no folder ${nested} and no batch files in ${dir}; expected ` +
      `${[...CIFAR10_FILES.train, ...CIFAR10_FILES.test].join(", ")}.\n${sourceHint("cifar10")}`,
    dir,
  );
}

/** Loads the official CIFAR-10 binary batches from `dir` (or `dir/cifar-10-batches-bin`). */
export async function loadCifar10(dir: string, opts: CifarOptions = {}): Promise<Dataset> {
  const split = opts.split ?? "train";
  const folder = await findCifarDir(dir);
  const hint = sourceHint("cifar10");
  const total = CIFAR10_FILES[split].length * CIFAR10_BATCH_RECORDS;
  const count = Math.min(total, opts.limit ?? total);
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  const files: string[] = [];
  let got = 0;
  for (const name of CIFAR10_FILES[split]) {
    if (got >= count) break;
    const path = `${folder}/${name}`;
    const bytes = await readDataFile(
      path,
      `a CIFAR-10 binary batch of ${CIFAR10_BATCH_RECORDS} records (${
        fmtBytes(CIFAR10_BATCH_RECORDS * CIFAR10_RECORD_BYTES)
      })`,
      hint,
    );
    const rec = parseCifarBinary(bytes, path, CIFAR10_BATCH_RECORDS, hint);
    const take = Math.min(CIFAR10_BATCH_RECORDS, count - got);
    images.set(rec.images.subarray(0, take * 3072), got * 3072);
    labels.set(rec.labels.subarray(0, take), got);
    got += take;
    files.push(path);
  }
  return {
    id: "cifar10",
    name: "CIFAR-10",
    description: `CIFAR-10 ${split}: ${count} images 3×32×32 from ${folder}`,
    split,
    shape: [3, 32, 32],
    count,
    images,
    labels,
    nvals: 256,
    classes: CIFAR10_CLASSES,
    files,
  };
}

/** Loads the exact subset (4,000 train / 1,000 test real CIFAR-10 images) from the folder `dir`. */
export async function loadCifar10Exact(dir: string, opts: CifarOptions = {}): Promise<Dataset> {
  const split = opts.split ?? "train";
  const { file, records } = CIFAR10_EXACT_FILES[split];
  const path = `${dir}/${file}`;
  const hint = sourceHint("cifar10-exact");
  const bytes = await readDataFile(
    path,
    `the CIFAR-10 exact subset, ${records} records (${fmtBytes(records * CIFAR10_RECORD_BYTES)})`,
    hint,
  );
  const rec = parseCifarBinary(bytes, path, records, hint);
  const count = Math.min(records, opts.limit ?? records);
  return {
    id: "cifar10-exact",
    name: CIFAR10_EXACT_NAME,
    description: `${CIFAR10_EXACT_NAME}, ${split}: ${count} images 3×32×32 from ${path}`,
    split,
    shape: [3, 32, 32],
    count,
    images: count === records ? rec.images : rec.images.slice(0, count * 3072),
    labels: count === records ? rec.labels : rec.labels.slice(0, count),
    nvals: 256,
    classes: CIFAR10_CLASSES,
    files: [path],
  };
}
