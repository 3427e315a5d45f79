/**
 * The whole pipeline end to end at the `smoke` preset: `deno task reproduce --preset smoke` in a fresh
 * process writes a valid artifact for every unit and every experiment, REPORT.md and summary.json;
 * the command line rejects bad options with the list of valid ones.
 */
import { readArtifact } from "../../lib/artifacts/artifact.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { smokeDataDir } from "../framework/test_util.ts";
import { EXPERIMENTS } from "../registry.ts";

const script = new URL("./reproduce.ts", import.meta.url).pathname;

async function run(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("reproduce: bad options are rejected with the valid ones", async () => {
  const r = await run(["--presett", "smoke"]);
  assertEquals(r.code, 2);
  assertTrue(/Valid options: .*--preset/.test(r.stderr), r.stderr);
  const s = await run(["--only", "nonsense", "--preset", "smoke"]);
  assertEquals(s.code, 2);
  assertTrue(/unknown experiment; valid:/.test(s.stderr), s.stderr);
});

Deno.test({
  name: "reproduce --preset smoke: every experiment end to end, artifacts valid against the schema",
  ignore: EXPERIMENTS.length === 0,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "resflow_smoke_" });
    try {
      const r = await run([
        "--preset",
        "smoke",
        "--results",
        dir,
        "--device",
        "cpu",
        "--data-dir",
        await smokeDataDir(),
      ]);
      assertEquals(
        r.code,
        0,
        `reproduce failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`,
      );
      const base = `${dir}/${denoJson.version}/smoke`;
      const names = [...Deno.readDirSync(base)].filter((e) => e.isFile && e.name.endsWith(".json")).map((e) =>
        e.name
      );
      for (const e of EXPERIMENTS) {
        assertTrue(names.includes(`${e.name}.json`), `artifact of ${e.name}`);
        const a = await readArtifact(`${base}/${e.name}.json`); // validates against the schema
        assertTrue(a.complete, `${e.name} complete: ${a.incompleteReason}`);
        assertTrue(a.figures.length > 0, `${e.name} has figures`);
        for (const f of a.files ?? []) await Deno.stat(`${base}/${f}`);
      }
      for (const n of names.filter((n) => n.startsWith("units."))) await readArtifact(`${base}/${n}`);
      const md = await Deno.readTextFile(`${base}/REPORT.md`);
      for (const e of EXPERIMENTS) assertTrue(md.includes(e.title), `REPORT.md has ${e.title}`);
      assertTrue(r.stdout.includes("Report:"), "terminal output ends with the report path");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
