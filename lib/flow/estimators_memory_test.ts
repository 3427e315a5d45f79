/**
 * Backward-in-forward: the same gradients as the plain path for the same random draws, the
 * estimator's graph really freed during forward, and the peak bytes of one training step for the
 * four modes (naive, Neumann, backward-in-forward, both) on stacks of blocks with n = 10 terms,
 * measured on the meta device (and checked equal on a real device).
 */
import { gradMaybe } from "../engine/autograd.ts";
import { createDevice } from "../engine/devices.ts";
import { requireGrad } from "../engine/ops/creation.ts";
import { mul, sub } from "../engine/ops/elementwise.ts";
import { mean, sum } from "../engine/ops/reduce.ts";
import { randn, Rng } from "../engine/random.ts";
import { type Device, dispose, type Tensor, tidy } from "../engine/tensor.ts";
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { IResBlock, type IResBlockOptions } from "./iresblock.ts";
import {
  FixtureBranch,
  type FixtureLayer,
  fixtureTensor,
  RandomConvBranch,
  readFixture,
} from "./testing_util.ts";

/** Same draws, float64: backward-in-forward vs plain gradients. */
const SAME_F64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/** Same draws, float32. */
const SAME_F32: Tolerance = { atol: 1e-5, rtol: 1e-4 };

// deno-lint-ignore no-explicit-any
type Variant = Record<string, any>;
const fixture = await readFixture("iresblock.json");
const variants = fixture.variants as Variant[];

type Mode = "plain" | "naive" | "neumann" | "backwardInForward" | "both";
const MODES: Record<Exclude<Mode, "plain">, IResBlockOptions> = {
  naive: { neumannGrad: false, backwardInForward: false },
  neumann: { neumannGrad: true, backwardInForward: false },
  backwardInForward: { neumannGrad: false, backwardInForward: true },
  both: { neumannGrad: true, backwardInForward: true },
};

/** loss = mean_b(½|z_b|² − Σ_blocks logdet_b) through a stack; "plain" skips the log-det. */
function loss(blocks: IResBlock[], x: Tensor, mode: Mode, seed: number): Tensor {
  const ctx = { training: true, rng: new Rng(seed), skipLogdet: mode === "plain" };
  let h = x;
  let ld: Tensor | null = null;
  for (const b of blocks) {
    const o = b.forward(h, ctx);
    h = o.y;
    if (o.logdet) ld = ld ? sub(ld, o.logdet) : mul(o.logdet, -1);
  }
  const nll = mul(sum(mul(h, h), [1, 2, 3]), 0.5);
  return mean(ld ? sub(nll, mul(ld, -1)) : nll);
}

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU pass skipped: ${(e as Error).message.split("\n")[0]}`);
}

Deno.test("backward-in-forward gives the plain path's gradients for the same draws", async (t) => {
  const devices: [Device, Tolerance][] = [[await createDevice("cpu64"), SAME_F64], [
    await createDevice("cpu"),
    SAME_F32,
  ]];
  if (gpu) devices.push([gpu, SAME_F32]);
  for (const [dev, tol] of devices) {
    const kind = `${dev.name} ${dev.backend.dtype}`;
    for (const gradient of ["naive", "neumann"] as const) {
      await t.step(
        `${kind}, ${gradient}: a stack of the two fixture blocks, gradients to every parameter and x`,
        async () => {
          const results: Float64Array[][] = [];
          for (const backwardInForward of [false, true]) {
            const blocks = [variants[1], variants[0]].map((v) =>
              new IResBlock(new FixtureBranch(v.layers as FixtureLayer[], dev), {
                neumannGrad: gradient === "neumann",
                backwardInForward,
              })
            );
            const x = requireGrad(fixtureTensor(variants[1].x, dev));
            const inputs = [x, ...blocks.flatMap((b) => b.parameters().map((p) => p.value))];
            const gs = tidy(() => {
              const l = loss(blocks, x, gradient === "naive" ? "naive" : "neumann", 42);
              return [l.detach(), ...gradMaybe(l, inputs)];
            });
            results.push(await Promise.all(gs.map(async (g) => Float64Array.from(await g!.read()))));
            dispose(gs);
            if (backwardInForward && dev.name === "webgpu") {
              // No synchronous check there: the upstream spread is recorded as a tensor instead.
              for (const b of blocks) assertEquals(await b.lastUpstreamSpread!.item(), 0);
            }
            x.dispose();
          }
          const [plain, eff] = results;
          assertEquals(plain.length, eff.length);
          for (let i = 0; i < plain.length; i++) {
            assertClose(eff[i], plain[i], tol, i === 0 ? "loss" : `gradient ${i - 1}`);
          }
        },
      );
    }
  }
});

/** Bytes of the gradients a backward-in-forward block stores: x-sized plus every parameter it uses. */
function storedBytes(b: IResBlock, x: Tensor, unused: number): number {
  const params = b.parameters().reduce((n, p) => n + p.value.size, 0);
  return (x.size + params - unused) * x.device.bytesPerElement;
}

function stack(dev: Device, m: number, mode: Mode): IResBlock[] {
  const opts = mode === "plain" ? {} : MODES[mode];
  return Array.from(
    { length: m },
    (_, i) =>
      new IResBlock(new RandomConvBranch(4, 32, dev, i), { ...opts, estimator: "truncated", nTruncated: 10 }),
  );
}

/** Peak bytes above the starting live bytes during one training step (forward, loss, backward). */
function stepPeak(dev: Device, m: number, mode: Mode): number {
  const blocks = stack(dev, m, mode);
  const x = randn([16, 4, 8, 8], new Rng(1), dev);
  const params = blocks.flatMap((b) => b.parameters().map((p) => p.value));
  const step = () => tidy(() => dispose(gradMaybe(loss(blocks, x, mode, 3), params, { allowUnused: true })));
  step(); // warm the cached scalar constants
  dev.resetPeak();
  const base = dev.memoryStats().bytesLive;
  step();
  const peak = dev.memoryStats().peakBytes - base;
  x.dispose();
  return peak;
}

Deno.test("backward-in-forward frees each block's estimator graph during forward", async () => {
  const dev = await createDevice("cpu");
  const m = 3;
  const live: Record<string, number> = {};
  let stored = 0;
  for (const mode of ["plain", "both", "backwardInForward"] as const) {
    const blocks = stack(dev, m, mode);
    const x = randn([4, 4, 8, 8], new Rng(1), dev);
    // The last convolution's bias never gets a log-det gradient (g shifted by a constant has the same Jacobian).
    stored = blocks.reduce((n, b) => n + storedBytes(b, x, 4), 0);
    tidy(() => loss(blocks, x, mode, 3)).dispose(); // warm-up
    const before = dev.memoryStats().bytesLive;
    const l = tidy(() => loss(blocks, x, mode, 3));
    live[mode] = dev.memoryStats().bytesLive - before;
    l.dispose();
    x.dispose();
  }
  // Beyond the plain forward graph only the stored gradients and a few [B]-sized tensors remain.
  for (const mode of ["both", "backwardInForward"]) {
    const extra = live[mode] - live.plain - stored;
    assertTrue(
      extra >= 0 && extra <= 64 * m * 4,
      `${mode}: ${extra} bytes beyond plain + stored (${JSON.stringify(live)})`,
    );
  }
});

Deno.test("peak memory of a training step, n = 10 terms (meta device)", async (t) => {
  const meta = await createDevice("meta");
  const peaks = new Map<string, number>();
  const peak = (m: number, mode: Mode) => {
    const k = `${m}:${mode}`;
    if (!peaks.has(k)) peaks.set(k, stepPeak(meta, m, mode));
    return peaks.get(k)!;
  };

  await t.step("a real device reports the same peaks as the meta device", async () => {
    const cpu = await createDevice("cpu");
    for (const mode of ["plain", "naive", "both"] as const) {
      assertEquals(stepPeak(cpu, 2, mode), peak(2, mode), mode);
    }
  });

  await t.step("16 blocks: naive > Neumann > backward-in-forward > both", () => {
    const p = (["naive", "neumann", "backwardInForward", "both"] as const).map((mode) => peak(16, mode));
    assertTrue(p[0] > p[1] && p[1] > p[2] && p[2] > p[3], `peaks ${p.join(", ")}`);
    // Naive backprop holds n VJP graphs per block: several times Neumann's one.
    assertTrue(p[0] > 4 * p[1], `naive ${p[0]} vs Neumann ${p[1]}`);
  });

  await t.step("with both, the log-det adds no memory per block beyond the stored gradients", () => {
    const blocks = stack(meta, 1, "both");
    const x = randn([16, 4, 8, 8], new Rng(1), meta);
    const perBlock = storedBytes(blocks[0], x, 4);
    x.dispose();
    const extra = [2, 4, 8, 16].map((m) => peak(m, "both") - peak(m, "plain") - m * perBlock);
    const spread = Math.max(...extra) - Math.min(...extra);
    // Constant up to a fraction of one block's stored gradients; naive's grows by megabytes per block.
    assertTrue(
      spread <= perBlock,
      `extra peak over plain: ${extra.join(", ")} (per-block stored ${perBlock})`,
    );
    const naiveGrowth = (peak(16, "naive") - peak(16, "plain") - (peak(2, "naive") - peak(2, "plain"))) / 14;
    assertTrue(naiveGrowth > 100 * perBlock, `naive grows ${naiveGrowth} bytes per block`);
    // The Neumann series alone keeps one VJP graph per block: its extra memory grows with the stack.
    const neumannGrowth =
      (peak(16, "neumann") - peak(16, "plain") - (peak(2, "neumann") - peak(2, "plain"))) / 14;
    assertTrue(neumannGrowth > 10 * perBlock, `Neumann grows ${neumannGrowth} bytes per block`);
  });
});
