/**
 * The one error type of the dataset readers, and the file helpers that raise it.
 *
 * Expected failures (a missing folder, a truncated file, a wrong magic number) are thrown as
 * {@link DatasetError}: its message says which file, what was found, what was expected and where the
 * official files come from, so a command-line tool prints `err.message` alone, with no stack trace.
 * @module
 */

/** An expected failure to find or read a dataset. Print its message only; the stack is noise. */
export class DatasetError extends Error {
  /** The file or folder concerned, when there is one. */
  readonly path?: string;

  /** Builds the error; `path` names the file or folder concerned. */
  constructor(message: string, path?: string) {
    super(message);
    this.name = "DatasetError";
    this.path = path;
  }
}

/** Formats a byte count with thousands separators, for messages. */
export function fmtBytes(n: number): string {
  return `${n.toLocaleString("en-US")} bytes`;
}

/**
 * Reads a whole regular file (never a device or FIFO), turning "not found", "is a folder" and permission
 * failures into a {@link DatasetError} that names the file, says what it should hold, and appends `hint`.
 */
export async function readDataFile(path: string, what: string, hint = ""): Promise<Uint8Array> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (err) {
    throw fileError(err, path, what, hint);
  }
  if (st.isDirectory) throw fileError(new Deno.errors.IsADirectory(path), path, what, hint);
  if (!st.isFile) {
    // A device (/dev/zero), FIFO or socket would be read forever.
    throw new DatasetError(
      `Cannot read ${path}: it is not a regular file (a device, FIFO or socket), expected ${what}.`,
      path,
    );
  }
  try {
    return await Deno.readFile(path);
  } catch (err) {
    throw fileError(err, path, what, hint);
  }
}

/** Returns the size of a file, or null when it does not exist (any other failure is a {@link DatasetError}). */
export async function fileSize(path: string): Promise<number | null> {
  try {
    const st = await Deno.stat(path);
    return st.isFile ? st.size : null;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw fileError(err, path, "a file", "");
  }
}

/** True when `path` is an existing folder. */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

function fileError(err: unknown, path: string, what: string, hint: string): Error {
  const tail = hint ? "\n" + hint : "";
  if (err instanceof Deno.errors.NotFound) {
    return new DatasetError(`Cannot read ${path}: no such file (expected ${what}).${tail}`, path);
  }
  if (err instanceof Deno.errors.IsADirectory) {
    return new DatasetError(`Cannot read ${path}: it is a folder, expected ${what}.${tail}`, path);
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return new DatasetError(
      `Cannot read ${path}: permission denied (run with --allow-read; expected ${what}).${tail}`,
      path,
    );
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new DatasetError(`Cannot read ${path}: ${msg} (expected ${what}).${tail}`, path);
}
