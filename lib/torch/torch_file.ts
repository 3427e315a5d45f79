/**
 * Reads a file written by `torch.save`, in either format, without Python and without executing anything:
 *
 * - ZIP (PyTorch ≥ 1.6): `<folder>/data.pkl` (the object pickle, storages as persistent ids
 *   `('storage', storage_type, key, location, numel)`) and one raw little-endian file per storage,
 *   `<folder>/data/<key>`; `<folder>/byteorder` when present must say `little`.
 * - Legacy (PyTorch < 1.6, `_use_new_zipfile_serialization=False`): five consecutive pickles (the magic
 *   number 0x1950a86a20f9469cfc6c, the protocol version 1001, the sys info, the object pickle, the list
 *   of storage keys), then each listed storage as an 8-byte little-endian element count and its bytes.
 *
 * Tensors are returned with their elements copied into contiguous typed arrays (see {@link TorchTensor}).
 * @module
 */
import { listZip, readZipEntry, type ZipEntry } from "../data/zip.ts";
import { TorchFileError } from "./errors.ts";
import { isGlobal, latin1, unpickle } from "./pickle.ts";
import {
  checkView,
  contiguousStrides,
  dtypeOf,
  ELEMENT_SIZE,
  materialise,
  storageDtype,
  type ViewSpec,
} from "./tensor.ts";
import type { GlobalRef, TorchDtype, TorchStorage, TorchTensor, TorchValue } from "./values.ts";
import { describeValue } from "./values.ts";

/** A file read by {@link parseTorchFile}. */
export interface TorchFile {
  /** `zip` (PyTorch ≥ 1.6) or `legacy` (the format before). */
  readonly format: "zip" | "legacy";
  /** The saved object (for a training checkpoint, a dict). */
  readonly root: TorchValue;
  /** The name the file was read under (used in errors). */
  readonly source: string;
}

/** A training checkpoint: a file whose saved object is a dict ({@link readTorchCheckpoint}). */
export interface TorchCheckpoint extends TorchFile {
  /** The saved dict (`state_dict`, `args`, `ema`, ... in the authors' checkpoints). */
  readonly root: Map<TorchValue, TorchValue>;
}

/** The magic number a legacy checkpoint starts with. */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
/** The protocol version a legacy checkpoint records. */
export const LEGACY_PROTOCOL_VERSION = 1001;
/**
 * A tensor may repeat storage elements (stride 0), but its copy may not exceed this many times the
 * file's size (plus {@link EXPANSION_SLACK_BYTES}): a larger one means a damaged or hostile file.
 */
export const MAX_EXPANSION = 4;
/** Bytes always allowed for one tensor's copy, whatever the file size. */
export const EXPANSION_SLACK_BYTES = 1 << 24;

/** Reads `path` with {@link parseTorchFile}; a missing or unreadable file is a {@link TorchFileError}. */
export async function readTorchFile(path: string): Promise<TorchFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.IsADirectory
      ? "it is a folder"
      : err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable
      ? "permission denied (run with --allow-read)"
      : (err as Error).message;
    throw new TorchFileError(`Cannot read ${path}: ${why}; expected a PyTorch checkpoint (.pth, .pt).`, path);
  }
  return parseTorchFile(bytes, path);
}

/**
 * Reads a training checkpoint: {@link readTorchFile}, and the saved object must be a dict (else a
 * {@link TorchFileError}).
 */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  const file = await readTorchFile(path);
  if (!(file.root instanceof Map)) {
    throw new TorchFileError(
      `Cannot read ${path}: it holds ${
        describeValue(file.root)
      }, expected a checkpoint dict (state_dict, args, ...).`,
      path,
    );
  }
  return { ...file, root: file.root };
}

/**
 * Parses the bytes of a `torch.save` file of either format; `source` names it in errors. Throws a
 * {@link TorchFileError} naming the file and the problem on anything malformed, truncated or refused.
 */
export function parseTorchFile(bytes: Uint8Array, source: string): TorchFile {
  if (bytes.length === 0) {
    throw new TorchFileError(
      `Cannot read ${source}: the file is empty (0 bytes), expected a PyTorch checkpoint.`,
      source,
    );
  }
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return { format: "zip", root: parseZip(bytes, source), source };
  }
  if (bytes[0] === 0x80) {
    return { format: "legacy", root: parseLegacy(bytes, source), source };
  }
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    throw new TorchFileError(
      `Cannot read ${source}: it is a tar archive (the format of PyTorch before 0.4); load and re-save ` +
        `it with a newer PyTorch, this reader supports the ZIP and legacy pickle formats.`,
      source,
    );
  }
  const start = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new TorchFileError(
    `Cannot read ${source}: it starts with bytes [${start}], expected a PyTorch checkpoint (a ZIP archive, ` +
      `50 4b 03 04, or a legacy pickle, 80 02); the file is not a checkpoint.`,
    source,
  );
}

/** A storage read or yet to be read, and the tensors built over it. */
interface Slot {
  readonly storage: TorchStorage;
  /** For a legacy view storage: the root storage and the view's element offset. */
  readonly root?: { slot: Slot; offset: number };
  /** Byte offset of the pickle opcode that first named it (for errors). */
  readonly at: number;
  filled: boolean;
}

/** A tensor whose data waits for its storage's bytes. */
interface Pending {
  readonly tensors: MutableTensor[];
  readonly slot: Slot;
  readonly view: ViewSpec;
  readonly at: number;
}

type MutableTensor = { -readonly [K in keyof TorchTensor]: TorchTensor[K] };

/** Turns a file's persistent ids into storages and its tensor-building calls into tensors. */
class StorageTable {
  /** Storages by key. */
  readonly slots = new Map<string, Slot>();
  /** Legacy view storages by view key. */
  private readonly views = new Map<string, Slot & { readonly root: NonNullable<Slot["root"]> }>();
  readonly pending: Pending[] = [];
  private readonly byTensor = new Map<TorchTensor, Pending>();

  constructor(
    private readonly source: string,
    private readonly pickleSource: string,
    private readonly fileBytes: number,
    /** Fills a storage's bytes at once (ZIP), or leaves it for later (legacy). */
    private readonly fill: ((slot: Slot) => void) | null,
  ) {}

  private fail(problem: string, at: number): TorchFileError {
    return new TorchFileError(
      `Cannot read ${this.pickleSource}: ${problem} (pickle byte ${at}).`,
      this.source,
    );
  }

  persistentLoad = (pid: TorchValue, at: number): TorchValue => {
    if (!Array.isArray(pid) || pid.length === 0) {
      throw this.fail(`a persistent id is ${describeValue(pid)}, expected a tuple ('storage', ...)`, at);
    }
    const tag = asText(pid[0]);
    if (tag === "module" && pid.length >= 2) return pid[1]; // a pickled nn.Module class (legacy files)
    if (tag !== "storage" || pid.length < 5) {
      throw this.fail(
        `a persistent id starts ${describeValue(pid[0])} with ${pid.length} items, expected ('storage', ` +
          `storage_type, key, location, numel)`,
        at,
      );
    }
    const [, typeRef, keyV, locV, numelV, viewMeta] = pid;
    const dtype = isGlobalRef(typeRef) ? storageDtype(typeRef) : undefined;
    if (dtype === undefined) {
      const name = isGlobalRef(typeRef) ? `${typeRef.module}.${typeRef.name}` : describeValue(typeRef);
      throw this.fail(
        `storage type ${name} is not supported; expected torch.FloatStorage, DoubleStorage, HalfStorage, ` +
          `BFloat16Storage, LongStorage, IntStorage, ShortStorage, CharStorage, ByteStorage or BoolStorage`,
        at,
      );
    }
    const key = asText(keyV) ?? (typeof keyV === "number" ? String(keyV) : undefined);
    if (key === undefined) throw this.fail(`a storage key is ${describeValue(keyV)}, expected a string`, at);
    if (typeof numelV !== "number" || !Number.isSafeInteger(numelV) || numelV < 0) {
      throw this.fail(`storage ${key} has element count ${describeValue(numelV)}, expected a count`, at);
    }
    const es = ELEMENT_SIZE[dtype];
    if (numelV * es > this.fileBytes) {
      const claimed = `${numelV} ${dtype} elements (${numelV * es} bytes)`;
      throw this.fail(
        `storage ${key} claims ${claimed}, more than the whole file (${this.fileBytes} bytes); ` +
          `the file is damaged`,
        at,
      );
    }
    let slot = this.slots.get(key);
    if (!slot) {
      const storage: TorchStorage = {
        kind: "storage",
        dtype,
        key,
        location: asText(locV) ?? "",
        numel: numelV,
        bytes: new Uint8Array(0),
      };
      slot = { storage, at, filled: false };
      this.slots.set(key, slot);
      this.fill?.(slot);
    } else if (slot.storage.dtype !== dtype || slot.storage.numel !== numelV) {
      throw this.fail(
        `storage ${key} is named as ${numelV} ${dtype} elements here but as ${slot.storage.numel} ` +
          `${slot.storage.dtype} elements at byte ${slot.at}`,
        at,
      );
    }
    if (viewMeta === undefined || viewMeta === null) return slot.storage;
    // Legacy storage views: (view_key, offset, size) into the root storage.
    if (!Array.isArray(viewMeta) || viewMeta.length !== 3) {
      throw this.fail(
        `storage ${key} has view metadata ${describeValue(viewMeta)}, expected (key, offset, size)`,
        at,
      );
    }
    const viewKey = asText(viewMeta[0]) ?? String(viewMeta[0]);
    const [offset, size] = [viewMeta[1], viewMeta[2]];
    if (
      typeof offset !== "number" || typeof size !== "number" || !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > numelV
    ) {
      const span = `${describeValue(offset)} + ${describeValue(size)}`;
      throw this.fail(
        `storage view ${viewKey} spans elements ${span} of storage ${key}, which holds ${numelV}; ` +
          `the file is damaged`,
        at,
      );
    }
    let view = this.views.get(viewKey);
    if (!view) {
      const storage: TorchStorage = {
        kind: "storage",
        dtype,
        key: viewKey,
        location: slot.storage.location,
        numel: size,
        bytes: new Uint8Array(0),
      };
      view = { storage, root: { slot, offset }, at, filled: false };
      this.views.set(viewKey, view);
    }
    return view.storage;
  };

  reduce = (fn: GlobalRef, args: readonly TorchValue[], at: number): TorchValue | undefined => {
    if (fn.module === "torch._utils") {
      switch (fn.name) {
        case "_rebuild_tensor":
          return this.tensor(args[0], args[1], args[2], args[3], false, undefined, at);
        case "_rebuild_tensor_v2":
          return this.tensor(args[0], args[1], args[2], args[3], args[4] === true, undefined, at);
        case "_rebuild_tensor_v3": {
          const d = args[6];
          const dtype = isGlobalRef(d) ? dtypeOf(d) : undefined;
          if (!dtype) {
            throw this.fail(`_rebuild_tensor_v3 is given the dtype ${describeValue(d)}, not supported`, at);
          }
          return this.tensor(args[0], args[1], args[2], args[3], args[4] === true, dtype, at);
        }
        case "_rebuild_parameter":
        case "_rebuild_parameter_with_state":
          return this.parameter(args[0], args[1] === true, at);
      }
      return undefined;
    }
    if (fn.module === "torch._tensor" && fn.name === "_rebuild_from_type_v2") {
      // _rebuild_from_type_v2(func, new_type, args, state): func(*args), then retyped.
      const [func, newType, inner] = args;
      if (!isGlobalRef(func) || !Array.isArray(inner)) return undefined;
      const built = this.reduce(func, inner, at);
      if (built === undefined) return undefined;
      if (isGlobal(newType, "torch.nn.parameter", "Parameter")) return this.parameter(built, true, at);
      return built;
    }
    if (fn.module === "torch.nn.parameter" && fn.name === "Parameter" && args.length > 0) {
      // PyTorch 0.4 pickled a Parameter as Parameter(data, requires_grad).
      return isTensorValue(args[0]) ? this.parameter(args[0], args[1] !== false, at) : undefined;
    }
    if (fn.module === "torch" && fn.name === "Size") {
      return Object.freeze(Array.isArray(args[0]) ? [...args[0]] : []) as TorchValue[];
    }
    if (fn.module === "torch.storage" && fn.name === "_load_from_bytes") {
      throw this.fail(
        "it holds a storage pickled by torch.storage._load_from_bytes (a storage saved with plain pickle), " +
          "which this reader does not support; re-save the checkpoint with torch.save",
        at,
      );
    }
    return undefined;
  };

  private tensor(
    storageV: TorchValue | undefined,
    offsetV: TorchValue | undefined,
    sizeV: TorchValue | undefined,
    strideV: TorchValue | undefined,
    requiresGrad: boolean,
    dtypeOverride: TorchDtype | undefined,
    at: number,
  ): TorchTensor {
    const storage = storageV as TorchStorage;
    const slot = isStorage(storageV) ? this.slotOf(storage) : undefined;
    if (!slot) throw this.fail(`a tensor is built over ${describeValue(storageV)}, expected a storage`, at);
    const shape = intList(sizeV);
    const strides = intList(strideV);
    if (!shape || !strides || typeof offsetV !== "number") {
      throw this.fail(
        `a tensor over storage ${storage.key} has offset ${describeValue(offsetV)}, sizes ${
          describeValue(sizeV)
        } and strides ${describeValue(strideV)}, expected integers and tuples of integers`,
        at,
      );
    }
    const dtype = dtypeOverride ?? storage.dtype;
    const view: ViewSpec = { dtype, offset: offsetV, shape, strides };
    const storageBytes = storage.numel * ELEMENT_SIZE[storage.dtype];
    const limit = MAX_EXPANSION * this.fileBytes + EXPANSION_SLACK_BYTES;
    checkView(
      view,
      storageBytes,
      limit,
      `${this.pickleSource} (tensor over storage ${storage.key}, pickle byte ${at})`,
    );
    const t: MutableTensor = {
      kind: "tensor",
      dtype,
      shape,
      strides: contiguousStrides(shape),
      data: new Float32Array(0),
      fileStrides: strides,
      storageOffset: offsetV,
      storageKey: storage.key,
      requiresGrad,
      isParameter: false,
    };
    const p: Pending = { tensors: [t], slot, view, at };
    this.pending.push(p);
    this.byTensor.set(t, p);
    return t;
  }

  private parameter(data: TorchValue | undefined, requiresGrad: boolean, at: number): TorchTensor {
    const p = isTensorValue(data) ? this.byTensor.get(data) : undefined;
    if (!p) throw this.fail(`a Parameter wraps ${describeValue(data)}, expected a tensor`, at);
    const t: MutableTensor = { ...(data as TorchTensor), requiresGrad, isParameter: true };
    p.tensors.push(t);
    this.byTensor.set(t, p);
    return t;
  }

  private slotOf(storage: TorchStorage): Slot | undefined {
    for (const s of [this.slots.get(storage.key), this.views.get(storage.key)]) {
      if (s && s.storage === storage) return s;
    }
    return undefined;
  }

  /** Fills every tensor's data; every storage must have its bytes by now. */
  finish(): void {
    for (const slot of this.views.values()) {
      const { slot: root, offset } = slot.root;
      const es = ELEMENT_SIZE[slot.storage.dtype];
      if (root.filled) {
        slot.storage.bytes = root.storage.bytes.subarray(offset * es, (offset + slot.storage.numel) * es);
        slot.filled = true;
      }
    }
    for (const p of this.pending) {
      const st = p.slot.storage;
      if (!p.slot.filled) {
        throw new TorchFileError(
          `Cannot read ${this.source}: storage ${st.key} (named at pickle byte ${p.slot.at}) has no data ` +
            `in the file; the file is damaged.`,
          this.source,
        );
      }
      const what = `${this.pickleSource} (tensor over storage ${st.key}, pickle byte ${p.at})`;
      const numel = checkView(p.view, st.bytes.length, Infinity, what);
      const data = materialise(st.bytes, p.view, numel);
      for (const t of p.tensors) t.data = data;
    }
  }
}

function parseZip(bytes: Uint8Array, source: string): TorchValue {
  const entries = zipEntries(bytes, source);
  const pkls = entries.filter((e) => /^([^/]+\/)?data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    const names = entries.slice(0, 8).map((e) => e.name).join(", ");
    throw new TorchFileError(
      `Cannot read ${source}: it is a ZIP archive with ${pkls.length} data.pkl entries (${names}${
        entries.length > 8 ? ", …" : ""
      }), expected one <folder>/data.pkl as torch.save writes; it is not a PyTorch checkpoint.`,
      source,
    );
  }
  const prefix = pkls[0].name.slice(0, -"data.pkl".length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(zipEntry(bytes, order, source)).trim();
    if (text !== "little") {
      throw new TorchFileError(
        `Cannot read ${source}: its ${prefix}byteorder says ${JSON.stringify(text)}, expected "little" ` +
          `(big-endian checkpoints are not supported).`,
        source,
      );
    }
  }
  const pickleSource = `${source} (${pkls[0].name})`;
  const table = new StorageTable(source, pickleSource, bytes.length, (slot) => {
    const s = slot.storage;
    const entry = byName.get(`${prefix}data/${s.key}`);
    if (!entry) {
      throw new TorchFileError(
        `Cannot read ${source}: storage ${s.key} (named at pickle byte ${slot.at}) has no entry ` +
          `${prefix}data/${s.key} in the archive; the file is damaged.`,
        source,
      );
    }
    const need = s.numel * ELEMENT_SIZE[s.dtype];
    if (entry.size !== need) {
      throw new TorchFileError(
        `Cannot read ${source}: storage ${s.key} holds ${entry.size} bytes, expected ${need} ` +
          `(${s.numel} ${s.dtype} elements); the file is damaged.`,
        source,
      );
    }
    s.bytes = zipEntry(bytes, entry, source);
    slot.filled = true;
  });
  const pkl = zipEntry(bytes, pkls[0], source);
  const { value } = unpickle(pkl, {
    source: pickleSource,
    persistentLoad: table.persistentLoad,
    reduce: table.reduce,
  });
  table.finish();
  return value;
}

function zipEntries(bytes: Uint8Array, source: string): ZipEntry[] {
  // A truncated archive has lost its end record: say so plainly before the ZIP reader's general message.
  let end = false;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535) && !end; i--) {
    end = bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 0x05 && bytes[i + 3] === 0x06;
  }
  if (!end) {
    throw new TorchFileError(
      `Cannot read ${source}: it starts as a ZIP archive (a PyTorch ≥ 1.6 checkpoint) but has no ` +
        `end-of-central-directory record (50 4b 05 06) in its last bytes (${bytes.length} bytes in all); ` +
        `the file is truncated.`,
      source,
    );
  }
  try {
    return listZip(bytes, source);
  } catch (err) {
    throw zipError(err, source);
  }
}

function zipEntry(bytes: Uint8Array, entry: ZipEntry, source: string): Uint8Array {
  try {
    return readZipEntry(bytes, entry, source);
  } catch (err) {
    throw zipError(err, source);
  }
}

/** The ZIP reader's error as a {@link TorchFileError}, without its hint about .npz files. */
function zipError(err: unknown, source: string): TorchFileError {
  const msg = err instanceof Error ? err.message : String(err);
  return new TorchFileError(msg.replace(/ \(an \.npz file starts 50 4b 03 04\)/, ""), source);
}

function parseLegacy(bytes: Uint8Array, source: string): TorchValue {
  const magic = unpickle(bytes, { source: `${source} (magic number pickle)` });
  if (magic.value !== LEGACY_MAGIC && !(typeof magic.value === "bigint" && magic.value === LEGACY_MAGIC)) {
    throw new TorchFileError(
      `Cannot read ${source}: it is a pickle starting with ${
        describeValue(magic.value)
      }, not the magic number ` +
        `0x1950a86a20f9469cfc6c of a legacy torch.save file; it is not a PyTorch checkpoint.`,
      source,
    );
  }
  const proto = unpickle(bytes, { source: `${source} (protocol pickle)`, start: magic.end });
  if (proto.value !== LEGACY_PROTOCOL_VERSION) {
    throw new TorchFileError(
      `Cannot read ${source}: legacy protocol version ${
        describeValue(proto.value)
      }, expected ${LEGACY_PROTOCOL_VERSION}.`,
      source,
    );
  }
  const info = unpickle(bytes, { source: `${source} (sys info pickle)`, start: proto.end });
  if (info.value instanceof Map && info.value.get("little_endian") === false) {
    throw new TorchFileError(
      `Cannot read ${source}: it was saved on a big-endian machine (sys info little_endian False); ` +
        `big-endian checkpoints are not supported.`,
      source,
    );
  }
  const pickleSource = `${source} (object pickle)`;
  const table = new StorageTable(source, pickleSource, bytes.length, null);
  const obj = unpickle(bytes, {
    source: pickleSource,
    start: info.end,
    persistentLoad: table.persistentLoad,
    reduce: table.reduce,
  });
  const keysPickle = unpickle(bytes, { source: `${source} (storage key list)`, start: obj.end });
  const keys = keysPickle.value;
  if (!Array.isArray(keys)) {
    throw new TorchFileError(
      `Cannot read ${source}: its storage key list is ${describeValue(keys)}, expected a list of keys.`,
      source,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keysPickle.end;
  for (const k of keys) {
    const key = asText(k) ?? String(k);
    const slot = table.slots.get(key);
    if (!slot || slot.root) {
      throw new TorchFileError(
        `Cannot read ${source}: storage ${key} is listed at byte ${pos} but the object pickle never ` +
          `names it; the file is damaged.`,
        source,
      );
    }
    const s = slot.storage;
    if (pos + 8 > bytes.length) {
      throw new TorchFileError(
        `Cannot read ${source}: the file ends at byte ${bytes.length}, before the element count of storage ` +
          `${key} at byte ${pos}; the file is truncated.`,
        source,
      );
    }
    const count = view.getBigInt64(pos, true);
    pos += 8;
    const es = ELEMENT_SIZE[s.dtype];
    const left = bytes.length - pos;
    if (count < 0n || count * BigInt(es) > BigInt(left)) {
      throw new TorchFileError(
        `Cannot read ${source}: storage ${key} at byte ${pos - 8} claims ${count} ${s.dtype} elements ` +
          `(${count * BigInt(es)} bytes) but only ${left} bytes remain; the file is truncated or damaged.`,
        source,
      );
    }
    if (Number(count) !== s.numel) {
      throw new TorchFileError(
        `Cannot read ${source}: storage ${key} at byte ${pos - 8} holds ${count} elements, but the object ` +
          `pickle says ${s.numel}; the file is damaged.`,
        source,
      );
    }
    const n = s.numel * es;
    s.bytes = bytes.subarray(pos, pos + n);
    slot.filled = true;
    pos += n;
  }
  table.finish();
  return obj.value;
}

function asText(v: TorchValue | undefined): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return latin1(v);
  return undefined;
}

function intList(v: TorchValue | undefined): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: number[] = [];
  for (const x of v) {
    if (typeof x !== "number" || !Number.isInteger(x)) return undefined;
    out.push(x);
  }
  return out;
}

function isGlobalRef(v: TorchValue | undefined): v is GlobalRef {
  return kindOf(v) === "global";
}

function isStorage(v: TorchValue | undefined): v is TorchStorage {
  return kindOf(v) === "storage";
}

function isTensorValue(v: TorchValue | undefined): v is TorchTensor {
  return kindOf(v) === "tensor";
}

function kindOf(v: TorchValue | undefined): string | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Map || v instanceof Set) {
    return undefined;
  }
  if (v instanceof Uint8Array) return undefined;
  return v.kind;
}
