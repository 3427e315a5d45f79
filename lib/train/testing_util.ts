/**
 * Helpers of the training tests: a tiny Residual Flow on real MNIST (28×28, one block on each of
 * two scales, 8 hidden channels, no FC end blocks) on the float32 CPU backend, and host snapshots of
 * every tensor of a run for bit-exact comparisons.
 * @module
 */
import { createDevice } from "../engine/devices.ts";
import { Rng } from "../engine/random.ts";
import type { Device } from "../engine/tensor.ts";
import { loadDataset } from "../data/registry.ts";
import type { Dataset } from "../data/dataset.ts";
import { makeConfig, type ResidualFlowConfig } from "../flow/config.ts";
import { ResidualFlow } from "../flow/model.ts";
import type { Module } from "../flow/module.ts";
import { Trainer, type TrainerOptions } from "./trainer.ts";

/** The tiny test configuration. */
export function tinyConfig(): ResidualFlowConfig {
  return makeConfig({ inputShape: [1, 28, 28], nBlocks: [1, 1], hiddenChannels: 8, fcEnd: false });
}

let cached: { train: Dataset; test: Dataset } | null = null;

/** The first 64 MNIST training images and the first 16 test images (loaded once). */
export async function tinyMnist(): Promise<{ train: Dataset; test: Dataset }> {
  cached ??= {
    train: await loadDataset("mnist", { limit: 64 }),
    test: await loadDataset("mnist", { split: "test", limit: 16 }),
  };
  return cached;
}

/** A fresh tiny model and trainer (model weights from `seed`). */
export async function tinyTrainer(
  overrides: Partial<TrainerOptions> = {},
  device?: Device,
): Promise<Trainer> {
  const d = device ?? await createDevice("cpu");
  const seed = overrides.seed ?? 7;
  const model = new ResidualFlow(tinyConfig(), { rng: new Rng(seed), device: d });
  const { train } = await tinyMnist();
  return new Trainer({ model, device: d, data: train, batchSize: 8, seed, adam: { lr: 5e-3 }, ...overrides });
}

/** Host copies of every parameter and non-empty buffer, by name. */
export async function hostState(m: Module): Promise<Map<string, Float32Array | Float64Array>> {
  const out = new Map<string, Float32Array | Float64Array>();
  for (const p of m.parameters()) out.set(`param.${p.name}`, (await p.value.read()).slice());
  for (const b of m.buffers()) if (b.value) out.set(`buffer.${b.name}`, (await b.value.read()).slice());
  return out;
}

/** Names whose values differ in any bit (or that are present in only one of the two maps). */
export function bitDifferences(
  a: ReadonlyMap<string, ArrayLike<number>>,
  b: ReadonlyMap<string, ArrayLike<number>>,
): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  const bad: string[] = [];
  for (const n of names) {
    const x = a.get(n);
    const y = b.get(n);
    if (!x || !y || x.length !== y.length) {
      bad.push(n);
      continue;
    }
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) {
        bad.push(n);
        break;
      }
    }
  }
  return bad.sort();
}
