/**
 * Coupling blocks: the masked half passes unchanged, the transformed half follows the formula, the
 * flow contract (round trip, brute-force log-det, inverse log-det, finite non-zero gradients for every
 * parameter) in float64 and float32, mask alternation and parameter names.
 */
import { assertClose, assertEquals, assertThrows, assertTrue, type Tolerance } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { type Device, noGrad, tidy } from "../engine/tensor.ts";
import { alternatingMask, ChannelCouplingBlock, MaskedCouplingBlock } from "./coupling.ts";
import { checkFlowLayer, forwardHost, normals, testContext } from "./layer_test_util.ts";
import type { FlowLayer } from "./module.ts";

/** Log-dets vs brute-force Jacobians (float64). */
const BRUTE: Tolerance = { atol: 1e-10, rtol: 1e-10 };
/** Round trips. */
const ROUND_TRIP_F64 = 1e-12;
const ROUND_TRIP_F32 = 1e-4;

const dev64 = await createDevice("cpu64");
const dev32 = await createDevice("cpu");
const ctx = testContext(true);

function blocks(device: Device): [string, FlowLayer, number[]][] {
  const common = { hidden: 6, rng: new Rng(7), device };
  return [
    ["checkerboard0", new MaskedCouplingBlock({ ...common, channels: 2, mask: "checkerboard0" }), [
      2,
      2,
      4,
      4,
    ]],
    [
      "checkerboard1, no leading act",
      new MaskedCouplingBlock({ ...common, channels: 1, mask: "checkerboard1", leadingActivation: false }),
      [2, 1, 3, 5],
    ],
    ["channel0", new ChannelCouplingBlock({ ...common, channels: 4, mask: "channel0" }), [2, 4, 3, 3]],
    [
      "channel1, ELU",
      new ChannelCouplingBlock({ ...common, channels: 2, mask: "channel1", activation: "elu" }),
      [2, 2, 4, 3],
    ],
  ];
}

Deno.test("coupling flow contract: round trip, brute-force log-det, inverse log-det, gradients", async (t) => {
  for (const device of [dev64, dev32]) {
    for (const [name, block, shape] of blocks(device)) {
      await t.step(`${name} on ${device.backend.description}`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = tensor(normals(n, new Rng(3), 1.5), shape, device);
        const r = await checkFlowLayer(block, x, ctx);
        assertTrue(
          r.roundTrip <= (device === dev64 ? ROUND_TRIP_F64 : ROUND_TRIP_F32),
          `round trip ${r.roundTrip}`,
        );
        if (device === dev64) {
          assertClose(r.logdet, r.bruteForward, BRUTE, "log-det vs brute force");
          assertClose(r.bruteInverse, r.logdet.map((v) => -v), BRUTE, "inverse log-det = −forward");
        }
        assertEquals(r.nonFinite, []);
        assertEquals(r.zeroGrad, []);
      });
    }
  }
});

Deno.test("the conditioning half passes unchanged; the other half is x·sigmoid(s + 2) + t", async () => {
  const block = new MaskedCouplingBlock({
    channels: 2,
    hidden: 4,
    mask: "checkerboard0",
    rng: new Rng(1),
    device: dev64,
  });
  const x = normals(2 * 2 * 4 * 4, new Rng(2));
  const { y } = await forwardHost(block, tensor(x, [2, 2, 4, 4], dev64), ctx);
  let changed = 0;
  for (let i = 0; i < x.length; i++) {
    const h = Math.floor(i / 4) % 4;
    const w = i % 4;
    if ((h + w) % 2 === 0) assertEquals(y[i], x[i], `masked position ${i} unchanged`);
    else if (y[i] !== x[i]) changed++;
  }
  assertEquals(changed, x.length / 2);
  const ch = new ChannelCouplingBlock({
    channels: 4,
    hidden: 4,
    mask: "channel1",
    rng: new Rng(1),
    device: dev64,
  });
  const x2 = normals(4 * 2 * 2, new Rng(4));
  const out = await forwardHost(ch, tensor(x2, [1, 4, 2, 2], dev64), ctx);
  assertClose(out.y.slice(8), x2.slice(8), { atol: 0, rtol: 0 }, "channel1 keeps the second half");
  assertTrue(out.y.slice(0, 8).every((v, i) => v !== x2[i]), "and transforms the first");
  // With a zero last conv, s = 0 and t = 0: y_b = x_b·sigmoid(2), log-det = (C/2)·H·W·log sigmoid(2).
  const last = ch.nnet.layers[ch.nnet.layers.length - 1];
  for (const p of last.parameters()) p.set(tensor(new Float64Array(p.value.size), p.value.shape, dev64));
  const z = await forwardHost(ch, tensor(x2, [1, 4, 2, 2], dev64), ctx);
  const sg = 1 / (1 + Math.exp(-2));
  assertClose(
    z.y.slice(0, 8),
    Array.from(x2.slice(0, 8), (v) => v * sg),
    { atol: 1e-15, rtol: 1e-14 },
    "sigmoid(2) scale",
  );
  assertClose(z.logdet, [8 * Math.log(sg)], { atol: 1e-14, rtol: 1e-14 }, "log-det at s = 0");
});

Deno.test("coupling: names, alternation, skipLogdet, errors", () => {
  const b = new MaskedCouplingBlock({
    channels: 3,
    hidden: 8,
    mask: alternatingMask("checkerboard", 0),
    rng: new Rng(1),
    device: dev64,
  });
  assertEquals(b.mask, "checkerboard0");
  assertEquals(b.parameters().map((p) => p.name), [
    "nnet.0.beta",
    "nnet.1.weight",
    "nnet.1.bias",
    "nnet.2.beta",
    "nnet.3.weight",
    "nnet.3.bias",
    "nnet.4.beta",
    "nnet.5.weight",
    "nnet.5.bias",
  ]);
  assertEquals(b.parameters()[7].value.shape, [6, 8, 3, 3]);
  assertEquals([0, 1, 2, 3].map((i) => alternatingMask("channel", i)), [
    "channel0",
    "channel1",
    "channel0",
    "channel1",
  ]);
  const c = new ChannelCouplingBlock({
    channels: 6,
    hidden: 5,
    mask: "channel1",
    rng: new Rng(1),
    device: dev64,
  });
  assertEquals(c.parameters()[1].value.shape, [5, 3, 3, 3]);
  assertEquals(c.parameters().at(-2)!.value.shape, [6, 5, 3, 3]);
  const out = noGrad(() =>
    tidy(() => c.forward(tensor(new Float64Array(6 * 4), [1, 6, 2, 2], dev64), { ...ctx, skipLogdet: true }))
  );
  assertEquals(out.logdet, null);
  assertThrows(
    () =>
      new ChannelCouplingBlock({ channels: 3, hidden: 4, mask: "channel0", rng: new Rng(1), device: dev64 }),
    /even number/,
  );
  assertThrows(
    () =>
      new MaskedCouplingBlock({ channels: 3, hidden: 4, mask: "channel0", rng: new Rng(1), device: dev64 }),
    /checkerboard0 or checkerboard1/,
  );
  assertThrows(() => c.forward(tensor([1, 2], [1, 2, 1, 1], dev64), ctx), /expected \[B, 6, H, W\]/);
});
