/**
 * Command-line parsing. The one place that names the parser (today `node:util` parseArgs,
 * tomorrow `@std/cli`): swap it here and every command follows.
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

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
 * Parses `argv` against `options`. Unknown options throw an error listing the valid ones.
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
    values = nodeParseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false })
      .values as ParsedArgs;
  } catch (e) {
    const valid = Object.keys(options).map((n) => `--${n}`).join(", ");
    throw new Error(
      `Cannot parse the options of ${command}: ${(e as Error).message}. Valid options: ${valid}, --help`,
    );
  }
  if (values.help) {
    console.log(helpText(command, summary, options));
    return null;
  }
  return values;
}
