/**
 * Least privilege: no task of `deno.json` but `test` runs with `-A` (or another allow-all), and each
 * still works with the permissions it is given: `--help` of every task, `data --list`, one training
 * step (removing a killed run's temporary file first) and a sample grid from its checkpoint, each
 * through `deno task` as a user runs them.
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { ensureSharp } from "../../lib/artifacts/png.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHARP_WORKS = await ensureSharp().then(() => true, () => false);

async function task(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("task permissions", async (t) => {
  const tasks = denoJson.tasks as Record<string, string>;

  await t.step("no task but test is given every permission", () => {
    for (const [name, cmd] of Object.entries(tasks)) {
      if (name === "test" || !cmd.startsWith("deno run")) continue;
      const words = cmd.split(/\s+/);
      const broad = words.filter((w) =>
        ["-A", "--allow-all", "--allow-read", "--allow-write", "--allow-net", "--allow-env", "--allow-run"]
          .includes(w) || w === "--allow-ffi" || w === "--allow-sys"
      );
      assertEquals(broad, [], `${name}: ${cmd}`);
      assertTrue(words.includes("--no-prompt"), `${name} may prompt: ${cmd}`);
    }
  });

  await t.step("every task's --help works with its permissions", async () => {
    const runs = Object.keys(tasks).filter((n) => n !== "test" && n !== "check");
    const results = await Promise.all(runs.map((n) => task(n, ["--help"])));
    runs.forEach((n, i) => {
      assertEquals(results[i].code, 0, `${n}: ${results[i].stderr}`);
      assertTrue(results[i].stdout.includes("Usage: deno task"), `${n}: ${results[i].stdout}`);
    });
    const list = await task("data", ["--list"]);
    assertEquals(list.code, 0, list.stderr);
  });

  await t.step("train writes a run under runs/ and sample a PNG from it", async () => {
    const out = `runs/.permissions-test-${Deno.pid}`;
    try {
      // Half a checkpoint of a run killed with SIGKILL (unlocked, a minute old): removed on start,
      // with nothing but the task's own permissions.
      await Deno.mkdir(`${ROOT}${out}`, { recursive: true });
      const stale = `${ROOT}${out}/.checkpoint.safetensors.4194305.abc.tmp`;
      await Deno.writeTextFile(stale, "half");
      await Deno.utime(stale, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const tr = await task("train", [
        "--device",
        "cpu",
        "--blocks",
        "1",
        "--hidden",
        "8",
        "--fc-blocks",
        "0",
        "--batch",
        "4",
        "--steps",
        "1",
        "--train-limit",
        "8",
        "--eval-limit",
        "4",
        "--eval-batch",
        "4",
        "--out",
        out,
      ]);
      assertEquals(tr.code, 0, tr.stderr);
      assertTrue(tr.stdout.includes("Removed 1 temporary file(s) of an interrupted run"), tr.stdout);
      assertTrue(!(await Deno.stat(stale).then(() => true, () => false)), "the stale temporary file remains");
      if (!SHARP_WORKS) return;
      const s = await task("sample", ["--run", out, "--device", "cpu", "--n", "4"]);
      assertEquals(s.code, 0, s.stderr);
      assertTrue((await Deno.stat(`${ROOT}${out}/samples_T1.png`)).size > 0);
    } finally {
      await Deno.remove(`${ROOT}${out}`, { recursive: true }).catch(() => {});
    }
  });
});
