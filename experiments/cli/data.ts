/**
 * `deno task data <name>`: downloads a dataset from its official address into the data folder
 * (`--data-dir`, else `$RESFLOW_DATA_DIR`, else `./data`) and checks it (size, SHA-256 or MD5 where
 * known, and the format parser), with a progress bar; `cifar10-exact` is derived from the official
 * CIFAR-10 batches (fetched first when missing) and checked by SHA-256. `--list` shows every dataset and
 * where it comes from. Expected failures (a {@link DatasetError}, a network or file-system error, bad options) print
 * their message alone and exit with status 1 (2 for bad options); no stack trace.
 * @module
 */
import {
  DATA_DIR_ENV,
  DATASET_NAMES,
  DatasetError,
  type DatasetName,
  downloadDataset,
  ensureData,
  isDatasetName,
  loadDataset,
  OFFICIAL_DOWNLOADS,
  OFFICIAL_SOURCES,
  resolveDataDir,
} from "../../lib/data/mod.ts";
import { OptionError, type OptionSpec, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { ProgressBar } from "../../lib/cli/progress.ts";

const COMMAND = "deno task data";
const SUMMARY = "Download a dataset from its official address into the data folder and check it.\n" +
  `Names: ${DATASET_NAMES.join(", ")}. Example: deno task data cifar10`;

/** The options of `deno task data`. */
export const DATA_OPTIONS: Record<string, OptionSpec> = {
  "data-dir": {
    type: "string",
    help: `Data folder (default: $${DATA_DIR_ENV}, else ./data)`,
  },
  list: { type: "boolean", help: "List the datasets, where each comes from and how it is checked" },
  "base-url": {
    type: "string",
    help: "Fetch <base-url>/<official file name> instead of the official address (a mirror)",
  },
  "keep-archive": { type: "boolean", help: "Keep the CIFAR-10 archive after unpacking it" },
};

/**
 * Splits `argv` into positional arguments and options for {@link parseOptions} (which takes options
 * only): a word is positional unless it starts with "-" or is the value of a string option.
 */
export function splitPositionals(
  argv: readonly string[],
  options: Record<string, OptionSpec>,
): { positionals: string[]; rest: string[] } {
  const positionals: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    rest.push(a);
    const name = a.startsWith("--") ? a.slice(2) : null;
    if (name !== null && !name.includes("=") && options[name]?.type === "string" && i + 1 < argv.length) {
      rest.push(argv[++i]);
    }
  }
  return { positionals, rest };
}

/** The text of `--list`: each dataset, its official source, its files and how they are checked. */
export function listText(dataDir: string): string {
  const lines = [`Data folder: ${dataDir}`, ""];
  for (const name of DATASET_NAMES) {
    const entry = OFFICIAL_DOWNLOADS[name];
    lines.push(`${name}`);
    // A manual entry's text already names the official source.
    if (name === "cifar10-exact") lines.push(`  derived: ${OFFICIAL_SOURCES[name]}`);
    else if (entry.manual) lines.push(`  not downloaded automatically: ${entry.manual}`);
    else lines.push(`  source: ${OFFICIAL_SOURCES[name]}`);
    for (const f of entry.files) {
      const sums = [
        f.size !== null ? `size ${f.size}` : null,
        f.sha256 ? `SHA-256 ${f.sha256}` : null,
        f.md5 ? `MD5 ${f.md5}` : null,
        f.check ? "format parser" : null,
      ].filter((s) => s !== null);
      lines.push(`  file: ${f.url}`);
      lines.push(
        `    -> ${dataDir}/${f.dest}${f.extract ? " (unpacked)" : ""}; checked by ${sums.join(", ")}`,
      );
      lines.push(`    (${f.note})`);
    }
    lines.push("");
  }
  return lines.join("\n").trimEnd();
}

function mb(bytes: number): number {
  return Math.round(bytes / 1e5) / 10;
}

/** A progress bar per downloaded file (in MB): pass `onProgress` to the downloader, then call `finish`. */
export function downloadBars(): {
  onProgress: (file: string, received: number, total: number | null) => void;
  finish: (stopped?: boolean) => void;
} {
  let bar: ProgressBar | null = null;
  let barFile = "";
  return {
    onProgress: (file, received, total) => {
      if (bar === null || barFile !== file) {
        bar?.finish();
        barFile = file;
        bar = new ProgressBar({ label: file, unit: "MB", total: total === null ? 0 : mb(total) });
      }
      bar.update(mb(received));
    },
    // Ends the bar's line so what follows starts on a line of its own.
    finish: (stopped = false) => {
      bar?.finish(stopped ? "stopped" : undefined);
      bar = null;
    },
  };
}

/** Downloads `name` into `dataDir` with a progress bar per file; prints what was done. */
async function download(
  name: DatasetName,
  dataDir: string,
  baseUrl?: string,
  keepArchive = false,
  signal?: AbortSignal,
): Promise<void> {
  if (name === "mnist") {
    // Nothing to fetch: check that the embedded copy reads.
    const ds = await loadDataset(name, { dataDir });
    console.log(`${name}: nothing to download. ${OFFICIAL_SOURCES[name]}`);
    console.log(`Checked: ${ds.description}`);
    return;
  }
  const bars = downloadBars();
  if (name === "cifar10-exact") {
    // Derived from the official batches (fetched first when missing), checked by SHA-256.
    const [s] = await ensureData([name], { dataDir, download: true, baseUrl, onProgress: bars.onProgress });
    bars.finish(s.state === "missing");
    if (s.state === "missing") throw new DatasetError(s.line);
    console.log(s.line);
    return;
  }
  let report;
  try {
    report = await downloadDataset(name, dataDir, {
      baseUrl,
      keepArchive,
      signal,
      onProgress: bars.onProgress,
    });
  } catch (err) {
    bars.finish(true);
    throw err;
  }
  bars.finish();
  for (const line of report.verified) console.log(line);
  for (const p of report.skipped) console.log(`${p}: already present and valid, not fetched again`);
  console.log(
    `${name}: ${report.written.length} file(s) written, ${report.skipped.length} already present, in ${dataDir}`,
  );
}

/**
 * Runs the command on `argv`; returns the exit status. Failures are thrown for {@link runMain}, which
 * prints their one line; `signal` (Ctrl-C) stops a transfer and removes its temporary file.
 */
export async function main(argv: readonly string[], signal?: AbortSignal): Promise<number> {
  const split = splitPositionals(argv, DATA_OPTIONS);
  const positionals = split.positionals;
  const args = parseOptions(COMMAND + " <name>", SUMMARY, DATA_OPTIONS, split.rest);
  if (args === null) return 0;
  const dataDir = resolveDataDir(args["data-dir"] as string | undefined);
  if (args.list) {
    console.log(listText(dataDir));
    return 0;
  }
  if (positionals.length !== 1) {
    throw new OptionError(
      `Cannot run ${COMMAND}: ${
        positionals.length === 0
          ? "no dataset named"
          : `${positionals.length} names given (${positionals.join(" ")})`
      }, expected one of ${DATASET_NAMES.join(", ")} (or --list, --help).`,
    );
  }
  const name = positionals[0];
  if (!isDatasetName(name)) {
    throw new OptionError(
      `Cannot download ${JSON.stringify(name)}: unknown dataset, expected one of ${
        DATASET_NAMES.join(", ")
      }.`,
    );
  }
  const baseUrl = args["base-url"] as string | undefined;
  if (baseUrl !== undefined && !URL.canParse(baseUrl)) {
    throw new OptionError(`Cannot use --base-url ${JSON.stringify(baseUrl)}: expected an http(s) address`);
  }
  await download(name, dataDir, baseUrl, Boolean(args["keep-archive"]), signal);
  return 0;
}

if (import.meta.main) await runMain(COMMAND, main, true);
