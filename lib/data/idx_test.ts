import { gzipSync } from "node:zlib";
import { assertEquals } from "../testing/asserts.ts";
import { encodeIdx, parseIdx } from "./idx.ts";
import { expectDatasetError } from "./testing_util.ts";

Deno.test("idx", async (t) => {
  await t.step("round trip of every element type, big-endian as the format says", () => {
    const cases: [string, number[]][] = [
      ["uint8", [0, 1, 255, 7, 8, 9]],
      ["int8", [-128, -1, 0, 1, 127, 5]],
      ["int16", [-30000, 2, 3, 4, 5, 30000]],
      ["int32", [-2e9, 1, 2, 3, 4, 2e9]],
      ["float32", [0.5, -1.25, 3, 4, 5, 6]],
      ["float64", [Math.PI, -1e300, 3, 4, 5, 6]],
    ];
    for (const [type, values] of cases) {
      const bytes = encodeIdx(type, [2, 3], values);
      const arr = parseIdx(bytes, "x.idx");
      assertEquals(arr.type, type);
      assertEquals(arr.dims, [2, 3]);
      assertEquals(Array.from(arr.data), values);
    }
    // The magic number of MNIST images is 0x00000803 and the dims are big-endian.
    const img = encodeIdx("uint8", [1, 28, 28], new Uint8Array(784));
    assertEquals(Array.from(img.subarray(0, 8)), [0, 0, 8, 3, 0, 0, 0, 1]);
  });

  await t.step("gzipped files are decompressed", () => {
    const bytes = gzipSync(encodeIdx("uint8", [3], [4, 5, 6]));
    assertEquals(Array.from(parseIdx(new Uint8Array(bytes), "x.gz").data), [4, 5, 6]);
  });

  await t.step(
    "wrong magic, truncation, extra bytes, wrong dims and type are DatasetErrors naming the file",
    async () => {
      const good = encodeIdx("uint8", [2, 2], [1, 2, 3, 4]);
      const badMagic = good.slice();
      badMagic[0] = 0x50;
      await expectDatasetError(
        () => parseIdx(badMagic, "bad.idx"),
        /bad\.idx/,
        /magic number 0x50000802/,
        /IDX/,
      );
      await expectDatasetError(
        () => parseIdx(good.subarray(0, 10), "short.idx"),
        /short\.idx/,
        /truncated/,
        /12 bytes for 2 dims/,
      );
      await expectDatasetError(() => parseIdx(good.subarray(0, 2), "tiny.idx"), /tiny\.idx/, /2 bytes/);
      const long = new Uint8Array(good.length + 1);
      long.set(good);
      await expectDatasetError(() => parseIdx(long, "long.idx"), /longer than its header says/);
      await expectDatasetError(
        () => parseIdx(good, "d.idx", { dims: [-1, 28, 28] }),
        /dims \[2, 2\], expected \[any, 28, 28\]/,
      );
      await expectDatasetError(() => parseIdx(good, "t.idx", { type: "float32" }), /uint8.*expected float32/);
      await expectDatasetError(
        () => parseIdx(new Uint8Array([0x1f, 0x8b, 1, 2]), "g.gz"),
        /does not decompress/,
      );
    },
  );

  await t.step(
    "gzip bombs are refused by the size the IDX header declares, before inflating them",
    async () => {
      // 792 bytes declared (one 28×28 image), 32 MB of zeros behind it: the inflate stops at 792 bytes.
      const header = encodeIdx("uint8", [1, 28, 28], new Uint8Array(784)).subarray(0, 16);
      const long = new Uint8Array(32 << 20);
      long.set(header);
      await expectDatasetError(
        () => parseIdx(new Uint8Array(gzipSync(long)), "bomb-images.gz"),
        /bomb-images\.gz/,
        /decompresses to more than the 800 bytes its IDX header declares/,
      );
      // A header declaring 4e9 images of zeros: refused from the header alone.
      const huge = new Uint8Array(1 << 20);
      huge.set([0, 0, 8, 3]);
      new DataView(huge.buffer).setUint32(4, 4e9);
      new DataView(huge.buffer).setUint32(8, 28);
      new DataView(huge.buffer).setUint32(12, 28);
      await expectDatasetError(
        () => parseIdx(new Uint8Array(gzipSync(huge)), "huge.gz"),
        /huge\.gz/,
        /its IDX header declares 3,136,000,000,016 bytes once decompressed, more than the limit of 2,147,483,648/,
      );
      // A caller's tighter cap.
      const ok = new Uint8Array(gzipSync(encodeIdx("uint8", [100], new Uint8Array(100))));
      await expectDatasetError(() => parseIdx(ok, "capped.gz", { maxBytes: 50 }), /limit of 50 bytes/);
      assertEquals(parseIdx(ok, "capped.gz", { maxBytes: 108 }).dims, [100]);
    },
  );
});
