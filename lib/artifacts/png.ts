/**
 * PNG output through `npm:sharp`: sample grids of images in [0, 1] (1 or 3 channels, padding
 * between tiles, laid out as torchvision's `make_grid`), SVG rasterisation for plots, and decoding
 * for tests. sharp is loaded on first use, so importing this module never fails on a machine where
 * sharp's native binary is missing; the first call then says what is needed.
 * @module
 */

/** An 8-bit image, interleaved channels (HWC), row-major. */
export interface RawImage {
  /** Interleaved 8-bit samples, `width * height * channels` of them. */
  readonly pixels: Uint8Array;
  /** Pixels per row. */
  readonly width: number;
  /** Rows. */
  readonly height: number;
  /** Samples per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA). */
  readonly channels: 1 | 2 | 3 | 4;
}

/** Layout of a sample grid. */
export interface GridOptions {
  /** Images per row (default 8, as torchvision). */
  readonly nrow?: number;
  /** Pixels of padding between tiles and around the border (default 2). */
  readonly padding?: number;
  /** Value in [0, 1] of the padding (default 0, black). */
  readonly padValue?: number;
  /** Integer nearest-neighbour upscaling of the whole grid, to make 28×28 digits visible (default 1). */
  readonly scale?: number;
}

type SharpFn = typeof import("npm:sharp@0.35.5").default;
let sharpPromise: Promise<SharpFn> | undefined;

/**
 * Checks that sharp loads here; throws "Cannot load npm:sharp@0.35.5: ..." saying what is needed when
 * it does not. Tests use it to skip PNG steps on machines without sharp's native binary.
 */
export async function ensureSharp(): Promise<void> {
  await loadSharp();
}

function loadSharp(): Promise<SharpFn> {
  // The project's rule: npm specifiers are written in full inside lib/, so the module works when imported by URL.
  // deno-lint-ignore no-import-prefix
  sharpPromise ??= import("npm:sharp@0.35.5").then(
    (m) => m.default,
    (e) => {
      sharpPromise = undefined;
      throw new Error(
        `Cannot load npm:sharp@0.35.5: ${(e as Error).message}. sharp needs its prebuilt platform ` +
          `package (@img/sharp-<os>-<arch> with @img/sharp-libvips-<os>-<arch>), which Deno installs ` +
          `with "nodeModulesDir": "auto" when run with -A (or --allow-ffi --allow-read --allow-env)`,
      );
    },
  );
  return sharpPromise;
}

function to8bit(v: number): number {
  // NaN maps to 0; the rest is clamped to [0, 1] and rounded.
  return v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
}

/**
 * Tiles `images` (`[N, C, H, W]`, values in [0, 1], C = 1 or 3) into one 8-bit image: `nrow` tiles
 * per row, `padding` pixels of `padValue` between tiles and around the border, like torchvision's
 * `make_grid`. Values outside [0, 1] are clamped; NaN becomes 0.
 */
export function imageGrid(
  images: Float32Array | Float64Array,
  shape: readonly number[],
  options: GridOptions = {},
): RawImage {
  if (shape.length !== 4) {
    throw new Error(`Cannot tile images: shape [${shape.join(", ")}] is not [N, C, H, W]`);
  }
  const [n, c, h, w] = shape;
  if (c !== 1 && c !== 3) throw new Error(`Cannot tile images: ${c} channels, expected 1 or 3`);
  if (!(n >= 1 && h >= 1 && w >= 1) || ![n, h, w].every(Number.isInteger)) {
    throw new Error(`Cannot tile images: shape [${shape.join(", ")}] has an empty or fractional axis`);
  }
  if (images.length !== n * c * h * w) {
    throw new Error(
      `Cannot tile images: shape [${shape.join(", ")}] needs ${n * c * h * w} values, got ${images.length}`,
    );
  }
  const nrow = options.nrow ?? 8;
  const pad = options.padding ?? 2;
  const scale = options.scale ?? 1;
  if (!(Number.isInteger(nrow) && nrow >= 1)) throw new Error(`Cannot tile images: nrow ${nrow} is not >= 1`);
  if (!(Number.isInteger(pad) && pad >= 0)) throw new Error(`Cannot tile images: padding ${pad} is not >= 0`);
  if (!(Number.isInteger(scale) && scale >= 1)) {
    throw new Error(`Cannot tile images: scale ${scale} is not >= 1`);
  }
  const cols = Math.min(nrow, n);
  const rows = Math.ceil(n / cols);
  const gw = cols * (w + pad) + pad;
  const gh = rows * (h + pad) + pad;
  const grid = new Uint8Array(gw * gh * c).fill(to8bit(options.padValue ?? 0));
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (w + pad);
    const y0 = pad + Math.floor(k / cols) * (h + pad);
    for (let ch = 0; ch < c; ch++) {
      const src = (k * c + ch) * h * w;
      for (let y = 0; y < h; y++) {
        let dst = ((y0 + y) * gw + x0) * c + ch;
        for (let x = 0; x < w; x++, dst += c) grid[dst] = to8bit(images[src + y * w + x]);
      }
    }
  }
  const img: RawImage = { pixels: grid, width: gw, height: gh, channels: c };
  return scale === 1 ? img : upscale(img, scale);
}

/** Nearest-neighbour integer upscaling. */
export function upscale(img: RawImage, factor: number): RawImage {
  const { width, height, channels } = img;
  const W = width * factor, H = height * factor;
  const out = new Uint8Array(W * H * channels);
  for (let y = 0; y < H; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < W; x++) {
      const s = (sy * width + Math.floor(x / factor)) * channels;
      const d = (y * W + x) * channels;
      for (let ch = 0; ch < channels; ch++) out[d + ch] = img.pixels[s + ch];
    }
  }
  return { pixels: out, width: W, height: H, channels };
}

/** Encodes an 8-bit image as PNG. */
export async function encodePng(img: RawImage): Promise<Uint8Array> {
  const sharp = await loadSharp();
  let pipeline = sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: img.channels } });
  // sharp would otherwise widen one channel to sRGB; keep grayscale grids grayscale.
  if (img.channels <= 2) pipeline = pipeline.toColourspace("b-w");
  const buf = await pipeline.png({ compressionLevel: 9 }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Decodes a PNG (or any image sharp reads) to 8-bit pixels with its own channel count. */
export async function decodePng(bytes: Uint8Array): Promise<RawImage> {
  const sharp = await loadSharp();
  const meta = await sharp(bytes).metadata();
  let pipeline = sharp(bytes);
  if ((meta.channels ?? 3) <= 2) pipeline = pipeline.toColourspace("b-w");
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return {
    pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    channels: info.channels as RawImage["channels"],
  };
}

/** A PNG sample grid of `images` (`[N, C, H, W]` in [0, 1]); see {@link imageGrid} for the layout. */
export async function imageGridPng(
  images: Float32Array | Float64Array,
  shape: readonly number[],
  options: GridOptions = {},
): Promise<Uint8Array> {
  return await encodePng(imageGrid(images, shape, options));
}

/**
 * Rasterises an SVG document to PNG at its own width and height (`density` 72 = one SVG unit per
 * pixel; 144 doubles the resolution). Text uses the system's fonts through fontconfig.
 */
export async function svgToPng(
  svg: string,
  options: { readonly density?: number } = {},
): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const buf = await sharp(new TextEncoder().encode(svg), { density: options.density ?? 72 })
    .flatten({ background: "#ffffff" })
    .png({ compressionLevel: 9 })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Width, height and channel count of a PNG, read by sharp. */
export async function pngInfo(
  bytes: Uint8Array,
): Promise<{ width: number; height: number; channels: number }> {
  const sharp = await loadSharp();
  const m = await sharp(bytes).metadata();
  return { width: m.width ?? 0, height: m.height ?? 0, channels: m.channels ?? 0 };
}
