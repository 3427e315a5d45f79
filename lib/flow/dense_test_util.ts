/**
 * Test helpers: small dense linear algebra on the host in float64 (row-major `Float64Array`s): LU with
 * partial pivoting, log|det|, inverse, and the eigenvalues of a symmetric matrix (cyclic Jacobi). Used by
 * the invertible 1×1 convolution's checks, by brute-force Jacobian log-dets, and for exact operator norms
 * of small convolutions (σ_max = √λ_max(AᵀA)). Not part of the published package.
 * @module
 */

/** An LU factorisation PA = LU of an n×n matrix (L unit lower, U upper, packed in `lu`). */
export interface LuFactors {
  /** Matrix size. */
  readonly n: number;
  /** L below the diagonal (unit diagonal implied) and U on and above it, row-major. */
  readonly lu: Float64Array;
  /** Row permutation: row i of PA is row `perm[i]` of A. */
  readonly perm: Int32Array;
  /** +1 or −1: the sign of the permutation. */
  readonly permSign: number;
  /** True when a pivot was exactly zero (the matrix is singular). */
  readonly singular: boolean;
}

function checkSquare(a: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n) {
    throw new Error(`Cannot ${what}: expected ${n}×${n} = ${n * n} values, got ${a.length}`);
  }
}

/**
 * LU factorisation with partial pivoting.
 *
 * @example
 * ```ts
 * const f = luDecompose([0, 1, 1, 0], 2); // f.permSign === -1
 * ```
 */
export function luDecompose(a: ArrayLike<number>, n: number): LuFactors {
  checkSquare(a, n, "LU-decompose");
  const lu = Float64Array.from(a);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  let permSign = 1;
  let singular = false;
  for (let k = 0; k < n; k++) {
    let p = k;
    let best = Math.abs(lu[k * n + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(lu[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        const t = lu[k * n + j];
        lu[k * n + j] = lu[p * n + j];
        lu[p * n + j] = t;
      }
      const t = perm[k];
      perm[k] = perm[p];
      perm[p] = t;
      permSign = -permSign;
    }
    const pivot = lu[k * n + k];
    if (pivot === 0) {
      singular = true;
      continue;
    }
    for (let i = k + 1; i < n; i++) {
      const f = (lu[i * n + k] /= pivot);
      if (f === 0) continue;
      for (let j = k + 1; j < n; j++) lu[i * n + j] -= f * lu[k * n + j];
    }
  }
  return { n, lu, perm, permSign, singular };
}

/** log|det A| and the sign of det A (sign 0 and −Infinity for a singular matrix). */
export function slogdet(a: ArrayLike<number>, n: number): { sign: number; logAbsDet: number } {
  const f = luDecompose(a, n);
  if (f.singular) return { sign: 0, logAbsDet: -Infinity };
  let sign = f.permSign;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = f.lu[i * n + i];
    if (d < 0) sign = -sign;
    s += Math.log(Math.abs(d));
  }
  return { sign, logAbsDet: s };
}

/** det A. */
export function det(a: ArrayLike<number>, n: number): number {
  const { sign, logAbsDet } = slogdet(a, n);
  return sign * Math.exp(logAbsDet);
}

/** A⁻¹ by LU with partial pivoting. Throws for a singular matrix. */
export function inverse(a: ArrayLike<number>, n: number): Float64Array {
  const f = luDecompose(a, n);
  if (f.singular) throw new Error(`Cannot invert a ${n}×${n} matrix: it is singular (a zero pivot)`);
  const out = new Float64Array(n * n);
  const col = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    // Solve A x = e_j: P A = L U, so L U x = P e_j.
    for (let i = 0; i < n; i++) col[i] = f.perm[i] === j ? 1 : 0;
    for (let i = 0; i < n; i++) {
      let s = col[i];
      for (let k = 0; k < i; k++) s -= f.lu[i * n + k] * col[k];
      col[i] = s;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = col[i];
      for (let k = i + 1; k < n; k++) s -= f.lu[i * n + k] * col[k];
      col[i] = s / f.lu[i * n + i];
    }
    for (let i = 0; i < n; i++) out[i * n + j] = col[i];
  }
  return out;
}

/** C = A·B for A [m, k] and B [k, n], row-major. */
export function matmulHost(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): Float64Array {
  if (a.length !== m * k || b.length !== k * n) {
    throw new Error(`Cannot multiply ${a.length} by ${b.length} values as [${m}, ${k}]·[${k}, ${n}]`);
  }
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p];
      if (v === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += v * b[p * n + j];
    }
  }
  return c;
}

/** Aᵀ·A for A [m, n] row-major: an n×n symmetric matrix. */
export function gramHost(a: ArrayLike<number>, m: number, n: number): Float64Array {
  if (a.length !== m * n) throw new Error(`Cannot form AᵀA of ${a.length} values as [${m}, ${n}]`);
  const g = new Float64Array(n * n);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < n; i++) {
      const v = a[r * n + i];
      if (v === 0) continue;
      for (let j = i; j < n; j++) g[i * n + j] += v * a[r * n + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  return g;
}

/**
 * Eigenvalues of a symmetric n×n matrix by cyclic Jacobi rotations, sorted in decreasing order.
 * Accurate to a few ulps of the largest eigenvalue; O(n³) per sweep, fine for n up to a few hundred.
 */
export function symmetricEigenvalues(a: ArrayLike<number>, n: number, maxSweeps = 60): Float64Array {
  checkSquare(a, n, "compute eigenvalues");
  const m = Float64Array.from(a);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const d = Math.abs(m[i * n + j] - m[j * n + i]);
      if (d > 1e-12 * (Math.abs(m[i * n + j]) + Math.abs(m[j * n + i]) + 1e-300)) {
        throw new Error(`Cannot compute symmetric eigenvalues: entry (${i}, ${j}) differs from (${j}, ${i})`);
      }
    }
  }
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += m[i * n + i] * m[i * n + i];
      for (let j = i + 1; j < n; j++) off += m[i * n + j] * m[i * n + j];
    }
    if (off <= 1e-32 * diag || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const app = m[p * n + p];
        const aqq = m[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p];
          const akq = m[k * n + q];
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k];
          const aqk = m[q * n + k];
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  const ev = new Float64Array(n);
  for (let i = 0; i < n; i++) ev[i] = m[i * n + i];
  return ev.sort().reverse();
}

/** Aᵀ of A [m, n], row-major. */
export function transposeHost(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** The largest singular value of A [m, n] (√ of the top eigenvalue of the smaller of AᵀA and AAᵀ). */
export function largestSingularValue(a: ArrayLike<number>, m: number, n: number): number {
  const ev = n <= m
    ? symmetricEigenvalues(gramHost(a, m, n), n)
    : symmetricEigenvalues(gramHost(transposeHost(a, m, n), n, m), m);
  return Math.sqrt(Math.max(0, ev[0]));
}
