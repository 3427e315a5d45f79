/**
 * `deno task convert FILE.pth OUT.safetensors`: rewrites an authors' PyTorch checkpoint as a checkpoint
 * of this suite (lib/official/convert.ts), which every other command reads (`deno task evaluate`,
 * `deno task sample`) with the same results as the original file.
 * @module
 */
import { runMain } from "../../lib/cli/main.ts";
import denoConfig from "../../deno.json" with { type: "json" };
import { createDevice } from "../../lib/engine/devices.ts";
import { OptionError, type OptionSpec, parseOptions } from "../../lib/cli/args.ts";
import { convertOfficialCheckpoint } from "../../lib/official/convert.ts";

const COMMAND = "deno task convert FILE.pth OUT.safetensors";
const SUMMARY = "Convert an authors' PyTorch checkpoint (.pth) into this suite's checkpoint format.";

/** The options of `deno task convert` (the two files may also be given as the first two arguments). */
export const CONVERT_OPTIONS: Record<string, OptionSpec> = {
  checkpoint: { type: "string", help: "The authors' checkpoint (.pth), or give it as the first argument" },
  out: { type: "string", help: "The safetensors file to write, or give it as the second argument" },
};

/** Splits leading positional arguments (at most two) from the options. */
export function splitPositionals(argv: readonly string[]): { positionals: string[]; rest: string[] } {
  const positionals: string[] = [];
  let i = 0;
  while (i < argv.length && positionals.length < 2 && !argv[i].startsWith("-")) positionals.push(argv[i++]);
  return { positionals, rest: argv.slice(i) };
}

/** Parses `argv`, converts, prints what was written; returns the exit status (failures are thrown for {@link runMain}). */
export async function main(argv: readonly string[]): Promise<number> {
  const { positionals, rest } = splitPositionals(argv);
  const args = parseOptions(COMMAND, SUMMARY, CONVERT_OPTIONS, rest);
  if (args === null) return 0;
  const input = positionals[0] ?? (args.checkpoint as string | undefined);
  const out = positionals[1] ?? (args.out as string | undefined);
  if (!input || !out) {
    throw new OptionError(`Cannot convert: give the input and output files (usage: ${COMMAND})`);
  }
  if (!out.endsWith(".safetensors")) {
    throw new OptionError(`Cannot convert to ${out}: expected an output name ending in .safetensors`);
  }
  const r = await convertOfficialCheckpoint(input, out, {
    device: await createDevice("cpu"),
    suiteVersion: denoConfig.version,
  });
  console.log(
    `Wrote ${r.out}: ${r.parameters} parameters${
      r.ema ? " and their EMA" : " (no EMA in the file)"
    }, ${r.dataset} model, from a ${r.format}-format checkpoint`,
  );
  return 0;
}

if (import.meta.main) await runMain(COMMAND, main);
