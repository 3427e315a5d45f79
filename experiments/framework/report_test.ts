/** The report's claim table: each of the four outcomes in words, a gated claim's detail kept. */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { buildArtifact } from "../../lib/artifacts/artifact.ts";
import type { Experiment } from "./experiment.ts";
import { VERDICT_WORDS, writeReport } from "./report.ts";
import { gated } from "./claim_gates.ts";

Deno.test("report: holds, fails, not testable and not checked are told apart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "resflow-report-test-" });
  try {
    const claim = (statement: string, holds: boolean | null) => ({
      table: "t",
      statement,
      holds,
      detail: "d",
    });
    const claims = [
      claim("A", true),
      claim("B", false),
      gated(claim("C", true), { statement: "λ = 0 accuracy >= 0.97", passed: false, detail: "0.87" }),
      claim("D", null),
    ];
    const artifact = await buildArtifact({
      suiteVersion: "0.1.0",
      experiment: "x",
      adapter: "test",
      backend: "cpu",
      preset: "smoke",
      config: {},
      seeds: [1],
      wallTimeSeconds: 1,
      figures: [],
      gitCommit: "0123456789abcdef0123456789abcdef01234567",
      date: "2026-01-02T03:04:05.000Z",
      claims,
    });
    const experiment = { name: "x", title: "X" } as unknown as Experiment;
    await writeReport(dir, [{ experiment, artifact, missingUnits: [], claims }], {
      suiteVersion: "0.1.0",
      preset: "smoke",
      date: "now",
      commit: artifact.gitCommit,
      adapter: "test",
    });
    const md = await Deno.readTextFile(`${dir}/REPORT.md`);
    const rows = md.split("\n").filter((l) => /^\| [ABCD] \|/.test(l)).map((l) => l.split(" | ")[1]);
    assertEquals(rows, ["yes", "no", VERDICT_WORDS["not testable"], "not checked"]);
    assertTrue(
      md.includes(
        "| C | not testable at this scale | gate: λ = 0 accuracy >= 0.97 — not met (measured: 0.87)",
      ),
      md,
    );
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
    assertEquals(summary.experiments.x.claims[2].gate.passed, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
