/**
 * A small JSON Schema validator for the subset of draft 2020-12 the project's schemas use: `type`,
 * `properties`, `required`, `additionalProperties`, `items`, `minItems`, `maxItems`, `enum`, `const`,
 * `minimum`, `maximum`, `exclusiveMinimum`, `minLength`, `anyOf`, `oneOf`, and `$ref` to `#/$defs/...`.
 * Annotations (`$schema`, `$id`, `title`, `description`, `$comment`, `examples`) are ignored; any other
 * keyword is refused, so a schema never silently checks less than it says.
 * @module
 */

/** A JSON Schema (the subset above), as a plain object. */
export type JsonSchema = { readonly [keyword: string]: unknown } | boolean;

/** One validation failure: where (a JSON path such as `$.figures[0].value`) and what. */
export interface ValidationError {
  /** JSON path of the offending value, e.g. `$.figures[0].value`. */
  readonly path: string;
  /** What was expected and what was found. */
  readonly message: string;
}

const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "$comment", "examples", "$defs"]);
const KEYWORDS = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "minLength",
  "anyOf",
  "oneOf",
  "$ref",
]);

/** The JSON type name of a value, as JSON Schema's `type` keyword names it ("integer" is reported as "number"). */
export function jsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value; // "undefined", "function", "bigint" and "symbol" are never valid JSON
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    default:
      return jsonTypeOf(value) === type;
  }
}

/** Appends an object key to a JSON path: `.name` for identifiers, `["odd key"]` otherwise. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function resolveRef(root: JsonSchema, ref: string, at: string): JsonSchema {
  if (!ref.startsWith("#/")) {
    throw new Error(`Cannot validate: $ref "${ref}" at ${at} is not a local "#/..." reference`);
  }
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined;
    if (node === undefined) throw new Error(`Cannot validate: $ref "${ref}" at ${at} points to nothing`);
  }
  return node as JsonSchema;
}

function check(
  value: unknown,
  schema: JsonSchema,
  root: JsonSchema,
  path: string,
  out: ValidationError[],
): void {
  if (schema === true) return;
  if (schema === false) {
    out.push({ path, message: "no value is allowed here" });
    return;
  }
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) {
      throw new Error(
        `Cannot validate: schema keyword "${k}" (schema for ${path}) is not supported by this validator`,
      );
    }
  }
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") check(value, resolveRef(root, s.$ref, path), root, path, out);

  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type as string[] : [s.type as string];
    if (!types.some((t) => hasType(value, t))) {
      const got = typeof value === "number" && !Number.isFinite(value) ? String(value) : jsonTypeOf(value);
      const detail = typeof value === "number" && types.includes("integer") && Number.isFinite(value)
        ? ` ${value} (not an integer)`
        : "";
      out.push({ path, message: `expected ${types.join(" or ")}, got ${got}${detail}` });
      return; // further keywords would only repeat the type error
    }
  }
  if (s.const !== undefined && !deepEqual(value, s.const)) {
    out.push({ path, message: `expected the constant ${show(s.const)}, got ${show(value)}` });
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(value, e))) {
    out.push({ path, message: `expected one of ${s.enum.map(show).join(", ")}, got ${show(value)}` });
  }
  if (typeof value === "number") {
    if (typeof s.minimum === "number" && value < s.minimum) {
      out.push({ path, message: `expected a number >= ${s.minimum}, got ${value}` });
    }
    if (typeof s.maximum === "number" && value > s.maximum) {
      out.push({ path, message: `expected a number <= ${s.maximum}, got ${value}` });
    }
    if (typeof s.exclusiveMinimum === "number" && value <= s.exclusiveMinimum) {
      out.push({ path, message: `expected a number > ${s.exclusiveMinimum}, got ${value}` });
    }
  }
  if (typeof value === "string" && typeof s.minLength === "number" && [...value].length < s.minLength) {
    out.push({
      path,
      message: `expected a string of at least ${s.minLength} characters, got ${show(value)}`,
    });
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === "number" && value.length < s.minItems) {
      out.push({ path, message: `expected at least ${s.minItems} items, got ${value.length}` });
    }
    if (typeof s.maxItems === "number" && value.length > s.maxItems) {
      out.push({ path, message: `expected at most ${s.maxItems} items, got ${value.length}` });
    }
    if (s.items !== undefined) {
      value.forEach((item, i) => check(item, s.items as JsonSchema, root, childPath(path, i), out));
    }
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, JsonSchema>;
    if (Array.isArray(s.required)) {
      for (const name of s.required as string[]) {
        if (!(name in obj)) out.push({ path: childPath(path, name), message: "is required but missing" });
      }
    }
    for (const [name, v] of Object.entries(obj)) {
      if (name in props) check(v, props[name], root, childPath(path, name), out);
      else if (s.additionalProperties === false) {
        out.push({ path: childPath(path, name), message: "is not an allowed property here" });
      } else if (s.additionalProperties !== undefined && s.additionalProperties !== true) {
        check(v, s.additionalProperties as JsonSchema, root, childPath(path, name), out);
      }
    }
  }
  for (const kw of ["anyOf", "oneOf"] as const) {
    const branches = s[kw];
    if (!Array.isArray(branches)) continue;
    const results = branches.map((b: JsonSchema) => {
      const errs: ValidationError[] = [];
      check(value, b, root, path, errs);
      return errs;
    });
    const passing = results.filter((r) => r.length === 0).length;
    if (passing === 0) {
      const detail = results.map((r, i) => `(${i + 1}) ${r.map(formatError).join("; ")}`).join(" | ");
      out.push({ path, message: `matches none of the ${results.length} allowed forms: ${detail}` });
    } else if (kw === "oneOf" && passing > 1) {
      out.push({ path, message: `matches ${passing} of the oneOf forms, expected exactly one` });
    }
  }
}

/** Formats an error as `<path>: <message>`. */
export function formatError(e: ValidationError): string {
  return `${e.path}: ${e.message}`;
}

/**
 * Validates `value` against `schema`; returns every error found (empty when valid), each with the
 * JSON path of the offending value. Throws if the schema uses a keyword outside the supported subset.
 */
export function validate(value: unknown, schema: JsonSchema): ValidationError[] {
  const out: ValidationError[] = [];
  check(value, schema, schema, "$", out);
  return out;
}

/** Validates and throws "Cannot <action>: <n> schema errors: <path>: <message>; ..." when invalid. */
export function assertValid(value: unknown, schema: JsonSchema, action: string): void {
  const errors = validate(value, schema);
  if (errors.length > 0) {
    throw new Error(
      `Cannot ${action}: ${errors.length} schema error${errors.length === 1 ? "" : "s"}: ${
        errors.map(formatError).join("; ")
      }`,
    );
  }
}
