import { assertEquals } from "../../lib/testing/asserts.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import { findFigure, finiteFigure, hasValue } from "./figures.ts";

function fig(row: string, column: string, value: number | null): Figure {
  return { table: "t", row, column, value, stderr: 0, unit: "u", published: null, scale: "s", n: 1 };
}

Deno.test("figure lookup", async (t) => {
  const figures = [fig("a", "x", null), fig("a", "x", 2), fig("b", "x", NaN), fig("c", "y", 3)];
  await t.step("findFigure gives the first match, or the first one accept takes", () => {
    assertEquals(findFigure(figures, "t", "a", "x"), figures[0]);
    assertEquals(findFigure(figures, "t", "a", "x", hasValue), figures[1]);
    assertEquals(findFigure(figures, "t", "a", "y"), undefined);
    assertEquals(findFigure(figures, "other", "c", "y"), undefined);
  });
  await t.step("finiteFigure is null for a missing, null or non-finite cell", () => {
    assertEquals(finiteFigure(figures, "t", "c", "y"), figures[3]);
    assertEquals(finiteFigure(figures, "t", "a", "x"), null, "the first match has a null value");
    assertEquals(finiteFigure(figures, "t", "b", "x"), null);
    assertEquals(finiteFigure(figures, "t", "z", "x"), null);
  });
});
