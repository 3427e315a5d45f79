/**
 * Test helpers for the residual-block tests: reading the golden fixtures, and residual branches g
 * built directly from engine ops (an inline LipSwish and plain convolutions or linear layers), so the
 * estimator tests do not depend on the layer modules.
 * @module
 */
import { matmul } from "../engine/ops/linalg.ts";
import { tensor } from "../engine/ops/creation.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { add, div, elu, maximum, mul, sigmoid, softplus } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { reshape } from "../engine/ops/shape.ts";
import { Rng } from "../engine/random.ts";
import type { Device, Tensor } from "../engine/tensor.ts";
import type { ResidualBranch } from "./estimators.ts";
import { type BufferState, Parameter } from "./module.ts";

/** A fixture array: shape and nested row-major data. */
export interface FixtureArray {
  readonly shape: number[];
  readonly data: unknown;
}

/** Flattens a fixture array (or nested list, or number) to a Float64Array in row-major order. */
export function flat(a: FixtureArray | unknown): Float64Array {
  const out: number[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) { for (const e of v) walk(e); }
    else out.push(v as number);
  };
  walk(a !== null && typeof a === "object" && "data" in (a as object) ? (a as FixtureArray).data : a);
  return Float64Array.from(out);
}

export { fixtureFiles } from "./layer_test_util.ts";

/** Reads a JSON fixture from testdata/fixtures. */
export async function readFixture(name: string): Promise<Record<string, unknown>> {
  const url = new URL(`../../testdata/fixtures/${name}`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url));
}

/** A fixture array as a tensor on `device`. */
export function fixtureTensor(a: FixtureArray, device: Device): Tensor {
  return tensor(flat(a), a.shape, device);
}

/** LipSwish φ(z) = z·sigmoid(βz)/1.1 with β = softplus(β_raw), written with engine ops. */
export function lipSwish(z: Tensor, betaRaw: Tensor): Tensor {
  return div(mul(z, sigmoid(mul(z, softplus(betaRaw)))), 1.1);
}

/** One layer of a fixture block's g, as listed in iresblock.json. */
// deno-lint-ignore no-explicit-any
export type FixtureLayer = Record<string, any>;

/**
 * The g of an iresblock.json variant from its layers. Parameters are named as the fixture's
 * gradients: "convK.weight", "convK.bias", "actK.beta_raw" (LipSwish; ELU has no parameter). With `raw`, the weight parameters are
 * "convK.weight_raw" and the forward normalises them the official way with the stored u, v held
 * fixed: W = W_raw / max(1, σ/coeff), σ = ⟨u, conv2d(v, W_raw)⟩, with the fixture's `coeff`.
 */
export class FixtureBranch implements ResidualBranch {
  readonly #params: Parameter[] = [];
  readonly #steps: ((x: Tensor) => Tensor)[] = [];

  /** Builds the branch on `device`. */
  constructor(layers: readonly FixtureLayer[], device: Device, opts: { raw?: boolean; coeff?: number } = {}) {
    let conv = 0;
    let act = 0;
    for (const l of layers) {
      if (l.type === "LipSwish") {
        const p = new Parameter(`act${act++}.beta_raw`, tensor([l.beta_raw], [1], device));
        this.#params.push(p);
        this.#steps.push((x) => lipSwish(x, p.value));
      } else if (l.type === "ELU") {
        if (l.alpha !== 1) throw new Error(`Cannot build a fixture branch: ELU alpha ${l.alpha}, expected 1`);
        this.#steps.push((x) => elu(x));
      } else if (l.type === "Conv2d") {
        const k = conv++;
        const pad = l.padding as number;
        const b = new Parameter(`conv${k}.bias`, fixtureTensor(l.bias, device));
        let weight: () => Tensor;
        let w: Parameter;
        if (opts.raw) {
          w = new Parameter(`conv${k}.weight_raw`, fixtureTensor(l.weight_raw, device));
          const u = fixtureTensor(l.power_iteration_u, device).keep();
          const v = fixtureTensor(l.power_iteration_v, device).keep();
          const coeff = opts.coeff;
          if (coeff === undefined) throw new Error("Cannot build a raw fixture branch: coeff is missing");
          const oneByOne = l.kernel_size === 1 || (Array.isArray(l.kernel_size) && l.kernel_size[0] === 1);
          weight = () => {
            const wr = w.value;
            const sigma = oneByOne
              ? sum(
                mul(
                  reshape(u, [1, -1]),
                  matmul(reshape(v, [1, -1]), reshape(wr, [wr.shape[0], -1]), false, true),
                ),
              )
              : sum(mul(u, conv2d(reshape(v, [1, ...v.shape]), wr, null, { pad })));
            return div(wr, maximum(div(sigma, coeff), 1));
          };
        } else {
          w = new Parameter(`conv${k}.weight`, fixtureTensor(l.weight, device));
          weight = () => w.value;
        }
        this.#params.push(w);
        this.#params.push(b);
        this.#steps.push((x) => conv2d(x, weight(), b.value, { pad }));
      } else {
        throw new Error(`Cannot build a fixture branch: unknown layer type "${l.type}"`);
      }
    }
  }

  /** Parameters in layer order. */
  parameters(): Parameter[] {
    return this.#params;
  }

  /** No buffers. */
  buffers(): BufferState[] {
    return [];
  }

  /** g(x). */
  apply(x: Tensor): Tensor {
    let h = x;
    for (const s of this.#steps) h = s(h);
    return h;
  }

  /** The parameter named `name`. */
  param(name: string): Parameter {
    const p = this.#params.find((q) => q.name.endsWith(name));
    if (!p) throw new Error(`Cannot find parameter "${name}" in the fixture branch`);
    return p;
  }
}

/**
 * A 3-1-3 convolutional g of any size with random weights (scaled down so Lip(g) < 1 in practice):
 * [LipSwish] → conv3x3(C→h) → LipSwish → conv1x1(h→h) → LipSwish → conv3x3(h→C). For memory
 * measurements (on the meta device the values do not matter) and smoke tests.
 */
export class RandomConvBranch implements ResidualBranch {
  readonly #params: Parameter[] = [];
  readonly #preact: boolean;

  /** Builds the branch on `device` from a seed. */
  constructor(c: number, hidden: number, device: Device, seed: number, preact = true) {
    const rng = new Rng(seed);
    const w = (shape: number[], scale: number) =>
      tensor(
        Float64Array.from({ length: shape.reduce((a, b) => a * b) }, () => scale * rng.normal()),
        shape,
        device,
      );
    this.#preact = preact;
    if (preact) this.#params.push(new Parameter("act0.beta_raw", tensor([0.5], [1], device)));
    const shapes = [[hidden, c, 3, 3], [hidden, hidden, 1, 1], [c, hidden, 3, 3]];
    shapes.forEach((sh, k) => {
      this.#params.push(new Parameter(`conv${k}.weight`, w(sh, 0.3 / Math.sqrt(sh[1] * sh[2] * sh[3]))));
      this.#params.push(new Parameter(`conv${k}.bias`, w([sh[0]], 0.1)));
      if (k < 2) this.#params.push(new Parameter(`act${k + 1}.beta_raw`, tensor([0.5], [1], device)));
    });
  }

  /** Parameters in layer order. */
  parameters(): Parameter[] {
    return this.#params;
  }

  /** No buffers. */
  buffers(): BufferState[] {
    return [];
  }

  /** g(x). */
  apply(x: Tensor): Tensor {
    const p = this.#params.map((q) => q.value);
    let i = 0;
    let h = this.#preact ? lipSwish(x, p[i++]) : x;
    h = lipSwish(conv2d(h, p[i++], p[i++], { pad: 1 }), p[i++]);
    h = lipSwish(conv2d(h, p[i++], p[i++]), p[i++]);
    return conv2d(h, p[i++], p[i++], { pad: 1 });
  }
}

/**
 * A tiny fully connected g: x [B, D] ↦ W2 φ(W1 x + b1) + b2 with LipSwish φ. W1 is random; W2 is
 * −W1ᵀ plus a little noise, so J = W2 diag(φ') W1 has large negative eigenvalues and the series
 * terms do not cancel; b1 ≈ 2 puts the pre-activations where φ' is close to 1. Each matrix is scaled to
 * spectral norm `scale`, so Lip(g) ≤ scale².
 */
export class TinyFcBranch implements ResidualBranch {
  readonly #params: Parameter[];

  /** Builds the branch on `device` from a seed. */
  constructor(d: number, hidden: number, device: Device, seed: number, scale = 0.95) {
    const rng = new Rng(seed);
    const normalise = (a: Float64Array, rows: number, cols: number) => {
      const s = spectralNorm(a, rows, cols);
      return a.map((v) => (v * scale) / s);
    };
    const w1 = normalise(Float64Array.from({ length: hidden * d }, () => rng.normal()), hidden, d);
    const w2 = normalise(
      Float64Array.from(
        { length: d * hidden },
        (_, i) => -w1[(i % hidden) * d + Math.floor(i / hidden)] + 0.1 * rng.normal(),
      ),
      d,
      hidden,
    );
    this.#params = [
      new Parameter("fc0.weight", tensor(w1, [hidden, d], device)),
      new Parameter(
        "fc0.bias",
        tensor(Float64Array.from({ length: hidden }, () => 2 + 0.3 * rng.normal()), [hidden], device),
      ),
      new Parameter("act0.beta_raw", tensor([1.0], [1], device)),
      new Parameter("fc1.weight", tensor(w2, [d, hidden], device)),
      new Parameter(
        "fc1.bias",
        tensor(Float64Array.from({ length: d }, () => 0.5 * rng.normal()), [d], device),
      ),
    ];
  }

  /** fc0.weight, fc0.bias, act0.beta_raw, fc1.weight, fc1.bias. */
  parameters(): Parameter[] {
    return this.#params;
  }

  /** No buffers. */
  buffers(): BufferState[] {
    return [];
  }

  /** g(x). */
  apply(x: Tensor): Tensor {
    const [w0, b0, beta, w1, b1] = this.#params.map((p) => p.value);
    const h = lipSwish(add(matmul(x, w0, false, true), b0), beta);
    return add(matmul(h, w1, false, true), b1);
  }
}

/** Largest singular value of a row-major rows×cols matrix (power iteration on the host). */
export function spectralNorm(a: ArrayLike<number>, rows: number, cols: number): number {
  let v = new Float64Array(cols).fill(1);
  let s = 0;
  for (let it = 0; it < 500; it++) {
    const u = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) u[r] += a[r * cols + c] * v[c];
    const nv = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) nv[c] += a[r * cols + c] * u[r];
    const n = Math.hypot(...nv);
    s = Math.sqrt(n);
    v = nv.map((x) => x / n);
  }
  return s;
}
