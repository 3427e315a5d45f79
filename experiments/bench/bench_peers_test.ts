/**
 * Tests of the benchmark peers: the layout helper, and every peer's kernels against the engine's CPU
 * reference on small shapes (so a layout or padding mistake in a peer cannot pass as a speed figure).
 * Loads the peers' npm packages (cached in node_modules after the first run). Times nothing.
 * @module
 */
import { assertClose, assertEquals, assertTrue, type Tolerance } from "../../lib/testing/asserts.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import type { Conv2dGeometry } from "../../lib/engine/backend.ts";
import { Rng } from "../../lib/engine/random.ts";
import {
  convOutputShape,
  type KernelSpec,
  loadPeers,
  type Operands,
  PEER_NAMES,
  permute,
} from "./bench_peers.ts";

/** float32 kernels with different summation orders agree to this. */
const PEER_VS_REFERENCE: Tolerance = { atol: 1e-4, rtol: 1e-4 };

function rand(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform() - 0.5);
}

Deno.test("permute", async (t) => {
  await t.step("transposes a matrix", () => {
    assertEquals([...permute(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], [1, 0])], [1, 4, 2, 5, 3, 6]);
  });
  await t.step("NCHW → NHWC → NCHW is the identity and moves channels last", () => {
    const shape = [2, 3, 4, 5];
    const x = rand(120, 1);
    const nhwc = permute(x, shape, [0, 2, 3, 1]);
    // Element [n=1, c=2, h=3, w=4] of NCHW is at [1, 3, 4, 2] of NHWC [2,4,5,3].
    assertEquals(nhwc[((1 * 4 + 3) * 5 + 4) * 3 + 2], x[((1 * 3 + 2) * 4 + 3) * 5 + 4]);
    assertEquals([...permute(nhwc, [2, 4, 5, 3], [0, 3, 1, 2])], [...x]);
  });
});

Deno.test({
  name: "peers agree with the CPU reference on small kernels",
  // jax-js keeps a wasm worker pool alive for the life of the process.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cpu = await createDevice("cpu");
    const { peers, failures } = await loadPeers(PEER_NAMES);
    await t.step("every peer loads", () => {
      assertEquals(failures.map((f) => `${f.backend}: ${f.reason}`), []);
      assertEquals(peers.map((p) => p.backend), [...PEER_NAMES]);
    });
    const x = [2, 3, 5, 6] as const;
    const w = [4, 3, 3, 3] as const;
    const g: Conv2dGeometry = { x, w, stride: 1, pad: 1 };
    const ops: Operands = {
      a: rand(7 * 9, 2),
      b: rand(9 * 5, 3),
      x: rand(2 * 3 * 5 * 6, 4),
      w: rand(4 * 3 * 9, 5),
      dy: rand(2 * 4 * 5 * 6, 6),
    };
    assertEquals(convOutputShape({ x, w, pad: 1 }), [2, 4, 5, 6]);
    const b = cpu.backend;
    const [sa, sb, sx, sw, sdy] = ["a", "b", "x", "w", "dy"].map((k) => b.fromArray(ops[k]));
    const cases: [KernelSpec, Float32Array][] = [
      [
        { op: "matmul", m: 7, k: 9, n: 5 },
        Float32Array.from(
          await b.read(
            b.matmul(sa, sb, {
              batch: 1,
              aBatch: 1,
              bBatch: 1,
              m: 7,
              k: 9,
              n: 5,
              transA: false,
              transB: false,
            }),
          ),
        ),
      ],
      [{ op: "conv2d_forward", x, w, pad: 1 }, Float32Array.from(await b.read(b.conv2d(sx, sw, g)))],
      [
        { op: "conv2d_inputGrad", x, w, pad: 1 },
        Float32Array.from(await b.read(b.conv2dInputGrad(sdy, sw, g))),
      ],
      [
        { op: "conv2d_weightGrad", x, w, pad: 1 },
        Float32Array.from(await b.read(b.conv2dWeightGrad(sx, sdy, g))),
      ],
    ];
    for (const peer of peers) {
      for (const [spec, ref] of cases) {
        await t.step(`${peer.backend} ${spec.op}`, async () => {
          const run = await peer.prepare(spec, ops);
          try {
            assertClose(await run.read(), ref, PEER_VS_REFERENCE, `${peer.backend} ${spec.op}`);
            // The timed path (run + sync) must also work repeatedly.
            run.run();
            run.run();
            await run.sync();
            assertClose(await run.read(), ref, PEER_VS_REFERENCE, `${peer.backend} ${spec.op} again`);
          } finally {
            run.dispose();
          }
        });
      }
    }
    await t.step("an unknown peer is reported, not thrown", async () => {
      const r = await loadPeers(["no-such-peer"]);
      assertEquals(r.peers.length, 0);
      assertTrue(/unknown peer/.test(r.failures[0].reason));
    });
  },
});
