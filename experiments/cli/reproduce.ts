/**
 * `deno task reproduce`: regenerates the paper's tables and figures at a preset, writes versioned JSON
 * and PNG artifacts under `results/<version>/<preset>/`, builds REPORT.md and prints every cell beside
 * the published number.
 *
 *   deno task reproduce                          # the quick preset, every experiment
 *   deno task reproduce --preset smoke --only memory,density
 *   deno task reproduce --preset paper --shard 3/8   # one job of a job array
 *   deno task reproduce --preset paper --merge       # build the report from the shards' artifacts
 *
 * Before the units run, the datasets they need are fetched into the data folder when missing (official
 * files, checked; the exact CIFAR-10 subset derived from them) unless `--no-download` is given.
 * @module
 */
import { gitCommit } from "../../lib/artifacts/artifact.ts";
import { ensureData } from "../../lib/data/ensure.ts";
import { type Preset, PRESETS } from "../framework/presets.ts";
import { OptionError, parseOptions } from "../../lib/cli/args.ts";
import { runMain } from "../../lib/cli/main.ts";
import { prepareOutputDir } from "../../lib/cli/output.ts";
import { checkReproduceData } from "./data_preflight.ts";
import { DEVICE_HELP, openDevice, parseDeviceOption } from "../../lib/cli/device_option.ts";
import denoJson from "../../deno.json" with { type: "json" };
import type { Experiment } from "../framework/experiment.ts";
import { mergeExperiments, planUnits, presetDir, type RunSettings, runUnits } from "../framework/runner.ts";
import { writeReport } from "../framework/report.ts";
import { downloadBars } from "./data.ts";
import { EXPERIMENTS } from "../registry.ts";

const OPTIONS = {
  preset: { type: "string" as const, default: "quick", help: `one of ${PRESETS.join(", ")}` },
  only: { type: "string" as const, help: "comma-separated experiments to run (default: all)" },
  "data-dir": { type: "string" as const, help: "folder with datasets (default: $RESFLOW_DATA_DIR)" },
  seed: { type: "string" as const, default: "0", help: "base seed" },
  resume: { type: "boolean" as const, help: "skip finished units and resume units from their checkpoints" },
  shard: { type: "string" as const, help: "i/n: run only this job's share of the units (1-based i)" },
  merge: { type: "boolean" as const, help: "only merge existing unit artifacts and write the report" },
  device: {
    type: "string" as const,
    default: "auto",
    help: DEVICE_HELP,
  },
  results: { type: "string" as const, default: "results", help: "results root folder" },
  "no-download": {
    type: "boolean" as const,
    help: "never fetch a missing dataset (its units then name the command that fetches it)",
  },
};

/** Parses `--shard i/n` (1-based i) into a 0-based pair. */
export function parseShard(s: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || i < 1 || i > n) {
    throw new OptionError(`Cannot use --shard ${s}: expected i/n with 1 <= i <= n`);
  }
  return [i - 1, n];
}

/** Selects experiments by name; unknown names are an error listing the valid ones. */
export function selectExperiments(all: readonly Experiment[], only: string | undefined): Experiment[] {
  if (!only) return [...all];
  const names = only.split(",").map((s) => s.trim()).filter((s) => s);
  const unknown = names.filter((n) => !all.some((e) => e.name === n));
  if (unknown.length) {
    throw new OptionError(
      `Cannot run --only ${unknown.join(",")}: unknown experiment; valid: ${
        all.map((e) => e.name).join(", ")
      }`,
    );
  }
  return all.filter((e) => names.includes(e.name));
}

/** Runs the command; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseOptions(
    "deno task reproduce",
    "Regenerate the paper's tables and figures; artifacts and REPORT.md go to results/<version>/<preset>/.",
    OPTIONS,
    argv,
  );
  if (args === null) return 0;
  const preset = String(args.preset) as Preset;
  if (!PRESETS.includes(preset)) {
    throw new OptionError(`Cannot use --preset ${preset}: expected one of ${PRESETS.join(", ")}`);
  }
  const experiments = selectExperiments(EXPERIMENTS, args.only as string | undefined);
  if (experiments.length === 0) {
    console.error("No experiments are registered yet: nothing was computed and no results were written.");
    return 2;
  }
  const seed = Number(args.seed);
  if (!Number.isInteger(seed) || seed < 0 || String(args.seed).trim() === "") {
    throw new OptionError(`Cannot use --seed ${JSON.stringify(args.seed)}: expected an integer >= 0`);
  }
  const deviceKind = parseDeviceOption(args.device);
  const dataDir = (args["data-dir"] as string | undefined) ?? Deno.env.get("RESFLOW_DATA_DIR");
  const suiteVersion = denoJson.version;
  const resultsDir = String(args.results);
  const shard = args.shard ? parseShard(String(args.shard)) : null;
  const checked = await checkReproduceData(
    args["data-dir"] as string | undefined,
    experiments.map((e) => e.name),
    preset,
  );
  for (const c of checked) console.log(`Data checked: ${c}`);
  // Units keep checkpoints in work folders below the preset folder: a killed run's temporaries go too.
  const stale = await prepareOutputDir(`${resultsDir}/${suiteVersion}/${preset}`, "--results", 4);
  if (stale.length) console.log(`Removed ${stale.length} temporary file(s) of an interrupted run`);
  const device = await openDevice(deviceKind);
  const settings: RunSettings = {
    resultsDir,
    suiteVersion,
    preset,
    seed,
    dataDir,
    resume: Boolean(args.resume),
    shard,
    device,
    log: (l) => console.log(l),
  };
  const t0 = performance.now();
  if (!args.merge) {
    const bars = downloadBars();
    const needed = experiments.flatMap((e) => e.datasets?.(preset, { dataDir }) ?? []);
    const data = await ensureData(needed, {
      dataDir,
      download: !args["no-download"],
      onProgress: bars.onProgress,
    });
    bars.finish();
    for (const s of data) if (s.state !== "embedded") console.log(`Data: ${s.line}`);
    const planned = planUnits(experiments, settings);
    console.log(
      `Reproducing ${
        experiments.map((e) => e.name).join(", ")
      } at preset "${preset}" on ${device.backend.description}: ${planned.length} units${
        shard ? ` (shard ${shard[0] + 1}/${shard[1]})` : ""
      }, results in ${presetDir(settings)}`,
    );
    await runUnits(planned, settings);
    if (shard) {
      console.log(
        `Shard done in ${
          ((performance.now() - t0) / 60000).toFixed(1)
        } min; run with --merge once every shard has finished.`,
      );
      return 0;
    }
  }
  const merged = await mergeExperiments(experiments, {
    ...settings,
    adapter: device.backend.description,
    backend: device.name,
  });
  const text = await writeReport(presetDir(settings), merged, {
    suiteVersion,
    preset,
    date: new Date().toISOString(),
    commit: await gitCommit(),
    adapter: device.backend.description,
  });
  console.log(text);
  console.log(
    `\nReport: ${presetDir(settings)}/REPORT.md (${((performance.now() - t0) / 60000).toFixed(1)} min)`,
  );
  return merged.every((m) => m.artifact?.complete) ? 0 : 1;
}

if (import.meta.main) await runMain("deno task reproduce", main);
