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

/** Asserts `fn` fails with a {@link TorchFileError} whose message matches every pattern; returns it. */
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

/**
 * A tiny pickle assembler for hand-made test inputs: each method appends one opcode (protocol 2 forms).
 * `bytes()` returns the pickle.
 */
export class PickleWriter {
  private out: number[] = [];

  /** Appends raw bytes. */
  raw(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  /** PROTO n. */
  proto(n = 2): this {
    return this.raw(0x80, n);
  }
  /** GLOBAL module name. */
  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  /** BINUNICODE s. */
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.raw(0x58, ...u32(b.length), ...b);
  }
  /** BININT n (32-bit signed). */
  int(n: number): this {
    return this.raw(0x4a, ...u32(n >>> 0));
  }
  /** LONG1 n (any size). */
  long(n: bigint): this {
    const b: number[] = [];
    let v = n;
    do {
      b.push(Number(v & 0xffn));
      v >>= 8n;
    } while (
      !((v === 0n && (b[b.length - 1] & 0x80) === 0) || (v === -1n && (b[b.length - 1] & 0x80) !== 0))
    );
    return this.raw(0x8a, b.length, ...b);
  }
  /** MARK. */
  mark(): this {
    return this.raw(0x28);
  }
  /** TUPLE (from the last MARK). */
  tuple(): this {
    return this.raw(0x74);
  }
  /** EMPTY_TUPLE. */
  emptyTuple(): this {
    return this.raw(0x29);
  }
  /** NONE. */
  none(): this {
    return this.raw(0x4e);
  }
  /** NEWFALSE. */
  false(): this {
    return this.raw(0x89);
  }
  /** EMPTY_DICT. */
  dict(): this {
    return this.raw(0x7d);
  }
  /** SETITEM. */
  setitem(): this {
    return this.raw(0x73);
  }
  /** REDUCE. */
  reduce(): this {
    return this.raw(0x52);
  }
  /** BINPERSID. */
  persid(): this {
    return this.raw(0x51);
  }
  /** STOP. */
  stop(): this {
    return this.raw(0x2e);
  }
  /** The pickle so far. */
  bytes(): Uint8Array {
    return new Uint8Array(this.out);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** An 8-byte little-endian integer. */
export function u64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return b;
}

/** What {@link tensorPickle} builds. */
export interface TensorPickleOptions {
  /** Module of the storage class (default `torch`; `torch.cuda` for GPU checkpoints). */
  storageModule?: string;
  /** Storage class (default `FloatStorage`). */
  storageType?: string;
  /** Storage key (default `0`). */
  key?: string;
  /** Saved device (default `cpu`). */
  location?: string;
  /** Elements the persistent id claims. */
  numel: number | bigint;
  /** Legacy view metadata `(view_key, offset, size)`. */
  view?: [string, number, number];
  /** Storage offset of the tensor (default 0). */
  offset?: number;
  /** Sizes. */
  size: readonly number[];
  /** Strides. */
  stride: readonly number[];
  /** Which builder: `_rebuild_tensor` (v1), `_rebuild_tensor_v2` (default) or `_rebuild_tensor_v3`. */
  rebuild?: "v1" | "v2" | "v3";
  /** The `torch.<dtype>` name `_rebuild_tensor_v3` is given (default `float32`). */
  dtype?: string;
  /** Wrap the call in `torch._tensor._rebuild_from_type_v2(..., Parameter, ...)` (PyTorch ≥ 1.11). */
  fromTypeParameter?: boolean;
}

/**
 * A pickle of the dict `{"t": tensor}` whose tensor is rebuilt over the persistent id
 * `('storage', torch.<storageType>, key, location, numel[, view])`, as `torch.save` writes it.
 */
export function tensorPickle(opts: TensorPickleOptions): Uint8Array {
  const rebuild = opts.rebuild ?? "v2";
  const name = { v1: "_rebuild_tensor", v2: "_rebuild_tensor_v2", v3: "_rebuild_tensor_v3" }[rebuild];
  const w = new PickleWriter().proto(2).dict().str("t");
  if (opts.fromTypeParameter) {
    w.global("torch._tensor", "_rebuild_from_type_v2").mark().global("torch._utils", name);
    w.global("torch.nn.parameter", "Parameter");
  } else w.global("torch._utils", name);
  w.mark();
  w.mark().str("storage").global(opts.storageModule ?? "torch", opts.storageType ?? "FloatStorage");
  w.str(opts.key ?? "0").str(opts.location ?? "cpu");
  if (typeof opts.numel === "bigint") w.long(opts.numel);
  else w.int(opts.numel);
  if (opts.view) w.str(opts.view[0]).int(opts.view[1]).int(opts.view[2]).raw(0x87); // TUPLE3
  w.tuple().persid().int(opts.offset ?? 0);
  w.mark();
  for (const s of opts.size) w.int(s);
  w.tuple().mark();
  for (const s of opts.stride) w.int(s);
  w.tuple();
  if (rebuild !== "v1") w.false().global("collections", "OrderedDict").emptyTuple().reduce();
  if (rebuild === "v3") w.global("torch", opts.dtype ?? "float32");
  w.tuple();
  if (opts.fromTypeParameter) w.dict().tuple().reduce();
  else w.reduce();
  return w.setitem().stop().bytes();
}
