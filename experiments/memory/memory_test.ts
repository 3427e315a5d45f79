/**
 * The memory experiment at the `smoke` preset: both units run against a temporary folder, their
 * results make valid artifacts with finite figures and readable PNGs, the real (CPU) device's step
 * peaks equal the meta device's, and the claims evaluate (checked on the measured figures and on
 * synthetic cells with a known verdict).
 */
import type { Figure } from "../../lib/artifacts/schema.ts";
import { publishedValue } from "../published.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import {
  DEVICE_CHECK_TABLE,
  MEMORY_COLUMNS,
  MEMORY_TABLE,
  memoryClaims,
  memoryExperiment,
} from "./memory.ts";
import { MEMORY_METHODS } from "./memory_measure.ts";
import { unitNamed } from "../framework/experiment.ts";

Deno.test("memory experiment, smoke preset", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  const figures: Figure[] = [];
  try {
    const units = memoryExperiment.units("smoke", { dataDir: undefined }).map((u) => u.name);
    assertEquals(units, ["figure3", "device_check"]);
    for (const unit of units) {
      await t.step(`unit ${unit}: a valid artifact with finite figures and its PNGs`, async () => {
        assertTrue(unitNamed(memoryExperiment, "smoke", unit).budget.length > 0);
        const r = await unitNamed(memoryExperiment, "smoke", unit).run(ctx);
        await checkUnitResult(`memory/${unit}`, "smoke", r, ctx.outDir);
        figures.push(...r.figures);
      });
    }

    await t.step("every cell of the paper's table is measured, the published value beside it", () => {
      for (const column of [...MEMORY_COLUMNS, "relative"]) {
        for (const method of MEMORY_METHODS) {
          const f = figures.find((x) => x.table === MEMORY_TABLE && x.row === method && x.column === column);
          assertTrue(f !== undefined, `${method}/${column} missing`);
          assertEquals(f.published, publishedValue(MEMORY_TABLE, method, column));
          assertTrue(f.value! > 0, `${method}/${column}: ${f.value}`);
        }
      }
      const rel = (m: string) => figures.find((x) => x.row === m && x.column === "relative")!.value!;
      assertEquals(rel("naive_backprop"), 1);
      assertTrue(rel("both") < rel("neumann_gradient"), "both needs less than the Neumann series alone");
    });

    await t.step("the real device's step peaks equal the meta device's", () => {
      const diffs = figures.filter((f) => f.table === DEVICE_CHECK_TABLE && f.column === "difference_bytes");
      assertEquals(diffs.length, MEMORY_METHODS.length);
      for (const d of diffs) assertEquals(d.value, 0, d.row);
    });

    await t.step("the claims evaluate on the measured figures", () => {
      const claims = memoryExperiment.claims(figures);
      assertEquals(claims.length, MEMORY_COLUMNS.length + 3);
      for (const c of claims) assertTrue(typeof c.holds === "boolean", `${c.statement}: ${c.detail}`);
      assertTrue(claims[claims.length - 1].holds === true, "device check claim");
    });
  } finally {
    await removeTestContext(ctx);
  }
});

/** Figures of the memory table from a function of (method, column). */
function synthetic(value: (method: string, column: string) => number | null): Figure[] {
  return MEMORY_METHODS.flatMap((m) =>
    [...MEMORY_COLUMNS, "relative"].map((c) => ({
      table: MEMORY_TABLE,
      row: m,
      column: c,
      value: value(m, c),
      stderr: null,
      unit: "GB",
      published: null,
      scale: "test",
      n: 1,
    }))
  );
}

Deno.test("memory claims: verdicts on cells with a known answer", async (t) => {
  const paper = (m: string, c: string) => publishedValue(MEMORY_TABLE, m, c) as number;
  await t.step(
    "the paper's own numbers: ordering, the 10 % bound and the factor of ten hold",
    () => {
      const claims = memoryClaims(synthetic(paper));
      for (const c of claims.slice(0, MEMORY_COLUMNS.length)) assertEquals(c.holds, true, c.detail);
      assertEquals(claims[MEMORY_COLUMNS.length].holds, true);
      // mnist_lipswish: 192.1 / 13.6 = 14.1; cifar10_small_elu: 33.3 / 3.0 = 11.1: all >= 10.
      assertEquals(claims[MEMORY_COLUMNS.length + 1].holds, true);
      assertEquals(claims[MEMORY_COLUMNS.length + 2].holds, null, "no device check figures");
    },
  );
  await t.step("a swapped pair breaks the ordering of that column only", () => {
    const swapped = synthetic((m, c) =>
      c === "cifar10_elu" && m === "both"
        ? 12
        : c === "cifar10_elu" && m === "backward_in_forward"
        ? 6.6
        : paper(m, c)
    );
    const claims = memoryClaims(swapped);
    const i = MEMORY_COLUMNS.indexOf("cifar10_elu");
    claims.slice(0, MEMORY_COLUMNS.length).forEach((c, j) => assertEquals(c.holds, j !== i, c.statement));
  });
  await t.step("broken figures fail the bound, the factor of ten and the device check", () => {
    const bloated = memoryClaims(synthetic((m, c) => (m === "both" ? 3 * paper(m, c) : paper(m, c))));
    assertEquals(bloated[MEMORY_COLUMNS.length].holds, false, bloated[MEMORY_COLUMNS.length].detail);
    assertEquals(bloated[MEMORY_COLUMNS.length + 1].holds, false, bloated[MEMORY_COLUMNS.length + 1].detail);
    const check = (diff: number): Figure[] =>
      MEMORY_METHODS.map((m) => ({
        table: DEVICE_CHECK_TABLE,
        row: m,
        column: "difference_bytes",
        value: m === "both" ? diff : 0,
        stderr: null,
        unit: "bytes",
        published: null,
        scale: "test",
        n: 1,
      }));
    assertEquals(memoryClaims(check(0)).at(-1)!.holds, true);
    assertEquals(memoryClaims(check(8)).at(-1)!.holds, false, "the accounting differs by 8 bytes");
  });
  await t.step("missing cells give null verdicts", () => {
    const claims = memoryClaims(synthetic((m, c) => (m === "both" ? null : paper(m, c))));
    for (const c of claims) assertEquals(c.holds, null, c.statement);
  });
});
