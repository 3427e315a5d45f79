/**
 * Before `deno task reproduce` starts its units: the data folder, when one is given, must exist, and
 * every dataset file the units will read from it is read once and checked. A damaged file then ends the
 * command at once with one line naming it, instead of failing a unit after minutes of other work.
 * @module
 */
import type { Preset } from "../framework/presets.ts";
import { OptionError } from "../../lib/cli/args.ts";
import { isDir } from "../../lib/data/errors.ts";
import { loadDataset, resolveDataDir } from "../../lib/data/mod.ts";
import { findMnistDir } from "../../lib/data/mnist.ts";
import { columnDataset, hasFullCifar10, hasImagenet } from "../density/density_presets.ts";
import { svhnAvailability } from "../hybrid/hybrid_plan.ts";

/** Experiments that read datasets (the others build their inputs themselves). */
export const DATA_EXPERIMENTS: ReadonlySet<string> = new Set(["density", "ablation", "hybrid", "samples"]);

/**
 * Checks the data folder for `experiments` at `preset`: an explicit `dataDir` must be a folder; every
 * dataset found in it that the units use (MNIST files in `mnist/`; the CIFAR-10 set of the preset: the
 * exact subset under `smoke` and `quick`, under `long` the full set when present or else the subset,
 * under `paper` the full set; SVHN; ImageNet at the `paper` preset) is loaded, both splits (ImageNet:
 * its validation file). Returns what was checked.
 */
export async function checkReproduceData(
  dataDir: string | undefined,
  experiments: readonly string[],
  preset: Preset,
): Promise<string[]> {
  if (dataDir !== undefined && !(await isDir(dataDir))) {
    throw new OptionError(`Cannot use --data-dir ${dataDir}: no such folder`);
  }
  if (!experiments.some((e) => DATA_EXPERIMENTS.has(e))) return [];
  const dir = resolveDataDir(dataDir);
  const names: string[] = [];
  if ((await findMnistDir(dir)) !== null) names.push("mnist");
  // The CIFAR-10 set the units of this preset train on (see columnDataset), when it is there.
  if (columnDataset("cifar10", dir, preset) === "cifar10") {
    if (hasFullCifar10(dir)) names.push("cifar10");
  } else if (await isDir(`${dir}/cifar10-exact`)) names.push("cifar10-exact");
  if (svhnAvailability(dir).present) names.push("svhn");
  const checked: string[] = [];
  for (const name of names) {
    for (const split of ["train", "test"] as const) {
      checked.push((await loadDataset(name, { dataDir: dir, split })).description);
    }
  }
  if (preset === "paper") {
    for (const size of [32, 64] as const) {
      if (hasImagenet(dir, size)) {
        checked.push((await loadDataset(`imagenet${size}`, { dataDir: dir, split: "test" })).description);
      }
    }
  }
  return checked;
}
