/**
 * Seeded random numbers, generated on the host so every backend gets exactly the same values.
 *
 * The generator is a counter-based hash (SplitMix64-style mixing on 32-bit halves via BigInt-free
 * arithmetic): `Rng(seed)` is reproducible, cheap to fork (`rng.fork(tag)`), and its state is one
 * pair of integers, so checkpoints can store and restore it.
 * @module
 */
import type { Shape } from "./backend.ts";
import { sizeOf } from "./backend.ts";
import { getDefaultDevice } from "./devices.ts";
import { type Device, type Tensor, wrap } from "./tensor.ts";

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Serialisable generator state. */
export interface RngState {
  /** Mixed 32-bit seed. */
  readonly seed: number;
  /** Draws consumed so far. */
  readonly counter: number;
}

/** A seeded, counter-based random number generator. */
export class Rng {
  #seed: number;
  #counter: number;

  /** Creates a generator from an integer seed. */
  constructor(seed: number, counter = 0) {
    if (!Number.isFinite(seed)) {
      throw new Error(`Cannot seed a generator with ${seed}: expected a finite integer`);
    }
    this.#seed = mix32(Math.trunc(seed) >>> 0 ^ 0x9e3779b9);
    this.#counter = counter;
  }

  /** The state, for checkpoints. */
  get state(): RngState {
    return { seed: this.#seed, counter: this.#counter };
  }

  /** Restores a generator from {@link Rng.state}. */
  static fromState(s: RngState): Rng {
    const r = new Rng(0);
    r.#seed = s.seed >>> 0;
    r.#counter = s.counter;
    return r;
  }

  /** An independent generator derived from this one's seed and a tag (does not advance this one). */
  fork(tag: number): Rng {
    const r = new Rng(0);
    r.#seed = mix32(this.#seed ^ mix32(tag + 0x632be5ab));
    return r;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const c = this.#counter++;
    return mix32(mix32(c ^ this.#seed) + (this.#seed ^ 0x85ebca6b));
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A standard normal draw (Box–Muller on two uniforms). */
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A Poisson(lambda) draw (inversion by sequential search; fine for the small rates used here). */
  poisson(lambda: number): number {
    if (!(lambda >= 0) || lambda > 500) {
      throw new Error(`Cannot draw Poisson(${lambda}): expected 0 <= lambda <= 500`);
    }
    const u = this.uniform();
    let k = 0;
    let p = Math.exp(-lambda);
    let cdf = p;
    while (u >= cdf && k < 10000) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }

  /** A Geometric(p) draw on {1, 2, ...} (numpy's convention): P(N = k) = (1-p)^(k-1) p. */
  geometric(p: number): number {
    if (!(p > 0 && p <= 1)) throw new Error(`Cannot draw Geometric(${p}): expected 0 < p <= 1`);
    if (p === 1) return 1;
    const u = 1 - this.uniform();
    return Math.max(1, Math.ceil(Math.log(u) / Math.log1p(-p)));
  }

  /** Fills an array with draws from `draw`. */
  fill(n: number, draw: (r: Rng) => number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = draw(this);
    return out;
  }
}

function make(shape: Shape, rng: Rng, draw: (r: Rng) => number, device?: Device): Tensor {
  const dev = device ?? getDefaultDevice();
  const data = rng.fill(sizeOf(shape), draw);
  return wrap(dev, dev.backend.fromArray(data), shape);
}

/** Standard normal tensor. */
export function randn(shape: Shape, rng: Rng, device?: Device): Tensor {
  return make(shape, rng, (r) => r.normal(), device);
}

/** Uniform [0, 1) tensor. */
export function rand(shape: Shape, rng: Rng, device?: Device): Tensor {
  return make(shape, rng, (r) => r.uniform(), device);
}

/** Poisson(lambda) tensor. */
export function randPoisson(shape: Shape, lambda: number, rng: Rng, device?: Device): Tensor {
  return make(shape, rng, (r) => r.poisson(lambda), device);
}

/** Geometric(p) tensor on {1, 2, ...}. */
export function randGeometric(shape: Shape, p: number, rng: Rng, device?: Device): Tensor {
  return make(shape, rng, (r) => r.geometric(p), device);
}
