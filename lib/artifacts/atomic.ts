/**
 * Atomic file writes: the bytes go to a temporary file in the target's directory, are flushed to
 * disk, and the temporary file is renamed over the target. A run killed at any point leaves either
 * the old file or the new one, never a half-written file (rename is atomic within one file system).
 * @module
 */

/** What {@link writeFileAtomic} accepts: bytes, text, or chunks produced by a (possibly async) generator. */
export type AtomicData = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Options of the atomic writers. */
export interface AtomicWriteOptions {
  /** Flush the file's data to disk before the rename (default true). */
  readonly sync?: boolean;
  /** File mode of the new file (default 0o644, before the umask). */
  readonly mode?: number;
}

function dirnameOf(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The temporary name used for `path`: a hidden file beside it, ending in `.tmp`. */
export function tempNameFor(path: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  const dir = dirnameOf(path);
  const prefix = dir === "." && !path.startsWith("./") ? "" : `${dir === "/" ? "" : dir}/`;
  return `${prefix}.${basenameOf(path)}.${Deno.pid}.${rand[0].toString(16)}${rand[1].toString(16)}.tmp`;
}

/** Names {@link tempNameFor} gives: `.<name>.<pid>.<hex>.tmp`; group 1 is the writing process's id. */
export const ATOMIC_TEMP_PATTERN: RegExp = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/;

/**
 * A temporary file younger than this is never removed as abandoned: it covers the instant between a
 * writer creating its file and taking the lock.
 */
export const STALE_TEMP_AGE_MS = 1_000;

/**
 * True when the temporary file `path`, written by process `pid` and last modified at `mtime`, is
 * abandoned: another process wrote it, it is older than {@link STALE_TEMP_AGE_MS}, and nobody holds
 * its lock. Writers (`writeFileAtomic`, the downloader) lock their temporary file while writing it,
 * and the system releases the lock when a process dies, even by kill -9; no permission beyond reading
 * the folder is needed to tell a live writer from a dead one.
 */
export async function isAbandonedTemp(path: string, pid: number, mtime: Date | null): Promise<boolean> {
  if (pid === Deno.pid) return false;
  if (mtime !== null && Date.now() - mtime.getTime() < STALE_TEMP_AGE_MS) return false;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return false; // gone already, or not ours to read
  }
  try {
    return await file.tryLock(true);
  } catch {
    return false;
  } finally {
    file.close();
  }
}

/**
 * Removes, from `dir` (not recursively), the temporary files whose names match `pattern` (group 1: the
 * writing process's id) and that {@link isAbandonedTemp} finds abandoned: what a run killed mid-write
 * (kill -9, a power cut) left behind. Returns the paths removed; a missing folder removes nothing.
 */
export async function removeStaleTemps(
  dir: string,
  pattern: RegExp = ATOMIC_TEMP_PATTERN,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed; // not there (yet), or not a folder: nothing of ours to clean
  }
  for (const e of entries) {
    const m = e.isFile ? pattern.exec(e.name) : null;
    if (!m) continue;
    const path = `${dir}/${e.name}`;
    try {
      if (await isAbandonedTemp(path, Number(m[1]), (await Deno.stat(path)).mtime)) {
        await Deno.remove(path);
        removed.push(path);
      }
    } catch { /* removed meanwhile, or not ours to remove */ }
  }
  return removed;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Writes `data` to `path` atomically, creating missing parent directories. On any failure (the data
 * generator throws, the disk is full, the target cannot be replaced) the temporary file is removed, the
 * previous content of `path` is left untouched, and an error "Cannot write <path>: ..." is thrown.
 */
export async function writeFileAtomic(
  path: string,
  data: AtomicData,
  options: AtomicWriteOptions = {},
): Promise<void> {
  if (basenameOf(path) === "") {
    throw new Error(`Cannot write ${path}: the path names a directory, not a file`);
  }
  try {
    await Deno.mkdir(dirnameOf(path), { recursive: true });
  } catch (e) {
    throw new Error(`Cannot write ${path}: cannot create its directory ${dirnameOf(path)}: ${describe(e)}`);
  }
  const tmp = tempNameFor(path);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: options.mode ?? 0o644 });
    await file.lock(true); // held until renamed and closed: tells removeStaleTemps this write is alive
    if (typeof data === "string") await writeAll(file, new TextEncoder().encode(data));
    else if (data instanceof Uint8Array) await writeAll(file, data);
    else {
      for await (const chunk of data) {
        if (!(chunk instanceof Uint8Array)) {
          throw new Error(`a chunk of the data is ${typeof chunk}, expected a Uint8Array`);
        }
        await writeAll(file, chunk);
      }
    }
    if (options.sync ?? true) await file.syncData();
    // Renamed while still open and locked: removeStaleTemps never finds this file unlocked.
    await Deno.rename(tmp, path);
    file.close();
    file = undefined;
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      await Deno.remove(tmp);
    } catch { /* never created, or already gone */ }
    throw new Error(`Cannot write ${path}: ${describe(e)}`, { cause: e });
  }
}

/** Synchronous twin of {@link writeFileAtomic}, for bytes or text. */
export function writeFileAtomicSync(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): void {
  if (basenameOf(path) === "") {
    throw new Error(`Cannot write ${path}: the path names a directory, not a file`);
  }
  try {
    Deno.mkdirSync(dirnameOf(path), { recursive: true });
  } catch (e) {
    throw new Error(`Cannot write ${path}: cannot create its directory ${dirnameOf(path)}: ${describe(e)}`);
  }
  const tmp = tempNameFor(path);
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true, mode: options.mode ?? 0o644 });
    file.lockSync(true); // held until renamed and closed: tells removeStaleTemps this write is alive
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    if (options.sync ?? true) file.syncDataSync();
    Deno.renameSync(tmp, path); // while still open and locked, as writeFileAtomic
    file.close();
    file = undefined;
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* never created, or already gone */ }
    throw new Error(`Cannot write ${path}: ${describe(e)}`, { cause: e });
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * Finds the first number in `value` that JSON cannot represent (NaN, ±Infinity), returning its JSON
 * path (`$.a[2].b`), or `null` when there is none. `JSON.stringify` would silently write `null` there.
 */
export function findNonFinite(value: unknown, path = "$"): string | null {
  if (typeof value === "number") return Number.isFinite(value) ? null : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findNonFinite(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return null;
  }
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = findNonFinite(
        v,
        `${path}${/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`}`,
      );
      if (p) return p;
    }
  }
  return null;
}

/**
 * Writes `value` as pretty-printed JSON (2-space indent, trailing newline) atomically. Refuses values
 * holding NaN or ±Infinity, naming the JSON path of the first one.
 */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const bad = findNonFinite(value);
  if (bad) throw new Error(`Cannot write ${path}: ${bad} is not a finite number (JSON cannot hold it)`);
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", options);
}
