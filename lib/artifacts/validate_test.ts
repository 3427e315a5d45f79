import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { assertValid, formatError, type JsonSchema, validate } from "./validate.ts";

const PERSON: JsonSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "age"],
  properties: {
    name: { type: "string", minLength: 1 },
    age: { type: "integer", minimum: 0 },
    tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 2 },
    kind: { const: "person" },
    range: { anyOf: [{ type: "null" }, { $ref: "#/$defs/pair" }] },
    "odd key": { type: "boolean" },
  },
  $defs: { pair: { type: "array", items: { type: "number" }, minItems: 2, maxItems: 2 } },
};

function messages(value: unknown, schema: JsonSchema = PERSON): string[] {
  return validate(value, schema).map(formatError);
}

Deno.test("validate (JSON Schema subset)", async (t) => {
  await t.step("a valid value has no errors", () => {
    assertEquals(
      messages({ name: "x", age: 3, tags: ["a"], kind: "person", range: [0, 1], "odd key": true }),
      [],
    );
    assertEquals(messages({ name: "x", age: 0, range: null }), []);
  });

  await t.step("each keyword reports its path and what was expected", () => {
    assertEquals(messages({ name: "x" }), ["$.age: is required but missing"]);
    assertEquals(messages({ name: "x", age: "3" }), ["$.age: expected integer, got string"]);
    assertEquals(messages({ name: "x", age: 1.5 }), [
      "$.age: expected integer, got number 1.5 (not an integer)",
    ]);
    assertEquals(messages({ name: "x", age: -1 }), ["$.age: expected a number >= 0, got -1"]);
    assertEquals(messages({ name: "", age: 1 }), [
      '$.name: expected a string of at least 1 characters, got ""',
    ]);
    assertEquals(messages({ name: "x", age: 1, extra: 1 }), ["$.extra: is not an allowed property here"]);
    assertEquals(messages({ name: "x", age: 1, tags: ["a", "c"] }), [
      '$.tags[1]: expected one of "a", "b", got "c"',
    ]);
    assertEquals(messages({ name: "x", age: 1, tags: ["a", "a", "b"] }), [
      "$.tags: expected at most 2 items, got 3",
    ]);
    assertEquals(messages({ name: "x", age: 1, kind: "cat" }), [
      '$.kind: expected the constant "person", got "cat"',
    ]);
    assertEquals(messages({ name: "x", age: 1, "odd key": 1 }), [
      '$["odd key"]: expected boolean, got number',
    ]);
    assertEquals(messages([1], PERSON), ["$: expected object, got array"]);
  });

  await t.step("anyOf through $ref explains each branch", () => {
    const [m] = messages({ name: "x", age: 1, range: [1] });
    assertEquals(
      m,
      "$.range: matches none of the 2 allowed forms: (1) $.range: expected null, got array | (2) $.range: expected at least 2 items, got 1",
    );
  });

  await t.step("oneOf requires exactly one match", () => {
    const schema: JsonSchema = { oneOf: [{ type: "number" }, { type: "integer" }] };
    assertEquals(messages(1.5, schema), []);
    assertEquals(messages(2, schema), ["$: matches 2 of the oneOf forms, expected exactly one"]);
  });

  await t.step("non-finite numbers are not JSON numbers", () => {
    assertEquals(messages(NaN, { type: "number" }), ["$: expected number, got NaN"]);
  });

  await t.step("an unsupported keyword is refused rather than ignored", () => {
    assertThrows(() => validate("x", { type: "string", pattern: "^x$" }), /keyword "pattern".*not supported/);
  });

  await t.step("assertValid throws with every error", () => {
    assertThrows(
      () => assertValid({ age: -1 }, PERSON, "save the person"),
      /^Error: Cannot save the person: 2 schema errors: \$\.name: is required but missing; \$\.age: expected a number >= 0, got -1$/,
    );
  });
});
