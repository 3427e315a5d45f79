/**
 * Finite-difference checks of gradients and Hessian-vector products, for tests of the engine and of
 * every layer built on it. Run them on a float64 device ("cpu64") so central differences are exact
 * to ~1e-9.
 * @module
 */
import { grad } from "./autograd.ts";
import { requireGrad, tensor } from "./ops/creation.ts";
import { mul } from "./ops/elementwise.ts";
import { sum } from "./ops/reduce.ts";
import { type Device, noGrad, type Tensor, tidy } from "./tensor.ts";

/** A scalar function of several tensors. */
export type ScalarFn = (...xs: Tensor[]) => Tensor;

/** One input of a check: host values and shape. */
export interface CheckInput {
  /** Values, row-major. */
  readonly data: ArrayLike<number>;
  /** Shape. */
  readonly shape: readonly number[];
}

/** Result of a check: the worst relative error and where. */
export interface CheckReport {
  /** Largest relative error found. */
  readonly maxRelError: number;
  /** Which input and coordinate. */
  readonly where: string;
  /** Autograd value there. */
  readonly analytic: number;
  /** Finite-difference value there. */
  readonly numeric: number;
}

function relErr(a: number, n: number, floor: number): number {
  return Math.abs(a - n) / Math.max(floor, Math.abs(a), Math.abs(n));
}

async function evalScalar(fn: ScalarFn, device: Device, inputs: readonly CheckInput[]): Promise<number> {
  const out = noGrad(() => tidy(() => fn(...inputs.map((i) => tensor(i.data, i.shape, device)))));
  const v = await out.item();
  out.dispose();
  return v;
}

function pickIndices(n: number, maxPoints: number): number[] {
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i < maxPoints; i++) out.push(Math.floor((i * (n - 1)) / (maxPoints - 1)));
  return [...new Set(out)];
}

/**
 * Compares ∂fn/∂inputs from autograd with central differences at up to `maxPoints` coordinates per
 * input. Returns the worst relative error (denominator floored at `floor`).
 *
 * @example
 * ```ts
 * import { createDevice, exp, sum } from "./mod.ts";
 *
 * const dev64 = await createDevice("cpu64"); // float64: central differences need the precision
 * const r = await checkGradient((x) => sum(exp(x)), dev64, [{ data: [0.1, 0.2], shape: [2] }]);
 * if (r.maxRelError > 1e-7) throw new Error(r.where);
 * ```
 */
export async function checkGradient(
  fn: ScalarFn,
  device: Device,
  inputs: readonly CheckInput[],
  opts: { eps?: number; maxPoints?: number; floor?: number } = {},
): Promise<CheckReport> {
  const eps = opts.eps ?? 1e-6;
  const floor = opts.floor ?? 1e-6;
  const xs = inputs.map((i) => requireGrad(tensor(i.data, i.shape, device)));
  const gs = tidy(() => grad(fn(...xs), xs));
  const analytic = await Promise.all(gs.map((g) => g.read()));
  gs.forEach((g) => g.dispose());
  xs.forEach((x) => x.dispose());
  let worst: CheckReport = { maxRelError: 0, where: "none", analytic: 0, numeric: 0 };
  for (let k = 0; k < inputs.length; k++) {
    for (const i of pickIndices(inputs[k].data.length, opts.maxPoints ?? 24)) {
      const shifted = (delta: number) =>
        inputs.map((inp, j) => {
          if (j !== k) return inp;
          const d = Float64Array.from(inp.data);
          d[i] += delta;
          return { data: d, shape: inp.shape };
        });
      const fp = await evalScalar(fn, device, shifted(eps));
      const fm = await evalScalar(fn, device, shifted(-eps));
      const numeric = (fp - fm) / (2 * eps);
      const e = relErr(analytic[k][i], numeric, floor);
      if (e > worst.maxRelError || Number.isNaN(e)) {
        worst = {
          maxRelError: Number.isNaN(e) ? Infinity : e,
          where: `input ${k} index ${i}`,
          analytic: analytic[k][i],
          numeric,
        };
      }
    }
  }
  return worst;
}

/**
 * Compares the Hessian-vector product H·v of a scalar fn of one input, computed by differentiating
 * the gradient (createGraph), with central differences of the gradient along v.
 */
export async function checkHessianVector(
  fn: ScalarFn,
  device: Device,
  input: CheckInput,
  v: ArrayLike<number>,
  opts: { eps?: number; floor?: number } = {},
): Promise<CheckReport> {
  const eps = opts.eps ?? 1e-5;
  const floor = opts.floor ?? 1e-6;
  const gradAt = async (data: ArrayLike<number>) => {
    const x = requireGrad(tensor(data, input.shape, device));
    const [g] = tidy(() => grad(fn(x), [x]));
    const r = await g.read();
    g.dispose();
    x.dispose();
    return r;
  };
  const x = requireGrad(tensor(input.data, input.shape, device));
  const vt = tensor(v, input.shape, device);
  const hv = tidy(() => {
    const [g] = grad(fn(x), [x], { createGraph: true });
    return grad(sum(mul(g, vt)), [x])[0];
  });
  const analytic = await hv.read();
  hv.dispose();
  vt.dispose();
  x.dispose();
  const plus = await gradAt(Array.from(input.data, (d, i) => d + eps * v[i]));
  const minus = await gradAt(Array.from(input.data, (d, i) => d - eps * v[i]));
  let worst: CheckReport = { maxRelError: 0, where: "none", analytic: 0, numeric: 0 };
  for (let i = 0; i < analytic.length; i++) {
    const numeric = (plus[i] - minus[i]) / (2 * eps);
    const e = relErr(analytic[i], numeric, floor);
    if (e > worst.maxRelError || Number.isNaN(e)) {
      worst = {
        maxRelError: Number.isNaN(e) ? Infinity : e,
        where: `index ${i}`,
        analytic: analytic[i],
        numeric,
      };
    }
  }
  return worst;
}
