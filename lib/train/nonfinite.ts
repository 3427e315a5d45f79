/**
 * The report of a rejected training step: which quantity was not finite (the loss or the gradient
 * norm), which parameters have non-finite gradients, which residual blocks have a non-finite log-det
 * estimate (in forward order: the first is where it started), and how many input values were not
 * finite. Runs only after a failure, so its readbacks cost nothing in normal training.
 * @module
 */
import type { Tensor } from "../engine/tensor.ts";
import type { IResBlock } from "../flow/iresblock.ts";
import type { FailureReport } from "./train_types.ts";

/** Number of NaN or ±Infinity values in `xs`. */
export function countNonFinite(xs: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) n++;
  return n;
}

/** What the diagnosis looks at. */
export interface FailureEvidence {
  /** The step index. */
  readonly step: number;
  /** The loss read back. */
  readonly loss: number;
  /** The gradient norm read back. */
  readonly gradNorm: number;
  /** The host input batch. */
  readonly x: ArrayLike<number>;
  /** Gradients before clipping, aligned with `paramNames` (null: unused). */
  readonly grads: readonly (Tensor | null)[];
  /** Parameter names. */
  readonly paramNames: readonly string[];
  /** Residual blocks in forward order with display names; their `last_firmom` is read. */
  readonly blocks: readonly { readonly block: IResBlock; readonly name: string }[];
}

/** Builds the {@link FailureReport} of a rejected step (reads every gradient and block moment). */
export async function diagnoseFailure(e: FailureEvidence): Promise<FailureReport> {
  const { step, loss, gradNorm } = e;
  const quantity = Number.isFinite(loss) ? "gradient" : "loss";
  const parameters: string[] = [];
  for (let i = 0; i < e.grads.length; i++) {
    const g = e.grads[i];
    if (g && countNonFinite(await g.read()) > 0) parameters.push(e.paramNames[i]);
  }
  const blocks: string[] = [];
  for (const { block, name } of e.blocks) {
    const m = block.lastFirmom.value;
    if (m && !Number.isFinite(await m.item())) blocks.push(name);
  }
  const inputNonFinite = countNonFinite(e.x);
  const parts = [
    `Step ${step} rejected: the ${quantity === "loss" ? "loss" : "gradient norm"} is ${
      quantity === "loss" ? loss : gradNorm
    }`,
  ];
  if (inputNonFinite) parts.push(`the input batch holds ${inputNonFinite} non-finite values`);
  if (blocks.length) {
    parts.push(
      `non-finite log-det estimate first in ${blocks[0]}${
        blocks.length > 1 ? ` (and ${blocks.length - 1} later blocks)` : ""
      }`,
    );
  } else if (quantity === "loss") parts.push("every residual block's log-det estimate is finite");
  if (parameters.length) {
    const shown = parameters.slice(0, 8).join(", ");
    parts.push(
      `non-finite gradient of ${parameters.length} parameter${parameters.length > 1 ? "s" : ""} (${shown}${
        parameters.length > 8 ? ", ..." : ""
      })`,
    );
  }
  parts.push("parameters, optimizer and EMA left at the last good state");
  return { step, quantity, loss, gradNorm, parameters, blocks, inputNonFinite, message: parts.join("; ") };
}
