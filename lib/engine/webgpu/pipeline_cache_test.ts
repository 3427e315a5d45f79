/**
 * Tests of WGSL compile-error reporting and the pipeline cache. Skipped without a WebGPU adapter.
 * @module
 */
import { assertEquals, assertRejects, assertTrue } from "../../testing/asserts.ts";
import {
  compileComputePipeline,
  dynamicUniformLayout,
  formatCompilationMessages,
  PipelineCache,
} from "./pipeline_cache.ts";

const adapter = await navigator.gpu?.requestAdapter();
const ignore = !adapter;
if (ignore) console.log("Skipping the pipeline cache tests: no WebGPU adapter");
const device = adapter ? await adapter.requestDevice() : null;

const GOOD = `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1)
fn main() {
  o[0] = 1.0;
}
`;
const BROKEN = `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1)
fn main() {
  o[0] = undefinedHelper(1.0);
}
`;

/** The message names line 4, column 10, the error, and shows the offending line with a caret. */
function checkMessage(msg: string): void {
  assertTrue(msg.includes("broken:4:10: error:"), `line and column in: ${msg}`);
  assertTrue(msg.includes("undefinedHelper"), `identifier in: ${msg}`);
  assertTrue(msg.includes("> 4 |   o[0] = undefinedHelper(1.0);"), `source line in: ${msg}`);
  assertTrue(/\| {10}\^/.test(msg), `caret under column 10 in: ${msg}`);
}

Deno.test("formatCompilationMessages numbers lines and points at the column", () => {
  const msg = formatCompilationMessages("k", "a\nbb\nccc\n", [
    {
      message: "bad thing\nmore",
      type: "error",
      lineNum: 2,
      linePos: 2,
      offset: 3,
      length: 1,
    } as GPUCompilationMessage,
  ]);
  assertEquals(msg, "k:2:2: error: bad thing\n  1 | a\n> 2 | bb\n    |  ^\n  3 | ccc\n  4 | ");
});

Deno.test(
  { name: "compileComputePipeline rejects a broken shader with line and source", ignore },
  async () => {
    let message = "";
    await assertRejects(async () => {
      try {
        await compileComputePipeline(device!, BROKEN, "broken");
      } catch (e) {
        message = (e as Error).message;
        throw e;
      }
    }, /Cannot compile WGSL kernel "broken"/);
    checkMessage(message);
    assertTrue((await compileComputePipeline(device!, GOOD, "good")) !== null);
  },
);

Deno.test({ name: "PipelineCache caches by source and reports compile errors later", ignore }, async () => {
  const cache = new PipelineCache(device!);
  const a = cache.get(GOOD, "good");
  assertTrue(cache.get(GOOD, "good again") === a, "same source, same pipeline");
  assertEquals(cache.size, 1);
  await cache.checkErrors();
  cache.get(BROKEN, "broken");
  let message = "";
  await assertRejects(async () => {
    try {
      await cache.checkErrors();
    } catch (e) {
      message = (e as Error).message;
      throw e;
    }
  }, /Cannot compile WGSL kernel "broken"/);
  checkMessage(message);
});

Deno.test("dynamicUniformLayout", async (t) => {
  await t.step("uniform 0 with a dynamic offset, then read-only and read-write storages", () => {
    const code = `struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;`;
    const e = dynamicUniformLayout(code)!;
    assertEquals(e.map((x) => [x.binding, x.buffer?.type, x.buffer?.hasDynamicOffset ?? false]), [
      [0, "uniform", true],
      [1, "storage", false],
      [2, "read-only-storage", false],
    ]);
  });
  await t.step("null for textures, gaps or a storage at binding 0", () => {
    const tex = `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var A: texture_2d<f32>;`;
    assertEquals(dynamicUniformLayout(tex), null);
    const gap = `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> a: array<f32>;`;
    assertEquals(dynamicUniformLayout(gap), null);
    assertEquals(dynamicUniformLayout(`@group(0) @binding(0) var<storage, read_write> o: array<f32>;`), null);
  });
});
