/**
 * Peak memory of one training step of a whole ResidualFlow for the four log-det gradient modes:
 * the meta device reports the CPU's bytes for a small model, and at the paper's MNIST size
 * (16-16-16 blocks of width 512 plus the FC end blocks, batch 64, n = 10 series terms) the peaks fall
 * in the order naive > Neumann > backward-in-forward > both, with "both" a small fraction of naive
 * (the paper reports 7.1%).
 */
import { createDevice } from "../engine/devices.ts";
import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { makeConfig, PAPER_CONFIGS } from "./config.ts";
import { GRADIENT_MODES, measureTrainingStep, memoryConfig } from "./model_memory.ts";

/** Largest accepted "both" / naive ratio of the step's device high-water mark (paper: 7.1%). */
const BOTH_OVER_NAIVE_MAX = 0.15;
/** Series terms of the paper's memory figure. */
const N_TERMS = 10;
/** Batch of the paper's memory figure. */
const BATCH = 64;

Deno.test("the meta device reports a real device's peak bytes for a whole model's training step", async () => {
  const meta = await createDevice("meta");
  const cpu = await createDevice("cpu");
  const small = makeConfig({
    inputShape: [1, 8, 8],
    nBlocks: [2, 2],
    hiddenChannels: 8,
    fcHidden: 16,
    fcBlocks: 2,
    quadratic: true,
  });
  for (const mode of GRADIENT_MODES) {
    const cfg = memoryConfig(small, mode, N_TERMS);
    const a = measureTrainingStep(cfg, { device: meta, batch: 4 });
    const b = measureTrainingStep(cfg, { device: cpu, batch: 4 });
    assertEquals(a, b, mode);
  }
});

Deno.test("paper-size MNIST training step: naive > Neumann > backward-in-forward > both (meta)", async () => {
  const meta = await createDevice("meta");
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  const peaks = GRADIENT_MODES.map((mode) => {
    const m = measureTrainingStep(memoryConfig(PAPER_CONFIGS.mnist, mode, N_TERMS), {
      device: meta,
      batch: BATCH,
    });
    console.log(
      `  ${mode.padEnd(7)} peak ${gib(m.peakBytes)} GiB (step ${gib(m.stepPeakBytes)} GiB above ${
        gib(m.restingBytes)
      } GiB resting, parameters ${gib(m.paramBytes)} GiB)`,
    );
    return m.peakBytes;
  });
  const ratios = peaks.map((p) => p / peaks[0]);
  console.log(`  peak / naive: ${ratios.map((r) => r.toFixed(3)).join(", ")}`);
  for (let i = 1; i < peaks.length; i++) {
    assertTrue(
      peaks[i] < peaks[i - 1],
      `${GRADIENT_MODES[i]} ${peaks[i]} vs ${GRADIENT_MODES[i - 1]} ${peaks[i - 1]}`,
    );
  }
  assertTrue(ratios[3] <= BOTH_OVER_NAIVE_MAX, `both / naive = ${ratios[3]}`);
});
