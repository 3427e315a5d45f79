/**
 * The one top-level error handler of every command (`deno task train`, `sample`, `data`, `preview`,
 * `reproduce`, `bench`, `bench:train`). Expected failures end with one line on stderr and a non-zero
 * status, never a stack trace:
 *
 * - an {@link OptionError} (a bad option): its message, status 2;
 * - any error whose message starts "Cannot " (the project's convention), a missing permission
 *   (`NotCapable`) or a file-system error raised by Deno: one line, status 1;
 * - anything else: one line with its name and message, status 1; the stack trace only with
 *   `RESFLOW_DEBUG=1` in the environment.
 * @module
 */
import { OptionError } from "./args.ts";

/** The environment variable that makes unexpected errors print their stack trace. */
export const DEBUG_ENV = "RESFLOW_DEBUG";

/** Exit status of an option error. */
export const EXIT_OPTIONS = 2;
/** Exit status of every other failure. */
export const EXIT_FAILURE = 1;

/** How long an interrupted command may take to stop and clean up before it is ended (status 130). */
export const INTERRUPT_GRACE_MS = 3_000;

function debugWanted(): boolean {
  try {
    const v = Deno.env.get(DEBUG_ENV);
    return v !== undefined && v !== "" && v !== "0";
  } catch {
    return false; // no --allow-env for it: no stack traces
  }
}

function oneLine(text: string): string {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").join(" ");
}

/** True for the errors Deno raises for files, the network and permissions. */
function isDenoError(err: unknown): boolean {
  return Object.values(Deno.errors).some((E) => err instanceof E);
}

/**
 * The one line printed for `err` by `command`, and the exit status. Multi-line messages (a dataset
 * error's "where the files come from" hint) are joined into one line.
 */
export function describeFailure(command: string, err: unknown): { line: string; status: number } {
  if (err instanceof OptionError) return { line: oneLine(err.message), status: EXIT_OPTIONS };
  if (err instanceof Error && /^Cannot /.test(err.message)) {
    return { line: oneLine(err.message), status: EXIT_FAILURE };
  }
  if (err instanceof Deno.errors.NotCapable) {
    return {
      line: `Cannot run ${command}: a permission it was not given is needed: ${oneLine(err.message)}` +
        ` (the README's "Permissions" section says what each task may read and write)`,
      status: EXIT_FAILURE,
    };
  }
  if (isDenoError(err)) {
    return { line: `Cannot run ${command}: ${oneLine((err as Error).message)}`, status: EXIT_FAILURE };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    line: `Cannot run ${command}: unexpected ${e.name}: ${oneLine(e.message)}` +
      (debugWanted() ? "" : ` (set ${DEBUG_ENV}=1 to see where)`),
    status: EXIT_FAILURE,
  };
}

/** Prints the line for `err` (and its stack with `RESFLOW_DEBUG=1`) and returns the exit status. */
export function reportFailure(command: string, err: unknown): number {
  const { line, status } = describeFailure(command, err);
  console.error(line);
  if (debugWanted() && err instanceof Error && err.stack) console.error(err.stack);
  return status;
}

/**
 * Mesa's window-system probe, run when WebGPU starts, prints "error: XDG_RUNTIME_DIR is invalid or not
 * set in the environment." twice on a machine without a login session (a batch job, a container),
 * though compute needs no window system. Giving the variable a folder (`/tmp`) when it is unset keeps
 * stderr to the command's own lines. Without --allow-env for it, nothing changes.
 */
export function quietWindowSystemProbe(): void {
  try {
    if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  } catch { /* no permission for the variable */ }
}

/**
 * Runs `main(Deno.args)` and exits with its status; any error thrown, or rejected unhandled later,
 * is reported by {@link reportFailure}. With `interruptible`, Ctrl-C (SIGINT) and SIGTERM abort
 * `signal` instead of ending the process, so the command can stop and remove its temporary files; it
 * is ended (status 130) after {@link INTERRUPT_GRACE_MS} or at a second Ctrl-C.
 */
export async function runMain(
  command: string,
  main: (argv: readonly string[], signal: AbortSignal) => Promise<number>,
  interruptible = false,
): Promise<never> {
  quietWindowSystemProbe();
  const ac = new AbortController();
  const onFatal = (err: unknown) => Deno.exit(reportFailure(command, err));
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    onFatal(e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    onFatal(e.error ?? e.message);
  });
  const onSignal = () => {
    if (ac.signal.aborted) Deno.exit(130);
    ac.abort(new Error(`Cannot finish ${command}: interrupted`));
    // Work that does not watch the signal (a long format check) must not keep the command alive.
    Deno.unrefTimer(setTimeout(() => {
      console.error(`Cannot finish ${command}: interrupted`);
      Deno.exit(130);
    }, INTERRUPT_GRACE_MS));
  };
  for (const sig of interruptible ? ["SIGINT", "SIGTERM"] as const : []) {
    try {
      Deno.addSignalListener(sig, onSignal);
    } catch { /* not supported here */ }
  }
  let status: number;
  try {
    status = await main(Deno.args, ac.signal);
  } catch (err) {
    status = reportFailure(command, err);
  }
  Deno.exit(status);
}
