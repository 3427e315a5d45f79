/**
 * Backward-in-forward's shared-upstream assumption is checked on every device: the CPU backend throws
 * inside the backward; on WebGPU each block's relative upstream spread joins the step's one readback
 * and a step that breaks it throws (the state restored). The loss here is a weighted sum of per-image
 * bits/dim (weights 1..B), which gives every example's log-det a different upstream gradient.
 */
import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { mul } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import type { Device } from "../engine/tensor.ts";
import { UPSTREAM_REL_TOL } from "../flow/estimators.ts";
import { bitDifferences, hostState, tinyTrainer } from "./testing_util.ts";
import { type LossFn, sharedUpstreamViolations, type Trainer } from "./trainer.ts";

let gpu: Device | null = null;
try {
  gpu = await createDevice("webgpu");
} catch (e) {
  console.log(`WebGPU upstream-check test skipped: ${(e as Error).message.split("\n")[0]}`);
}

/** Parameters only (the first step's σ convergence moves u and v before the step proper). */
async function params(t: Trainer): Promise<Map<string, Float32Array | Float64Array>> {
  const all = await hostState(t.module);
  return new Map([...all].filter(([n]) => n.startsWith("param.")));
}

/** Σ_b b · bits/dim_b: a per-example weighting backward-in-forward cannot handle. */
const weighted: LossFn = (out, batch, model) => {
  const w = tensor(
    Array.from({ length: batch.size }, (_, b) => (b + 1) / batch.size),
    [batch.size],
    batch.x.device,
  );
  return sum(mul(model.bitsPerDim(out.logpx!), w));
};

Deno.test("sharedUpstreamViolations names the blocks above the tolerance (NaN included)", () => {
  assertEquals(sharedUpstreamViolations(["a", "b"], [0, UPSTREAM_REL_TOL]), []);
  assertEquals(sharedUpstreamViolations(["a", "b", "c"], [0, 0.25, NaN]), ["b: 2.50e-1", "c: NaN"]);
});

Deno.test("CPU: a per-example weighted loss fails loudly inside the backward", async () => {
  const t = await tinyTrainer({ loss: weighted });
  const before = await params(t);
  await assertRejects(() => t.trainStep(), /differs across examples/);
  assertEquals(bitDifferences(before, await params(t)), []);
  t.dispose();
});

Deno.test({
  name: "WebGPU: the upstream spread rides on the step's readback and a broken step throws",
  ignore: gpu === null,
}, async () => {
  const ok = await tinyTrainer({}, gpu!);
  const r = await ok.trainStep();
  assertTrue(r.accepted, "a mean-reduced loss passes the check");
  const spreads = ok.model.residualBlocks().map((b) => b.lastUpstreamSpread);
  assertTrue(spreads.length > 0 && spreads.every((s) => s !== null), "every block recorded its spread");
  for (const s of spreads) assertTrue((await s!.item()) <= UPSTREAM_REL_TOL);
  ok.dispose();
  const bad = await tinyTrainer({ loss: weighted }, gpu!);
  const before = await params(bad);
  await assertRejects(
    () => bad.trainStep(),
    /^Error: Cannot train step 0: backward-in-forward assumes .* relative spread exceeds 0\.000001 in block .*: \d/,
  );
  assertEquals(bitDifferences(before, await params(bad)), [], "the weights are the ones before the step");
  assertEquals(bad.optimizer.stepCount, 0);
  bad.dispose();
});
