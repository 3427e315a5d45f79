/**
 * Command-line parsing. The one place that names the parser (today `node:util` parseArgs,
 * tomorrow `@std/cli`): swap it here and every command follows.
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

/** A bad command-line option: the message names the option, the value and what was expected. */
export class OptionError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "OptionError";
  }
}

/** A value that reads as a negative number (`-5`, `-1e-3`, `-.5`, `-Infinity`, `-NaN`). */
const NEGATIVE = /^-(\d|\.\d|Infinity$|NaN$)/;

/**
 * Joins a string option and a following negative number into `--name=value`, so that `--seed -1`
 * reaches the option's own check ("expected an integer >= 0") instead of the parser's "ambiguous".
 */
export function joinNegativeValues(
  argv: readonly string[],
  options: Record<string, OptionSpec>,
): string[] {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (o.short) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    if (takesValue.has(a) && next !== undefined && NEGATIVE.test(next)) {
      out.push(a.startsWith("--") ? `${a}=${next}` : `${a}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** One option of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly default?: string | boolean;
  /** One line for --help. */
  readonly help: string;
}

/** Parsed values: strings or booleans by option name. */
export type ParsedArgs = Record<string, string | boolean | undefined>;

/** Builds the --help text of a command. */
export function helpText(command: string, summary: string, options: Record<string, OptionSpec>): string {
  const lines = [`Usage: ${command} [options]`, "", summary, "", "Options:"];
  for (const [name, o] of Object.entries(options)) {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? " <value>" : ""}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${o.default})` : "";
    lines.push(`  ${flag.padEnd(28)} ${o.help}${def}`);
  }
  lines.push(`      --help${" ".repeat(20)} Show this help`);
  return lines.join("\n");
}

/**
 * Parses `argv` against `options`. Unknown options throw an {@link OptionError} listing the valid ones.
 * Returns `null` when --help was given (after printing the help text).
 */
export function parseOptions(
  command: string,
  summary: string,
  options: Record<string, OptionSpec>,
  argv: readonly string[],
): ParsedArgs | null {
  const spec: Record<string, { type: "string" | "boolean"; short?: string; default?: string | boolean }> = {
    help: { type: "boolean" },
  };
  for (const [name, o] of Object.entries(options)) {
    spec[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.default !== undefined ? { default: o.default } : {}),
    };
  }
  let values: ParsedArgs;
  try {
    values = nodeParseArgs({
      args: joinNegativeValues(argv, options),
      options: spec,
      strict: true,
      allowPositionals: false,
    }).values as ParsedArgs;
  } catch (e) {
    const valid = Object.keys(options).map((n) => `--${n}`).join(", ");
    throw new OptionError(
      `Cannot parse the options of ${command}: ${(e as Error).message}. Valid options: ${valid}, --help`,
    );
  }
  if (values.help) {
    console.log(helpText(command, summary, options));
    return null;
  }
  return values;
}
