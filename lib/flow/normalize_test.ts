/** Normalize: values, log-det −H·W·Σ log std by brute force, extra channels pass through, round trip. */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { checkFlowLayer, forwardHost, normals, testContext } from "./layer_test_util.ts";
import { CIFAR10_MEAN, CIFAR10_STD, Normalize } from "./normalize.ts";

/** Float64 identities. */
const F64: Tolerance = { atol: 1e-12, rtol: 1e-12 };
/** Log-det vs brute force. */
const BRUTE: Tolerance = { atol: 1e-10, rtol: 1e-10 };

const ctx = testContext(false);

Deno.test("Normalize: per-channel values and the log-det formula", async () => {
  const dev = await createDevice("cpu64");
  const layer = new Normalize({ mean: CIFAR10_MEAN, std: CIFAR10_STD, device: dev });
  const x = normals(2 * 3 * 2 * 2, new Rng(1), 0.3, 0.5);
  const out = await forwardHost(layer, tensor(x, [2, 3, 2, 2], dev), ctx);
  const want = Array.from(x, (v, i) => {
    const c = Math.floor(i / 4) % 3;
    return (v - CIFAR10_MEAN[c]) / CIFAR10_STD[c];
  });
  assertClose(out.y, want, F64, "y");
  const ld = -4 * CIFAR10_STD.reduce((s, v) => s + Math.log(v), 0);
  assertClose(out.logdet, [ld, ld], F64, "−H·W·Σ log std");
  assertEquals(layer.buffers().map((b) => b.name), ["mean", "std"]);
  assertThrows(() => new Normalize({ mean: [0], std: [0], device: dev }), /every std must be non-zero/);
});

Deno.test("Normalize flow contract, with a padding channel passed through unchanged", async () => {
  for (const kind of ["cpu64", "cpu"] as const) {
    const dev = await createDevice(kind);
    const layer = new Normalize({ mean: [0.2, -0.1], std: [0.5, 2], device: dev });
    const x = tensor(normals(2 * 3 * 2 * 2, new Rng(2)), [2, 3, 2, 2], dev);
    const r = await checkFlowLayer(layer, x, ctx);
    assertTrue(r.roundTrip <= (kind === "cpu64" ? 1e-14 : 1e-6), `round trip ${r.roundTrip}`);
    const ld = -4 * (Math.log(0.5) + Math.log(2));
    assertClose(r.logdet, [ld, ld], kind === "cpu64" ? F64 : { atol: 1e-6, rtol: 0 }, "log-det");
    if (kind === "cpu64") {
      assertClose(r.bruteForward, r.logdet, BRUTE, "brute force");
      assertClose(r.bruteInverse, r.logdet.map((v) => -v), BRUTE, "inverse");
      const y = (await forwardHost(layer, x, ctx)).y;
      const xs = await x.read();
      for (let b = 0; b < 2; b++) {
        for (let k = 0; k < 4; k++) {
          assertEquals(y[(b * 3 + 2) * 4 + k], xs[(b * 3 + 2) * 4 + k], "padding channel");
        }
      }
    }
  }
});
