/**
 * A tiny tar reader (POSIX ustar and old GNU archives, with GNU long names and pax `path` records),
 * enough to unpack the official CIFAR-10 archive, and a writer for fixtures. Header checksums are
 * verified and the end-of-archive blocks are required, so a truncated archive is reported.
 * @module
 */
import { DatasetError, fmtBytes } from "./errors.ts";

/** One member of a tar archive. */
export interface TarEntry {
  /** Path inside the archive. */
  readonly name: string;
  /** "file", "dir" or "other" (links, devices: never extracted). */
  readonly type: "file" | "dir" | "other";
  /** Size in bytes. */
  readonly size: number;
  /** The member's bytes (a view into the archive). */
  readonly data: Uint8Array;
}

const BLOCK = 512;

/** Lists the members of an (uncompressed) tar archive held in memory; `file` names it in errors. */
export function listTar(bytes: Uint8Array, file = "tar archive"): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | null = null;
  while (true) {
    if (off + BLOCK > bytes.length) {
      throw new DatasetError(
        `Cannot read ${file}: it ends at byte ${bytes.length} without the end-of-archive blocks (expected a ` +
          `512-byte header or zero block at byte ${off}); the archive is truncated.`,
        file,
      );
    }
    const h = bytes.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return out;
    const want = octal(h, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (want !== sum) {
      throw new DatasetError(
        `Cannot read ${file}: the header at byte ${off} has checksum ${sum}, expected ${want}; ` +
          `${off === 0 ? "it is not a tar archive" : "the archive is damaged"}.`,
        file,
      );
    }
    const size = sizeField(h);
    const type = String.fromCharCode(h[156] || 0x30);
    const dataOff = off + BLOCK;
    if (dataOff + size > bytes.length) {
      throw new DatasetError(
        `Cannot read ${file}: member at byte ${off} needs ${fmtBytes(size)} but the archive ends at byte ` +
          `${bytes.length}; the archive is truncated.`,
        file,
      );
    }
    const data = bytes.subarray(dataOff, dataOff + size);
    off = dataOff + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L") {
      longName = cstr(data);
      continue;
    }
    if (type === "x") {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (path) longName = path[1];
      continue;
    }
    if (type === "g") continue;
    let name = cstr(h.subarray(0, 100));
    const magic = cstr(h.subarray(257, 263));
    if (magic === "ustar") {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== null) {
      name = longName;
      longName = null;
    }
    const kind = type === "0" || type === "7" ? "file" : type === "5" ? "dir" : "other";
    out.push({ name, type: kind, size, data });
  }
}

/** True when a member path is safe to extract: relative, no `..` segments, no drive letters. */
export function isSafeTarPath(name: string): boolean {
  if (name.startsWith("/") || name.includes("\\") || /^[a-zA-Z]:/.test(name)) return false;
  return name.split("/").every((seg) => seg !== "..");
}

/** Writes a ustar archive of regular files (names ≤ 100 bytes). Used to write fixtures. */
export function encodeTar(entries: readonly { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const { name, data } of entries) {
    const h = new Uint8Array(BLOCK);
    const enc = new TextEncoder();
    h.set(enc.encode(name).subarray(0, 100), 0);
    h.set(enc.encode("0000644\0"), 100);
    h.set(enc.encode("0000000\0"), 108);
    h.set(enc.encode("0000000\0"), 116);
    h.set(enc.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
    h.set(enc.encode("00000000000\0"), 136);
    h[156] = 0x30;
    h.set(enc.encode("ustar\0" + "00"), 257);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    const body = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK);
    body.set(data);
    parts.push(h, body);
  }
  parts.push(new Uint8Array(2 * BLOCK));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

function octal(b: Uint8Array, off: number, len: number): number {
  const s = cstr(b.subarray(off, off + len)).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function sizeField(h: Uint8Array): number {
  if (h[124] & 0x80) {
    // GNU base-256 encoding for sizes ≥ 8 GiB.
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i];
    return n;
  }
  return octal(h, 124, 12);
}
