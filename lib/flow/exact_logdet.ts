/**
 * Exact log-determinants of small residual blocks: the full per-example Jacobian of g by D
 * vector-Jacobian products, then log|det(I + J)| by a float64 LU factorisation on the host.
 * Optionally differentiable (first order): the value is the exact log-det and the gradient is
 * tr((I + J)⁻¹ ∂J), formed as ⟨(I + J)^(−T), J⟩ with the inverse held constant. For tests and toy
 * problems only: the cost is D backward passes and a readback.
 * @module
 */
import { grad } from "../engine/autograd.ts";
import { tensor } from "../engine/ops/creation.ts";
import { add, mul, sub } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";

/** Elements per example of a batched tensor (all axes after the first). */
export function perExample(t: Tensor): number {
  return t.size / t.shape[0];
}

/**
 * The per-example Jacobian J[b, i, j] = ∂gx[b, i] / ∂x[b, j] (flattened row-major), shape [B, Dout, Din],
 * from one vector-Jacobian product per output coordinate. `gx` must have been computed from `x` with
 * a graph; examples must not interact (true for every layer of g). With `createGraph` the result can
 * be differentiated again. The graph of `gx` is kept.
 */
export function jacobian(gx: Tensor, x: Tensor, opts: { createGraph?: boolean } = {}): Tensor {
  const b = x.shape[0];
  if (gx.shape[0] !== b) {
    throw new Error(`Cannot build a Jacobian: g(x) has batch ${gx.shape[0]} but x has ${b}`);
  }
  const dOut = perExample(gx);
  const dIn = perExample(x);
  return tidy(() => {
    const rows: Tensor[] = [];
    const e = new Float64Array(gx.size);
    for (let i = 0; i < dOut; i++) {
      e.fill(0);
      for (let n = 0; n < b; n++) e[n * dOut + i] = 1;
      const probe = tensor(e, gx.shape, gx.device);
      const [row] = grad(gx, [x], { gradOutputs: [probe], createGraph: opts.createGraph, retainGraph: true });
      rows.push(reshape(row, [b, 1, dIn]));
    }
    return concat(rows, 1);
  });
}

/** log|det A| and the sign of det A for a row-major n×n matrix (LU with partial pivoting, float64). */
export function logAbsDet(a: ArrayLike<number>, n: number): { logAbsDet: number; sign: number } {
  const m = Float64Array.from(a);
  let sign = 1;
  let logAbs = 0;
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[piv * n + c])) piv = r;
    const p = m[piv * n + c];
    if (p === 0) return { logAbsDet: -Infinity, sign: 0 };
    if (piv !== c) {
      for (let j = 0; j < n; j++) {
        const t = m[c * n + j];
        m[c * n + j] = m[piv * n + j];
        m[piv * n + j] = t;
      }
      sign = -sign;
    }
    if (p < 0) sign = -sign;
    logAbs += Math.log(Math.abs(p));
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / p;
      if (f === 0) continue;
      for (let j = c + 1; j < n; j++) m[r * n + j] -= f * m[c * n + j];
    }
  }
  return { logAbsDet: logAbs, sign };
}

/** The inverse of a row-major n×n matrix (Gauss-Jordan with partial pivoting, float64). Throws if singular. */
export function invertMatrix(a: ArrayLike<number>, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[piv * n + c])) piv = r;
    const p = m[piv * n + c];
    if (p === 0) throw new Error(`Cannot invert a ${n}x${n} matrix: it is singular (column ${c})`);
    if (piv !== c) {
      for (let j = 0; j < n; j++) {
        let t = m[c * n + j];
        m[c * n + j] = m[piv * n + j];
        m[piv * n + j] = t;
        t = inv[c * n + j];
        inv[c * n + j] = inv[piv * n + j];
        inv[piv * n + j] = t;
      }
    }
    for (let j = 0; j < n; j++) {
      m[c * n + j] /= p;
      inv[c * n + j] /= p;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * n + c];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j] -= f * m[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
  return inv;
}

/** tr(J^k) for k = 1..kMax of a row-major n×n matrix (explicit powers, float64). */
export function traceOfPowers(j: ArrayLike<number>, n: number, kMax: number): number[] {
  const out: number[] = [];
  let p = Float64Array.from(j);
  for (let k = 1; k <= kMax; k++) {
    let tr = 0;
    for (let i = 0; i < n; i++) tr += p[i * n + i];
    out.push(tr);
    if (k === kMax) break;
    const next = new Float64Array(n * n);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        const a = p[r * n + c];
        if (a === 0) continue;
        for (let q = 0; q < n; q++) next[r * n + q] += a * j[c * n + q];
      }
    }
    p = next;
  }
  return out;
}

/** Host log|det(I + J_b)| for each example of a [B, D, D] Jacobian read back as a flat array. */
export function logdetOfIdentityPlus(jac: ArrayLike<number>, b: number, d: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < b; n++) {
    const m = Float64Array.from({ length: d * d }, (_, i) => jac[n * d * d + i]);
    for (let i = 0; i < d; i++) m[i * d + i] += 1;
    out.push(logAbsDet(m, d).logAbsDet);
  }
  return out;
}

/**
 * Exact log|det(I + ∂g/∂x)| per example, shape [B], for `gx` = g(x) computed with a graph from `x`.
 * With `differentiable`, the result carries a first-order gradient equal to that of the exact log-det
 * (through the Jacobian built with createGraph, so g must be twice differentiable); otherwise it has
 * no graph. The graph of `gx` is kept.
 */
export async function exactLogdet(
  gx: Tensor,
  x: Tensor,
  opts: { differentiable?: boolean } = {},
): Promise<Tensor> {
  const b = x.shape[0];
  const d = perExample(x);
  if (perExample(gx) !== d) {
    throw new Error(`Cannot take log det(I + J): g(x) has ${perExample(gx)} values per example, x has ${d}`);
  }
  const differentiable = opts.differentiable ?? false;
  const jac = jacobian(gx, x, { createGraph: differentiable });
  try {
    const host = await jac.read();
    const values = logdetOfIdentityPlus(host, b, d);
    if (!differentiable) return tensor(values, [b], x.device);
    const invT = new Float64Array(b * d * d);
    for (let n = 0; n < b; n++) {
      const m = Float64Array.from({ length: d * d }, (_, i) => host[n * d * d + i]);
      for (let i = 0; i < d; i++) m[i * d + i] += 1;
      const inv = invertMatrix(m, d);
      for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) invT[n * d * d + r * d + c] = inv[c * d + r];
    }
    return tidy(() => {
      const s = sum(mul(jac, tensor(invT, [b, d, d], x.device)), [1, 2]);
      const shift = noGrad(() => sub(tensor(values, [b], x.device), s));
      return add(s, shift);
    });
  } finally {
    jac.dispose();
  }
}
