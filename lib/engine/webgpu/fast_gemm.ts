/**
 * Fast matmul and convolution for the WebGPU backend on llvmpipe: records packing + texture-GEMM dispatches
 * into a compute pass the caller has already opened.
 *
 * Each `recordFast*` function takes a {@link FastGemmContext} (device, open pass, the backend's pipeline
 * cache), the input/output `GPUBuffer`s (dense row-major float32 from offset 0, usage STORAGE; a buffer
 * may be larger than its data) and the dimensions with the same meaning as `Backend.matmul` /
 * `Backend.conv2d*` in `../backend.ts`. They return `true` when the work was recorded, or `false` (having
 * recorded nothing) when the shape does not fit the texture, binding or dispatch limits; the caller then
 * uses its own kernel. Outputs are fully overwritten.
 *
 * Inputs are first packed into `rgba32float` textures by compute shaders (`kernels/pack_tex.ts`), then
 * multiplied by the register-blocked kernels of `kernels/gemm_tex.ts`; convolutions read a zero-padded
 * NHWC image texture directly (no im2col buffer). Sizes go in small immutable uniform buffers, so one
 * pipeline serves all shapes of a kind (Mesa compiles each new kernel once, ~0.5–1 s).
 *
 * Resources owned here, per device: operand textures (one per role and size, or per image layout, reused
 * by every later call with that size), uniform buffers (one per distinct set of sizes) and scratch buffers
 * for weight-gradient partial sums. Reuse inside one pass is safe because dispatches run in order. At a
 * point where no recorded or submitted work uses them (after a sync), {@link trimFastGemmResources} frees
 * the least recently used ones down to a byte budget and {@link releaseFastGemmResources} frees all;
 * {@link fastGemmResourceBytes} reports the total.
 * @module
 */
import { type Conv2dGeometry, conv2dOutputShape, type Shape } from "../backend.ts";
import {
  type Blocking,
  convTexWgsl,
  convWgradReduceWgsl,
  convWgradTexWgsl,
  gemmTexWgsl,
} from "../../../kernels/gemm_tex.ts";
import {
  PACK_LINEAR_PER_ROW,
  PACK_ROWS_PER_Z,
  packConvWeightWgsl,
  packImageInteriorWgsl,
  packImageWgsl,
  packMatrixWgsl,
} from "../../../kernels/pack_tex.ts";
import { pointwiseConvWgsl, pointwiseWgradReduceWgsl, pointwiseWgradWgsl } from "../../../kernels/conv1x1.ts";

/** What a record call needs from the backend. */
export interface FastGemmContext {
  /** The device owning every buffer passed in. */
  readonly device: GPUDevice;
  /** An open compute pass; dispatches are appended to it (pipeline and bind group state is changed). */
  readonly pass: GPUComputePassEncoder;
  /**
   * The backend's pipeline cache: returns a compute pipeline for WGSL `code`, created with
   * `layout: "auto"` and entry point `"main"`.
   */
  readonly getPipeline: (code: string) => GPUComputePipeline;
  /**
   * Largest texture side to use; defaults to `device.limits.maxTextureDimension2D` (and is capped by it).
   * Tests set it small to exercise the tiling paths.
   */
  readonly maxTextureDimension2D?: number;
  /** Overrides {@link chooseBlocking} (for experiments and tests); `op` names the product being planned. */
  readonly chooseBlocking?: (rows: number, cols: number, op: BlockingOp) => Blocking;
}

/** The products the hook plans blocks for. */
export type BlockingOp = "matmul" | "conv" | "wgrad";

/** Dimensions of a batched product, as in `Backend.matmul`. */
export interface MatmulDims {
  /** Number of products; `out` is [batch, m, n]. */
  readonly batch: number;
  /** Batches stored in `a`: `batch`, or 1 to broadcast. */
  readonly aBatch: number;
  /** Batches stored in `b`: `batch`, or 1 to broadcast. */
  readonly bBatch: number;
  /** Rows of each product. */
  readonly m: number;
  /** Reduction length. */
  readonly k: number;
  /** Columns of each product. */
  readonly n: number;
  /** `a` holds [aBatch, k, m] instead of [aBatch, m, k]. */
  readonly transA: boolean;
  /** `b` holds [bBatch, n, k] instead of [bBatch, k, n]. */
  readonly transB: boolean;
}

/**
 * Re-exported from `../backend.ts`: the convolution geometry of `Backend.conv2d` (NCHW input, OIHW weight)
 * and its shape type.
 */
export type { Conv2dGeometry, Shape };

const MAX_WORKGROUPS = 65535;
/** Weight-gradient splits aim for at least this many invocations in total. */
const WGRAD_TARGET_INVOCATIONS = 4096;

interface Resources {
  readonly textures: Map<string, GPUTexture>;
  readonly uniforms: Map<string, GPUBuffer>;
  readonly scratch: Map<string, GPUBuffer>;
}

const resources = new WeakMap<GPUDevice, Resources>();
const MAX_UNIFORMS = 4096;

function res(device: GPUDevice): Resources {
  let r = resources.get(device);
  if (r === undefined) {
    r = { textures: new Map(), uniforms: new Map(), scratch: new Map() };
    resources.set(device, r);
  }
  return r;
}

/** Bytes held by this module's textures and scratch buffers for `device` (uniform buffers not counted). */
export function fastGemmResourceBytes(device: GPUDevice): number {
  const r = resources.get(device);
  if (r === undefined) return 0;
  let bytes = 0;
  for (const t of r.textures.values()) bytes += t.width * t.height * 16;
  for (const b of r.scratch.values()) bytes += b.size;
  return bytes;
}

/**
 * Destroys every texture, uniform and scratch buffer this module holds for `device`. Call it only when no
 * submitted or recorded work still uses them (e.g. after `queue.onSubmittedWorkDone()`).
 */
export function releaseFastGemmResources(device: GPUDevice): void {
  const r = resources.get(device);
  if (r === undefined) return;
  for (const t of r.textures.values()) t.destroy();
  for (const b of r.uniforms.values()) b.destroy();
  for (const b of r.scratch.values()) b.destroy();
  resources.delete(device);
}

/** Looks `key` up in an LRU map (insertion order = recency), creating the value when missing. */
function lru<T>(map: Map<string, T>, key: string, create: () => T): T {
  let v = map.get(key);
  if (v === undefined) v = create();
  else map.delete(key);
  map.set(key, v);
  return v;
}

/**
 * Frees least recently used textures and scratch buffers of `device` until this module holds at most
 * `maxBytes` (uniform buffers are tiny and kept). Call it only when no recorded or submitted work uses them.
 */
export function trimFastGemmResources(device: GPUDevice, maxBytes: number): void {
  const r = resources.get(device);
  if (r === undefined) return;
  let bytes = fastGemmResourceBytes(device);
  const victims: [Map<string, GPUTexture | GPUBuffer>, string, GPUTexture | GPUBuffer][] = [];
  for (const [k, t] of r.textures) victims.push([r.textures, k, t]);
  for (const [k, b] of r.scratch) victims.push([r.scratch, k, b]);
  for (const [map, key, v] of victims) {
    if (bytes <= maxBytes) break;
    bytes -= v instanceof GPUBuffer ? v.size : v.width * v.height * 16;
    v.destroy();
    map.delete(key);
  }
}

function texture(device: GPUDevice, role: string, width: number, height: number): GPUTexture {
  const key = `${role}:${width}x${height}`;
  return lru(res(device).textures, key, () =>
    device.createTexture({
      label: `fast_gemm ${key}`,
      size: [width, height],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING,
    }));
}

function uniform(device: GPUDevice, values: readonly number[]): GPUBuffer {
  const r = res(device);
  const key = values.join(",");
  let b = r.uniforms.get(key);
  if (b === undefined) {
    // Dropped entries are not destroyed: recorded work may still use them; the GC frees them.
    if (r.uniforms.size >= MAX_UNIFORMS) r.uniforms.clear();
    b = device.createBuffer({
      label: "fast_gemm dims",
      size: Math.ceil(values.length / 4) * 16,
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    const view = new Uint32Array(b.getMappedRange());
    for (let i = 0; i < values.length; i++) view[i] = values[i] >>> 0;
    b.unmap();
    r.uniforms.set(key, b);
  }
  return b;
}

function scratch(device: GPUDevice, role: string, bytes: number): GPUBuffer {
  const limit = device.limits.maxStorageBufferBindingSize;
  const size = Math.max(256, Math.min(2 ** Math.ceil(Math.log2(bytes)), Math.max(bytes, limit)));
  const key = `${role}:${size}`;
  return lru(
    res(device).scratch,
    key,
    () => device.createBuffer({ label: `fast_gemm ${key}`, size, usage: GPUBufferUsage.STORAGE }),
  );
}

function maxDimOf(ctx: FastGemmContext): number {
  const limit = ctx.device.limits.maxTextureDimension2D;
  return Math.min(limit, ctx.maxTextureDimension2D ?? limit);
}

type Resource = GPUBuffer | GPUTexture;

/** True when every element count fits one storage binding and is non-zero. */
function bindable(ctx: FastGemmContext, ...elements: number[]): boolean {
  const limit = ctx.device.limits.maxStorageBufferBindingSize;
  return elements.every((e) => e >= 1 && e * 4 <= limit);
}

function dispatch(
  ctx: FastGemmContext,
  code: string,
  dims: readonly number[],
  bindings: readonly Resource[],
  x: number,
  y = 1,
  z = 1,
): void {
  const pipeline = ctx.getPipeline(code);
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform(ctx.device, dims) } }];
  bindings.forEach((r, i) => {
    entries.push({
      binding: i + 1,
      resource: r instanceof GPUBuffer
        ? { buffer: r, size: Math.min(r.size, ctx.device.limits.maxStorageBufferBindingSize) }
        : r.createView(),
    });
  });
  const group = ctx.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  ctx.pass.setPipeline(pipeline);
  ctx.pass.setBindGroup(0, group);
  ctx.pass.dispatchWorkgroups(x, y, z);
}

/** Row-line layout of `rows` logical rows of `texels` texels: log2 rows per line, texture size. */
interface Lines {
  readonly lg: number;
  readonly width: number;
  readonly height: number;
}

function rowLines(rows: number, texels: number, maxDim: number): Lines | null {
  for (let lg = 0; (texels << lg) <= maxDim; lg++) {
    const height = Math.ceil(rows / (1 << lg));
    if (height <= maxDim) return { lg, width: texels << lg, height: Math.max(1, height) };
  }
  return null;
}

/**
 * Picks the register block for a product with `rows` × `cols` outputs: tm 32 for tall products (≥ 1024
 * rows), else the tm in {16, 8, 4} and tn in {16, 12, 8} (4 for ≤ 4 columns) that minimise the texel
 * loads, (padded rows · padded cols) · (1/tm + 1/tn). The 8 SIMD lanes walk column blocks when there are at
 * least 8 of them or more than row blocks, else row blocks (so O = 64 convolutions still fill a vector).
 */
export function chooseBlocking(rows: number, cols: number, _op?: BlockingOp): Blocking {
  const tms = rows >= 1024 ? [32] : [16, 8, 4];
  const tns = cols <= 4 ? [4] : [16, 12, 8];
  let tm = tms[0];
  let tn = tns[0];
  let best = Infinity;
  for (const m of tms) {
    for (const n of tns) {
      const cost = Math.ceil(rows / m) * m * Math.ceil(cols / n) * n * (1 / m + 1 / n);
      if (cost < best - 1e-9) {
        best = cost;
        tm = m;
        tn = n;
      }
    }
  }
  const colBlocks = Math.ceil(cols / tn);
  const rowBlocks = Math.ceil(rows / tm);
  const rowsOnX = colBlocks < 8 && rowBlocks > colBlocks;
  return rowsOnX ? { tm, tn, wgx: 8, wgy: 1, rowsOnX } : { tm, tn, wgx: 8, wgy: 1 };
}

function blocksGrid(b: Blocking, rowBlocks: number, colBlocks: number): [number, number] {
  return b.rowsOnX
    ? [Math.ceil(rowBlocks / b.wgx), Math.ceil(colBlocks / b.wgy)]
    : [Math.ceil(colBlocks / b.wgx), Math.ceil(rowBlocks / b.wgy)];
}

function fits(grid: readonly number[]): boolean {
  return grid.every((g) => g >= 1 && g <= MAX_WORKGROUPS);
}

function packMatrix(
  ctx: FastGemmContext,
  role: string,
  src: GPUBuffer,
  lines: Lines,
  p: {
    texels: number;
    rowsPerBatch: number;
    rows: number;
    cols: number;
    batches: number;
    batchStride: number;
    ld: number;
    trans: boolean;
    srcOffset: number;
  },
): GPUTexture {
  const t = texture(ctx.device, role, lines.width, lines.height);
  const total = p.batches * p.rowsPerBatch;
  const extent = p.srcOffset + (p.batches - 1) * p.batchStride + (p.trans ? p.cols : p.rows) * p.ld;
  const vec4Src = !p.trans && p.srcOffset % 4 === 0 && (p.batches === 1 || p.batchStride % 4 === 0) &&
    p.ld % 4 === 0 && src.size >= Math.ceil(extent / 4) * 16;
  const linear = p.texels < 32;
  const linRow = Math.min(PACK_LINEAR_PER_ROW, Math.ceil((total * p.texels) / 64) * 64);
  const rowsOfGrid = linear ? Math.ceil((total * p.texels) / linRow) : total;
  dispatch(
    ctx,
    packMatrixWgsl(vec4Src, linear),
    [
      p.texels,
      lines.lg,
      p.rowsPerBatch,
      p.rows,
      p.cols,
      p.batches,
      p.batchStride,
      p.ld,
      p.trans ? 1 : 0,
      linRow,
      0,
      p.srcOffset,
    ],
    [src, t],
    linear ? linRow / 64 : Math.ceil(p.texels / 64),
    Math.min(rowsOfGrid, PACK_ROWS_PER_Z),
    Math.ceil(rowsOfGrid / PACK_ROWS_PER_Z),
  );
  return t;
}

/**
 * Records out[b] = op(a[b])·op(b[b]) (see `Backend.matmul`; `out` has batch·m·n elements). K larger than
 * what the texture limits hold is split into chunks accumulated into `out`. Returns false, recording nothing,
 * when the shape cannot be laid out (too many rows or batches for the texture or dispatch limits).
 */
export function recordFastMatmul(
  ctx: FastGemmContext,
  a: GPUBuffer,
  b: GPUBuffer,
  out: GPUBuffer,
  dims: MatmulDims,
): boolean {
  const { batch, aBatch, bBatch, m, k, n, transA, transB } = dims;
  if (!bindable(ctx, aBatch * m * k, bBatch * k * n, batch * m * n)) return false;
  const maxDim = maxDimOf(ctx);
  const blk = (ctx.chooseBlocking ?? chooseBlocking)(m, n, "matmul");
  const mp = Math.ceil(m / blk.tm) * blk.tm;
  const n4p = Math.ceil(n / blk.tn) * (blk.tn / 4);
  const mBlocks = mp / blk.tm;
  const grid = blocksGrid(blk, mBlocks, n4p / (blk.tn / 4));
  if (!fits([...grid, batch]) || n4p > maxDim) return false;
  // K is split into chunks (accumulated into out) when the operands do not fit the texture limits whole.
  let kc4 = Math.min(Math.ceil(k / 4), maxDim);
  const layouts = (c4: number) => {
    const la = rowLines(aBatch * mp, c4, maxDim);
    const lb = rowLines(bBatch * c4 * 4, n4p, maxDim);
    return la === null || lb === null ? null : { la, lb };
  };
  while (layouts(kc4) === null && kc4 > 1) kc4 = Math.ceil(kc4 / 2);
  const plans: { k0: number; kc: number; la: Lines; lb: Lines }[] = [];
  for (let k0 = 0; k0 < k; k0 += kc4 * 4) {
    const kc = Math.min(kc4 * 4, k - k0);
    const l = layouts(Math.ceil(kc / 4));
    if (l === null) return false;
    plans.push({ k0, kc, ...l });
  }
  const code = gemmTexWgsl(blk, n % 4 === 0);
  for (const { k0, kc, la, lb } of plans) {
    const kc4 = Math.ceil(kc / 4);
    const ta = packMatrix(ctx, "A", a, la, {
      texels: kc4,
      rowsPerBatch: mp,
      rows: m,
      cols: kc,
      batches: aBatch,
      batchStride: m * k,
      ld: transA ? m : k,
      trans: transA,
      srcOffset: transA ? k0 * m : k0,
    });
    const tb = packMatrix(ctx, "B", b, lb, {
      texels: n4p,
      rowsPerBatch: kc4 * 4,
      rows: kc,
      cols: n,
      batches: bBatch,
      batchStride: k * n,
      ld: transB ? k : n,
      trans: transB,
      srcOffset: transB ? k0 : k0 * n,
    });
    dispatch(
      ctx,
      code,
      [
        m,
        n,
        kc4,
        aBatch === 1 ? 0 : mp,
        kc4,
        la.lg,
        bBatch === 1 ? 0 : kc4 * 4,
        n4p,
        lb.lg,
        m * n,
        mBlocks,
        k0 > 0 ? 1 : 0,
      ],
      [ta, tb, out],
      grid[0],
      grid[1],
      batch,
    );
  }
  return true;
}

/** Layout of an image batch in the NHWC image texture: images per line, rows per image, chunking. */
interface ImagePlan {
  /** Texels per image row (wt · c4). */
  readonly t: number;
  readonly lgI: number;
  /** Images per chunk (each chunk is packed and processed on its own). */
  readonly chunk: number;
  readonly width: number;
  readonly height: number;
}

function imagePlan(n: number, hp: number, wt: number, c4: number, maxDim: number): ImagePlan | null {
  const t = wt * c4;
  if (t > maxDim || hp > maxDim) return null;
  const maxLg = Math.floor(Math.log2(maxDim / t));
  const linesPerColumn = Math.floor(maxDim / hp);
  for (let lg = 0; lg <= maxLg; lg++) {
    if (Math.ceil(n / (1 << lg)) <= linesPerColumn) {
      return { t, lgI: lg, chunk: n, width: t << lg, height: Math.ceil(n / (1 << lg)) * hp };
    }
  }
  const chunk = linesPerColumn << maxLg;
  return { t, lgI: maxLg, chunk, width: t << maxLg, height: linesPerColumn * hp };
}

function packImage(
  ctx: FastGemmContext,
  role: string,
  src: GPUBuffer,
  plan: ImagePlan,
  p: {
    n: number;
    c: number;
    h: number;
    w: number;
    hp: number;
    wt: number;
    padT: number;
    padL: number;
    dil: number;
    srcOffset: number;
  },
): GPUTexture {
  const c4 = Math.ceil(p.c / 4);
  const dims = [
    p.n,
    p.c,
    p.h,
    p.w,
    c4,
    p.hp,
    p.wt,
    p.padT,
    p.padL,
    p.dil,
    plan.lgI,
    plan.width,
    plan.height,
    p.srcOffset,
    0,
    0,
  ];
  const interior = p.w % 4 === 0 && p.dil === 1 && p.padT >= 0 && p.padL >= 0 && p.srcOffset % 4 === 0 &&
    p.h * c4 <= MAX_WORKGROUPS && p.n <= MAX_WORKGROUPS &&
    src.size >= Math.ceil((p.srcOffset + p.n * p.c * p.h * p.w) / 4) * 16;
  if (interior) {
    // The texture is keyed by its whole layout: created zeroed, only its interior is ever written.
    const layout = `${p.c}c${p.h}x${p.w}+${p.padT},${p.padL}/${p.hp}x${p.wt}/${plan.lgI}`;
    const tex = texture(ctx.device, `${role}[${layout}]`, plan.width, plan.height);
    dispatch(ctx, packImageInteriorWgsl(), dims, [src, tex], Math.ceil(p.w / 32), p.h * c4, p.n);
    return tex;
  }
  const tex = texture(ctx.device, role, plan.width, plan.height);
  dispatch(ctx, packImageWgsl(), dims, [src, tex], Math.ceil(plan.width / 8), Math.ceil(plan.height / 8));
  return tex;
}

/** Packs the convolution weight as the B operand (q output channels, r reduction channels). */
function packWeight(
  ctx: FastGemmContext,
  w: GPUBuffer,
  q: number,
  r: number,
  kh: number,
  kw: number,
  flip: boolean,
  tn: number,
): { tex: GPUTexture; lines: Lines; texels: number } | null {
  const maxDim = maxDimOf(ctx);
  const r4 = Math.ceil(r / 4);
  const rows = kh * kw * r4 * 4;
  const texels = Math.ceil(q / tn) * (tn / 4);
  const lines = rowLines(rows, texels, maxDim);
  if (lines === null) return null;
  const tex = texture(ctx.device, "W", lines.width, lines.height);
  dispatch(
    ctx,
    packConvWeightWgsl(),
    [q, r, kh, kw, r4, flip ? 1 : 0, texels, lines.lg, rows, lines.width, lines.height, 0],
    [w, tex],
    Math.ceil(lines.width / 8),
    Math.ceil(lines.height / 8),
  );
  return { tex, lines, texels };
}

/**
 * Shared driver of the forward convolution and of the input gradient: y[N, q, ho, wo] = Σ img ⋆ weight,
 * stride `stride`, where `img` is the source image batch [N, r, ih, iw] laid into a (hp × wt) padded frame
 * with offset (padT, padL) and dilation `dil`.
 */
function directConv(
  ctx: FastGemmContext,
  src: GPUBuffer,
  w: GPUBuffer,
  y: GPUBuffer,
  s: {
    n: number;
    r: number;
    ih: number;
    iw: number;
    q: number;
    kh: number;
    kw: number;
    stride: number;
    ho: number;
    wo: number;
    hp: number;
    wt: number;
    padT: number;
    padL: number;
    dil: number;
    flip: boolean;
  },
): boolean {
  const maxDim = maxDimOf(ctx);
  const r4 = Math.ceil(s.r / 4);
  const plan = imagePlan(s.n, s.hp, s.wt, r4, maxDim);
  if (plan === null) return false;
  const blk = (ctx.chooseBlocking ?? chooseBlocking)(s.n * s.ho * s.wo, s.q, "conv");
  const colBlocks = Math.ceil(s.q / blk.tn);
  const chunkBlocks = Math.ceil((plan.chunk * s.ho * s.wo) / blk.tm);
  if (!fits(blocksGrid(blk, chunkBlocks, colBlocks))) return false;
  const wp = packWeight(ctx, w, s.q, s.r, s.kh, s.kw, s.flip, blk.tn);
  if (wp === null) return false;
  const p = s.ho * s.wo;
  const code = convTexWgsl(blk, p % 4 === 0 && blk.tm % 4 === 0 && y.size >= s.n * s.q * p * 4);
  for (let n0 = 0; n0 < s.n; n0 += plan.chunk) {
    const nc = Math.min(plan.chunk, s.n - n0);
    const img = packImage(ctx, "X", src, plan, {
      n: nc,
      c: s.r,
      h: s.ih,
      w: s.iw,
      hp: s.hp,
      wt: s.wt,
      padT: s.padT,
      padL: s.padL,
      dil: s.dil,
      srcOffset: n0 * s.r * s.ih * s.iw,
    });
    const m = nc * s.ho * s.wo;
    const mBlocks = Math.ceil(m / blk.tm);
    const grid = blocksGrid(blk, mBlocks, colBlocks);
    dispatch(
      ctx,
      code,
      [
        m,
        s.q,
        s.kh,
        s.kw,
        r4,
        s.stride,
        s.ho,
        s.wo,
        plan.t,
        plan.lgI,
        s.hp,
        wp.texels,
        wp.lines.lg,
        mBlocks,
        n0 * s.q * s.ho * s.wo,
        0,
      ],
      [img, wp.tex, y],
      grid[0],
      grid[1],
    );
  }
  return true;
}

function geometry(g: Conv2dGeometry) {
  const [n, c, h, w] = g.x;
  const [o, , kh, kw] = g.w;
  const [, , ho, wo] = conv2dOutputShape(g);
  return { n, c, h, w, o, kh, kw, ho, wo, s: g.stride, pad: g.pad };
}

/** Register block of the pointwise (1×1) product kernels: output channels × pixels (measured best). */
const POINTWISE_BLOCK = { tm: 8, tn: 16 } as const;
/** Register block of the pointwise weight gradient: output × input channels (measured best). */
const POINTWISE_WGRAD_BLOCK = { tm: 16, tn: 8 } as const;

/**
 * Whether a convolution is a pointwise product the NCHW kernels of `kernels/conv1x1.ts` take: 1×1, stride
 * 1, no padding, channel counts and pixels per image multiples of 4.
 */
function isPointwise(d: ReturnType<typeof geometry>): boolean {
  return d.kh === 1 && d.kw === 1 && d.s === 1 && d.pad === 0 && d.c % 4 === 0 && d.o % 4 === 0 &&
    (d.h * d.w) % 4 === 0 && d.n <= MAX_WORKGROUPS;
}

/**
 * Records y[b] = op(W)·src[b] for a pointwise convolution: `rows` output channels, `red` reduction channels,
 * `p` pixels per image; op(W) = W ([rows, red] row-major) or, with `transW`, Wᵀ (W is [red, rows]).
 */
function pointwise(
  ctx: FastGemmContext,
  src: GPUBuffer,
  w: GPUBuffer,
  y: GPUBuffer,
  s: { n: number; rows: number; red: number; p: number; transW: boolean },
): boolean {
  const { tm, tn } = POINTWISE_BLOCK;
  const k4 = s.red / 4;
  const mp = Math.ceil(s.rows / tm) * tm;
  const grid = [Math.ceil(Math.ceil(s.p / tn) / 8), mp / tm, s.n];
  if (!fits(grid) || k4 > maxDimOf(ctx) || mp > maxDimOf(ctx)) return false;
  const ta = packMatrix(ctx, "W1", w, { lg: 0, width: k4, height: mp }, {
    texels: k4,
    rowsPerBatch: mp,
    rows: s.rows,
    cols: s.red,
    batches: 1,
    batchStride: 0,
    ld: s.transW ? s.rows : s.red,
    trans: s.transW,
    srcOffset: 0,
  });
  dispatch(ctx, pointwiseConvWgsl(tm, tn), [s.rows, k4, s.p / 4, 0], [ta, src, y], grid[0], grid[1], grid[2]);
  return true;
}

/** Records dw = Σ_b dy[b]·x[b]ᵀ for a pointwise convolution (partial sums per image, then a reduce). */
function pointwiseWgrad(
  ctx: FastGemmContext,
  x: GPUBuffer,
  dy: GPUBuffer,
  dw: GPUBuffer,
  d: ReturnType<typeof geometry>,
): boolean {
  const { tm, tn } = POINTWISE_WGRAD_BLOCK;
  const p4 = (d.h * d.w) / 4;
  const blocks = Math.ceil(Math.ceil(d.c / tn) / 8) * 8 * Math.ceil(d.o / tm);
  const splits = Math.max(1, Math.min(p4, Math.ceil(WGRAD_TARGET_INVOCATIONS / (blocks * d.n))));
  const per = Math.ceil(p4 / splits);
  const slots = d.n * splits;
  const grid = [Math.ceil(Math.ceil(d.c / tn) / 8), Math.ceil(d.o / tm), slots];
  const bytes = slots * d.o * d.c * 4;
  if (!fits(grid) || bytes > ctx.device.limits.maxStorageBufferBindingSize) return false;
  const partial = scratch(ctx.device, "P1", bytes);
  dispatch(
    ctx,
    pointwiseWgradWgsl(tm, tn),
    [d.o, d.c, p4, splits, per, 0, 0, 0],
    [dy, x, partial],
    grid[0],
    grid[1],
    grid[2],
  );
  const count = d.o * d.c;
  const groups = Math.ceil(count / 64);
  dispatch(
    ctx,
    pointwiseWgradReduceWgsl(),
    [count, slots, 0, 0],
    [partial, dw],
    Math.min(groups, MAX_WORKGROUPS),
    Math.ceil(groups / MAX_WORKGROUPS),
  );
  return true;
}

/** Records y = conv2d(x, w) (NCHW / OIHW, no bias; see `Backend.conv2d`). Returns false if it cannot. */
export function recordFastConv2d(
  ctx: FastGemmContext,
  x: GPUBuffer,
  w: GPUBuffer,
  y: GPUBuffer,
  g: Conv2dGeometry,
): boolean {
  const d = geometry(g);
  if (!bindable(ctx, d.n * d.c * d.h * d.w, d.o * d.c * d.kh * d.kw, d.n * d.o * d.ho * d.wo)) return false;
  if (
    isPointwise(d) && pointwise(ctx, x, w, y, { n: d.n, rows: d.o, red: d.c, p: d.h * d.w, transW: false })
  ) {
    return true;
  }
  return directConv(ctx, x, w, y, {
    n: d.n,
    r: d.c,
    ih: d.h,
    iw: d.w,
    q: d.o,
    kh: d.kh,
    kw: d.kw,
    stride: d.s,
    ho: d.ho,
    wo: d.wo,
    hp: d.h + 2 * d.pad,
    wt: d.w + 2 * d.pad,
    padT: d.pad,
    padL: d.pad,
    dil: 1,
    flip: false,
  });
}

/**
 * Records dx = conv2dInputGrad(dy, w) (see `Backend.conv2dInputGrad`): a stride-1 convolution of dy,
 * dilated by the stride and padded by kh − 1 − pad, with the flipped, transposed kernel. Returns false if
 * it cannot.
 */
export function recordFastConv2dInputGrad(
  ctx: FastGemmContext,
  dy: GPUBuffer,
  w: GPUBuffer,
  dx: GPUBuffer,
  g: Conv2dGeometry,
): boolean {
  const d = geometry(g);
  if (!bindable(ctx, d.n * d.c * d.h * d.w, d.o * d.c * d.kh * d.kw, d.n * d.o * d.ho * d.wo)) return false;
  if (
    isPointwise(d) && pointwise(ctx, dy, w, dx, { n: d.n, rows: d.c, red: d.o, p: d.h * d.w, transW: true })
  ) {
    return true;
  }
  return directConv(ctx, dy, w, dx, {
    n: d.n,
    r: d.o,
    ih: d.ho,
    iw: d.wo,
    q: d.c,
    kh: d.kh,
    kw: d.kw,
    stride: 1,
    ho: d.h,
    wo: d.w,
    hp: d.h + d.kh - 1,
    wt: d.w + d.kw - 1,
    padT: d.kh - 1 - d.pad,
    padL: d.kw - 1 - d.pad,
    dil: d.s,
    flip: true,
  });
}

/**
 * Records dw = conv2dWeightGrad(x, dy) (see `Backend.conv2dWeightGrad`): dy rows times the padded image
 * texture, split over images into partial sums (a scratch buffer), then summed into `dw` (OIHW). Returns
 * false if it cannot.
 */
export function recordFastConv2dWeightGrad(
  ctx: FastGemmContext,
  x: GPUBuffer,
  dy: GPUBuffer,
  dw: GPUBuffer,
  g: Conv2dGeometry,
): boolean {
  const d = geometry(g);
  if (!bindable(ctx, d.n * d.c * d.h * d.w, d.o * d.c * d.kh * d.kw, d.n * d.o * d.ho * d.wo)) return false;
  if (isPointwise(d) && pointwiseWgrad(ctx, x, dy, dw, d)) return true;
  const maxDim = maxDimOf(ctx);
  const c4 = Math.ceil(d.c / 4);
  const q4 = d.kh * d.kw * c4;
  const wo4 = Math.ceil(d.wo / 4);
  const hp = d.h + 2 * d.pad;
  const wt = Math.max(d.w + 2 * d.pad, (wo4 * 4 - 1) * d.s + d.kw);
  const plan = imagePlan(d.n, hp, wt, c4, maxDim);
  if (plan === null) return false;
  const blk = (ctx.chooseBlocking ?? chooseBlocking)(d.o, q4 * 4, "wgrad");
  const oBlocks = Math.ceil(d.o / blk.tm);
  const colBlocks = Math.ceil(q4 / (blk.tn / 4));
  const grid = blocksGrid(blk, oBlocks, colBlocks);
  if (!fits(grid)) return false;
  const slotBytes = d.o * q4 * 16;
  const maxSlots = Math.floor(ctx.device.limits.maxStorageBufferBindingSize / slotBytes);
  const splitsPerChunk = Math.max(
    1,
    Math.min(plan.chunk, Math.ceil(WGRAD_TARGET_INVOCATIONS / (oBlocks * colBlocks)), MAX_WORKGROUPS),
  );
  const chunks: { n0: number; nc: number; nPer: number; splits: number; la: Lines }[] = [];
  let slots = 0;
  for (let n0 = 0; n0 < d.n; n0 += plan.chunk) {
    const nc = Math.min(plan.chunk, d.n - n0);
    const nPer = Math.ceil(nc / splitsPerChunk);
    const splits = Math.ceil(nc / nPer);
    const la = rowLines(nc * d.o * d.ho, wo4, maxDim);
    if (la === null) return false;
    chunks.push({ n0, nc, nPer, splits, la });
    slots += splits;
  }
  if (slots > maxSlots) return false;
  const partial = scratch(ctx.device, "P", slots * slotBytes);
  const code = convWgradTexWgsl(blk);
  let zBase = 0;
  for (const ch of chunks) {
    const img = packImage(ctx, "X", x, plan, {
      n: ch.nc,
      c: d.c,
      h: d.h,
      w: d.w,
      hp,
      wt,
      padT: d.pad,
      padL: d.pad,
      dil: 1,
      srcOffset: ch.n0 * d.c * d.h * d.w,
    });
    const rows = ch.nc * d.o * d.ho;
    const ta = packMatrix(ctx, "A", dy, ch.la, {
      texels: wo4,
      rowsPerBatch: rows,
      rows,
      cols: d.wo,
      batches: 1,
      batchStride: 0,
      ld: d.wo,
      trans: false,
      srcOffset: ch.n0 * d.o * d.ho * d.wo,
    });
    dispatch(
      ctx,
      code,
      [
        d.o,
        q4,
        d.kw,
        c4,
        d.s,
        d.ho,
        wo4,
        ch.la.lg,
        plan.t,
        plan.lgI,
        hp,
        ch.nPer,
        ch.nc,
        oBlocks,
        zBase,
        0,
      ],
      [ta, img, partial],
      grid[0],
      grid[1],
      ch.splits,
    );
    zBase += ch.splits;
  }
  const total = d.o * d.c * d.kh * d.kw;
  const groups = Math.ceil(total / 64);
  dispatch(
    ctx,
    convWgradReduceWgsl(),
    [d.o, d.c, d.kh, d.kw, c4, slots, q4, 0],
    [partial, dw],
    Math.min(groups, MAX_WORKGROUPS),
    Math.ceil(groups / MAX_WORKGROUPS),
  );
  return true;
}
