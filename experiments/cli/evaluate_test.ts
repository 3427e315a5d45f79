/**
 * The commands on the authors' checkpoints: `deno task convert` (both formats; the converted file holds
 * exactly the file's tensors), `deno task evaluate` (both .pth files and the converted file give the same
 * per-image values; --json written with provenance) and `deno task sample` (same PNG from the .pth and
 * the converted file), plus their one-line errors. Small --limit and --n keep it to seconds.
 */
import { assertEquals, assertTrue } from "../../lib/testing/asserts.ts";
import { loadSafetensors } from "../../lib/artifacts/safetensors.ts";
import { readOfficialCheckpoint } from "../../lib/official/model_file.ts";
import { tensorNumbers } from "../../lib/official/load.ts";
import { officialNames } from "../../lib/official/names.ts";
import { buildOfficialModel } from "../../lib/official/load.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import { main as convertMain } from "./convert.ts";
import { type EvaluateReport, main as evaluateMain } from "./evaluate.ts";
import { main as sampleMain } from "./sample.ts";
import { reportFailure } from "../../lib/cli/main.ts";

const DIR = new URL("../../testdata/checkpoints/", import.meta.url).pathname;
const FILES = ["checkpoint_zip.pth", "checkpoint_legacy.pth"];

/** Runs `fn` with console output captured; returns its result and the text. */
async function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; out: string; err: string }> {
  const log = console.log;
  const error = console.error;
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  try {
    return { value: await fn(), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Runs a command's `main` as `runMain` does: a thrown failure becomes its one line and exit status. */
async function asCommand(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    return reportFailure("deno task", e);
  }
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a.length === b.length && Array.from(a).every((v, i) => v === b[i]);
}

Deno.test("commands on the authors' checkpoints: convert, evaluate, sample", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "resflow-official-" });
  try {
    await t.step("convert: both formats, every tensor carried over exactly", async () => {
      for (const f of FILES) {
        const out = `${dir}/${f}.safetensors`;
        const r = await quiet(() => convertMain([`${DIR}${f}`, out]));
        assertEquals(r.value, 0, r.err);
        assertTrue(/^Wrote .*89 parameters and their EMA, mnist model/.test(r.out), r.out);
        const file = await loadSafetensors(out);
        const { checkpoint } = await readOfficialCheckpoint(`${DIR}${f}`);
        const { model } = buildOfficialModel(checkpoint, {
          device: await createDevice("cpu"),
          weights: "raw",
        });
        let compared = 0;
        for (const [name, role] of officialNames(model)) {
          if (role.role === "parameter") {
            assertTrue(
              same(
                file.tensors.get(`param.${role.ours}`)!.data as Float32Array,
                tensorNumbers(checkpoint.stateDict.get(name)!),
              ),
              name,
            );
            assertTrue(
              same(
                file.tensors.get(`ema.${role.ours}`)!.data as Float32Array,
                tensorNumbers(checkpoint.shadow!.get(name)!),
              ),
              name,
            );
            compared += 2;
          } else if (role.role === "buffer") {
            assertTrue(
              same(
                file.tensors.get(`buffer.${role.ours}`)!.data as Float32Array,
                tensorNumbers(checkpoint.stateDict.get(name)!),
              ),
              name,
            );
            compared++;
          }
        }
        model.dispose();
        assertEquals(compared, 89 * 2 + 48);
      }
    });
    await t.step("evaluate: .pth files and converted files give the same per-image values", async () => {
      const reports: EvaluateReport[] = [];
      for (const f of [...FILES.map((f) => `${DIR}${f}`), `${dir}/${FILES[0]}.safetensors`]) {
        const json = `${dir}/eval_${reports.length}.json`;
        const r = await quiet(() =>
          evaluateMain(["--checkpoint", f, "--limit", "3", "--device", "cpu", "--seed", "5", "--json", json])
        );
        assertEquals(r.value, 0, r.err);
        assertTrue(
          /^Test bits\/dim of .* on mnist \(3 images × 1 repeats, ema weights\): \d\.\d{4} ± \d\.\d{4}/.test(
            r.out,
          ),
          r.out,
        );
        reports.push(JSON.parse(await Deno.readTextFile(json)) as EvaluateReport);
      }
      for (const rep of reports) {
        assertEquals(rep.n, 3);
        assertEquals(rep.perImage, reports[0].perImage);
        assertTrue(rep.perImage.every((v) => v !== null && v > 0.5 && v < 6), `${rep.perImage}`);
        assertEquals(rep.provenance.weights, "ema");
      }
      assertEquals(reports.map((r) => r.provenance.format), ["zip", "legacy", "safetensors"]);
      assertEquals((reports[0].provenance.args as Record<string, unknown>).nblocks, "2-2");
    });
    await t.step("sample: the same images from the .pth and from the converted file", async () => {
      const pngs: Uint8Array[] = [];
      for (const f of [`${DIR}${FILES[1]}`, `${dir}/${FILES[1]}.safetensors`]) {
        const out = `${dir}/samples_${pngs.length}.png`;
        const r = await quiet(() =>
          sampleMain(["--checkpoint", f, "--n", "4", "--device", "cpu", "--out", out])
        );
        assertEquals(r.value, 0, r.err);
        pngs.push(await Deno.readFile(out));
      }
      assertTrue(same(pngs[0], pngs[1]), "identical PNG bytes");
    });
    await t.step("errors are one line naming the problem", async () => {
      const bad = await quiet(() =>
        asCommand(() => evaluateMain(["--checkpoint", `${DIR}${FILES[0]}`, "--weights", "best"]))
      );
      assertEquals(bad.value, 1);
      assertEquals(bad.err.trim(), 'Cannot use --weights "best": expected ema or raw');
      const missing = await quiet(() =>
        asCommand(() => convertMain([`${dir}/nope.pth`, `${dir}/x.safetensors`]))
      );
      assertEquals(missing.value, 1);
      assertTrue(/^Cannot read .*nope\.pth: no such file/.test(missing.err), missing.err);
      const name = await quiet(() => asCommand(() => convertMain([`${DIR}${FILES[0]}`, `${dir}/x.pth`])));
      assertEquals(name.value, 2);
      assertTrue(/expected an output name ending in \.safetensors/.test(name.err), name.err);
      const data = await quiet(() =>
        asCommand(() =>
          evaluateMain([
            "--checkpoint",
            `${DIR}${FILES[0]}`,
            "--dataset",
            "cifar10-exact",
            "--limit",
            "1",
            "--device",
            "cpu",
            "--data-dir",
            dir,
          ])
        )
      );
      assertEquals(data.value, 1);
      assertTrue(/^Cannot /.test(data.err), data.err);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
