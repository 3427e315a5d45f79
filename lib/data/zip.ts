/**
 * A minimal ZIP reader (enough for NumPy `.npz` files): the central directory, ZIP64 sizes and
 * offsets, stored (method 0) and deflated (method 8) entries, CRC-32 checked. Also a small writer
 * used to make fixtures.
 * @module
 */
import * as zlib from "node:zlib";
import { DatasetError, fmtBytes } from "./errors.ts";
import { inflateBounded, MAX_INFLATED_BYTES } from "./inflate.ts";

/** One entry of a ZIP central directory. */
export interface ZipEntry {
  /** Path inside the archive. */
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  /** General-purpose flag bits (bit 0: encrypted). */
  readonly flags: number;
  /** CRC-32 of the uncompressed data. */
  readonly crc32: number;
  /** Bytes stored in the archive. */
  readonly compressedSize: number;
  /** Bytes after decompression. */
  readonly size: number;
  /** Byte offset of the entry's local header. */
  readonly localOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Lists the entries of a ZIP archive held in memory; `file` names it in errors. */
export function listZip(bytes: Uint8Array, file = "ZIP file"): ZipEntry[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (v.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new DatasetError(
      `Cannot read ${file}: no ZIP end-of-central-directory record (signature 50 4b 05 06) in its last ` +
        `65,557 bytes (${fmtBytes(bytes.length)}, starts [${start}]); expected a ZIP archive (an .npz file ` +
        `starts 50 4b 03 04). The file is truncated or not a ZIP archive.`,
      file,
    );
  }
  let count = v.getUint16(eocd + 10, true);
  let cdSize = v.getUint32(eocd + 12, true);
  let cdOff = v.getUint32(eocd + 16, true);
  if (
    (count === 0xffff || cdSize === 0xffffffff || cdOff === 0xffffffff) && eocd >= 20 &&
    v.getUint32(eocd - 20, true) === EOCD64_LOCATOR
  ) {
    const rec = Number(v.getBigUint64(eocd - 12, true));
    if (rec + 56 > bytes.length || v.getUint32(rec, true) !== EOCD64) {
      throw new DatasetError(
        `Cannot read ${file}: its ZIP64 end record at byte ${rec} is missing or damaged.`,
        file,
      );
    }
    count = Number(v.getBigUint64(rec + 32, true));
    cdSize = Number(v.getBigUint64(rec + 40, true));
    cdOff = Number(v.getBigUint64(rec + 48, true));
  }
  if (cdOff + cdSize > bytes.length) {
    throw new DatasetError(
      `Cannot read ${file}: its central directory (${
        fmtBytes(cdSize)
      } at byte ${cdOff}) lies beyond the end ` +
        `of the file (${fmtBytes(bytes.length)}); the file is truncated.`,
      file,
    );
  }
  const entries: ZipEntry[] = [];
  let p = cdOff;
  for (let k = 0; k < count; k++) {
    if (p + 46 > bytes.length || v.getUint32(p, true) !== CENTRAL) {
      throw new DatasetError(
        `Cannot read ${file}: central directory entry ${k} at byte ${p} is damaged.`,
        file,
      );
    }
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc32 = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let localOffset = v.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information extra field: the 0xFFFFFFFF fields, in order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) (size = Number(v.getBigUint64(q, true))), (q += 8);
        if (compressedSize === 0xffffffff) (compressedSize = Number(v.getBigUint64(q, true))), (q += 8);
        if (localOffset === 0xffffffff) localOffset = Number(v.getBigUint64(q, true));
      }
      e += 4 + len;
    }
    entries.push({ name, method, flags, crc32, compressedSize, size, localOffset });
    p = eEnd + commentLen;
  }
  return entries;
}

/**
 * Returns the uncompressed bytes of `entry`, checking method, bounds, size and CRC-32. A deflated entry
 * is inflated only up to the size the central directory declares, which must be at most `maxBytes`.
 */
export function readZipEntry(
  bytes: Uint8Array,
  entry: ZipEntry,
  file = "ZIP file",
  maxBytes = MAX_INFLATED_BYTES,
): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const where = `${file} (entry ${entry.name})`;
  const lo = entry.localOffset;
  if (lo + 30 > bytes.length || v.getUint32(lo, true) !== LOCAL) {
    throw new DatasetError(
      `Cannot read ${where}: no local header at byte ${lo}; the archive is damaged.`,
      file,
    );
  }
  if (entry.flags & 1) throw new DatasetError(`Cannot read ${where}: the entry is encrypted.`, file);
  const start = lo + 30 + v.getUint16(lo + 26, true) + v.getUint16(lo + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) {
    throw new DatasetError(
      `Cannot read ${where}: its ${
        fmtBytes(entry.compressedSize)
      } of data end at byte ${end}, beyond the end of ` +
        `the file (${fmtBytes(bytes.length)}); the file is truncated.`,
      file,
    );
  }
  const raw = bytes.subarray(start, end);
  let out: Uint8Array;
  if (entry.method === 0) {
    out = raw;
  } else if (entry.method === 8) {
    out = inflateBounded(raw, "raw", entry.size, where, file, "its ZIP directory", maxBytes);
  } else {
    throw new DatasetError(
      `Cannot read ${where}: compression method ${entry.method}, expected 0 (stored) or 8 (deflated).`,
      file,
    );
  }
  if (out.length !== entry.size) {
    throw new DatasetError(
      `Cannot read ${where}: ${fmtBytes(out.length)} of data, expected ${
        fmtBytes(entry.size)
      }; the archive is damaged.`,
      file,
    );
  }
  const crc = crc32(out);
  if (crc !== entry.crc32) {
    throw new DatasetError(
      `Cannot read ${where}: CRC-32 ${hex(crc)}, expected ${hex(entry.crc32)}; the archive is damaged.`,
      file,
    );
  }
  return out;
}

let table: Uint32Array | null = null;

/** CRC-32 (the ZIP/gzip polynomial) of `bytes`, via node:zlib when it has `crc32`, else a table. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  if (typeof native === "function") return native(bytes) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/**
 * Writes a ZIP archive of the given entries, stored or deflated (no ZIP64). Used to write `.npz`
 * fixtures; the layout is that of Python's zipfile.
 */
export function encodeZip(
  entries: readonly { name: string; data: Uint8Array }[],
  deflate = false,
): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = new TextEncoder().encode(name);
    const body = deflate ? new Uint8Array(zlib.deflateRawSync(data)) : data;
    const crc = crc32(data);
    const lh = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, LOCAL, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, deflate ? 8 : 0, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameBytes.length, true);
    lh.set(nameBytes, 30);
    const ch = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, CENTRAL, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    ch.set(nameBytes, 46);
    locals.push(lh, body);
    centrals.push(ch);
    offset += lh.length + body.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, EOCD, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, end];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
