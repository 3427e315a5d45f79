/**
 * Get and set a module's parameters and buffers by name ("2.nnet.0.weight", "7.nnet.1.u"): the names
 * that `parameters()` / `buffers()` give, the keys of checkpoints and of the EMA.
 * @module
 */
import { tensor } from "../engine/ops/creation.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import type { BufferState, Module, Parameter } from "./module.ts";

/** One named tensor of a module. */
export interface NamedTensor {
  /** Its dotted name. */
  readonly name: string;
  /** "parameter" (trainable) or "buffer" (power-iteration vectors, flags, diagnostics). */
  readonly kind: "parameter" | "buffer";
  /** The current tensor (null for a buffer not initialised yet). Owned by the module. */
  readonly value: Tensor | null;
  /** The slot itself, to replace the tensor. */
  readonly slot: Parameter | BufferState;
}

/** Every parameter, then every buffer, by name. Throws when two share a name. */
export function namedTensors(module: Module): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  const add = (kind: "parameter" | "buffer", slot: Parameter | BufferState) => {
    if (out.has(slot.name)) {
      throw new Error(`Cannot name the tensors of a module: ${slot.name} appears twice`);
    }
    out.set(slot.name, { name: slot.name, kind, value: slot.value, slot });
  };
  for (const p of module.parameters()) add("parameter", p);
  for (const b of module.buffers()) add("buffer", b);
  return out;
}

/** Host data and shape for {@link setTensor}. */
export interface HostTensor {
  /** Values in row-major order. */
  readonly data: ArrayLike<number>;
  /** Shape. */
  readonly shape: readonly number[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Replaces the tensor called `name` by `value` (a tensor, taken over by the module, or host data created
 * on `device`, default the device of the module's first parameter). A parameter or an initialised
 * buffer keeps its shape (a different one is an error naming both); an empty buffer takes any shape.
 */
export function setTensor(module: Module, name: string, value: Tensor | HostTensor, device?: Device): void {
  const entry = namedTensors(module).get(name);
  if (!entry) {
    throw new Error(`Cannot set tensor ${name}: the module has no parameter or buffer of that name`);
  }
  const shape = value.shape;
  const current = entry.value;
  if (current !== null && !sameShape(current.shape, shape)) {
    throw new Error(`Cannot set tensor ${name}: shape [${shape}] given, the module's is [${current.shape}]`);
  }
  let t: Tensor;
  if ("data" in value) {
    const dev = device ?? current?.device ?? module.parameters()[0]?.value.device;
    if (!dev) throw new Error(`Cannot set tensor ${name}: no device given and the module has no parameters`);
    t = tensor(value.data, [...shape], dev);
  } else t = value;
  entry.slot.set(t);
}
