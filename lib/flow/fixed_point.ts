/**
 * The fixed-point inverse of a residual block y = x + g(x) (SPEC 5): x_0 = y, x ← y − g(x), which
 * converges geometrically because Lip(g) < 1. Every run reports how many updates it took, the last
 * update's size and the final residual max|x + g(x) − y|; exceeding the iteration cap throws (or,
 * when asked, returns a report flagged `converged: false`), never a silent stop.
 *
 * Rounding floor: in float32 the update y − g(x) carries rounding noise of about 1e-6 on logit-scale
 * values, so a tight tolerance (the default 1e-6) can lie below what the iteration can reach: the
 * change stops shrinking and wanders at the noise (measured on a 1000-step quick MNIST model: one
 * block's inverse ran to the 1000-iteration cap with every change about 2e-6 and a residual of 1.9e-6).
 * With the "change" criterion the iteration therefore also stops, reporting `atFloor: true`, when the
 * largest change/tolerance ratio has made no new minimum for {@link FLOOR_WINDOW} iterations while
 * within {@link FLOOR_RATIO} tolerances: converged as far as the arithmetic allows. A contraction
 * still making progress keeps setting new minima and is never stopped this way.
 *
 * Convergence checks need the host to see one number per iteration, so the general entry point is
 * async ({@link fixedPointInverse}); {@link fixedPointInverseSync} runs the same iteration on CPU
 * devices, whose data the host can read synchronously.
 * @module
 */
import { CpuStorage } from "../engine/cpu/cpu_storage.ts";
import { abs, add, div, mul, square, sub } from "../engine/ops/elementwise.ts";
import { max } from "../engine/ops/reduce.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import type { ResidualBranch } from "./estimators.ts";

/** Options of the fixed-point inverse. */
export interface FixedPointOptions {
  /** Absolute tolerance (default 1e-6). */
  readonly atol?: number;
  /** Relative tolerance, scaled by |y| elementwise (default 1e-6). */
  readonly rtol?: number;
  /** Iteration cap (default 1000, as the official code). */
  readonly maxIterations?: number;
  /**
   * "change" (default): stop at the first update with |x_new − x_old| ≤ atol + rtol·|y| everywhere.
   * "official": the official test (x_new − x_old)² / (atol + rtol·|y|) < 1 everywhere (squared change
   * against an unsquared tolerance; with its 1e-5 defaults it stops ~1e-3 away from the solution).
   */
  readonly criterion?: "change" | "official";
  /** What to do when the cap is reached: "throw" (default) or "report" (returns converged: false). */
  readonly onUnconverged?: "throw" | "report";
  /**
   * Iterations recorded per convergence readback by the async inverse (default 4; the sync one checks
   * every iteration). The result is the same as checking after every iteration: the iterates of a batch
   * are kept and the first that passes the test is returned, so at most checkEvery − 1 evaluations of g
   * are wasted, against one ~10 ms readback (and a drained GPU queue) saved per skipped check.
   */
  readonly checkEvery?: number;
}

/**
 * Iterations without a new minimum of the largest change/tolerance ratio after which the "change"
 * criterion declares the rounding floor reached (with {@link FLOOR_RATIO}).
 */
export const FLOOR_WINDOW = 50;

/** Largest change/tolerance ratio at which a stalled iteration counts as at the rounding floor. */
export const FLOOR_RATIO = 64;

/** How a fixed-point inversion went. */
export interface FixedPointReport {
  /** Updates x ← y − g(x) performed (each one evaluation of g). */
  readonly iterations: number;
  /** max |x_new − x_old| of the last update. */
  readonly lastChange: number;
  /** max |x + g(x) − y| at the returned x (one more evaluation of g). */
  readonly residual: number;
  /** Whether the stopping test passed, or the rounding floor was reached, within the cap. */
  readonly converged: boolean;
  /**
   * True when it stopped at the rounding floor (no new minimum of the change for
   * {@link FLOOR_WINDOW} iterations, within {@link FLOOR_RATIO} tolerances) rather than by the test.
   */
  readonly atFloor: boolean;
}

/** Result of a fixed-point inversion: x (owned by the caller) and its report. */
export interface FixedPointResult {
  /** The solved input. */
  readonly x: Tensor;
  /** Iterations, last change, residual, convergence. */
  readonly report: FixedPointReport;
}

/** Iterations per convergence readback of the async inverse, unless {@link FixedPointOptions.checkEvery} says. */
const DEFAULT_CHECK_EVERY = 4;

/** Every option of {@link FixedPointOptions} with its default, validated. */
type ResolvedOptions = ReturnType<typeof resolve>;

function resolve(opts: FixedPointOptions) {
  const o = {
    atol: opts.atol ?? 1e-6,
    rtol: opts.rtol ?? 1e-6,
    maxIterations: opts.maxIterations ?? 1000,
    criterion: opts.criterion ?? "change",
    onUnconverged: opts.onUnconverged ?? "throw",
    checkEvery: opts.checkEvery ?? DEFAULT_CHECK_EVERY,
  };
  if (!Number.isInteger(o.checkEvery) || o.checkEvery < 1) {
    throw new Error(
      `Cannot run the fixed-point inverse with checkEvery ${o.checkEvery}: expected an integer >= 1`,
    );
  }
  if (!(o.atol >= 0 && o.rtol >= 0 && o.atol + o.rtol > 0)) {
    throw new Error(
      `Cannot run the fixed-point inverse with atol ${o.atol}, rtol ${o.rtol}: expected >= 0, not both 0`,
    );
  }
  if (!Number.isInteger(o.maxIterations) || o.maxIterations < 1) {
    throw new Error(
      `Cannot run the fixed-point inverse with maxIterations ${o.maxIterations}: expected an integer >= 1`,
    );
  }
  if (o.criterion !== "change" && o.criterion !== "official") {
    throw new Error(
      `Cannot run the fixed-point inverse with criterion "${o.criterion}": expected change or official`,
    );
  }
  return o;
}

/**
 * The iteration as a generator: per batch of up to `batch` updates it yields a small tensor holding
 * [maxChange, maxRatio] (or [maxChange, maxSquaredRatio]) of each update, and receives its values.
 */
function* iterate(
  branch: ResidualBranch,
  y: Tensor,
  o: ResolvedOptions,
  batch: number,
): Generator<Tensor, FixedPointResult, number[]> {
  const tolT = noGrad(() => add(mul(abs(y), o.rtol), o.atol));
  let x = noGrad(() => reshape(y, y.shape));
  let iterations = 0;
  let lastChange = Infinity;
  let converged = false;
  let atFloor = false;
  // The smallest ratio so far and the iteration (1-based) that set it: the rounding-floor test.
  let best = Infinity;
  let bestAt = 0;
  const pending: Tensor[] = [];
  const passes = (ratio: number) => (o.criterion === "change" ? ratio <= 1 : ratio < 1);
  const floored = (ratio: number, at: number) => {
    if (ratio < best) {
      best = ratio;
      bestAt = at;
      return false;
    }
    return o.criterion === "change" && at - bestAt >= FLOOR_WINDOW && ratio <= FLOOR_RATIO;
  };
  try {
    while (iterations < o.maxIterations) {
      const k = Math.min(batch, o.maxIterations - iterations);
      const parts: Tensor[] = [];
      let cur = x;
      for (let j = 0; j < k; j++) {
        const prev = cur;
        const [next, part] = noGrad(() =>
          tidy(() => {
            const nx = sub(y, branch.apply(prev));
            const d = abs(sub(nx, prev));
            const ratio = o.criterion === "change" ? div(d, tolT) : div(square(d), tolT);
            return [nx, concat([reshape(max(d), [1]), reshape(max(ratio), [1])], 0)];
          })
        );
        pending.push(next);
        parts.push(part);
        cur = next;
      }
      const stats = parts.length === 1 ? parts[0] : noGrad(() => concat(parts, 0));
      if (parts.length > 1) { for (const part of parts) part.dispose(); }
      const values = yield stats;
      stats.dispose();
      let hit = -1;
      for (let j = 0; j < k && hit < 0; j++) {
        const ratio = values[2 * j + 1];
        if (passes(ratio)) hit = j;
        else if (floored(ratio, iterations + j + 1)) {
          hit = j;
          atFloor = true;
        }
      }
      const take = hit >= 0 ? hit : k - 1;
      x.dispose();
      x = pending[take];
      for (let j = 0; j < pending.length; j++) if (j !== take) pending[j].dispose();
      pending.length = 0;
      iterations += take + 1;
      lastChange = values[2 * take];
      if (hit >= 0) {
        converged = true;
        break;
      }
    }
    const res = noGrad(() => tidy(() => reshape(max(abs(sub(add(x, branch.apply(x)), y))), [1])));
    const [residual] = yield res;
    res.dispose();
    const report = { iterations, lastChange, residual, converged, atFloor };
    if (!converged && o.onUnconverged === "throw") {
      throw new Error(
        `Cannot invert the residual block: the fixed-point iteration did not converge within ${o.maxIterations} iterations (last change ${lastChange}, residual ${residual}, atol ${o.atol}, rtol ${o.rtol}, criterion ${o.criterion})`,
      );
    }
    const result = { x, report };
    x = null as unknown as Tensor;
    return result;
  } finally {
    for (const t of pending) t.dispose();
    x?.dispose();
    tolT.dispose();
  }
}

/**
 * Inverts y = x + g(x) by fixed-point iteration on any device (one small readback per
 * {@link FixedPointOptions.checkEvery} iterations).
 */
export async function fixedPointInverse(
  branch: ResidualBranch,
  y: Tensor,
  opts: FixedPointOptions = {},
): Promise<FixedPointResult> {
  const o = resolve(opts);
  const it = iterate(branch, y, o, o.checkEvery);
  let step = it.next();
  while (!step.done) {
    let values: number[];
    try {
      values = Array.from(await step.value.read());
    } catch (e) {
      step.value.dispose();
      it.return(undefined as unknown as FixedPointResult);
      throw e;
    }
    step = it.next(values);
  }
  return step.value;
}

/** The same iteration, synchronously, on CPU devices (throws elsewhere: use {@link fixedPointInverse}). */
export function fixedPointInverseSync(
  branch: ResidualBranch,
  y: Tensor,
  opts: FixedPointOptions = {},
): FixedPointResult {
  const storage = y.buffer.storage;
  if (!(storage instanceof CpuStorage)) {
    throw new Error(
      `Cannot invert a residual block synchronously on device "${y.device.name}": the convergence test needs a host readback; use the async inverse (fixedPointInverse / IResBlock.inverseAsync)`,
    );
  }
  const it = iterate(branch, y, resolve(opts), 1);
  let step = it.next();
  while (!step.done) {
    const s = step.value.buffer.storage as CpuStorage;
    step = it.next(Array.from(s.data));
  }
  return step.value;
}
