/**
 * The runner and report on a toy experiment whose figures are computed (means of seeded draws):
 * unit artifacts validate, shards partition the units, `--resume` skips finished units, a failing unit
 * is recorded as incomplete without stopping the others, and the report shows every cell.
 */
import { readArtifact } from "../../lib/artifacts/artifact.ts";
import { makeFigure } from "../published.ts";
import type { Figure } from "../../lib/artifacts/schema.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { Rng } from "../../lib/engine/random.ts";
import { assertEquals, assertRejects, assertTrue } from "../../lib/testing/asserts.ts";
import type { Experiment, UnitContext, UnitResult } from "./experiment.ts";
import { writeReport } from "./report.ts";
import { mergeExperiments, planUnits, presetDir, type RunSettings, runUnits } from "./runner.ts";

let runs = 0;

function runToy(unit: string, ctx: UnitContext): Promise<UnitResult> {
  runs++;
  if (unit === "broken") return Promise.reject(new Error("injected failure"));
  const r = new Rng(ctx.seed + unit.charCodeAt(0));
  const xs = r.fill(1000, (q) => q.uniform());
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return Promise.resolve({
    figures: [
      makeFigure({
        table: "toy_means",
        row: "uniform",
        column: unit,
        value: mean,
        stderr: sd / Math.sqrt(1000),
        unit: "value",
        scale: "1000 draws",
        n: 1000,
        published: 0.5,
      }),
    ],
    config: { draws: 1000 },
    seeds: [ctx.seed],
    backend: ctx.device.name,
    adapter: ctx.device.backend.description,
    complete: true,
  });
}

const toy: Experiment = {
  name: "toy",
  title: "Toy: means of uniform draws",
  claimsVersion: 1,
  units: (preset) =>
    (preset === "smoke" ? ["a", "b", "c", "broken"] : ["a"]).map((name) => ({
      name,
      budget: `unit ${name}: 1000 draws`,
      run: (ctx: UnitContext) => runToy(name, ctx),
    })),
  claims: (figures: readonly Figure[]) => [{
    table: "toy_means",
    statement: "every mean is within 4 standard errors of 1/2",
    holds: figures.length ? figures.every((f) => Math.abs((f.value ?? 0) - 0.5) < 4 * (f.stderr ?? 0)) : null,
    detail: figures.map((f) => `${f.column}: ${f.value?.toFixed(3)}`).join(", "),
  }],
};

Deno.test("runner: units, shards, resume, failures, merge and report", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "resflow_runner_" });
  const device = await createDevice("cpu");
  const lines: string[] = [];
  const base: RunSettings = {
    resultsDir: dir,
    suiteVersion: "0.0.1-test",
    preset: "smoke",
    seed: 3,
    dataDir: undefined,
    resume: false,
    shard: null,
    device,
    log: (l) => lines.push(l),
  };
  try {
    await t.step("shards partition the units", () => {
      const s1 = planUnits([toy], { ...base, shard: [0, 2] }).map((p) => p.unit.name);
      const s2 = planUnits([toy], { ...base, shard: [1, 2] }).map((p) => p.unit.name);
      assertEquals([...s1, ...s2].sort(), ["a", "b", "broken", "c"]);
      assertEquals(s1.filter((u) => s2.includes(u)), []);
    });
    await t.step("every unit writes a valid artifact; a failing unit is recorded as incomplete", async () => {
      const paths = await runUnits(planUnits([toy], base), base);
      assertEquals(paths.length, 4);
      const broken = await readArtifact(`${presetDir(base)}/units.toy.broken.json`);
      assertTrue(!broken.complete && /injected failure/.test(broken.incompleteReason ?? ""));
      assertTrue((await readArtifact(`${presetDir(base)}/units.toy.a.json`)).complete);
    });
    await t.step("--resume skips finished units and reruns the incomplete one", async () => {
      runs = 0;
      await runUnits(planUnits([toy], base), { ...base, resume: true });
      assertEquals(runs, 1);
    });
    await t.step("merge and report: every cell beside the published value, claims checked", async () => {
      const merged = await mergeExperiments([toy], { ...base, adapter: "test", backend: "cpu" });
      const a = merged[0].artifact!;
      assertEquals(a.figures.length, 3);
      assertTrue(!a.complete, "the broken unit makes the experiment incomplete");
      assertEquals(merged[0].claims[0].holds, true);
      const unit = await readArtifact(`${presetDir(base)}/units.toy.a.json`);
      assertEquals(a.gitCommit, unit.gitCommit, "the merged artifact keeps its units' commit");
      const text = await writeReport(presetDir(base), merged, {
        suiteVersion: "0.0.1-test",
        preset: "smoke",
        date: "now",
        commit: "abc",
        adapter: "test",
      });
      const md = await Deno.readTextFile(`${presetDir(base)}/REPORT.md`);
      for (const col of ["a", "b", "c"]) assertTrue(md.includes(`| uniform | ${col} |`), `report row ${col}`);
      assertTrue(md.includes("0.500"), "published value shown");
      assertTrue(text.includes("claim: every mean"), "terminal shows claims");
      const summary = JSON.parse(await Deno.readTextFile(`${presetDir(base)}/summary.json`));
      assertEquals(summary.experiments.toy.cells.length, 3);
      assertTrue(
        md.includes(`computed at commit ${a.gitCommit.slice(0, 7)}`),
        "the section names its commit",
      );
      assertTrue(md.includes("not all by one run: toy at"), "a report at another commit says so");
      await writeReport(presetDir(base), merged, {
        suiteVersion: "0.0.1-test",
        preset: "smoke",
        date: "now",
        commit: a.gitCommit,
        adapter: "test",
      });
      const same = await Deno.readTextFile(`${presetDir(base)}/REPORT.md`);
      assertTrue(
        same.includes("Every number below was computed by this run"),
        "one run at the report's commit",
      );
    });
    await t.step(
      "a unit of another claims version: claims not checked, the unit named; --resume reruns it",
      async () => {
        const path = `${presetDir(base)}/units.toy.c.json`;
        const good = await Deno.readTextFile(path);
        const { claimsVersion: _, ...old } = JSON.parse(good);
        for (const stale of [old, { ...old, claimsVersion: 7 }]) {
          await Deno.writeTextFile(path, JSON.stringify(stale));
          const [m] = await mergeExperiments([toy], { ...base, adapter: "test", backend: "cpu" });
          assertEquals(m.claims.length, 1);
          assertEquals(m.claims[0].holds, null, "no verdict from current claims on older figures");
          assertTrue(/not checked: units c \((no claims version|version 7)\)/.test(m.claims[0].detail));
          assertTrue(/--only toy/.test(m.claims[0].detail), m.claims[0].detail);
          assertTrue(
            /units computed by code of another claims version \(this code: 1\): c /.test(
              m.artifact!.incompleteReason ?? "",
            ),
          );
          assertEquals(m.artifact!.claims, m.claims, "the verdicts are kept in the merged artifact");
          assertEquals(m.artifact!.claimsVersion, undefined);
        }
        runs = 0;
        await runUnits(planUnits([toy], base), { ...base, resume: true });
        assertEquals(runs, 2, "the stale unit and the broken one run again");
        assertEquals((await readArtifact(path)).claimsVersion, toy.claimsVersion);
        const [m] = await mergeExperiments([toy], { ...base, adapter: "test", backend: "cpu" });
        assertEquals(m.claims[0].holds, true);
        assertEquals(m.artifact!.claimsVersion, toy.claimsVersion);
      },
    );
    await t.step(
      "a corrupt or invalid unit artifact is an error naming the file, not 'not run yet'",
      async () => {
        const path = `${presetDir(base)}/units.toy.b.json`;
        const good = await Deno.readTextFile(path);
        for (
          const bad of ['{"schemaVersion": 1, "figu', JSON.stringify({ ...JSON.parse(good), figures: 3 })]
        ) {
          await Deno.writeTextFile(path, bad);
          await assertRejects(
            () => mergeExperiments([toy], { ...base, adapter: "test", backend: "cpu" }),
            /Cannot read artifact .*units\.toy\.b\.json: .*delete the file to run its unit again/,
          );
          await assertRejects(
            () => runUnits(planUnits([toy], base), { ...base, resume: true }),
            /Cannot read artifact .*units\.toy\.b\.json/,
          );
        }
        await Deno.remove(path);
        const merged = await mergeExperiments([toy], { ...base, adapter: "test", backend: "cpu" });
        assertEquals(merged[0].missingUnits, ["b"], "a missing file is still a unit not run yet");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
