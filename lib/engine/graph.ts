/**
 * Gradient graph nodes. A node is created by a differentiable op whose inputs need gradients; it
 * holds links to its inputs' nodes (not their data) and the tensors its backward rule needs.
 * Nodes are reference counted: a node stays alive while a tensor or a child node refers to it, and
 * frees its saved tensors when released (or right after backward, unless the graph is retained).
 * @module
 */
import type { Tensor } from "./tensor.ts";

let nextSeq = 0;

/**
 * A backward rule: given the gradient of the op's output, returns one gradient per input
 * (null where `needs[i]` is false or the input gets no gradient). It must be written in
 * differentiable ops so that gradients of gradients work.
 */
export type BackwardFn = (gy: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

/** A node of the gradient graph. */
export class Node {
  /** Op name, for error messages and debugging. */
  readonly name: string;
  /** Output shape of the op. */
  readonly shape: readonly number[];
  /**
   * Creation order: larger than every parent's (parents exist when a node is made and never change), so
   * a node whose `seq` is below an input's cannot depend on that input; backward walks stop there.
   */
  readonly seq: number = nextSeq++;
  /** Per input: its node, or null when that input needs no gradient. */
  parents: (Node | null)[];
  #saved: Tensor[];
  #backward: BackwardFn | null;
  #refs = 0;
  #consumed = false;
  #parentsReleased = false;

  /** Creates a node; takes a reference on each parent and retains each saved tensor. */
  constructor(
    name: string,
    shape: readonly number[],
    parents: (Node | null)[],
    saved: Tensor[],
    backward: BackwardFn | null,
  ) {
    this.name = name;
    this.shape = shape;
    this.parents = parents;
    for (const p of parents) p?.retain();
    this.#saved = saved.map((t) => t.retain());
    this.#backward = backward;
  }

  /** True for a leaf (a tensor created by the user with requiresGrad). */
  get isLeaf(): boolean {
    return this.#backward === null && !this.#consumed;
  }

  /** Adds a reference. */
  retain(): void {
    this.#refs++;
  }

  /** Drops a reference; at zero, frees saved tensors and releases parents. */
  release(): void {
    if (--this.#refs === 0) this.free();
  }

  /** Frees saved tensors and parent links now (after a backward pass that does not retain the graph). */
  free(): void {
    const wasOp = this.#backward !== null;
    for (const t of this.#saved) t.release();
    this.#saved = [];
    this.#backward = null;
    if (wasOp) this.#consumed = true;
    if (this.#parentsReleased) return;
    this.#parentsReleased = true;
    // The links stay (so a second backward finds this node and reports it), the references go.
    for (const p of this.parents) p?.release();
  }

  /** Runs the backward rule. Throws if the graph was already freed by an earlier backward pass. */
  runBackward(gy: Tensor, needs: readonly boolean[]): (Tensor | null)[] {
    if (this.#backward === null) {
      throw new Error(
        `Cannot backward through ${this.name} a second time: its saved tensors were freed. Pass retainGraph: true (or createGraph: true) to the first grad() call`,
      );
    }
    return this.#backward(gy, needs);
  }
}

/** Creates the leaf node of a tensor that requires gradients. */
export function leafNode(shape: readonly number[]): Node {
  return new Node("leaf", shape, [], [], null);
}
