/**
 * The plain values a PyTorch checkpoint is read into, and small helpers to walk them.
 *
 * Python values map to JavaScript as follows: `None` -> `null`; `bool` -> `boolean`; `int` -> `number`
 * when it is a safe integer, else `bigint`; `float` -> `number`; `str` -> `string`; `bytes` and
 * `bytearray` -> `Uint8Array`; `list` -> array; `tuple` -> frozen array (see {@link isTuple});
 * `dict` and `collections.OrderedDict` -> `Map` (insertion order kept, keys of any type); `set` and
 * `frozenset` -> `Set`; a tensor -> {@link TorchTensor}; a storage -> {@link TorchStorage}; a class or
 * function named in the pickle -> an inert {@link GlobalRef}; any other object -> an inert
 * {@link PickledObject} holding the class name, its constructor arguments and its state. Nothing from
 * the file is ever executed.
 * @module
 */
import { TorchFileError } from "./errors.ts";

/** Element types of the tensors this reader materialises (PyTorch's names, without `torch.`). */
export type TorchDtype =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/**
 * The typed array holding a tensor's elements: float32, float16 and bfloat16 -> Float32Array (16-bit
 * floats converted exactly), float64 -> Float64Array, int64 -> BigInt64Array, int32 -> Int32Array,
 * int16 -> Int16Array, int8 -> Int8Array, uint8 and bool -> Uint8Array (bool as 0/1).
 */
export type TensorData =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A storage (a flat run of elements) named by a checkpoint's persistent ids. */
export interface TorchStorage {
  /** Discriminator. */
  readonly kind: "storage";
  /** Element type (from the storage class, e.g. `torch.FloatStorage` -> float32). */
  readonly dtype: TorchDtype;
  /** The storage's key in the file (`data/<key>` in a ZIP checkpoint). */
  readonly key: string;
  /** Device it was saved from (e.g. `cpu`, `cuda:0`); informative only. */
  readonly location: string;
  /** Number of elements. */
  readonly numel: number;
  /**
   * Its raw little-endian bytes (`numel` × element size). Filled once the file's storages are read
   * (in a legacy file they follow the object pickle); empty before.
   */
  bytes: Uint8Array;
}

/** A tensor, its elements copied out of its storage into contiguous row-major order. */
export interface TorchTensor {
  /** Discriminator. */
  readonly kind: "tensor";
  /** Element type. */
  readonly dtype: TorchDtype;
  /** Sizes of each dimension (empty for a scalar). */
  readonly shape: readonly number[];
  /** Row-major strides of `data`, in elements (always contiguous, whatever the file's view was). */
  readonly strides: readonly number[];
  /** The elements, contiguous row-major; see {@link TensorData} for the array type of each dtype. */
  readonly data: TensorData;
  /** Strides of the view in the file, in elements (may be non-contiguous). */
  readonly fileStrides: readonly number[];
  /** Offset of the view's first element in its storage, in elements. */
  readonly storageOffset: number;
  /** Key of the storage it was read from. */
  readonly storageKey: string;
  /** Whether it was saved with `requires_grad`. */
  readonly requiresGrad: boolean;
  /** True when it was pickled as a `torch.nn.Parameter`. */
  readonly isParameter: boolean;
}

/** A class or function named by the pickle (`GLOBAL module name`), never resolved to code. */
export interface GlobalRef {
  /** Discriminator. */
  readonly kind: "global";
  /** Python module, e.g. `resflows.layers.iresblock`. */
  readonly module: string;
  /** Qualified name inside the module, e.g. `iResBlock`. */
  readonly name: string;
}

/**
 * An instance of a class outside the reader's allow-list, recorded inert: which class, the arguments
 * its constructor would have received, and the state `BUILD` would have set (usually its `__dict__` as
 * a Map, sometimes a `(dict, slots)` tuple).
 */
export interface PickledObject {
  /** Discriminator. */
  readonly kind: "object";
  /** The class's module. */
  readonly module: string;
  /** The class's qualified name. */
  readonly name: string;
  /** Arguments of its `__reduce__` call or `__new__` (keyword arguments of NEWOBJ_EX as a last Map). */
  readonly args: readonly TorchValue[];
  /** State set by `BUILD` (undefined when none was pickled). */
  state: TorchValue | undefined;
  /** Items appended to it (a list subclass), when any. */
  listItems?: TorchValue[];
  /** Items set on it (a dict subclass), when any. */
  dictItems?: Map<TorchValue, TorchValue>;
}

/** Any value read from a checkpoint. */
export type TorchValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | TorchValue[]
  | Map<TorchValue, TorchValue>
  | Set<TorchValue>
  | TorchTensor
  | TorchStorage
  | GlobalRef
  | PickledObject;

/** True when `v` is a Python tuple (read as a frozen array; lists are ordinary arrays). */
export function isTuple(v: TorchValue): boolean {
  return Array.isArray(v) && Object.isFrozen(v);
}

/** True when `v` is a {@link TorchTensor}. */
export function isTensor(v: TorchValue | undefined): v is TorchTensor {
  return isKind(v, "tensor");
}

/** True when `v` is a {@link PickledObject}, optionally of class `module.name`. */
export function isObject(v: TorchValue | undefined, module?: string, name?: string): v is PickledObject {
  if (!isKind(v, "object")) return false;
  const o = v as PickledObject;
  return (module === undefined || o.module === module) && (name === undefined || o.name === name);
}

function isKind(v: TorchValue | undefined, kind: string): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) &&
    !(v instanceof Set) && !(v instanceof Uint8Array) && (v as { kind?: string }).kind === kind;
}

/** A short description of a value's type for error messages, e.g. `a dict of 5 items`, `a float64 tensor`. */
export function describeValue(v: TorchValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "None";
  if (typeof v === "boolean") return `the bool ${v ? "True" : "False"}`;
  if (typeof v === "number") return `the number ${v}`;
  if (typeof v === "bigint") return `the int ${v}`;
  if (typeof v === "string") {
    return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `a ${isTuple(v) ? "tuple" : "list"} of ${v.length} items`;
  if (v instanceof Map) return `a dict of ${v.size} items`;
  if (v instanceof Set) return `a set of ${v.size} items`;
  switch (v.kind) {
    case "tensor":
      return `a ${v.dtype} tensor of shape [${v.shape.join(", ")}]`;
    case "storage":
      return `a ${v.dtype} storage of ${v.numel} elements`;
    case "global":
      return `a reference to ${v.module}.${v.name}`;
    case "object":
      return `a ${v.module}.${v.name} object`;
  }
}

/** Returns `value` as a Map (a dict or OrderedDict), else throws a {@link TorchFileError} naming `what`. */
export function asMap(value: TorchValue | undefined, what: string): Map<TorchValue, TorchValue> {
  if (value instanceof Map) return value;
  throw new TorchFileError(`Cannot read ${what}: it is ${describeValue(value)}, expected a dict.`);
}

/** Returns `value` as a tensor, else throws a {@link TorchFileError} naming `what`. */
export function asTensor(value: TorchValue | undefined, what: string): TorchTensor {
  if (isTensor(value)) return value;
  throw new TorchFileError(`Cannot read ${what}: it is ${describeValue(value)}, expected a tensor.`);
}

/**
 * Returns a dict of tensors keyed by name (a `state_dict`, EMA `shadow_params`) as a
 * `Map<string, TorchTensor>`; throws a {@link TorchFileError} naming `what` and the first bad entry.
 */
export function asTensorMap(value: TorchValue | undefined, what: string): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of asMap(value, what)) {
    if (typeof k !== "string") {
      throw new TorchFileError(`Cannot read ${what}: it has the key ${describeValue(k)}, expected names.`);
    }
    out.set(k, asTensor(v, `${what}[${JSON.stringify(k)}]`));
  }
  return out;
}

/**
 * The attributes of a pickled object (its `__dict__`, from the state `BUILD` set; a `(dict, slots)`
 * state is merged) as a Map from attribute name; throws a {@link TorchFileError} naming `what` when
 * `value` is no object or its state is no dict.
 */
export function objectAttributes(value: TorchValue | undefined, what: string): Map<string, TorchValue> {
  if (!isObject(value)) {
    throw new TorchFileError(
      `Cannot read ${what}: it is ${describeValue(value)}, expected a pickled object.`,
    );
  }
  const out = new Map<string, TorchValue>();
  const parts = isTuple(value.state ?? null) ? (value.state as TorchValue[]) : [value.state ?? null];
  for (const part of parts) {
    if (part === null) continue;
    if (!(part instanceof Map)) {
      throw new TorchFileError(
        `Cannot read ${what}: the state of its ${value.module}.${value.name} object is ${
          describeValue(part)
        }, expected a dict of attributes.`,
      );
    }
    for (const [k, v] of part) if (typeof k === "string") out.set(k, v);
  }
  return out;
}

/**
 * The options of a pickled `argparse.Namespace` (a run's `args`) as a plain record; throws a
 * {@link TorchFileError} when `value` is not a Namespace. Values stay as read (numbers, strings, null,
 * booleans, lists).
 */
export function namespaceToRecord(value: TorchValue | undefined, what = "args"): Record<string, TorchValue> {
  if (!isObject(value, "argparse", "Namespace")) {
    throw new TorchFileError(
      `Cannot read ${what}: it is ${describeValue(value)}, expected an argparse.Namespace.`,
    );
  }
  return Object.fromEntries(objectAttributes(value, what));
}
