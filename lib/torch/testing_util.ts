/**
 * Helpers for the checkpoint reader's tests: the testdata folder, TorchFileError expectations, and the
 * tagged encoding of values that `testdata/checkpoints/gen_golden.py` writes for the golden files.
 * @module
 */
import { assertTrue } from "../testing/asserts.ts";
import { TorchFileError } from "./errors.ts";
import { isTuple, type TorchValue } from "./values.ts";

/** The folder of the checkpoint test files. */
export const CHECKPOINTS = new URL("../../testdata/checkpoints/", import.meta.url).pathname;

/** Asserts `fn` fails with a {@link TorchFileError} whose message matches every pattern; returns the message. */
export async function expectTorchError(fn: () => unknown, ...patterns: RegExp[]): Promise<string> {
  let caught: unknown = null;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assertTrue(caught !== null, "expected a TorchFileError, but nothing was thrown");
  assertTrue(
    caught instanceof TorchFileError,
    `expected a TorchFileError, got ${(caught as Error)?.name}: ${(caught as Error)?.message}\n${
      (caught as Error)?.stack
    }`,
  );
  const msg = caught.message;
  for (const p of patterns) assertTrue(p.test(msg), `message ${JSON.stringify(msg)} does not match ${p}`);
  return msg;
}

/** The hex bits of `x` as a float64, as gen_golden.py writes floats. */
export function floatBits(x: number): string {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, false);
  return Array.from(new Uint8Array(v.buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A value in gen_golden.py's tagged JSON form, for exact comparison with its golden file. */
export function encodeTagged(v: TorchValue): unknown {
  if (v === null) return { t: "none" };
  if (typeof v === "boolean") return { t: "bool", v };
  if (typeof v === "number") return { t: "num", bits: floatBits(v) };
  if (typeof v === "bigint") return { t: "int", v: String(v) };
  if (typeof v === "string") return { t: "str", v };
  if (v instanceof Uint8Array) {
    return { t: "bytes", hex: Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("") };
  }
  if (Array.isArray(v)) return { t: isTuple(v) ? "tuple" : "list", items: v.map(encodeTagged) };
  if (v instanceof Map) {
    return { t: "dict", items: [...v].map(([k, x]) => [encodeTagged(k), encodeTagged(x)]) };
  }
  if (v instanceof Set) return { t: "set", items: [...v].map(encodeTagged) };
  switch (v.kind) {
    case "tensor": {
      const float = v.data instanceof Float32Array || v.data instanceof Float64Array;
      return {
        t: "tensor",
        dtype: v.dtype,
        shape: [...v.shape],
        values: Array.from(
          v.data as ArrayLike<number | bigint>,
          (x) => float ? floatBits(x as number) : String(x),
        ),
        parameter: v.isParameter,
        requiresGrad: v.requiresGrad,
      };
    }
    case "object":
      return { t: "object", module: v.module, name: v.name, state: encodeTagged(v.state ?? null) };
    default:
      return { t: v.kind, ...v };
  }
}
