import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { Rng, shuffleInPlace } from "./rng.ts";

Deno.test("rng", async (t) => {
  await t.step("xoshiro128** matches the reference outputs for state [1, 2, 3, 4]", () => {
    const r = new Rng(0);
    r.setState([1, 2, 3, 4]);
    assertEquals(Array.from({ length: 6 }, () => r.nextU32()), [
      11520,
      0,
      5927040,
      70819200,
      2031721883,
      1637235492,
    ]);
  });

  await t.step("equal keys give equal streams; any differing key gives another stream", () => {
    const draw = (...k: number[]) => {
      const r = new Rng(...k);
      return Array.from({ length: 8 }, () => r.nextU32());
    };
    assertEquals(draw(7, 1, 2), draw(7, 1, 2));
    const streams = [
      draw(7, 1, 2),
      draw(7, 1, 3),
      draw(7, 2, 2),
      draw(8, 1, 2),
      draw(7 + 2 ** 40, 1, 2),
      draw(7, 1),
    ];
    assertEquals(new Set(streams.map((s) => s.join())).size, streams.length);
  });

  await t.step("state round trip continues the stream", () => {
    const a = new Rng(42);
    a.nextU32();
    const b = new Rng(0);
    b.setState(a.getState());
    assertEquals([a.nextU32(), a.nextU32()], [b.nextU32(), b.nextU32()]);
  });

  await t.step("int(n) stays in range and is close to uniform; shuffles are permutations", () => {
    const r = new Rng(3);
    const counts = new Array(6).fill(0);
    const n = 60000;
    for (let i = 0; i < n; i++) counts[r.int(6)]++;
    // Each count is Binomial(60000, 1/6): sd ≈ 91; 6 sd is far beyond chance for this fixed seed.
    for (const c of counts) assertTrue(Math.abs(c - n / 6) < 6 * 91, `counts ${counts}`);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += r.uniform();
    assertTrue(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
    const p = shuffleInPlace(Int32Array.from({ length: 100 }, (_, i) => i), r);
    assertEquals(Array.from(p).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    assertThrows(() => r.int(0), /Rng\.int/);
    assertThrows(() => new Rng(0.5), /safe integer/);
  });
});
