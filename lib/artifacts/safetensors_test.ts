import { assertEquals, assertRejects, assertThrows, assertTrue } from "../testing/asserts.ts";
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from "./safetensors.ts";

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/**
 * A file laid out exactly as the reference implementation writes it, built byte by byte from the
 * format's description: u64 LE header length 72; compact JSON (65 bytes) padded with 7 spaces to a
 * multiple of 8; then six float32 values 0..5, little-endian.
 */
// deno-fmt-ignore
const FIXTURE_PADDED = new Uint8Array([
  72, 0, 0, 0, 0, 0, 0, 0,
  ...ascii('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}'),
  32, 32, 32, 32, 32, 32, 32,
  0, 0, 0, 0, /* 0.0 */ 0, 0, 128, 63, /* 1.0 */ 0, 0, 0, 64, /* 2.0 */
  0, 0, 64, 64, /* 3.0 */ 0, 0, 128, 64, /* 4.0 */ 0, 0, 160, 64, /* 5.0 */
]);

/**
 * Three dtypes and a metadata map: the reference orders tensors by descending dtype alignment
 * (F64, F32, U8) and writes `__metadata__` first; the header is 192 bytes, already a multiple of 8.
 */
// deno-fmt-ignore
const FIXTURE_MIXED = new Uint8Array([
  192, 0, 0, 0, 0, 0, 0, 0,
  ...ascii(
    '{"__metadata__":{"format":"pt"},' +
      '"b":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
      '"c":{"dtype":"F32","shape":[],"data_offsets":[8,12]},' +
      '"a":{"dtype":"U8","shape":[3],"data_offsets":[12,15]}}',
  ),
  0, 0, 0, 0, 0, 0, 4, 192, /* b = -2.5 (f64) */
  0, 0, 0, 63, /* c = 0.5 (f32) */
  7, 8, 9, /* a = [7, 8, 9] (u8) */
]);

function header(json: string, data: number[] = []): Uint8Array {
  const h = ascii(json);
  const len = [h.length, 0, 0, 0, 0, 0, 0, 0];
  return new Uint8Array([...len, ...h, ...data]);
}

const LOAD_ERROR = /^Error: Cannot load checkpoint fixture\.safetensors: /;

Deno.test("safetensors format", async (t) => {
  await t.step("reads a hand-built reference file", () => {
    const f = decodeSafetensors(FIXTURE_PADDED, "fixture.safetensors");
    const attn = f.tensors.get("attn0")!;
    assertEquals(attn.dtype, "F32");
    assertEquals(attn.shape, [1, 1, 2, 3]);
    assertEquals([...attn.data as Float32Array], [0, 1, 2, 3, 4, 5]);
    assertEquals(f.metadata, {});
  });

  await t.step("writes exactly the reference's bytes (padding, order, metadata first)", () => {
    const enc1 = encodeSafetensors({
      attn0: { shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
    });
    assertEquals([...enc1], [...FIXTURE_PADDED]);
    const enc2 = encodeSafetensors(
      {
        a: { dtype: "U8", shape: [3], data: new Uint8Array([7, 8, 9]) },
        c: { shape: [], data: new Float32Array([0.5]) },
        b: { shape: [1], data: new Float64Array([-2.5]) },
      },
      { format: "pt" },
    );
    assertEquals([...enc2], [...FIXTURE_MIXED]);
  });

  await t.step("round-trips every integer and float dtype, scalars and empty tensors", () => {
    const tensors = {
      f32: { shape: [2, 2], data: new Float32Array([1.5, -2, Math.PI, 1e-30]) },
      f64: { shape: [3], data: new Float64Array([Math.E, -0, 1e300]) },
      i32: { shape: [2], data: new Int32Array([-7, 2 ** 31 - 1]) },
      u32: { shape: [1], data: new Uint32Array([2 ** 32 - 1]) },
      i16: { shape: [1], data: new Int16Array([-300]) },
      i8: { shape: [2], data: new Int8Array([-1, 1]) },
      u8: { shape: [0, 4], data: new Uint8Array([]) },
      i64: { shape: [1], data: new BigInt64Array([-(2n ** 60n)]) },
      bf16: { dtype: "BF16" as const, shape: [1], data: new Uint16Array([0x3f80]) },
      step: { shape: [], data: new Float64Array([1234]) },
    };
    const back = decodeSafetensors(encodeSafetensors(tensors, { config: '{"width":8}' }));
    assertEquals(back.metadata, { config: '{"width":8}' });
    assertEquals(back.tensors.size, Object.keys(tensors).length);
    for (const [name, want] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      assertEquals(got.shape, want.shape, name);
      assertEquals(got.data.constructor, want.data.constructor, name);
      assertEquals(
        Array.from(got.data as Iterable<number | bigint>),
        Array.from(want.data as Iterable<number | bigint>),
        name,
      );
    }
    assertEquals(back.tensors.get("bf16")!.dtype, "BF16");
  });

  await t.step("refuses data that disagrees with its shape when saving", () => {
    assertThrows(
      () => encodeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } }),
      /Cannot save tensor w: shape \[2, 3\] of F32 needs 24 bytes, the data has 20/,
    );
  });

  await t.step("truncated files name the problem", () => {
    assertThrows(
      () => decodeSafetensors(FIXTURE_PADDED.subarray(0, 5), "fixture.safetensors"),
      /fewer than the 8-byte/,
    );
    assertThrows(
      () => decodeSafetensors(FIXTURE_PADDED.subarray(0, 40), "fixture.safetensors"),
      /header length 72 runs past the end of the file \(40 bytes; truncated\?\)/,
    );
    assertThrows(
      () => decodeSafetensors(FIXTURE_PADDED.subarray(0, FIXTURE_PADDED.length - 4), "fixture.safetensors"),
      /Cannot load checkpoint fixture\.safetensors: tensor attn0 ends at byte 24 of the data section, which has only 20 bytes/,
    );
  });

  await t.step("bad header lengths and bad headers are refused", () => {
    const huge = new Uint8Array(FIXTURE_PADDED);
    huge.set([0, 0, 0, 0, 0, 0, 0, 1], 0); // 2^56
    assertThrows(() => decodeSafetensors(huge, "fixture.safetensors"), /over the 100000000-byte limit/);
    const short = new Uint8Array(FIXTURE_PADDED);
    short[0] = 60; // cuts the JSON
    assertThrows(() => decodeSafetensors(short, "fixture.safetensors"), /the header is not valid JSON/);
    assertThrows(
      () => decodeSafetensors(header("[1,2]  "), "fixture.safetensors"),
      /does not start with "\{"/,
    );
    assertThrows(() => decodeSafetensors(header('"x"'), "fixture.safetensors"), LOAD_ERROR);
  });

  await t.step("tensor entries are checked: dtype, size, overlaps, gaps, trailing bytes", () => {
    const cases: [string, number[], RegExp][] = [
      ['{"w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0], /tensor w has dtype "F31"/],
      [
        '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}',
        [0, 0, 0, 0],
        /tensor w has 4 bytes .* needs 8/,
      ],
      ['{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', [0, 0, 0, 0], /tensor w has shape \[-1\]/],
      ['{"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}', [0], /tensor w has data_offsets \[1,0\]/],
      [
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}',
        [0, 0, 0],
        /tensor b \(bytes 1-3\) overlaps the tensor before it/,
      ],
      [
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        [0, 0],
        /tensor a starts at byte 1, leaving a gap/,
      ],
      [
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        [0, 0],
        /cover 1 bytes but the data section has 2/,
      ],
      ['{"__metadata__":{"n":1}}', [], /__metadata__\.n is 1, expected a string/],
    ];
    for (const [json, data, pattern] of cases) {
      assertThrows(() => decodeSafetensors(header(json, data), "fixture.safetensors"), LOAD_ERROR, json);
      assertThrows(() => decodeSafetensors(header(json, data), "fixture.safetensors"), pattern, json);
    }
  });
});

Deno.test("safetensors files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
  try {
    await t.step("save is atomic and load reads it back", async () => {
      const path = `${dir}/ckpt/model.safetensors`;
      await saveSafetensors(path, new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]), {
        step: "3",
      });
      const f = await loadSafetensors(path);
      assertEquals([...f.tensors.get("w")!.data as Float32Array], [1, 2]);
      assertEquals(f.metadata, { step: "3" });
      assertTrue([...Deno.readDirSync(`${dir}/ckpt`)].every((e) => !e.name.endsWith(".tmp")));
    });

    await t.step("a missing file names the path", async () => {
      await assertRejects(
        () => loadSafetensors(`${dir}/none.safetensors`),
        /Cannot load checkpoint .*none\.safetensors/,
      );
    });

    await t.step("a device or a folder is refused unread (/dev/zero would never end)", async () => {
      await assertRejects(
        () => loadSafetensors("/dev/null"),
        /Cannot load checkpoint \/dev\/null: it is not a regular file/,
      );
      await assertRejects(() => loadSafetensors(dir), /Cannot load checkpoint .*: it is a folder/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
