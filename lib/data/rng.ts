/**
 * The data pipeline's own seeded PRNG: xoshiro128** (Blackman & Vigna, 2018; 128-bit state, period
 * 2^128 − 1), its state filled by splitmix32 from a list of integer keys (e.g. seed, epoch, batch), so
 * any batch of any epoch can be regenerated on its own. Deterministic on every platform (32-bit
 * integer arithmetic only).
 * @module
 */

/** One step of splitmix32: returns the mixed output for state `a` (the caller adds the golden gamma). */
function mix32(a: number): number {
  let t = a ^ (a >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  return (t ^ (t >>> 15)) >>> 0;
}

/** A seeded xoshiro128** generator. */
export class Rng {
  #s = new Uint32Array(4);

  /** Seeds from one or more integer keys (each may use up to 53 bits). Equal keys give equal streams. */
  constructor(...keys: number[]) {
    let a = 0x243f6a88;
    for (const k of keys) {
      if (!Number.isSafeInteger(k)) throw new RangeError(`Cannot seed Rng: key ${k} is not a safe integer`);
      const lo = k >>> 0;
      const hi = Math.floor(k / 4294967296) >>> 0;
      a = mix32((a + 0x9e3779b9) ^ lo);
      a = mix32((a + 0x9e3779b9) ^ hi);
    }
    for (let i = 0; i < 4; i++) {
      a = (a + 0x9e3779b9) | 0;
      this.#s[i] = mix32(a);
    }
    if (this.#s.every((x) => x === 0)) this.#s[0] = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** A uniform integer in [0, n), unbiased (rejection sampling); 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!(n >= 1 && n <= 4294967296 && Number.isInteger(n))) {
      throw new RangeError(`Cannot draw Rng.int(${n})`);
    }
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** The 128-bit state, for checkpoints. */
  getState(): [number, number, number, number] {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /** Restores a state from {@link getState}. */
  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.every((x) => x === 0)) {
      throw new RangeError("Cannot set Rng state: expected 4 words, not all 0");
    }
    this.#s.set(state);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Shuffles `a` in place (Fisher–Yates) with `rng`; returns it. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}
