import { assertEquals, assertThrows, assertTrue } from "../lib/testing/asserts.ts";
import {
  formatPublished,
  makeFigure,
  PUBLISHED,
  PUBLISHED_TABLE_NAMES,
  publishedValue,
} from "./published.ts";

const TESTDATA_COPY = new URL("../testdata/paper_tables.json", import.meta.url);
const SHARED_ORIGINAL = new URL("../../shared/paper/tables.json", import.meta.url);

async function readJsonIfPresent(url: URL): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(url));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

Deno.test("published tables", async (t) => {
  await t.step(
    "the module equals testdata/paper_tables.json (every table, caption, source, note)",
    async () => {
      const copy = await readJsonIfPresent(TESTDATA_COPY);
      assertTrue(copy !== undefined, "testdata/paper_tables.json is part of the repository");
      assertEquals(JSON.parse(JSON.stringify(PUBLISHED)), copy);
    },
  );

  const original = await readJsonIfPresent(SHARED_ORIGINAL);
  await t.step({
    name: "the module equals ../shared/paper/tables.json",
    ignore: original === undefined,
    fn: () => assertEquals(JSON.parse(JSON.stringify(PUBLISHED)), original),
  });

  await t.step("every row has one cell per column", () => {
    for (const name of PUBLISHED_TABLE_NAMES) {
      const table = PUBLISHED[name];
      for (const [row, cells] of Object.entries(table.rows)) {
        assertEquals(cells.length, table.columns.length, `${name} / ${row}`);
      }
    }
  });

  await t.step("publishedValue reads numbers, ranges and missing cells", () => {
    assertEquals(publishedValue("density_bpd", "Residual Flow", "cifar10"), 3.29);
    assertEquals(publishedValue("memory_gb", "both", "relative"), 0.071);
    assertEquals(publishedValue("ablation_bpd", "i-ResNet + ELU", "cifar10"), [3.66, 4.78]);
    assertEquals(publishedValue("density_bpd", "FFJORD", "imagenet32"), null);
    assertEquals(publishedValue("hybrid", "Residual", "svhn_l1_acc"), 0.5852);
  });

  await t.step("publishedValue names the valid choices on a typo", () => {
    assertThrows(
      () => publishedValue("density", "Glow", "mnist"),
      /Cannot find published table "density".*density_bpd/,
    );
    assertThrows(() => publishedValue("density_bpd", "glow", "mnist"), /Cannot find row "glow".*"Glow"/);
    assertThrows(
      () => publishedValue("density_bpd", "Glow", "MNIST"),
      /Cannot find column "MNIST".*mnist, cifar10/,
    );
  });

  await t.step("formatPublished", () => {
    assertEquals(formatPublished(3.29), "3.29");
    assertEquals(formatPublished(1.0, 2), "1.00");
    assertEquals(formatPublished([3.66, 4.78]), "3.66–4.78");
    assertEquals(formatPublished(null), "—");
  });
  await t.step("makeFigure looks a paper table's cell up and refuses a misspelt one", () => {
    const cell = { table: "density_bpd", row: "Residual Flow", column: "mnist", value: 1, stderr: 0 };
    assertEquals(makeFigure({ ...cell, unit: "bits/dim", scale: "x", n: 1 }).published, 0.97);
    assertEquals(makeFigure({ ...cell, table: "own", unit: "bits/dim", scale: "x", n: 1 }).published, null);
    assertThrows(
      () =>
        makeFigure({
          table: "density_bpd",
          row: "ResFlow",
          column: "mnist",
          value: 1,
          stderr: 0,
          unit: "bits/dim",
          scale: "x",
          n: 1,
        }),
      /Cannot find row "ResFlow"/,
    );
  });
});
