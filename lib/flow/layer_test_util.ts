/**
 * Helpers shared by the flow layers' tests: reading the golden fixtures (relative to this file, so a
 * clone runs them without ../shared), brute-force per-example Jacobians and their log-dets on a
 * float64 device, and gradient checks of whole modules. Test-only: nothing in lib/ imports it.
 * @module
 */
import { grad } from "../engine/autograd.ts";
import { requireGrad, tensor } from "../engine/ops/creation.ts";
import { add, mul } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, type Tensor, tidy } from "../engine/tensor.ts";
import { slogdet } from "./dense_test_util.ts";
import type { FlowContext, FlowLayer, Module } from "./module.ts";

/** A fixture array: `{shape, data}` with nested row-major data. */
export interface FixtureArray {
  readonly shape: readonly number[];
  readonly data: unknown;
}

/** Reads a JSON fixture from testdata/fixtures (path relative to this module). */
export async function loadFixture(name: string): Promise<Record<string, unknown>> {
  const url = new URL(`../../testdata/fixtures/${name}`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url));
}

/**
 * The fixture files in testdata/fixtures whose names start with `prefix` (".json" files, sorted), so a
 * fixture of a documented format dropped into that folder is tested without editing the tests.
 */
export function fixtureFiles(prefix: string): string[] {
  const dir = new URL("../../testdata/fixtures/", import.meta.url);
  const names = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".json"))
    .map((e) => e.name)
    .sort();
  if (names.length === 0) throw new Error(`Cannot find a fixture "${prefix}*.json" in ${dir.pathname}`);
  return names;
}

/** Flattens a fixture array (or a nested list, or a number) into row-major float64 values. */
export function flat(a: unknown): Float64Array {
  const out: number[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "number") out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object" && "data" in v) walk((v as FixtureArray).data);
    else throw new Error(`Cannot flatten fixture value ${JSON.stringify(v)?.slice(0, 80)}`);
  };
  walk(a);
  return Float64Array.from(out);
}

/** The shape of a fixture array. */
export function shapeOf(a: unknown): number[] {
  return [...(a as FixtureArray).shape];
}

/** A tensor from a fixture array. */
export function fixtureTensor(a: unknown, device: Device): Tensor {
  return tensor(flat(a), shapeOf(a), device);
}

/** A flow context for tests. */
export function testContext(training: boolean, seed = 0): FlowContext {
  return { training, rng: new Rng(seed) };
}

/** Host random normal values. */
export function normals(n: number, rng: Rng, scale = 1, shift = 0): Float64Array {
  return rng.fill(n, (r) => shift + scale * r.normal());
}

/**
 * Per-example Jacobians of `fn` at x ([B, ...]): entry [b][i·Din + j] = ∂y_b,i/∂x_b,j. Assumes `fn`
 * treats examples independently. One backward pass per output coordinate (small sizes only).
 */
export async function jacobians(fn: (x: Tensor) => Tensor, x: Tensor): Promise<{
  jac: Float64Array[];
  dOut: number;
  dIn: number;
}> {
  const b = x.shape[0];
  const dIn = x.size / b;
  const xs = requireGrad(x.detach());
  const y = fn(xs);
  const dOut = y.size / b;
  const jac = Array.from({ length: b }, () => new Float64Array(dOut * dIn));
  for (let i = 0; i < dOut; i++) {
    const onehot = new Float64Array(y.size);
    for (let e = 0; e < b; e++) onehot[e * dOut + i] = 1;
    const g = tidy(() =>
      grad(y, [xs], { gradOutputs: [tensor(onehot, y.shape, x.device)], retainGraph: true })[0]
    );
    const gd = await g.read();
    g.dispose();
    for (let e = 0; e < b; e++) {
      for (let j = 0; j < dIn; j++) jac[e][i * dIn + j] = gd[e * dIn + j];
    }
  }
  y.dispose();
  xs.dispose();
  return { jac, dOut, dIn };
}

/** log|det ∂f(x)_b/∂x_b| per example by a dense LU of the brute-force Jacobian. */
export async function bruteLogDets(fn: (x: Tensor) => Tensor, x: Tensor): Promise<number[]> {
  const { jac, dOut, dIn } = await jacobians(fn, x);
  if (dOut !== dIn) throw new Error(`Cannot take a log-det of a ${dOut}×${dIn} Jacobian: it is not square`);
  return jac.map((j) => slogdet(j, dIn).logAbsDet);
}

/** Reads a per-example log-det (null means identically zero). */
export async function readLogdet(logdet: Tensor | null, batch: number): Promise<number[]> {
  if (logdet === null) return new Array(batch).fill(0);
  return Array.from(await logdet.read());
}

/** Runs a layer's forward under noGrad, returning host copies of y and the log-det. */
export async function forwardHost(
  layer: FlowLayer,
  x: Tensor,
  ctx: FlowContext,
): Promise<{ y: Float64Array; shape: number[]; logdet: number[] }> {
  const out = noGrad(() => layer.forward(x, ctx));
  const y = Float64Array.from(await out.y.read());
  const logdet = await readLogdet(out.logdet, x.shape[0]);
  const shape = [...out.y.shape];
  out.y.dispose();
  out.logdet?.dispose();
  return { y, shape, logdet };
}

/**
 * Gradients of a scalar loss with respect to every parameter of a module, read to the host. The loss
 * is built by `loss()` (inside a tidy).
 */
export async function parameterGradients(
  module: Module,
  loss: () => Tensor,
): Promise<Map<string, Float64Array>> {
  const params = module.parameters();
  const gs = tidy(() => grad(loss(), params.map((p) => p.value)));
  const out = new Map<string, Float64Array>();
  for (let i = 0; i < params.length; i++) {
    out.set(params[i].name, Float64Array.from(await gs[i].read()));
    gs[i].dispose();
  }
  return out;
}

/** A fixed random weighting of y so that a scalar loss depends on every element differently. */
export function weightedSum(y: Tensor, seed = 7): Tensor {
  const r = new Rng(seed);
  return sum(mul(y, tensor(r.fill(y.size, (q) => q.normal()), y.shape, y.device)));
}

/** Largest absolute difference between two arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A layer's inverse that must be analytic (synchronous): throws if it returns a promise. */
export function syncInverse(layer: FlowLayer, y: Tensor, ctx: FlowContext): Tensor {
  const x = layer.inverse(y, ctx);
  if (x instanceof Promise) {
    throw new Error(`Cannot differentiate the inverse of ${layer.kind}: it is asynchronous`);
  }
  return x;
}

/** What {@link checkFlowLayer} measured. */
export interface FlowLayerReport {
  /** max |inverse(forward(x)) − x|. */
  readonly roundTrip: number;
  /** The layer's log-det per example. */
  readonly logdet: number[];
  /** Brute-force log|det ∂y/∂x| per example. */
  readonly bruteForward: number[];
  /** Brute-force log|det ∂x/∂y| of the inverse at y, per example (should be −logdet). */
  readonly bruteInverse: number[];
  /** Parameter names whose gradient (of Σ weighted y + Σ logdet) is not all finite. */
  readonly nonFinite: string[];
  /** Parameter names whose gradient is identically zero. */
  readonly zeroGrad: string[];
}

/**
 * The flow-layer contract on one input: round trip, forward log-det vs the brute-force Jacobian,
 * inverse log-det consistency, and finite gradients for every parameter. Jacobians need a small x.
 */
export async function checkFlowLayer(
  layer: FlowLayer,
  x: Tensor,
  ctx: FlowContext,
): Promise<FlowLayerReport> {
  const { y, shape, logdet } = await forwardHost(layer, x, ctx);
  const yt = tensor(y, shape, x.device);
  const back = await noGrad(() => layer.inverse(yt, ctx));
  const roundTrip = maxAbsDiff(await back.read(), await x.read());
  back.dispose();
  const bruteForward = await bruteLogDets((xi) => layer.forward(xi, ctx).y, x);
  const bruteInverse = await bruteLogDets((yi) => {
    const r = layer.inverse(yi, ctx);
    if (r instanceof Promise) {
      throw new Error(
        `checkFlowLayer needs a synchronous inverse for the brute-force Jacobian (${layer.kind})`,
      );
    }
    return r;
  }, yt);
  yt.dispose();
  const nonFinite: string[] = [];
  const zeroGrad: string[] = [];
  if (layer.parameters().length > 0) {
    const grads = await parameterGradients(layer, () => {
      const out = layer.forward(x, ctx);
      const l = weightedSum(out.y);
      return out.logdet ? add(l, sum(out.logdet)) : l;
    });
    for (const [name, g] of grads) {
      if (!g.every(Number.isFinite)) nonFinite.push(name);
      if (g.every((v) => v === 0)) zeroGrad.push(name);
    }
  }
  return { roundTrip, logdet, bruteForward, bruteInverse, nonFinite, zeroGrad };
}
