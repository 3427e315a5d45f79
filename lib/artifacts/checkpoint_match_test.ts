import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { assertCheckpointMatches, diffCheckpoint, isExactMatch } from "./checkpoint_match.ts";

const EXPECTED = { "block0.w": [4, 3], "block0.b": [4], "block1.u": [16], "step": [] };

Deno.test("checkpoint matching", async (t) => {
  await t.step("an exact match passes", () => {
    const loaded = new Map(Object.entries(EXPECTED).map(([k, shape]) => [k, { shape }]));
    assertEquals(isExactMatch(diffCheckpoint(EXPECTED, loaded)), true);
    assertCheckpointMatches("model.safetensors", EXPECTED, loaded);
  });

  await t.step("every mismatch is listed, sorted, in one error", () => {
    const loaded = {
      "block0.w": { shape: [3, 4] },
      "step": { shape: [1] },
      "block2.w": { shape: [2] },
      "block0.bias": { shape: [4] },
    };
    assertEquals(diffCheckpoint(EXPECTED, loaded), {
      missing: ["block0.b", "block1.u"],
      unexpected: ["block0.bias", "block2.w"],
      wrongShape: [
        { name: "block0.w", expected: [4, 3], found: [3, 4] },
        { name: "step", expected: [], found: [1] },
      ],
    });
    assertThrows(
      () => assertCheckpointMatches("run/ckpt.safetensors", EXPECTED, loaded),
      new RegExp(
        "^Error: Cannot load checkpoint run/ckpt\\.safetensors: 2 missing tensors \\(block0\\.b, block1\\.u\\); " +
          "2 unexpected tensors \\(block0\\.bias, block2\\.w\\); 2 tensors with the wrong shape " +
          "\\(block0\\.w: expected \\[4, 3\\], found \\[3, 4\\]; step: expected \\[\\], found \\[1\\]\\)$",
      ),
    );
  });

  await t.step("extra tensors can be allowed", () => {
    const loaded = {
      ...Object.fromEntries(Object.entries(EXPECTED).map(([k, s]) => [k, { shape: s }])),
      ema: { shape: [1] },
    };
    assertThrows(() => assertCheckpointMatches("c", EXPECTED, loaded), /1 unexpected tensor \(ema\)$/);
    assertCheckpointMatches("c", EXPECTED, loaded, { allowUnexpected: true });
  });
});
