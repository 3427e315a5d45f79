/**
 * Deferred element-wise ops, fused into one kernel per run of consecutive ops of one flat size.
 *
 * The flat unary, binary and `where` ops (operands of the result's size, or single values) do not dispatch at once:
 * {@link ElementwiseFuser.add} allocates the result and records a node. The pending group is dispatched
 * as one fused kernel (`kernels/fused.ts`) when anything else is recorded or submitted, when an op of
 * another size arrives, or when the group would exceed its binding budget. The fused kernel reads each
 * input storage once, keeps intermediate values in registers and writes only the results not freed in
 * the meantime (a result freed before the group runs is never written and its buffer goes straight back
 * to the pool). Results are bit-for-bit those of the separate kernels (see `kernels/fused.ts`).
 *
 * A reduction of a pending result takes the whole group instead ({@link ElementwiseFuser.take}): the
 * reduction kernel evaluates the chain where it reads its input (`kernels/fused_reduce.ts`), one dispatch
 * for both.
 *
 * Order is preserved: the group runs before any later dispatch, and every op of the group comes after
 * every earlier dispatch. Inputs of a pending group count as used by the current batch, so freeing them
 * defers their buffers like any other input of unsubmitted work.
 * @module
 */
import { fusedElementwiseKernel, fusedKey, type FusedOp, type FusedSpec } from "../../../kernels/fused.ts";
import type { Dispatcher, GpuStorage } from "./dispatcher.ts";

/** Largest number of storage bindings (inputs plus results) of one fused kernel. */
export const MAX_FUSED_BINDINGS = 16;

interface PendingNode {
  readonly op: FusedOp;
  /** >= 0: leaf index; < 0: node -(a + 1). */
  readonly args: readonly number[];
  readonly out: GpuStorage;
  store: boolean;
}

/** A pending group handed to another kernel ({@link ElementwiseFuser.take}). */
export interface PendingGroup {
  /** The chain, its node indices as in the spec. */
  readonly spec: FusedSpec;
  /** Storages of the stored nodes, in binding order. */
  readonly outs: readonly GpuStorage[];
  /** Input storages, in binding order after the outputs. */
  readonly leaves: readonly GpuStorage[];
  /** Flat size of every result. */
  readonly n: number;
  /** The node whose result was asked for. */
  readonly target: number;
}

/** Collects element-wise ops of one size and dispatches them as one fused kernel. */
export class ElementwiseFuser {
  readonly #d: Dispatcher;
  readonly #maxBindings: number;
  #n = 0;
  #nodes: PendingNode[] = [];
  #leaves: GpuStorage[] = [];
  #leafIndex = new Map<GpuStorage, number>();
  #nodeIndex = new Map<GpuStorage, number>();
  /** Ops deferred since creation. */
  deferred = 0;
  /** Fused kernels dispatched since creation. */
  kernels = 0;

  /** A fuser recording through `d`, with at most `maxBindings` storage bindings per kernel (>= 4). */
  constructor(d: Dispatcher, maxBindings: number) {
    if (!Number.isInteger(maxBindings) || maxBindings < 4) {
      throw new Error(`Cannot create the element-wise fuser: maxBindings ${maxBindings} is below 4`);
    }
    this.#d = d;
    this.#maxBindings = maxBindings;
  }

  /** True while some op is recorded but not dispatched. */
  get pending(): boolean {
    return this.#nodes.length > 0;
  }

  /** True when `s` is the result of a pending op. */
  isPending(s: GpuStorage): boolean {
    return this.#nodeIndex.has(s);
  }

  /**
   * Records `op` over `n` elements (every input holds `n` values, or 1 value broadcast when `n > 1`) and
   * returns its result storage; nothing is dispatched yet. Throws at once on bad bindings.
   */
  add(op: FusedOp, n: number, inputs: readonly GpuStorage[], what: string): GpuStorage {
    const out = this.#d.alloc(n, what);
    if (n === 0) return out;
    this.#d.checkBinding(out, what);
    for (const s of inputs) {
      this.#d.checkBinding(s, what);
      if (s.size !== n && !(s.size === 1 && n > 1)) {
        throw new Error(`Cannot fuse ${what}: an input has ${s.size} values, expected ${n} or 1`);
      }
    }
    if (this.pending && n !== this.#n) this.flush();
    if (this.pending) {
      const fresh = new Set<GpuStorage>();
      for (const s of inputs) if (!this.#nodeIndex.has(s) && !this.#leafIndex.has(s)) fresh.add(s);
      if (this.#leaves.length + fresh.size + this.#nodes.length + 1 > this.#maxBindings) this.flush();
    }
    this.#n = n;
    const args = inputs.map((s) => {
      const k = this.#nodeIndex.get(s);
      if (k !== undefined) return -(k + 1);
      let j = this.#leafIndex.get(s);
      if (j === undefined) {
        j = this.#leaves.length;
        this.#leaves.push(s);
        this.#leafIndex.set(s, j);
        this.#d.markPendingUse(s);
      }
      return j;
    });
    this.#nodeIndex.set(out, this.#nodes.length);
    this.#nodes.push({ op, args, out, store: true });
    this.deferred++;
    return out;
  }

  /**
   * Called when `s` is freed: if it is a pending result, it will not be written and true is returned
   * (its buffer may be reused at once); otherwise false.
   */
  release(s: GpuStorage): boolean {
    const k = this.#nodeIndex.get(s);
    if (k === undefined) return false;
    this.#nodes[k].store = false;
    return true;
  }

  /**
   * Hands the pending group over to a kernel that will evaluate it itself (a reduction of `s`, see
   * reduce_ops.ts) when `s` is one of its results and the group's bindings plus `extra` fit the budget;
   * the group is then no longer pending and the caller must dispatch it. Otherwise null (nothing changes).
   */
  take(s: GpuStorage, extra: number): PendingGroup | null {
    const target = this.#nodeIndex.get(s);
    if (target === undefined) return null;
    const stored = this.#nodes.filter((nd) => nd.store).length;
    if (stored + this.#leaves.length + extra > this.#maxBindings) return null;
    const g = this.#detach();
    this.kernels++;
    return { ...g, target };
  }

  /** Empties the pending group, returning it as a kernel spec with its storages. */
  #detach(): Omit<PendingGroup, "target"> {
    const nodes = this.#nodes, leaves = this.#leaves, n = this.#n;
    this.#nodes = [];
    this.#leaves = [];
    this.#leafIndex = new Map();
    this.#nodeIndex = new Map();
    const outs = nodes.filter((nd) => nd.store).map((nd) => nd.out);
    const nl = leaves.length;
    const spec: FusedSpec = {
      leaves: leaves.map((s) => (s.size === 1 && n > 1 ? "scalar" : "vec")),
      nodes: nodes.map((nd) => ({
        op: nd.op,
        args: nd.args.map((a) => (a >= 0 ? a : nl - a - 1)),
        store: nd.store,
      })),
    };
    return { spec, outs, leaves, n };
  }

  /** Dispatches the pending group (if any) as one fused kernel. */
  flush(): void {
    if (!this.pending) return;
    const { spec, outs, leaves, n } = this.#detach();
    if (outs.length === 0) return;
    const k = this.#d.kernel(fusedKey(spec), () => fusedElementwiseKernel(spec));
    const n4 = Math.ceil(n / 4);
    this.kernels++;
    this.#d.dispatchBindings(k, { n4, z: 0 }, [...outs, ...leaves], this.#d.grid1d(n4, k.label));
  }
}
