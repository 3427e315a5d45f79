/**
 * `deno task train` and `deno task sample` as subprocesses on a tiny model over real MNIST (CPU
 * backend): --help, unknown options, a 3-step run whose checkpoint `sample` turns into a PNG grid of
 * the right size, and resuming (after a normal end and after SIGKILL) ending bit-equal to a straight run.
 * @module
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { decodePng, ensureSharp } from "../../lib/artifacts/png.ts";
import { loadSafetensors, saveSafetensors } from "../../lib/artifacts/safetensors.ts";

const SHARP_WORKS = await ensureSharp().then(() => true, (e) => {
  console.error(`train_test: sharp is unavailable, the sample step is ignored: ${(e as Error).message}`);
  return false;
});

const TRAIN = new URL("./train.ts", import.meta.url).pathname;
const SAMPLE = new URL("./sample.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** The tiny model: real 28×28 MNIST, one block per scale, 8 hidden channels, no FC blocks. */
const TINY = [
  "--device",
  "cpu",
  "--blocks",
  "1-1",
  "--hidden",
  "8",
  "--fc-blocks",
  "0",
  "--batch",
  "8",
  "--train-limit",
  "64",
  "--eval-limit",
  "8",
  "--eval-batch",
  "8",
  "--warmup",
  "2",
];

function command(script: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, script, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(script: string, args: string[]) {
  const out = await command(script, args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "resflow-train-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Names of the tensors whose bits differ between two checkpoint files (or exist in one only). */
async function tensorDifferences(a: string, b: string): Promise<string[]> {
  const fa = (await loadSafetensors(a)).tensors;
  const fb = (await loadSafetensors(b)).tensors;
  const bad: string[] = [];
  for (const n of new Set([...fa.keys(), ...fb.keys()])) {
    const x = fa.get(n)?.data as Float32Array | undefined;
    const y = fb.get(n)?.data as Float32Array | undefined;
    if (!x || !y || x.length !== y.length || x.some((v, i) => !Object.is(v, y[i]))) bad.push(n);
  }
  return bad;
}

Deno.test("train/sample CLI: --help and unknown options", async (ctx) => {
  for (const [name, script] of [["train", TRAIN], ["sample", SAMPLE]]) {
    await ctx.step(`${name} --help`, async () => {
      const r = await run(script, ["--help"]);
      assertEquals(r.code, 0, r.stderr);
      assertTrue(r.stdout.startsWith(`Usage: deno task ${name} [options]`), r.stdout);
      assertTrue(r.stdout.includes("--device <value>") && r.stdout.includes("--help"), r.stdout);
    });
    await ctx.step(`${name} rejects an unknown option with the list of valid ones`, async () => {
      const r = await run(script, ["--bogus", "1"]);
      assertEquals(r.code, 2);
      assertTrue(/Unknown option '--bogus'/.test(r.stderr), r.stderr);
      assertTrue(r.stderr.includes("Valid options: ") && r.stderr.includes("--device"), r.stderr);
    });
  }
  await ctx.step("a bad value names the option and what it expects", async () => {
    const r = await run(TRAIN, ["--blocks", "4-x"]);
    assertEquals(r.code, 2);
    assertTrue(r.stderr.includes('Cannot use --blocks "4-x": expected counts like 4-4'), r.stderr);
  });
  await ctx.step("--device accepts auto, webgpu, wasm or cpu, and names them otherwise", async () => {
    const r = await run(TRAIN, ["--device", "gpu"]);
    assertEquals(r.code, 2);
    assertTrue(r.stderr.includes('Cannot use --device "gpu": expected auto, webgpu, wasm or cpu'), r.stderr);
  });
});

Deno.test("train/sample CLI: 3 steps on MNIST, then a PNG grid from the checkpoint", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/run`;
    const r = await run(TRAIN, [...TINY, "--steps", "3", "--out", out]);
    assertEquals(r.code, 0, r.stderr + r.stdout);
    const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
    assertEquals([summary.complete, summary.steps, summary.optimizerSteps], [true, 3, 3]);
    assertEquals(summary.config.inputShape, [1, 28, 28]);
    assertTrue(Number.isFinite(summary.testBitsPerDim.bitsPerDim) && summary.testBitsPerDim.count === 8);
    assertTrue(summary.testBitsPerDim.standardError > 0);
    assertEquals(summary.logs.map((l: { step: number }) => l.step), [3]);
    const again = await run(TRAIN, [...TINY, "--steps", "3", "--out", out]);
    assertEquals(again.code, 1, "an existing checkpoint is not overwritten without --resume");
    assertTrue(again.stderr.includes("pass --resume"), again.stderr);
    if (!SHARP_WORKS) return;
    const png = `${dir}/grid.png`;
    const s = await run(SAMPLE, ["--run", out, "--device", "cpu", "--n", "10", "--nrow", "5", "--out", png]);
    assertEquals(s.code, 0, s.stderr + s.stdout);
    const img = await decodePng(await Deno.readFile(png));
    // 5 tiles of 28 px per row, 2 rows, 2 px padding: 5·30 + 2 by 2·30 + 2.
    assertEquals([img.width, img.height, img.channels], [152, 62, 1]);
    assertTrue(/block 2: \d+ \/ \d/.test(s.stdout) && /block 5: \d+ \/ \d/.test(s.stdout), s.stdout);
    assertTrue(!s.stdout.includes("NOT converged"), s.stdout);
  });
});

Deno.test("train CLI: a resumed run (after a normal end or SIGKILL) ends bit-equal to a straight run", async (ctx) => {
  await withTempDir(async (dir) => {
    const straight = await run(TRAIN, [
      ...TINY,
      "--steps",
      "6",
      "--checkpoint-every",
      "2",
      "--out",
      `${dir}/s`,
    ]);
    assertEquals(straight.code, 0, straight.stderr);
    await ctx.step("--steps 4, then --steps 6 --resume", async () => {
      const common = [...TINY, "--checkpoint-every", "2", "--out", `${dir}/r`];
      assertEquals((await run(TRAIN, [...common, "--steps", "4"])).code, 0);
      const r = await run(TRAIN, [...common, "--steps", "6", "--resume"]);
      assertEquals(r.code, 0, r.stderr);
      assertTrue(r.stdout.includes("at step 4 of 6"), r.stdout);
      assertEquals(
        await tensorDifferences(`${dir}/s/checkpoint.safetensors`, `${dir}/r/checkpoint.safetensors`),
        [],
      );
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/r/summary.json`));
      assertEquals([summary.steps, summary.optimizerSteps], [6, 6]);
    });
    await ctx.step("killed with SIGKILL after its first checkpoint, then rerun with --resume", async () => {
      const args = [...TINY, "--steps", "6", "--checkpoint-every", "1", "--out", `${dir}/k`];
      const child = command(TRAIN, args).spawn();
      const ck = `${dir}/k/checkpoint.safetensors`;
      for (let i = 0; i < 600; i++) {
        if (await Deno.stat(ck).then(() => true, () => false)) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      try {
        child.kill("SIGKILL");
      } catch { /* it may have finished already */ }
      await child.output();
      const r = await run(TRAIN, [...args, "--resume"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(await tensorDifferences(`${dir}/s/checkpoint.safetensors`, ck), []);
    });
  });
});

Deno.test("train CLI: --resume refuses a checkpoint holding NaN, naming the file and the tensor", async () => {
  await withTempDir(async (dir) => {
    const args = [...TINY, "--steps", "2", "--out", dir];
    assertEquals((await run(TRAIN, args)).code, 0);
    const path = `${dir}/checkpoint.safetensors`;
    const f = await loadSafetensors(path);
    const tensors = Object.fromEntries(
      [...f.tensors].map(([n, t]) => [n, { shape: t.shape, data: (t.data as Float32Array).slice() }]),
    );
    const name = Object.keys(tensors).find((n) => n.startsWith("param.") && n.endsWith(".weight"))!;
    tensors[name].data[0] = NaN;
    await saveSafetensors(path, tensors, f.metadata);
    const r = await run(TRAIN, [...TINY, "--steps", "4", "--out", dir, "--resume"]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assertTrue(lines[0].includes(path) && lines[0].includes(`${name}: 1 of`), lines[0]);
  });
});
