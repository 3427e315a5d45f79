import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { Batcher, type BatchSource, dequantize, flipHorizontal, reflectPadCrop } from "./batches.ts";
import { Rng } from "./rng.ts";

/** A small labelled dataset: 10 images 3×4×5 with distinct pixels. */
function source(nvals: 256 | 32 = 256, count = 10): BatchSource {
  const shape: [number, number, number] = [3, 4, 5];
  const images = new Uint8Array(count * 60);
  for (let i = 0; i < images.length; i++) images[i] = (i * 37 + 11) % nvals;
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), shape, count, nvals };
}

Deno.test("batches", async (t) => {
  await t.step("flip is a mirror of every row, and flipping twice is the identity", () => {
    const src = source().images.subarray(0, 60);
    const a = new Uint8Array(60);
    const b = new Uint8Array(60);
    flipHorizontal(src, a, 3, 4, 5);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 5; x++) assertEquals(a[c * 20 + y * 5 + x], src[c * 20 + y * 5 + 4 - x]);
      }
    }
    flipHorizontal(a, b, 3, 4, 5);
    assertEquals(b, src);
  });

  await t.step(
    "reflect-pad crop keeps the size; the centre offset is the identity; edges reflect without repeating",
    () => {
      const src = Uint8Array.from({ length: 2 * 6 * 6 }, (_, i) => i);
      const out = new Uint8Array(src.length);
      reflectPadCrop(src, out, 2, 6, 6, 2, 2, 2);
      assertEquals(out, src);
      // Offset (0, 0): out[y][x] = src[|y − 2|][|x − 2|] near the top-left corner.
      reflectPadCrop(src, out, 2, 6, 6, 2, 0, 0);
      assertEquals([out[0], out[1], out[2], out[6 + 0]], [
        src[2 * 6 + 2],
        src[2 * 6 + 1],
        src[2 * 6 + 0],
        src[1 * 6 + 2],
      ]);
      // Offset (4, 4): bottom-right corner reflects to src[6 − 2 − 2 + …]: out[5][5] = src[3][3].
      reflectPadCrop(src, out, 2, 6, 6, 2, 4, 4);
      assertEquals([out[5 * 6 + 5], out[36 + 5 * 6 + 5]], [src[3 * 6 + 3], src[36 + 3 * 6 + 3]]);
      // A shift by one column is a translation of the interior.
      reflectPadCrop(src, out, 2, 6, 6, 2, 2, 3);
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 5; x++) assertEquals(out[y * 6 + x], src[y * 6 + x + 1]);
      }
    },
  );

  await t.step(
    "dequantized values lie in [0, 1) with floor(x · nvals) = k exactly, for 8-bit and 5-bit data",
    () => {
      for (const nvals of [256, 32] as const) {
        const k = Uint8Array.from({ length: 20000 }, (_, i) => i % nvals);
        const x = new Float32Array(k.length);
        dequantize(k, nvals, new Rng(5), x);
        let fracSum = 0;
        for (let j = 0; j < k.length; j++) {
          assertTrue(x[j] >= 0 && x[j] < 1, `x[${j}] = ${x[j]}`);
          assertEquals(Math.floor(x[j] * nvals), k[j], `bin of x[${j}] = ${x[j]}`);
          fracSum += x[j] * nvals - k[j];
        }
        // The noise is uniform on [0, 1): its mean over 20000 values is 0.5 ± 0.01 (sd 0.002).
        assertTrue(Math.abs(fracSum / k.length - 0.5) < 0.01, `mean noise ${fracSum / k.length}`);
      }
      // The largest value of the top bin stays below 1 in float32.
      const top = new Float32Array(1);
      const r = new Rng(0);
      r.setState([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
      dequantize(Uint8Array.of(255), 256, r, top);
      assertTrue(top[0] < 1, `${top[0]}`);
    },
  );

  await t.step(
    "batches are a deterministic function of (seed, epoch, index), and each epoch covers every image once",
    () => {
      const ds = source();
      const opts = { batchSize: 4, seed: 11, flip: true, cropPad: 2 };
      const a = new Batcher(ds, opts);
      const b = new Batcher(ds, opts);
      assertEquals(a.batchesPerEpoch, 3);
      const ea = [...a.epoch(0)];
      // Out-of-order access (as after a resume) gives the same batches.
      assertEquals(b.batch(0, 2), ea[2]);
      assertEquals(b.batch(1, 0).x, a.batch(1, 0).x);
      assertEquals(b.batch(0, 0), ea[0]);
      assertEquals(ea.map((x) => x.size), [4, 4, 2]);
      const seen = ea.flatMap((x) => Array.from(x.indices)).sort((p, q) => p - q);
      assertEquals(seen, Array.from({ length: 10 }, (_, i) => i));
      assertEquals(Array.from(ea[0].labels!), Array.from(ea[0].indices, (i) => ds.labels![i]));
      // Another epoch or another seed gives another order.
      const order0 = Array.from(a.order(0)).join();
      assertTrue(order0 !== Array.from(a.order(1)).join(), "epochs 0 and 1 have the same order");
      assertTrue(
        order0 !== Array.from(new Batcher(ds, { ...opts, seed: 12 }).order(0)).join(),
        "seeds 11 and 12 agree",
      );
      assertEquals(new Batcher(ds, { ...opts, dropLast: true }).batchesPerEpoch, 2);
    },
  );

  await t.step(
    "without shuffle, augmentation or noise, a batch is the images divided by nvals, in order",
    () => {
      const ds = source(32);
      const bt = new Batcher(ds, { batchSize: 3, seed: 0, shuffle: false, dequantize: false });
      const first = bt.batch(0, 0);
      assertEquals(Array.from(first.indices), [0, 1, 2]);
      assertEquals(Array.from(first.x), Array.from(ds.images.subarray(0, 180), (k) => k / 32));
    },
  );

  await t.step(
    "augmented images are flips and crops of their source; both flip states and many offsets occur",
    () => {
      const ds = source(256, 64);
      const bt = new Batcher(ds, { batchSize: 64, seed: 3, flip: true, cropPad: 1, dequantize: false });
      const batch = bt.batch(0, 0);
      const per = 60;
      const cand = new Uint8Array(per);
      const flipped = new Uint8Array(per);
      const found = new Set<string>();
      for (let i = 0; i < batch.size; i++) {
        const src = ds.images.subarray(batch.indices[i] * per, (batch.indices[i] + 1) * per);
        const got = Array.from(batch.x.subarray(i * per, (i + 1) * per), (v) => Math.round(v * 256));
        let match = "";
        for (let dy = 0; dy <= 2 && !match; dy++) {
          for (let dx = 0; dx <= 2 && !match; dx++) {
            reflectPadCrop(src, cand, 3, 4, 5, 1, dy, dx);
            flipHorizontal(cand, flipped, 3, 4, 5);
            if (got.every((v, j) => v === cand[j])) match = `${dy},${dx},0`;
            else if (got.every((v, j) => v === flipped[j])) match = `${dy},${dx},1`;
          }
        }
        assertTrue(match !== "", `image ${i} is no flip/crop of image ${batch.indices[i]}`);
        found.add(match);
      }
      const flips = new Set([...found].map((m) => m.slice(-1)));
      assertEquals(flips.size, 2);
      assertTrue(found.size >= 10, `only ${found.size} distinct (crop, flip) choices in 64 images`);
    },
  );

  await t.step("bad options are refused", () => {
    assertThrows(() => new Batcher(source(), { batchSize: 0, seed: 1 }), /batchSize 0/);
    assertThrows(() => new Batcher(source(), { batchSize: 2, seed: 1, cropPad: 4 }), /cropPad 4/);
    assertThrows(
      () => new Batcher(source(), { batchSize: 2, seed: 1 }).batch(0, 5),
      /an epoch has 5 batches/,
    );
  });
});
