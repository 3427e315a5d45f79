/**
 * A Python pickle reader (protocols 0 to 5) that never executes anything.
 *
 * A pickle is a small stack machine whose `GLOBAL` opcode names a Python callable and whose `REDUCE`,
 * `NEWOBJ`, `OBJ` and `INST` opcodes call it. Here a name is only an inert {@link GlobalRef}; a call
 * builds a plain value through a fixed allow-list (`collections.OrderedDict` -> Map, `set` and
 * `frozenset` -> Set, `bytes`, `bytearray`, `_codecs.encode`, `copyreg._reconstructor`), through the
 * caller's `reduce` hook (the checkpoint reader's tensor builders), or else becomes an inert
 * {@link PickledObject} record that `BUILD` fills with its state. Names that only a code-running pickle
 * needs (`os.system`, `subprocess.*`, `builtins.eval`, ...) are refused when called, with an error.
 *
 * Memory stays bounded by the input: every length field is checked against the bytes that remain
 * before anything is allocated, and the stack, mark stack and memo are capped.
 * @module
 */
import { TorchFileError } from "./errors.ts";
import type { GlobalRef, PickledObject, TorchValue } from "./values.ts";
import { describeValue, isTuple } from "./values.ts";

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** Names the input in error messages (e.g. `model.pth (data.pkl)`). */
  readonly source: string;
  /** Byte offset where the pickle starts (default 0). */
  readonly start?: number;
  /**
   * Resolves a persistent id (`BINPERSID`/`PERSID`, how a checkpoint refers to its storages); `at` is
   * the opcode's byte offset. Without it a persistent id is an error.
   */
  readonly persistentLoad?: (pid: TorchValue, at: number) => TorchValue;
  /**
   * Builds the value of a call to `fn` (by `REDUCE` or `NEWOBJ`) before the built-in allow-list is
   * consulted; returns undefined to decline. It must not run anything named by the pickle.
   */
  readonly reduce?: (fn: GlobalRef, args: readonly TorchValue[], at: number) => TorchValue | undefined;
}

/** The value a pickle builds, and the offset of the byte after its `STOP`. */
export interface UnpickleResult {
  /** The value on the stack at `STOP`. */
  readonly value: TorchValue;
  /** Offset just past the `STOP` opcode (where a following pickle starts). */
  readonly end: number;
}

/** Most items the stack may hold (each push costs at least one input byte anyway). */
export const MAX_STACK = 1 << 24;
/** Most nested MARKs. */
export const MAX_MARKS = 1 << 16;
/** Most memo entries. */
export const MAX_MEMO = 1 << 24;

/** Names of the opcodes of protocols 0 to 5, for messages ("hex:NAME" pairs). */
const OPCODE_NAMES: Record<number, string> = Object.fromEntries(
  (
    "28:MARK 2e:STOP 30:POP 31:POP_MARK 32:DUP 46:FLOAT 49:INT 4a:BININT 4b:BININT1 4c:LONG " +
    "4d:BININT2 4e:NONE 50:PERSID 51:BINPERSID 52:REDUCE 53:STRING 54:BINSTRING 55:SHORT_BINSTRING " +
    "56:UNICODE 58:BINUNICODE 61:APPEND 62:BUILD 63:GLOBAL 64:DICT 7d:EMPTY_DICT 65:APPENDS 67:GET " +
    "68:BINGET 69:INST 6a:LONG_BINGET 6c:LIST 5d:EMPTY_LIST 6f:OBJ 70:PUT 71:BINPUT 72:LONG_BINPUT " +
    "73:SETITEM 74:TUPLE 29:EMPTY_TUPLE 75:SETITEMS 47:BINFLOAT 80:PROTO 81:NEWOBJ 82:EXT1 83:EXT2 " +
    "84:EXT4 85:TUPLE1 86:TUPLE2 87:TUPLE3 88:NEWTRUE 89:NEWFALSE 8a:LONG1 8b:LONG4 42:BINBYTES " +
    "43:SHORT_BINBYTES 8c:SHORT_BINUNICODE 8d:BINUNICODE8 8e:BINBYTES8 8f:EMPTY_SET 90:ADDITEMS " +
    "91:FROZENSET 92:NEWOBJ_EX 93:STACK_GLOBAL 94:MEMOIZE 95:FRAME 96:BYTEARRAY8 97:NEXT_BUFFER " +
    "98:READONLY_BUFFER"
  ).split(" ").map((p) => [parseInt(p.slice(0, 2), 16), p.slice(3)]),
);

/** The name of pickle opcode `byte` (e.g. `BINUNICODE`), or undefined when no protocol defines it. */
export function opcodeName(byte: number): string | undefined {
  return OPCODE_NAMES[byte];
}

/** Modules none of whose callables a checkpoint ever needs: calling one means the pickle wants code run. */
const REFUSED_MODULES = new Set(
  ("os posix nt subprocess sys shutil pty socket importlib runpy code codeop ctypes webbrowser " +
    "multiprocessing pickle _pickle marshal commands popen2").split(" "),
);
/** Callables of other modules refused by name: they evaluate code, reach attributes by name or open files. */
const REFUSED_NAMES: Readonly<Record<string, readonly string[]>> = {
  builtins: ("eval exec execfile compile getattr setattr delattr __import__ open input globals locals " +
    "vars breakpoint apply file reload help exit quit").split(" "),
  operator: ["attrgetter", "methodcaller"],
  types: ["FunctionType", "CodeType", "LambdaType", "MethodType"],
};

/**
 * True when calling `module.name` can only mean the pickle wants code run (`os.system`,
 * `subprocess.Popen`, `builtins.eval`, `builtins.getattr`, ...): such a call is refused.
 */
export function isRefusedCallable(module: string, name: string): boolean {
  if (REFUSED_MODULES.has(module.split(".")[0])) return true;
  return REFUSED_NAMES[module === "__builtin__" ? "builtins" : module]?.includes(name) ?? false;
}

/** True when `v` is the inert reference `module.name` (either spelling of the builtins module). */
export function isGlobal(v: TorchValue | undefined, module: string, name: string): v is GlobalRef {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Map || v instanceof Set) {
    return false;
  }
  if (v instanceof Uint8Array || (v as { kind?: string }).kind !== "global") return false;
  const g = v as GlobalRef;
  const mod = g.module === "__builtin__" ? "builtins" : g.module === "copy_reg" ? "copyreg" : g.module;
  return mod === module && g.name === name;
}

/** Attributes `BUILD` set on a dict (e.g. a state_dict's `_metadata`), kept beside the Map. */
const dictState = new WeakMap<Map<TorchValue, TorchValue>, TorchValue>();

/** The state `BUILD` set on a pickled dict or OrderedDict (a state_dict's `_metadata`), if any. */
export function pickledDictState(map: Map<TorchValue, TorchValue>): TorchValue | undefined {
  return dictState.get(map);
}

const utf8 = new TextDecoder("utf-8");

/**
 * Runs the pickle in `bytes` from `options.start` to its `STOP` and returns the value it builds.
 * Throws a {@link TorchFileError} naming `options.source`, the byte offset and the opcode on any
 * malformed, truncated or refused input. Never executes anything from the input.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  return new Machine(bytes, options).run();
}

class Machine {
  private readonly view: DataView;
  private pos: number;
  private op = 0;
  private opAt = 0;
  private stack: TorchValue[] = [];
  private marks: number[] = [];
  private memo = new Map<number, TorchValue>();

  constructor(private readonly bytes: Uint8Array, private readonly opts: UnpickleOptions) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = opts.start ?? 0;
  }

  private fail(problem: string): TorchFileError {
    const name = OPCODE_NAMES[this.op] ?? "?";
    return new TorchFileError(
      `Cannot read ${this.opts.source}: ${problem} (pickle opcode ${name} at byte ${this.opAt}).`,
      this.opts.source,
    );
  }

  private need(n: number, what: string): void {
    const left = this.bytes.length - this.pos;
    if (n > left) {
      const short = n - left;
      throw this.fail(
        `the pickle ends at byte ${this.bytes.length}, ${short} bytes short of its ${what}; ` +
          `the file is truncated`,
      );
    }
  }

  private u8(): number {
    this.need(1, "argument");
    return this.bytes[this.pos++];
  }

  private u16(): number {
    this.need(2, "argument");
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4, "argument");
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private i32(): number {
    this.need(4, "argument");
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An 8-byte length, checked against the bytes left before it becomes a number. */
  private len8(what: string): number {
    this.need(8, "length field");
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    const left = this.bytes.length - this.pos;
    if (v > BigInt(left)) {
      throw this.fail(
        `its ${what} claims ${v} bytes but only ${left} bytes remain; the file is truncated or damaged`,
      );
    }
    return Number(v);
  }

  private take(n: number, what: string): Uint8Array {
    const left = this.bytes.length - this.pos;
    if (n > left) {
      throw this.fail(
        `its ${what} claims ${n} bytes but only ${left} bytes remain; the file is truncated or damaged`,
      );
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private line(): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) {
      throw this.fail("its text argument has no end of line before the end of the input; truncated");
    }
    const s = latin1(this.bytes.subarray(this.pos, nl));
    this.pos = nl + 1;
    return s;
  }

  private push(v: TorchValue): void {
    if (this.stack.length >= MAX_STACK) throw this.fail(`the stack exceeds ${MAX_STACK} items`);
    this.stack.push(v);
  }

  private pop(): TorchValue {
    if (this.stack.length === 0 || this.stack.length <= (this.marks.at(-1) ?? -1)) {
      throw this.fail("it pops an empty stack; the pickle is damaged");
    }
    return this.stack.pop()!;
  }

  private top(): TorchValue {
    if (this.stack.length === 0 || this.stack.length <= (this.marks.at(-1) ?? -1)) {
      throw this.fail("it reads an empty stack; the pickle is damaged");
    }
    return this.stack[this.stack.length - 1];
  }

  private popMark(): TorchValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw this.fail("it needs a MARK but none is set; the pickle is damaged");
    return this.stack.splice(m);
  }

  private memoPut(i: number): void {
    if (this.memo.size >= MAX_MEMO && !this.memo.has(i)) {
      throw this.fail(`the memo exceeds ${MAX_MEMO} entries`);
    }
    this.memo.set(i, this.top());
  }

  private memoGet(i: number): void {
    const v = this.memo.get(i);
    if (v === undefined) throw this.fail(`memo entry ${i} was never stored; the pickle is damaged`);
    this.push(v);
  }

  private int(v: bigint): number | bigint {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  /** A little-endian two's-complement integer of `b.length` bytes (LONG1/LONG4). */
  private long(b: Uint8Array): number | bigint {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return this.int(v);
  }

  private global(module: string, name: string): GlobalRef {
    return { kind: "global", module, name };
  }

  private setItems(target: TorchValue, items: TorchValue[]): void {
    if (items.length % 2) {
      throw this.fail("it sets a dict from an odd number of items; the pickle is damaged");
    }
    let map: Map<TorchValue, TorchValue>;
    if (target instanceof Map) map = target;
    else if (isKindOf(target, "object")) map = (target as PickledObject).dictItems ??= new Map();
    else throw this.fail(`it sets items on ${describeValue(target)}, expected a dict`);
    for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  }

  private append(target: TorchValue, items: TorchValue[]): void {
    if (Array.isArray(target) && !isTuple(target)) {
      for (const it of items) target.push(it);
    } else if (isKindOf(target, "object")) {
      const o = target as PickledObject;
      const list = (o.listItems ??= []);
      for (const it of items) list.push(it);
    } else throw this.fail(`it appends to ${describeValue(target)}, expected a list`);
  }

  private addItems(target: TorchValue, items: TorchValue[]): void {
    if (!(target instanceof Set)) {
      throw this.fail(`it adds items to ${describeValue(target)}, expected a set`);
    }
    for (const it of items) target.add(it);
  }

  private build(target: TorchValue, state: TorchValue): void {
    if (isKindOf(target, "object")) {
      const o = target as PickledObject;
      if (o.state instanceof Map && state instanceof Map) { for (const [k, v] of state) o.state.set(k, v); }
      else o.state = state;
    } else if (target instanceof Map) {
      dictState.set(target, state);
    } else if (isKindOf(target, "tensor") || isKindOf(target, "storage")) {
      // Python attributes set on a tensor (rare): kept nowhere, the tensor's data is complete.
    } else {
      throw this.fail(`it sets the state of ${describeValue(target)}, which has none`);
    }
  }

  /** The value of calling `fn(*args)`, built without running anything. */
  private call(fn: TorchValue, args: readonly TorchValue[], how: string): TorchValue {
    if (!isKindOf(fn, "global")) {
      throw this.fail(`its ${how} calls ${describeValue(fn)}, expected a class or function name`);
    }
    const g = fn as GlobalRef;
    if (isRefusedCallable(g.module, g.name)) {
      throw new TorchFileError(
        `Cannot read ${this.opts.source}: the pickle calls ${g.module}.${g.name} (opcode ${
          OPCODE_NAMES[this.op]
        } at byte ${this.opAt}), which this reader never executes; a checkpoint never needs it.`,
        this.opts.source,
      );
    }
    const hooked = this.opts.reduce?.(g, args, this.opAt);
    if (hooked !== undefined) return hooked;
    const mod = g.module === "__builtin__" ? "builtins" : g.module === "copy_reg" ? "copyreg" : g.module;
    const key = `${mod}.${g.name}`;
    switch (key) {
      case "collections.OrderedDict":
      case "builtins.dict": {
        const m = new Map<TorchValue, TorchValue>();
        if (args.length > 0 && args[0] !== null) {
          const pairs = args[0];
          if (pairs instanceof Map) { for (const [k, v] of pairs) m.set(k, v); }
          else if (Array.isArray(pairs)) {
            for (const p of pairs) {
              if (!Array.isArray(p) || p.length !== 2) {
                throw this.fail(`${key} is given ${describeValue(p)}, expected a pair`);
              }
              m.set(p[0], p[1]);
            }
          } else throw this.fail(`${key} is given ${describeValue(pairs)}, expected pairs`);
        }
        return m;
      }
      case "builtins.set":
      case "builtins.frozenset": {
        const items = args[0];
        if (items === undefined || items === null) return new Set();
        if (Array.isArray(items)) return new Set(items);
        if (items instanceof Set) return new Set(items);
        throw this.fail(`${key} is given ${describeValue(items)}, expected a list`);
      }
      case "builtins.list":
        return Array.isArray(args[0]) ? [...args[0]] : [];
      case "builtins.tuple":
        return Object.freeze(Array.isArray(args[0]) ? [...args[0]] : []) as TorchValue[];
      case "builtins.bytes":
      case "builtins.bytearray":
        return this.bytesOf(key, args);
      case "_codecs.encode":
        return this.bytesOf(key, args);
      case "copyreg._reconstructor": {
        // copyreg._reconstructor(cls, base, state): object.__new__(cls) for base `object`.
        const cls = args[0];
        if (!isKindOf(cls, "global")) {
          throw this.fail(`${key} is given ${describeValue(cls)}, expected a class`);
        }
        const c = cls as GlobalRef;
        const base = args[1];
        const rest = isGlobal(base, "builtins", "object") ? [] : [base, args[2] ?? null];
        return this.record(c, rest);
      }
      case "copyreg.__newobj__": {
        const cls = args[0];
        if (!isKindOf(cls, "global")) {
          throw this.fail(`${key} is given ${describeValue(cls)}, expected a class`);
        }
        return this.record(cls as GlobalRef, args.slice(1));
      }
    }
    return this.record(g, args);
  }

  private record(g: GlobalRef, args: readonly TorchValue[]): PickledObject {
    return { kind: "object", module: g.module, name: g.name, args: [...args], state: undefined };
  }

  private bytesOf(key: string, args: readonly TorchValue[]): Uint8Array {
    const a = args[0];
    if (a === undefined) return new Uint8Array(0);
    if (a instanceof Uint8Array) return a.slice();
    if (typeof a === "string") {
      const enc = typeof args[1] === "string" ? args[1].toLowerCase().replace(/[-_]/g, "") : "utf8";
      if (enc === "latin1" || enc === "iso88591") {
        const out = new Uint8Array(a.length);
        for (let i = 0; i < a.length; i++) {
          const c = a.charCodeAt(i);
          if (c > 255) {
            throw this.fail(`${key} is given a character U+${c.toString(16)} that latin-1 cannot encode`);
          }
          out[i] = c;
        }
        return out;
      }
      if (enc === "utf8" || enc === "ascii") return new TextEncoder().encode(a);
      throw this.fail(`${key} is given the encoding ${JSON.stringify(args[1])}, expected latin1 or utf-8`);
    }
    if (Array.isArray(a)) {
      const out = new Uint8Array(a.length);
      a.forEach((x, i) => {
        if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 255) {
          throw this.fail(`${key} is given ${describeValue(x)}, expected a byte value 0-255`);
        }
        out[i] = x;
      });
      return out;
    }
    throw this.fail(`${key} is given ${describeValue(a)}, expected bytes, a string or a list of byte values`);
  }

  private tuple(items: TorchValue[]): TorchValue[] {
    return Object.freeze(items) as TorchValue[];
  }

  run(): UnpickleResult {
    const b = this.bytes;
    for (;;) {
      this.opAt = this.pos;
      if (this.pos >= b.length) {
        this.op = -1;
        throw new TorchFileError(
          `Cannot read ${this.opts.source}: the pickle ends at byte ${b.length} before its STOP opcode; ` +
            `the file is truncated.`,
          this.opts.source,
        );
      }
      const op = (this.op = b[this.pos++]);
      switch (op) {
        case 0x80: { // PROTO
          const p = this.u8();
          if (p > 5) throw this.fail(`pickle protocol ${p}, expected 0 to 5`);
          break;
        }
        case 0x95: // FRAME: a length prefix for buffering; checked, then ignored.
          this.len8("frame");
          break;
        case 0x2e: { // STOP
          const value = this.pop();
          return { value, end: this.pos };
        }
        case 0x28: // MARK
          if (this.marks.length >= MAX_MARKS) throw this.fail(`more than ${MAX_MARKS} nested MARKs`);
          this.marks.push(this.stack.length);
          break;
        case 0x30: // POP
          if (this.marks.length > 0 && this.stack.length === this.marks.at(-1)) this.marks.pop();
          else this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;
        // Constants and numbers.
        case 0x4e:
          this.push(null);
          break;
        case 0x88:
          this.push(true);
          break;
        case 0x89:
          this.push(false);
          break;
        case 0x4a:
          this.push(this.i32());
          break;
        case 0x4b:
          this.push(this.u8());
          break;
        case 0x4d:
          this.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.push(this.long(this.take(this.u8(), "integer")));
          break;
        case 0x8b: { // LONG4
          const n = this.i32();
          if (n < 0) throw this.fail(`a negative integer length ${n}`);
          this.push(this.long(this.take(n, "integer")));
          break;
        }
        case 0x47: { // BINFLOAT (big-endian)
          this.need(8, "argument");
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x49: { // INT (text; 00/01 are False/True)
          const s = this.line().trim();
          if (s === "00") this.push(false);
          else if (s === "01") this.push(true);
          else this.push(this.int(this.parseInt(s)));
          break;
        }
        case 0x4c: // LONG (text, trailing L)
          this.push(this.int(this.parseInt(this.line().trim().replace(/L$/, ""))));
          break;
        case 0x46: { // FLOAT (text)
          const s = this.line().trim();
          const v = parsePyFloat(s);
          if (v === undefined) throw this.fail(`the float ${JSON.stringify(s)} is not a number`);
          this.push(v);
          break;
        }
        // Strings and bytes.
        case 0x8c:
          this.push(utf8.decode(this.take(this.u8(), "string")));
          break;
        case 0x58:
          this.push(utf8.decode(this.take(this.u32(), "string")));
          break;
        case 0x8d:
          this.push(utf8.decode(this.take(this.len8("string"), "string")));
          break;
        case 0x43:
          this.push(this.take(this.u8(), "bytes").slice());
          break;
        case 0x42:
          this.push(this.take(this.u32(), "bytes").slice());
          break;
        case 0x8e:
        case 0x96: // BYTEARRAY8
          this.push(this.take(this.len8("bytes"), "bytes").slice());
          break;
        case 0x55: // SHORT_BINSTRING (Python 2 str)
          this.push(decodePy2Str(this.take(this.u8(), "string")));
          break;
        case 0x54: { // BINSTRING
          const n = this.i32();
          if (n < 0) throw this.fail(`a negative string length ${n}`);
          this.push(decodePy2Str(this.take(n, "string")));
          break;
        }
        case 0x53: { // STRING (quoted repr)
          const s = this.line();
          const v = parsePyStringRepr(s);
          if (v === undefined) {
            throw this.fail(`the string ${JSON.stringify(s.slice(0, 40))} is not a quoted literal`);
          }
          this.push(v);
          break;
        }
        case 0x56: // UNICODE (raw-unicode-escape)
          this.push(decodeRawUnicodeEscape(this.line()));
          break;
        // Containers.
        case 0x29:
          this.push(this.tuple([]));
          break;
        case 0x85:
          this.push(this.tuple([this.pop()]));
          break;
        case 0x86: {
          const y = this.pop();
          const x = this.pop();
          this.push(this.tuple([x, y]));
          break;
        }
        case 0x87: {
          const z = this.pop();
          const y = this.pop();
          const x = this.pop();
          this.push(this.tuple([x, y, z]));
          break;
        }
        case 0x74:
          this.push(this.tuple(this.popMark()));
          break;
        case 0x5d:
          this.push([]);
          break;
        case 0x6c:
          this.push(this.popMark());
          break;
        case 0x7d:
          this.push(new Map());
          break;
        case 0x64: {
          const items = this.popMark();
          const m = new Map<TorchValue, TorchValue>();
          this.setItems(m, items);
          this.push(m);
          break;
        }
        case 0x8f:
          this.push(new Set());
          break;
        case 0x91:
          this.push(new Set(this.popMark()));
          break;
        case 0x61: { // APPEND
          const v = this.pop();
          this.append(this.top(), [v]);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x90: { // ADDITEMS
          const items = this.popMark();
          this.addItems(this.top(), items);
          break;
        }
        // Memo.
        case 0x71:
          this.memoPut(this.u8());
          break;
        case 0x72:
          this.memoPut(this.u32());
          break;
        case 0x70:
          this.memoPut(this.parseIndex(this.line()));
          break;
        case 0x94:
          this.memoPut(this.memo.size);
          break;
        case 0x68:
          this.memoGet(this.u8());
          break;
        case 0x6a:
          this.memoGet(this.u32());
          break;
        case 0x67:
          this.memoGet(this.parseIndex(this.line()));
          break;
        // Names, calls and objects.
        case 0x63: { // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            throw this.fail(
              `its module and name are ${describeValue(module)} and ${describeValue(name)}, expected strings`,
            );
          }
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          const fn = this.pop();
          if (!Array.isArray(args)) {
            throw this.fail(`its arguments are ${describeValue(args)}, expected a tuple`);
          }
          this.push(this.call(fn, args, "REDUCE"));
          break;
        }
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args)) {
            throw this.fail(`its arguments are ${describeValue(args)}, expected a tuple`);
          }
          this.push(this.call(cls, args, "NEWOBJ"));
          break;
        }
        case 0x92: { // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!Array.isArray(args)) {
            throw this.fail(`its arguments are ${describeValue(args)}, expected a tuple`);
          }
          const all = kwargs instanceof Map && kwargs.size > 0 ? [...args, kwargs] : args;
          this.push(this.call(cls, all, "NEWOBJ_EX"));
          break;
        }
        case 0x6f: { // OBJ: MARK cls args... OBJ
          const items = this.popMark();
          if (items.length === 0) throw this.fail("it has no class to instantiate");
          this.push(this.call(items[0], items.slice(1), "OBJ"));
          break;
        }
        case 0x69: { // INST "module\nname\n" with MARK args
          const module = this.line();
          const name = this.line();
          const args = this.popMark();
          this.push(this.call(this.global(module, name), args, "INST"));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.pop();
          this.push(this.persistent(pid));
          break;
        }
        case 0x50: // PERSID (text id)
          this.push(this.persistent(this.line()));
          break;
        case 0x82:
        case 0x83:
        case 0x84:
          throw this.fail("it uses the copyreg extension registry, which a checkpoint never needs");
        case 0x97:
        case 0x98:
          throw this.fail("it uses out-of-band buffers (protocol 5), which torch.save never writes");
        default:
          throw new TorchFileError(
            `Cannot read ${this.opts.source}: unknown pickle opcode 0x${
              op.toString(16).padStart(2, "0")
            } at ` +
              `byte ${this.opAt}; expected a pickle of protocol 0 to 5 (the file is damaged or not a ` +
              `checkpoint).`,
            this.opts.source,
          );
      }
    }
  }

  private persistent(pid: TorchValue): TorchValue {
    if (!this.opts.persistentLoad) {
      throw this.fail(
        `it refers to an external object ${describeValue(pid)}, but nothing supplies persistent ids here`,
      );
    }
    return this.opts.persistentLoad(pid, this.opAt);
  }

  private parseInt(s: string): bigint {
    if (!/^[+-]?\d+$/.test(s)) {
      throw this.fail(`the integer ${JSON.stringify(s.slice(0, 40))} is not a number`);
    }
    return BigInt(s);
  }

  private parseIndex(s: string): number {
    const v = this.parseInt(s.trim());
    if (v < 0n || v > 0xffffffffn) throw this.fail(`the memo index ${v} is out of range`);
    return Number(v);
  }
}

function isKindOf(v: TorchValue | undefined, kind: string): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) &&
    !(v instanceof Set) && !(v instanceof Uint8Array) && (v as { kind?: string }).kind === kind;
}

/**
 * ISO-8859-1 bytes as text: byte n is U+00nn (TextDecoder's "latin1" is windows-1252, which maps
 * 0x80-0x9f elsewhere).
 */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** A Python 2 `str` read by Python 3 (torch.load's default `encoding='utf-8'`; latin-1 when not UTF-8). */
function decodePy2Str(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return latin1(b);
  }
}

function parsePyFloat(s: string): number | undefined {
  const t = s.toLowerCase();
  if (t === "nan") return NaN;
  if (t === "inf" || t === "+inf") return Infinity;
  if (t === "-inf") return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

/** The value of a Python 2 string literal `'...'` or `"..."` as protocol 0's STRING writes it. */
function parsePyStringRepr(s: string): string | undefined {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q) return undefined;
  const body = s.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out.push(body.charCodeAt(i) & 0xff);
      continue;
    }
    const d = body[++i];
    const simple: Record<string, number> = {
      "\\": 92,
      "'": 39,
      '"': 34,
      n: 10,
      r: 13,
      t: 9,
      a: 7,
      b: 8,
      f: 12,
      v: 11,
    };
    if (d in simple) out.push(simple[d]);
    else if (d === "x") {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(d)) {
      let j = i;
      while (j < i + 3 && /[0-7]/.test(body[j] ?? "")) j++;
      out.push(parseInt(body.slice(i, j), 8) & 0xff);
      i = j - 1;
    } else out.push(92, body.charCodeAt(i));
  }
  return decodePy2Str(new Uint8Array(out));
}

/** Decodes Python's raw-unicode-escape (protocol 0's UNICODE): `\uXXXX`, `\UXXXXXXXX`, else latin-1. */
function decodeRawUnicodeEscape(s: string): string {
  return s.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (_m, a, b) => String.fromCodePoint(parseInt(a ?? b, 16)),
  );
}
