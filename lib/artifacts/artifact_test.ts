import { assertEquals, assertRejects, assertThrows, assertTrue } from "../testing/asserts.ts";
import {
  artifactPath,
  buildArtifact,
  gitCommit,
  makeFigure,
  readArtifact,
  validateArtifact,
  writeArtifact,
} from "./artifact.ts";
import { type Artifact, claimOutcome } from "./schema.ts";
import { formatError } from "./validate.ts";

async function sampleArtifact(overrides: Partial<Artifact> = {}): Promise<Artifact> {
  const a = await buildArtifact({
    suiteVersion: "0.1.0",
    experiment: "density",
    adapter: "llvmpipe (LLVM 15.0.6, 256 bits)",
    backend: "webgpu",
    preset: "smoke",
    config: { blocks: [1, 1], width: 8, steps: 3, optimizer: { lr: 1e-3 } },
    seeds: [0, 1],
    wallTimeSeconds: 1.25,
    figures: [
      makeFigure({
        table: "density_bpd",
        row: "Residual Flow",
        column: "mnist",
        value: 1.9,
        stderr: 0.01,
        unit: "bits/dim",
        scale: "smoke: 2 blocks of width 8, 3 steps, 64 test images",
        n: 64,
        published: 0.97,
      }),
      makeFigure({
        table: "estimator_bias",
        row: "truncated n=2",
        column: "bias",
        value: -0.3,
        ci: [-0.35, -0.25],
        unit: "nats",
        scale: "smoke",
        n: 100,
      }),
    ],
    files: ["density_mnist_samples.png"],
    series: [{ name: "train bits/dim", x: [1, 2, 3], y: [3, 2.5, 2.2], xLabel: "step", yLabel: "bits/dim" }],
    notes: "smoke run",
    gitCommit: "0123456789abcdef0123456789abcdef01234567",
    date: "2026-01-02T03:04:05.000Z",
  });
  return { ...a, ...overrides };
}

function errorsOf(value: unknown): string[] {
  return validateArtifact(value).map(formatError);
}

Deno.test("artifact schema", async (t) => {
  await t.step(
    "a built artifact is valid and carries the published value given, null when none is",
    async () => {
      const a = await sampleArtifact();
      assertEquals(errorsOf(a), []);
      assertEquals(a.figures[0].published, 0.97);
      assertEquals(a.figures[1].published, null);
      assertEquals(a.denoVersion, Deno.version.deno);
      assertEquals(a.incompleteReason, null);
    },
  );

  await t.step("a missing field is named", async () => {
    const { seeds: _, ...rest } = await sampleArtifact();
    assertEquals(errorsOf(rest), ["$.seeds: is required but missing"]);
  });

  await t.step("a wrong type is named with its path", async () => {
    const a = await sampleArtifact();
    const bad = { ...a, figures: [{ ...a.figures[0], value: "1.9" }, a.figures[1]] };
    assertEquals(errorsOf(bad), ["$.figures[0].value: expected number or null, got string"]);
    assertEquals(errorsOf({ ...a, seeds: [0, 1.5] }), [
      "$.seeds[1]: expected integer, got number 1.5 (not an integer)",
    ]);
    assertEquals(errorsOf({ ...a, preset: "" }), [
      '$.preset: expected a string of at least 1 characters, got ""',
    ]);
  });

  await t.step("an extra field is refused, at the top and inside a figure", async () => {
    const a = await sampleArtifact();
    assertEquals(errorsOf({ ...a, extra: 1 }), ["$.extra: is not an allowed property here"]);
    const bad = { ...a, figures: [{ ...a.figures[0], stdErr: 0.1 }, a.figures[1]] };
    assertEquals(errorsOf(bad), ["$.figures[0].stdErr: is not an allowed property here"]);
  });

  await t.step("a figure needs a standard error or a confidence interval", async () => {
    const a = await sampleArtifact();
    const { stderr: _, ...noUncertainty } = a.figures[0];
    const errs = errorsOf({ ...a, figures: [noUncertainty] });
    assertEquals(errs.length, 1);
    assertTrue(errs[0].startsWith("$.figures[0]: matches none of the 2 allowed forms"), errs[0]);
    assertTrue(errs[0].includes("$.figures[0].stderr: is required but missing"), errs[0]);
  });

  await t.step("incompleteReason is required exactly when the run is incomplete", async () => {
    const a = await sampleArtifact();
    assertEquals(errorsOf({ ...a, complete: false, incompleteReason: "NaN loss at step 3 (block 2)" }), []);
    assertEquals(errorsOf({ ...a, complete: false }).length, 1);
    assertEquals(errorsOf({ ...a, complete: true, incompleteReason: "why?" }).length, 1);
  });

  await t.step("checks beyond the schema: series lengths and interval order", async () => {
    const a = await sampleArtifact();
    assertEquals(errorsOf({ ...a, series: [{ name: "s", x: [1, 2], y: [1] }] }), [
      "$.series[0]: x has 2 values but y has 1",
    ]);
    const bad = { ...a, figures: [a.figures[0], { ...a.figures[1], ci: [1, 0] }] };
    assertEquals(errorsOf(bad), ["$.figures[1].ci: expected lo <= hi, got [1, 0]"]);
  });
});

Deno.test("writeArtifact", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "artifact_test_" });
  try {
    await t.step("writes <results>/<version>/<preset>/<name>.json and reads it back", async () => {
      const a = await sampleArtifact();
      const path = await writeArtifact(dir, "0.1.0", "smoke", "density", a);
      assertEquals(path, `${dir}/0.1.0/smoke/density.json`);
      assertEquals(await readArtifact(path), a);
    });

    await t.step("a newer suite version writes beside, never over, an older one", async () => {
      const older = `${dir}/0.1.0/smoke/density.json`;
      const before = await Deno.readTextFile(older);
      const newer = await sampleArtifact({ suiteVersion: "0.2.0", wallTimeSeconds: 9 });
      await writeArtifact(dir, "0.2.0", "smoke", "density", newer);
      assertEquals(await Deno.readTextFile(older), before);
      await assertRejects(
        () => writeArtifact(dir, "0.1.0", "smoke", "density", newer),
        /built by suite version 0\.2\.0, not 0\.1\.0/,
      );
      assertEquals(await Deno.readTextFile(older), before);
    });

    await t.step("an invalid artifact is not written, and the error lists its paths", async () => {
      const bad = { ...await sampleArtifact(), wallTimeSeconds: -1 } as Artifact;
      await assertRejects(
        () => writeArtifact(dir, "0.1.0", "quick", "density", { ...bad, preset: "quick" }),
        /Cannot write artifact .*quick\/density\.json: 1 schema error: \$\.wallTimeSeconds: expected a number >= 0/,
      );
      await assertRejects(() => Deno.stat(`${dir}/0.1.0/quick/density.json`), /No such file/);
    });

    await t.step("path segments must be plain names", () => {
      assertThrows(
        () => artifactPath(dir, "../x", "smoke", "a"),
        /suite version "\.\.\/x" is not a plain name/,
      );
      assertThrows(() => artifactPath(dir, "0.1.0", "smoke", "a/b"), /artifact name "a\/b"/);
    });

    await t.step("readArtifact names the problems of a damaged file", async () => {
      await Deno.writeTextFile(`${dir}/broken.json`, '{"schemaVersion": 1');
      await assertRejects(() => readArtifact(`${dir}/broken.json`), /Cannot read artifact .*broken\.json/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gitCommit", async (t) => {
  await t.step("gives a hex commit inside a repository and 'unknown' outside", async () => {
    const here = new URL("../..", import.meta.url).pathname;
    const isRepo = await Deno.stat(`${here}/.git`).then(() => true, () => false);
    const inside = await gitCommit(here);
    assertTrue(isRepo ? /^[0-9a-f]{40,64}$/.test(inside) : inside === "unknown", inside);
    const outside = await Deno.makeTempDir({ prefix: "no_git_" });
    try {
      assertEquals(await gitCommit(outside), "unknown");
    } finally {
      await Deno.remove(outside);
    }
  });
});

Deno.test("artifact schema: claims with a gate and a trend, and their outcome", async (t) => {
  const gate = {
    statement: "both models' test bits/dim stopped improving",
    passed: false,
    detail: "still falling",
  };
  const trend = { what: "a − b (bits/dim)", step: [10, 20], difference: [0.1, -0.05], stderr: [0.02, 0.02] };
  const claim = {
    table: "ablation_bpd",
    statement: "a <= b",
    holds: null,
    detail: "not testable",
    gate,
    trend,
  };
  await t.step("a not-testable claim with its gate and trend is valid", async () => {
    assertEquals(errorsOf(await sampleArtifact({ claims: [claim] })), []);
    assertEquals(claimOutcome(claim), "not testable");
  });
  await t.step("a claim whose gate failed cannot carry a verdict", async () => {
    assertTrue(errorsOf(await sampleArtifact({ claims: [{ ...claim, holds: true }] })).length > 0);
  });
  await t.step("a passed gate allows a verdict; no gate and null is 'not checked'", async () => {
    const passed = { ...claim, holds: false, gate: { ...gate, passed: true } };
    assertEquals(errorsOf(await sampleArtifact({ claims: [passed] })), []);
    assertEquals(claimOutcome(passed), "fails");
    assertEquals(claimOutcome({ ...passed, holds: true }), "holds");
    assertEquals(claimOutcome({ table: "t", statement: "s", holds: null, detail: "missing" }), "not checked");
  });
  await t.step("a trend with a negative standard error is rejected", async () => {
    const bad = { ...claim, trend: { ...trend, stderr: [0.02, -1] } };
    assertTrue(errorsOf(await sampleArtifact({ claims: [bad] })).length > 0);
  });
});
