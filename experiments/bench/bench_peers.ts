/**
 * The JavaScript peers of the kernel benchmark: the libraries a user could pick instead of this engine,
 * run on the same kernels with the same operands in the same process. Each peer is loaded on demand
 * (`npm:` specifiers, so nothing is fetched unless it is benchmarked) and is optional: a peer that
 * fails to load is reported with the reason and skipped.
 *
 * Peers: `@tensorflow/tfjs-backend-wasm` 4.22.0 ("tfjs-wasm", SIMD) and `@jax-js/jax` 0.1.25 on its
 * wasm and webgpu devices ("jax-js-wasm", "jax-js-webgpu").
 *
 * Operands are given in the engine's layouts (matmul A [m,k] and B [k,n] row-major; conv x NCHW,
 * w OIHW, dy NCHW) and outputs are read back in the same layouts, so results can be compared with the
 * engine's. Layout conversions happen once, outside the timed calls.
 * @module
 */

/** The peers {@link loadPeers} knows, in the order they are measured. */
export const PEER_NAMES: readonly string[] = ["tfjs-wasm", "jax-js-wasm", "jax-js-webgpu"];

/** A stride-1 2-D convolution: x [n,c,h,w], w [o,c,kh,kw], `pad` zeros on each side. */
export interface ConvSpec {
  /** Input shape [n, c, h, w]. */
  readonly x: readonly [number, number, number, number];
  /** Weight shape [o, c, kh, kw]. */
  readonly w: readonly [number, number, number, number];
  /** Zero padding on each spatial side. */
  readonly pad: number;
}

/** One benchmarked kernel, independent of any backend. */
export type KernelSpec =
  | { readonly op: "matmul"; readonly m: number; readonly k: number; readonly n: number }
  | ({ readonly op: "conv2d_forward" | "conv2d_inputGrad" | "conv2d_weightGrad" } & ConvSpec);

/**
 * Operands of a kernel in the engine's layouts: `a`, `b` for matmul; `x`, `w`, `dy` for the
 * convolutions (each conv kernel uses two of them).
 */
export type Operands = Readonly<Record<string, Float32Array>>;

/** A kernel prepared on one peer: inputs uploaded, ready to be called repeatedly. */
export interface PeerRun {
  /** Issues one call; its output is kept until the next {@link PeerRun.sync}. */
  run(): void;
  /** Waits until every call since the last sync has finished, then frees their outputs. */
  sync(): Promise<void>;
  /** Runs one call and returns its output in the engine's layout (for correctness checks). */
  read(): Promise<Float32Array>;
  /** Frees the inputs. */
  dispose(): void;
  /** How the peer computes the kernel, when that is more than one library call. */
  readonly note: string | null;
}

/** One loaded peer. */
export interface Peer {
  /** Name used as `backend` in the results, e.g. "tfjs-wasm". */
  readonly backend: string;
  /** Library, version and device, e.g. "tfjs-core 4.22.0 wasm (SIMD, 1 thread)". */
  readonly adapter: string;
  /** Uploads the operands and returns the kernel ready to run; throws when the peer cannot run it. */
  prepare(spec: KernelSpec, operands: Operands): Promise<PeerRun>;
}

/** Result of {@link loadPeers}: the peers that loaded and why the others did not. */
export interface PeerLoad {
  /** Peers that loaded, in the order asked. */
  readonly peers: Peer[];
  /** Peers that did not load, each with the error message. */
  readonly failures: { readonly backend: string; readonly reason: string }[];
}

/** Output shape of a stride-1 convolution. */
export function convOutputShape(s: ConvSpec): [number, number, number, number] {
  const [n, , h, w] = s.x;
  const [o, , kh, kw] = s.w;
  return [n, o, h + 2 * s.pad - kh + 1, w + 2 * s.pad - kw + 1];
}

/** Permutes a dense row-major array of `shape` by `perm` (output axis i = input axis perm[i]). */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  if (data.length !== s) {
    throw new Error(`Cannot permute: ${data.length} values given for shape [${shape.join(",")}]`);
  }
  const stride = perm.map((p) => inStrides[p]);
  const out = new Float32Array(s);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < s; o++) {
    out[o] = data[src];
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      src += stride[ax];
      if (idx[ax] < outShape[ax]) break;
      src -= stride[ax] * outShape[ax];
      idx[ax] = 0;
    }
  }
  return out;
}

function need(operands: Operands, name: string): Float32Array {
  const v = operands[name];
  if (v === undefined) throw new Error(`Cannot prepare the kernel: operand "${name}" is missing`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// tfjs-wasm

type Tf = typeof import("npm:@tensorflow/tfjs-core@4.22.0");
type TfTensor = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor;
type TfTensor4D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;

async function loadTfjsWasm(): Promise<Peer> {
  const tf: Tf = await import("npm:@tensorflow/tfjs-core@4.22.0");
  const wasm = await import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
  // The .wasm binaries sit beside the package's entry file in node_modules/.../dist/.
  const entry = import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
  if (!entry.startsWith("file:")) {
    throw new Error(
      `Cannot locate the tfjs-backend-wasm binaries: the package resolved to ${entry}, not a file`,
    );
  }
  const dist = new URL(".", entry);
  wasm.setWasmPaths(decodeURIComponent(dist.pathname));
  if (!(await tf.setBackend("wasm"))) {
    throw new Error(`Cannot initialise tfjs-backend-wasm: setBackend("wasm") failed (binaries in ${dist})`);
  }
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const threads = wasm.getThreadsCount();
  const adapter = `tfjs-core ${tf.version_core} wasm (${simd ? "SIMD" : "no SIMD"}, ${threads} thread${
    threads === 1 ? "" : "s"
  })`;
  return {
    backend: "tfjs-wasm",
    adapter,
    prepare: (spec, ops) => Promise.resolve(prepareTfjs(tf, spec, ops)),
  };
}

function prepareTfjs(tf: Tf, spec: KernelSpec, ops: Operands): PeerRun {
  const inputs: TfTensor[] = [];
  let call: () => TfTensor;
  let toEngine: (data: Float32Array) => Float32Array = (d) => d;
  let note: string | null = null;
  if (spec.op === "matmul") {
    const a = tf.tensor2d(need(ops, "a"), [spec.m, spec.k]);
    const b = tf.tensor2d(need(ops, "b"), [spec.k, spec.n]);
    inputs.push(a, b);
    call = () => tf.matMul(a, b);
  } else {
    // tfjs-wasm convolutions are NHWC with HWIO filters.
    const [n, c, h, w] = spec.x;
    const [o, , kh, kw] = spec.w;
    const [, , oh, ow] = convOutputShape(spec);
    const p = spec.pad;
    const pad4 = [[0, 0], [p, p], [p, p], [0, 0]] as [[number, number], [number, number], [number, number], [
      number,
      number,
    ]];
    const nhwc = (name: string, shape: readonly number[]) =>
      tf.tensor4d(permute(need(ops, name), shape, [0, 2, 3, 1]), [shape[0], shape[2], shape[3], shape[1]]);
    const fromNhwc = (shape: readonly number[]) => (d: Float32Array) =>
      permute(d, [shape[0], shape[2], shape[3], shape[1]], [0, 3, 1, 2]);
    if (spec.op === "conv2d_forward") {
      const x = nhwc("x", spec.x);
      const f = tf.tensor4d(permute(need(ops, "w"), spec.w, [2, 3, 1, 0]), [kh, kw, c, o]);
      inputs.push(x, f);
      call = () => tf.conv2d(x as TfTensor4D, f as TfTensor4D, 1, pad4);
      toEngine = fromNhwc([n, o, oh, ow]);
    } else if (spec.op === "conv2d_inputGrad") {
      // conv2dTranspose is tfjs's public form of Conv2DBackpropInput (what tf.grad uses for dx).
      const dy = nhwc("dy", [n, o, oh, ow]);
      const f = tf.tensor4d(permute(need(ops, "w"), spec.w, [2, 3, 1, 0]), [kh, kw, c, o]);
      inputs.push(dy, f);
      if (p !== (kh - 1) / 2 || p !== (kw - 1) / 2) {
        throw new Error(
          `Cannot run conv2d_inputGrad on tfjs-wasm: only "same" padding is wired, got pad ${p}`,
        );
      }
      call = () => tf.conv2dTranspose(dy as TfTensor4D, f as TfTensor4D, [n, h, w, c], 1, "same");
      toEngine = fromNhwc([n, c, h, w]);
    } else {
      // tfjs-wasm registers no Conv2DBackpropFilter kernel (tf.grad w.r.t. a filter throws there), so
      // the weight gradient is computed as the convolution it is: x with batch and channels swapped
      // ([c,h,w,n]) convolved with dy as a [oh,ow,n,o] filter gives [c,kh,kw,o].
      note = "tfjs-wasm has no Conv2DBackpropFilter kernel: computed as tf.conv2d(x^T [c,h,w,n], " +
        "dy^T [oh,ow,n,o] as filter, explicit pad) plus the transposes, all timed";
      const x = nhwc("x", spec.x);
      const dy = nhwc("dy", [n, o, oh, ow]);
      inputs.push(x, dy);
      call = () =>
        tf.tidy(() => {
          const xt = tf.transpose(x, [3, 1, 2, 0]) as TfTensor4D; // [c,h,w,n]
          const dyt = tf.transpose(dy, [1, 2, 0, 3]) as TfTensor4D; // [oh,ow,n,o]
          const g = tf.conv2d(xt, dyt, 1, pad4); // [c,kh,kw,o]
          return tf.transpose(g, [3, 0, 1, 2]); // [o,c,kh,kw]: the engine's layout already
        });
      toEngine = (d) => d;
    }
  }
  const pending: TfTensor[] = [];
  return {
    note,
    run: () => void pending.push(call()),
    async sync() {
      if (pending.length > 0) await pending[pending.length - 1].data();
      for (const t of pending.splice(0)) t.dispose();
    },
    async read() {
      const t = call();
      const d = (await t.data()) as Float32Array;
      t.dispose();
      return toEngine(Float32Array.from(d));
    },
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

// ---------------------------------------------------------------------------------------------
// jax-js

type Jax = typeof import("npm:@jax-js/jax@0.1.25");
type JaxArray = import("npm:@jax-js/jax@0.1.25").Array;
type JaxDevice = "wasm" | "webgpu";

let jaxModule: Promise<{ jax: Jax; devices: string[] }> | null = null;

function loadJaxModule(): Promise<{ jax: Jax; devices: string[] }> {
  jaxModule ??= (async () => {
    const jax: Jax = await import("npm:@jax-js/jax@0.1.25");
    const devices = await jax.init("wasm", "webgpu");
    return { jax, devices };
  })();
  return jaxModule;
}

async function loadJax(device: JaxDevice): Promise<Peer> {
  const { jax, devices } = await loadJaxModule();
  if (!devices.includes(device)) {
    throw new Error(`Cannot use jax-js on ${device}: init() started only [${devices.join(", ")}]`);
  }
  let what: string;
  if (device === "wasm") {
    const workers = typeof SharedArrayBuffer !== "undefined" && typeof Worker !== "undefined"
      ? `${navigator.hardwareConcurrency} workers`
      : "no workers";
    what = `wasm (${workers})`;
  } else {
    const info = (jax.getWebGPUDevice() as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    what = `webgpu (${
      info ? [info.vendor, info.architecture, info.description].filter((s) => s).join(" ") : "?"
    })`;
  }
  return {
    backend: `jax-js-${device}`,
    adapter: `jax-js 0.1.25 ${what}`,
    prepare: (spec, ops) => prepareJax(jax, device, spec, ops),
  };
}

async function prepareJax(jax: Jax, device: JaxDevice, spec: KernelSpec, ops: Operands): Promise<PeerRun> {
  const { numpy: np, lax } = jax;
  jax.defaultDevice(device);
  const upload = async (data: Float32Array, shape: readonly number[]): Promise<JaxArray> => {
    const a = await jax.devicePut(np.array(new Float32Array(data)).reshape([...shape]), device);
    return await a.blockUntilReady();
  };
  const owned: JaxArray[] = [];
  const disposers: (() => void)[] = [];
  let call: () => JaxArray;
  let note: string | null = null;
  if (spec.op === "matmul") {
    const a = await upload(need(ops, "a"), [spec.m, spec.k]);
    const b = await upload(need(ops, "b"), [spec.k, spec.n]);
    owned.push(a, b);
    call = () => np.matmul(a.ref, b.ref);
  } else {
    const p = spec.pad;
    const padding: [number, number][] = [[p, p], [p, p]];
    const conv = (x: JaxArray, w: JaxArray) => lax.convGeneralDilated(x, w, [1, 1], padding);
    const yShape = convOutputShape(spec);
    if (spec.op === "conv2d_forward") {
      const x = await upload(need(ops, "x"), spec.x);
      const w = await upload(need(ops, "w"), spec.w);
      owned.push(x, w);
      call = () => conv(x.ref, w.ref);
    } else {
      // Gradients through jax-js autodiff: vjp is linearised once here; each call runs the pullback.
      note = "vjp of lax.convGeneralDilated, pullback only (linearised once outside the timing)";
      const x = await upload(need(ops, "x"), spec.x);
      const w = await upload(need(ops, "w"), spec.w);
      const dy = await upload(need(ops, "dy"), yShape);
      owned.push(x, w, dy);
      if (spec.op === "conv2d_inputGrad") {
        const [y, pullback] = jax.vjp((xx: JaxArray) => conv(xx, w.ref), [x.ref]);
        y.dispose();
        disposers.push(() => pullback.dispose());
        call = () => (pullback(dy.ref) as JaxArray[])[0];
      } else {
        const [y, pullback] = jax.vjp((ww: JaxArray) => conv(x.ref, ww), [w.ref]);
        y.dispose();
        disposers.push(() => pullback.dispose());
        call = () => (pullback(dy.ref) as JaxArray[])[0];
      }
    }
  }
  const pending: JaxArray[] = [];
  return {
    note,
    run() {
      jax.defaultDevice(device);
      pending.push(call());
    },
    async sync() {
      const outs = pending.splice(0);
      await jax.blockUntilReady(outs);
      for (const o of outs) o.dispose();
    },
    async read() {
      jax.defaultDevice(device);
      const d = await call().data(); // data() consumes (frees) the array
      return Float32Array.from(d as Float32Array);
    },
    dispose() {
      disposers.forEach((f) => f());
      owned.forEach((a) => a.dispose());
    },
  };
}

// ---------------------------------------------------------------------------------------------

const LOADERS: Record<string, () => Promise<Peer>> = {
  "tfjs-wasm": loadTfjsWasm,
  "jax-js-wasm": () => loadJax("wasm"),
  "jax-js-webgpu": () => loadJax("webgpu"),
};

/**
 * Loads the named peers (default: all of {@link PEER_NAMES}). A peer that fails to load is listed in
 * `failures` with the reason; the others are returned in the order asked.
 */
export async function loadPeers(names: readonly string[] = PEER_NAMES): Promise<PeerLoad> {
  const peers: Peer[] = [];
  const failures: { backend: string; reason: string }[] = [];
  for (const name of names) {
    const load = LOADERS[name];
    if (load === undefined) {
      failures.push({ backend: name, reason: `unknown peer; expected one of ${PEER_NAMES.join(", ")}` });
      continue;
    }
    try {
      peers.push(await load());
    } catch (e) {
      failures.push({ backend: name, reason: (e as Error).message ?? String(e) });
    }
  }
  return { peers, failures };
}
