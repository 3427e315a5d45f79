/**
 * Tests of `deno task preview`, run as a subprocess into a temporary folder (`--out`): the PNGs decode
 * with the right sizes and channel counts, the grids hold the real first images, and a missing CIFAR-10
 * exact subset is skipped with a message.
 * @module
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { decodePng, ensureSharp, type RawImage } from "../../lib/artifacts/png.ts";
import { encodeCifarBinary } from "../../lib/data/cifar10.ts";
import { loadDataset } from "../../lib/data/mod.ts";

const SHARP_WORKS = await ensureSharp().then(() => true, (e) => {
  console.error(`preview_test: sharp is unavailable, the preview steps are ignored: ${(e as Error).message}`);
  return false;
});

const SCRIPT = new URL("./preview.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** make_grid size of 64 tiles of `side` px, 8 per row, 2 px padding. */
const gridSide = (side: number) => 8 * (side + 2) + 2;
/** Two 640×440 panels side by side. */
const PLOT_SIZE = { width: 1280, height: 440 };
/** Records of the exact subset's train file (the reader insists on exactly this many). */
const EXACT_TRAIN_RECORDS = 4000;

async function runPreview(args: string[], cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, SCRIPT, ...args],
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "resflow-preview-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** The tile at grid position `k` (8 per row, padding 2) as `[C, H, W]` bytes. */
function tile(grid: RawImage, k: number, side: number): Uint8Array {
  const c = grid.channels;
  const x0 = 2 + (k % 8) * (side + 2), y0 = 2 + Math.floor(k / 8) * (side + 2);
  const out = new Uint8Array(c * side * side);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        out[(ch * side + y) * side + x] = grid.pixels[((y0 + y) * grid.width + x0 + x) * c + ch];
      }
    }
  }
  return out;
}

Deno.test({ name: "deno task preview", ignore: !SHARP_WORKS }, async (t) => {
  await t.step(
    "writes the MNIST and CIFAR-10 grids and the plot; the grids hold the first images",
    async () => {
      await withTempDir(async (dir) => {
        // A synthetic exact subset: the tiles must come out unchanged.
        const images = new Uint8Array(EXACT_TRAIN_RECORDS * 3072).map((_, i) => (i * 37 + (i >> 10)) & 255);
        const labels = new Uint8Array(EXACT_TRAIN_RECORDS).map((_, i) => i % 10);
        await Deno.mkdir(`${dir}/data/cifar10-exact`, { recursive: true });
        await Deno.writeFile(
          `${dir}/data/cifar10-exact/train_exact_4000.bin`,
          encodeCifarBinary(images, labels),
        );
        const out = `${dir}/out`;
        const r = await runPreview(["--out", out, "--data-dir", `${dir}/data`], ROOT);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await listDir(out), ["cifar10_grid.png", "example_plot.png", "mnist_grid.png"]);

        const mnist = await decodePng(await Deno.readFile(`${out}/mnist_grid.png`));
        assertEquals([mnist.width, mnist.height, mnist.channels], [gridSide(28), gridSide(28), 1]);
        const real = await loadDataset("mnist", { limit: 64 });
        for (const k of [0, 9, 63]) {
          assertEquals(tile(mnist, k, 28), real.images.subarray(k * 784, (k + 1) * 784), `MNIST tile ${k}`);
        }
        assertEquals(mnist.pixels[0], 0, "padding is black");

        const cifar = await decodePng(await Deno.readFile(`${out}/cifar10_grid.png`));
        assertEquals([cifar.width, cifar.height, cifar.channels], [gridSide(32), gridSide(32), 3]);
        for (const k of [0, 63]) {
          assertEquals(tile(cifar, k, 32), images.subarray(k * 3072, (k + 1) * 3072), `CIFAR tile ${k}`);
        }

        const plot = await decodePng(await Deno.readFile(`${out}/example_plot.png`));
        assertEquals([plot.width, plot.height], [PLOT_SIZE.width, PLOT_SIZE.height]);
        const distinct = new Set(plot.pixels).size;
        assertTrue(distinct > 20, `the plot has ${distinct} distinct sample values: it looks blank`);
      });
    },
  );

  await t.step("without the CIFAR-10 exact subset the CIFAR grid is skipped with a message", async () => {
    await withTempDir(async (dir) => {
      // Run from the temporary folder: neither <data-dir>/cifar10-exact nor ../shared/data exists.
      await Deno.mkdir(`${dir}/empty`);
      const r = await runPreview(["--out", "out", "--data-dir", "empty"], dir);
      assertEquals(r.code, 0, r.stderr);
      assertTrue(
        /Skipped out\/cifar10_grid\.png: the CIFAR-10 exact subset was not found/.test(r.stdout),
        r.stdout,
      );
      assertTrue(/no file train_exact_4000\.bin/.test(r.stdout), r.stdout);
      assertEquals(await listDir(`${dir}/out`), ["example_plot.png", "mnist_grid.png"]);
    });
  });

  await t.step("a damaged exact subset is an error (exit 1), the other files are still written", async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/data/cifar10-exact`, { recursive: true });
      await Deno.writeFile(`${dir}/data/cifar10-exact/train_exact_4000.bin`, new Uint8Array(3073 * 10));
      const r = await runPreview(["--out", "out", "--data-dir", "data"], dir);
      assertEquals(r.code, 1, r.stderr);
      assertTrue(/^Cannot write out\/cifar10_grid\.png: .*4000/s.test(r.stderr), r.stderr);
      assertTrue(!/\n\s+at /.test(r.stderr), r.stderr);
      assertEquals(await listDir(`${dir}/out`), ["example_plot.png", "mnist_grid.png"]);
    });
  });
});
