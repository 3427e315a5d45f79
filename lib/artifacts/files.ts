/**
 * File-system questions asked before reading or resuming: does a path exist, is it a regular file.
 * @module
 */

/**
 * Whether `path` exists (file, folder or anything else). Only "not found" means false; any other error
 * (no permission, for example) is thrown, so a file that cannot be checked is never taken as absent.
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Whether `path` is a regular file (following links); false when it is absent or cannot be read. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** {@link isFile}, synchronously. */
export function isFileSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
