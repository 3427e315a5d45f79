/**
 * Bounded decompression for the dataset readers. Every inflate is limited to the size the file's own
 * header declares (and to {@link MAX_INFLATED_BYTES}), and stops as soon as the output passes that
 * limit, so a decompression bomb (a few MB that inflate to many GB) is refused without ever being
 * materialised.
 * @module
 */
import * as zlib from "node:zlib";
import { DatasetError, fmtBytes } from "./errors.ts";

/**
 * The most bytes any one inflate may produce: 2 GiB. The largest official file read whole, an
 * ImageNet 64×64 training batch, holds about 1.6 GB of pixels.
 */
export const MAX_INFLATED_BYTES = 2 ** 31;

/** The container of deflated data: gzip (IDX `.gz`, `.tar.gz`), zlib (MAT-files) or raw (ZIP). */
export type DeflateKind = "gzip" | "zlib" | "raw";

function inflater(kind: DeflateKind) {
  return kind === "gzip" ? zlib.gunzipSync : kind === "zlib" ? zlib.inflateSync : zlib.inflateRawSync;
}

/**
 * Inflates at most the start of `data`: decodes its first `compressedBytes` bytes and returns what they
 * give (used to read a header before deciding how much the whole may inflate to). Damaged data throws
 * a {@link DatasetError} naming `where`.
 */
export function inflatePrefix(
  data: Uint8Array,
  kind: DeflateKind,
  where: string,
  file: string,
  compressedBytes = 1024,
): Uint8Array {
  try {
    return new Uint8Array(
      inflater(kind)(data.subarray(0, compressedBytes), { finishFlush: zlib.constants.Z_SYNC_FLUSH }),
    );
  } catch (err) {
    throw new DatasetError(
      `Cannot read ${where}: its ${kind === "raw" ? "deflated" : kind} data does not decompress ` +
        `(${(err as Error).message}); the file is damaged or not ${
          kind === "gzip" ? "gzip" : "deflate"
        } data.`,
      file,
    );
  }
}

/**
 * Inflates `data`, refusing (a {@link DatasetError} naming `where`) when the header's declared size
 * `declared` exceeds `cap`, or when the output grows past `declared` (the inflate stops there).
 * `declaredBy` says what declared the size, for the message ("its header", "its ZIP directory").
 */
export function inflateBounded(
  data: Uint8Array,
  kind: DeflateKind,
  declared: number,
  where: string,
  file: string,
  declaredBy: string,
  cap = MAX_INFLATED_BYTES,
): Uint8Array {
  const limit = Math.min(cap, MAX_INFLATED_BYTES);
  if (!(declared <= limit)) {
    throw new DatasetError(
      `Cannot read ${where}: ${declaredBy} declares ${fmtBytes(declared)} once decompressed, more than the ` +
        `limit of ${fmtBytes(limit)} for this file (${fmtBytes(data.length)} compressed); refused as a ` +
        `likely decompression bomb or a damaged file.`,
      file,
    );
  }
  try {
    return new Uint8Array(inflater(kind)(data, { maxOutputLength: Math.max(1, declared) }));
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DatasetError(
        `Cannot read ${where}: it decompresses to more than the ${
          fmtBytes(declared)
        } ${declaredBy} declares; ` +
          `decompression was stopped there (a decompression bomb or a damaged file).`,
        file,
      );
    }
    throw new DatasetError(
      `Cannot read ${where}: its ${kind === "raw" ? "deflated" : kind} data does not decompress ` +
        `(${(err as Error).message}); the file is damaged or truncated.`,
      file,
    );
  }
}
