/** The shared claim guard: a cell with non-finite per-example values left out fails the claim reading it. */
import { makeFigure } from "../published.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { failOnNonFinite, nonFiniteCells } from "./claim_guards.ts";
import { formatOurs } from "./report.ts";

const cell = (nonFinite?: number) =>
  makeFigure({
    table: "t",
    row: "r",
    column: "c",
    value: 1.25,
    stderr: 0.01,
    unit: "bits/dim",
    scale: "test",
    n: 10,
    published: null,
    ...(nonFinite === undefined ? {} : { nonFinite }),
  });

Deno.test("claim guards: non-finite per-example values", async (t) => {
  const claim = { table: "t", statement: "s", holds: true, detail: "1.25 < 2" };
  await t.step("no count or a zero count leaves the verdict alone", () => {
    assertEquals(failOnNonFinite(claim, [cell(), cell(0), undefined, null]), claim);
    assertEquals(nonFiniteCells([cell(0)]), []);
  });
  await t.step("any count fails the claim, naming the cell and the count", () => {
    const r = failOnNonFinite(claim, [cell(0), cell(3)]);
    assertEquals(r.holds, false);
    assertEquals(r.detail, "fails: r/c: 3 non-finite per-example values left out. 1.25 < 2");
    assertEquals(failOnNonFinite({ ...claim, holds: null }, [cell(1)]).holds, false);
  });
  await t.step("the report shows the count beside the value", () => {
    assertEquals(formatOurs(cell(0)), "1.250 ± 0.010");
    assertEquals(formatOurs(cell(4)), "1.250 ± 0.010 (4 non-finite left out)");
    assertTrue(formatOurs({ ...cell(2), value: null }).includes("2 non-finite"));
  });
});
