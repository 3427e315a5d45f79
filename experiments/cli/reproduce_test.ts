/**
 * The whole pipeline end to end at the `smoke` preset: `deno task reproduce --preset smoke` in a fresh
 * process writes a valid artifact for every unit and every experiment, REPORT.md and summary.json;
 * the command line rejects bad options with the list of valid ones.
 */
import { readArtifact } from "../../lib/artifacts/artifact.ts";
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { smokeDataDir, writeCifarBatchStubs } from "../framework/test_util.ts";
import { EXPERIMENTS } from "../registry.ts";

const script = new URL("./reproduce.ts", import.meta.url).pathname;
const config = new URL("../../deno.json", import.meta.url).pathname;

/** Runs reproduce; from another working folder `cwd`, with this clone's deno.json. */
async function run(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(cwd ? ["--config", config] : []), script, ...args],
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

Deno.test("reproduce fetches what the units read: the exact subset at smoke and quick, full CIFAR-10 under paper", async () => {
  const dir = await Deno.makeTempDir({ prefix: "resflow_need_" }); // an empty data folder
  try {
    const need = (preset: "smoke" | "quick" | "long" | "paper") =>
      [...new Set(EXPERIMENTS.flatMap((e) => e.datasets?.(preset, { dataDir: dir }) ?? []))].sort();
    assertEquals(need("smoke"), ["cifar10-exact", "mnist"]);
    assertEquals(need("quick"), ["cifar10-exact", "mnist"]);
    assertEquals(need("long"), ["cifar10-exact", "mnist"]);
    assertEquals(need("paper"), ["cifar10", "mnist"]);
    // Once the official batches are there (e.g. downloaded by an earlier run): smoke and quick still
    // train on the exact subset (the committed runs' images), long and paper on the full set.
    await writeCifarBatchStubs(dir);
    assertEquals(need("smoke"), ["cifar10-exact", "mnist"]);
    assertEquals(need("quick"), ["cifar10-exact", "mnist"]);
    assertEquals(need("long"), ["cifar10", "mnist"]);
    assertEquals(need("paper"), ["cifar10", "mnist"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce --no-download in a clone without the shared subset names the command", async () => {
  // A working folder with no ../shared/data and an empty data folder: a user's fresh clone.
  const dir = await Deno.makeTempDir({ prefix: "resflow_nodl_" });
  try {
    const r = await run(
      ["--preset", "smoke", "--only", "samples", "--device", "cpu", "--no-download", "--results", "res"],
      dir,
    );
    const fetch = "fetch it with `deno task data cifar10-exact`";
    assertTrue(
      r.stdout.includes(
        `Data: CIFAR-10 exact subset: not in data/cifar10-exact and downloading is off; ${fetch}`,
      ),
      r.stdout + r.stderr,
    );
    const unit = await readArtifact(`${dir}/res/${denoJson.version}/smoke/units.samples.cifar10.json`);
    assertEquals(unit.complete, false);
    assertTrue(unit.incompleteReason!.includes(fetch), String(unit.incompleteReason));
    assertTrue(!unit.incompleteReason!.includes("\n"), "one line");
    // Nothing was fetched into the data folder.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["res"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
