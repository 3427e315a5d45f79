/**
 * Element-wise ops with broadcasting, each with a backward rule written in differentiable ops.
 * Numbers are accepted wherever a tensor is and become cached scalar constants.
 * @module
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import { broadcastShapes } from "../backend.ts";
import type { Tensor } from "../tensor.ts";
import { scalarConst } from "./creation.ts";
import { composite, constant, record, sameDevice } from "./record.ts";
import { sumTo } from "./reduce.ts";

/** A tensor or a number. */
export type TensorLike = Tensor | number;

function unaryRaw(op: UnaryOp, x: Tensor): Tensor {
  const d = sameDevice(op, x);
  return constant(d, d.backend.unary(op, x.buffer.storage), x.shape);
}

function unaryOp(op: UnaryOp, x: Tensor, grad: (x: Tensor, gy: Tensor) => Tensor): Tensor {
  const d = sameDevice(op, x);
  const s = d.backend.unary(op, x.buffer.storage);
  return record(op, d, s, x.shape, [x], [x], (gy) => [grad(x, gy)]);
}

/** Resolves two operands to tensors on a common device. */
export function pair(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error("Cannot apply a binary op to two numbers: at least one operand must be a tensor");
  }
  const dev = typeof a === "number" ? (b as Tensor).device : (a as Tensor).device;
  return [typeof a === "number" ? scalarConst(a, dev) : a, typeof b === "number" ? scalarConst(b, dev) : b];
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const d = sameDevice(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  return constant(d, d.backend.binary(op, a.buffer.storage, a.shape, b.buffer.storage, b.shape), shape);
}

function binaryOp(
  op: BinaryOp,
  a: Tensor,
  b: Tensor,
  saved: Tensor[],
  grads: (gy: Tensor, needs: readonly boolean[]) => [Tensor | null, Tensor | null],
): Tensor {
  const d = sameDevice(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const s = d.backend.binary(op, a.buffer.storage, a.shape, b.buffer.storage, b.shape);
  return record(op, d, s, shape, [a, b], saved, (gy, needs) => {
    const [ga, gb] = grads(gy, needs);
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
}

/** a + b (broadcast). */
export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("add", x, y, [], (g, n) => [n[0] ? g : null, n[1] ? g : null]);
}

/** a - b (broadcast). */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("sub", x, y, [], (g, n) => [n[0] ? g : null, n[1] ? neg(g) : null]);
}

/** a * b (broadcast). */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("mul", x, y, [x, y], (g, n) => [n[0] ? mul(g, y) : null, n[1] ? mul(g, x) : null]);
}

/** a / b (broadcast). */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("div", x, y, [x, y], (g, n) => [
    n[0] ? div(g, y) : null,
    n[1] ? neg(div(mul(g, x), square(y))) : null,
  ]);
}

/** a ^ b (broadcast). The gradient in b uses log(a) and needs a > 0. */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("pow", x, y, [x, y], (g, n) => [
    n[0] ? mul(g, mul(y, pow(x, sub(y, 1)))) : null,
    n[1] ? mul(g, mul(pow(x, y), log(x))) : null,
  ]);
}

/** Element-wise maximum; ties send the gradient to a. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("max", x, y, [x, y], (g, n) => {
    const m = ge(x, y);
    return [n[0] ? mul(g, m) : null, n[1] ? mul(g, sub(1, m)) : null];
  });
}

/** Element-wise minimum; ties send the gradient to a. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return binaryOp("min", x, y, [x, y], (g, n) => {
    const m = le(x, y);
    return [n[0] ? mul(g, m) : null, n[1] ? mul(g, sub(1, m)) : null];
  });
}

/** 1 where a > b else 0 (no gradient). */
export function gt(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("gt", ...pair(a, b));
}
/** 1 where a >= b else 0 (no gradient). */
export function ge(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("ge", ...pair(a, b));
}
/** 1 where a < b else 0 (no gradient). */
export function lt(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("lt", ...pair(a, b));
}
/** 1 where a <= b else 0 (no gradient). */
export function le(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("le", ...pair(a, b));
}
/** 1 where a == b else 0 (no gradient). */
export function eq(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("eq", ...pair(a, b));
}
/** 1 where a != b else 0 (no gradient). */
export function ne(a: TensorLike, b: TensorLike): Tensor {
  return binaryRaw("ne", ...pair(a, b));
}

/** cond != 0 ? a : b, broadcast over all three. No gradient flows to cond. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  const d = sameDevice("where", cond, x, y);
  const shape = broadcastShapes(broadcastShapes(cond.shape, x.shape), y.shape);
  const s = d.backend.where(
    cond.buffer.storage,
    cond.shape,
    x.buffer.storage,
    x.shape,
    y.buffer.storage,
    y.shape,
    shape,
  );
  return record("where", d, s, shape, [x, y], [cond], (g, n) => [
    n[0] ? sumTo(where(cond, g, 0), x.shape) : null,
    n[1] ? sumTo(where(cond, 0, g), y.shape) : null,
  ]);
}

/** -x. */
export function neg(x: Tensor): Tensor {
  return unaryOp("neg", x, (_x, g) => neg(g));
}
/** e^x. */
export function exp(x: Tensor): Tensor {
  return unaryOp("exp", x, (x, g) => mul(g, exp(x)));
}
/** Natural logarithm. */
export function log(x: Tensor): Tensor {
  return unaryOp("log", x, (x, g) => div(g, x));
}
/** log(1 + x). */
export function log1p(x: Tensor): Tensor {
  return unaryOp("log1p", x, (x, g) => div(g, add(x, 1)));
}
/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unaryOp("sqrt", x, (x, g) => div(g, mul(sqrt(x), 2)));
}
/** |x| (gradient sign(x), 0 at 0). */
export function abs(x: Tensor): Tensor {
  return unaryOp("abs", x, (x, g) => mul(g, sign(x)));
}
/** sign(x) in {-1, 0, 1} (no gradient). */
export function sign(x: Tensor): Tensor {
  return unaryRaw("sign", x);
}
/** 1 where x > 0 else 0 (no gradient). */
export function step(x: Tensor): Tensor {
  return unaryRaw("step", x);
}
/** Logistic sigmoid. */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp("sigmoid", x, (x, g) => {
    const s = sigmoid(x);
    return mul(g, mul(s, sub(1, s)));
  });
}
/** log(1 + e^x), computed stably. */
export function softplus(x: Tensor): Tensor {
  return unaryOp("softplus", x, (x, g) => mul(g, sigmoid(x)));
}
/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unaryOp("tanh", x, (x, g) => mul(g, sub(1, square(tanh(x)))));
}
/** ELU with alpha 1: x for x > 0, e^x - 1 otherwise. */
export function elu(x: Tensor): Tensor {
  return unaryOp("elu", x, (x, g) => mul(g, eluDerivative(x)));
}
/**
 * ELU's derivative, 1 for x > 0 and e^x otherwise, as one composite op that keeps only x in a graph
 * (a vector-Jacobian product through ELU with a graph then holds two tensors of x's size, not five).
 */
function eluDerivative(x: Tensor): Tensor {
  const below = (x: Tensor) => mul(sub(1, step(x)), exp(minimum(x, 0)));
  return composite("eluDerivative", [x], [x], () => add(step(x), below(x)), (g) => [mul(g, below(x))]);
}
/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  return unaryOp("relu", x, (x, g) => mul(g, step(x)));
}
/** 1 / x. */
export function recip(x: Tensor): Tensor {
  return unaryOp("recip", x, (x, g) => neg(div(g, square(x))));
}
/** x². */
export function square(x: Tensor): Tensor {
  return unaryOp("square", x, (x, g) => mul(g, mul(x, 2)));
}
