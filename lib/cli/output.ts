/**
 * The output folder of a command: created, checked writable before any work starts, and cleared of
 * temporary files that a killed earlier run left there.
 * @module
 */
import { removeStaleTemps, tempNameFor } from "../artifacts/atomic.ts";

function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotCapable) {
    return `this task is not allowed to write there (${err.message}; the README's "Permissions" section ` +
      `says where each task may write)`;
  }
  if (err instanceof Deno.errors.NotADirectory || err instanceof Deno.errors.AlreadyExists) {
    return "it, or a folder above it, is a regular file, expected a folder";
  }
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied (the folder is not writable)";
  if (err instanceof Deno.errors.NotFound) return "a folder above it does not exist";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates `dir` (and its parents) and checks a file can be written in it, before any work starts;
 * then removes the temporary files of a dead earlier run (see `removeStaleTemps`), in `dir` and in its
 * folders down to `depth` levels (the per-unit work folders of `reproduce`). Failures throw
 * "Cannot use <option> <dir>: <why>". Returns the stale temporaries removed.
 */
export async function prepareOutputDir(dir: string, option = "--out", depth = 0): Promise<string[]> {
  if (dir.trim() === "") {
    throw new Error(`Cannot use ${option} ${JSON.stringify(dir)}: expected a folder path`);
  }
  const fail = (err: unknown) => new Error(`Cannot use ${option} ${dir}: ${reason(err)}`, { cause: err });
  try {
    const st = await Deno.stat(dir);
    if (!st.isDirectory) throw new Deno.errors.NotADirectory(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw fail(err);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err2) {
      throw fail(err2);
    }
  }
  const probe = tempNameFor(`${dir}/.write-check`);
  try {
    await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
    await Deno.remove(probe);
  } catch (err) {
    throw fail(err);
  }
  return await cleanTree(dir, depth);
}

async function cleanTree(dir: string, depth: number): Promise<string[]> {
  const removed = await removeStaleTemps(dir);
  if (depth <= 0) return removed;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) removed.push(...await cleanTree(`${dir}/${e.name}`, depth - 1));
    }
  } catch { /* unreadable: nothing of ours to clean there */ }
  return removed;
}
