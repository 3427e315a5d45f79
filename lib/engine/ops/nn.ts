/**
 * Small composite ops used by models: one-hot labels, gather by label, log-softmax, cross-entropy.
 * @module
 */
import { fmt } from "../backend.ts";
import type { Tensor } from "../tensor.ts";
import { tensor } from "./creation.ts";
import { mul, neg, sub } from "./elementwise.ts";
import { logsumexp, mean, sum } from "./reduce.ts";

/** A [B, K] one-hot tensor (no gradient) for integer labels in [0, K). */
export function oneHot(labels: ArrayLike<number>, k: number, like: Tensor): Tensor {
  const data = new Float64Array(labels.length * k);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= k) {
      throw new Error(`Cannot one-hot label ${l} at index ${i}: expected an integer in [0, ${k})`);
    }
    data[i * k + l] = 1;
  }
  return tensor(data, [labels.length, k], like.device);
}

/** x[b, labels[b]] for x of shape [B, K]: gather by index along the last axis. */
export function gather(x: Tensor, labels: ArrayLike<number>): Tensor {
  if (x.rank !== 2 || x.shape[0] !== labels.length) {
    throw new Error(
      `Cannot gather ${labels.length} labels from ${fmt(x.shape)}: expected shape [${labels.length}, K]`,
    );
  }
  return sum(mul(x, oneHot(labels, x.shape[1], x)), 1);
}

/** log softmax over the last axis. */
export function logSoftmax(logits: Tensor): Tensor {
  return sub(logits, logsumexp(logits, -1, true));
}

/** Mean cross-entropy (nats) of logits [B, K] against integer labels. */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>): Tensor {
  return neg(mean(gather(logSoftmax(logits), labels)));
}
