/**
 * The hybrid experiment at the `smoke` preset, run by the real runner into a temporary results folder
 * (an empty data folder, so SVHN is not planned): every unit's artifact validates and is complete, its
 * figures are finite, the summary draws readable PNGs, and the claims evaluate. Also: the accuracy's
 * binomial interval, unit names, the SVHN check on a folder with and without its files, and the claims'
 * verdicts on cells with a known answer (the paper's own numbers; a swapped pair; missing cells).
 */
import { readArtifact } from "../../lib/artifacts/artifact.ts";
import { pngInfo } from "../../lib/artifacts/png.ts";
import { PUBLISHED, publishedValue } from "../published.ts";
import type { Figure, Series } from "../../lib/artifacts/schema.ts";
import { createDevice } from "../../lib/engine/devices.ts";
import {
  assertClose,
  assertEquals,
  assertRejects,
  assertThrows,
  assertTrue,
  type Tolerance,
} from "../../lib/testing/asserts.ts";
import { mergeExperiments, planUnits, presetDir, type RunSettings, runUnits } from "../framework/runner.ts";
import { hybridExperiment } from "./hybrid.ts";
import { ACCURACY_DROP_TABLE, ACCURACY_GATE, hybridClaims } from "./hybrid_claims.ts";
import { pairedDifference } from "../framework/claim_gates.ts";
import { claimOutcome } from "../../lib/artifacts/schema.ts";
import {
  bpdCurveSeriesName,
  HYBRID_DATASETS,
  HYBRID_LAMBDAS,
  HYBRID_ROWS,
  HYBRID_TABLE,
  hybridColumn,
  type HybridMeasure,
  parseTrainingUnit,
  perImageAtStepSeriesName,
  perImageSeriesName,
  SUMMARY_UNIT,
  svhnAvailability,
  trainingUnitName,
  trainingUnits,
} from "./hybrid_plan.ts";
import { accuracyOf, checkpointPath } from "./hybrid_train.ts";
import { unitNamed, type UnitResult } from "../framework/experiment.ts";
import { checkUnitResult, removeTestContext, testContext } from "../framework/test_util.ts";
import { plotFiles } from "./hybrid_plots.ts";

/** Printed interval bounds are compared to 1e-4. */
const WILSON_TOL: Tolerance = { atol: 1e-4, rtol: 0 };

const MNIST = HYBRID_DATASETS.find((d) => d.key === "mnist")!;

Deno.test("hybrid experiment, smoke preset through the runner", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "resflow-hybrid-test-" });
  const dataDir = `${root}/data`;
  await Deno.mkdir(dataDir);
  const settings: RunSettings = {
    resultsDir: `${root}/results`,
    suiteVersion: "0.0.0-test",
    preset: "smoke",
    seed: 1,
    dataDir,
    resume: false,
    shard: null,
    device: await createDevice("cpu"),
    log: () => {},
  };
  try {
    const units = hybridExperiment.units("smoke", { dataDir }).map((u) => u.name);
    await t.step("units: the nine MNIST trainings in table order, then the summary", () => {
      assertEquals(units, [...trainingUnits(MNIST).map(trainingUnitName), SUMMARY_UNIT]);
      assertEquals(units[0], "mnist-coupling-l0");
      assertEquals(units[8], "mnist-residual-l1");
      for (const u of units) assertTrue(unitNamed(hybridExperiment, "smoke", u).budget.length > 0, u);
    });

    await runUnits(planUnits([hybridExperiment], settings), settings);
    const dir = presetDir(settings);
    const all: Figure[] = [];
    await t.step("every unit artifact is complete with finite figures", async () => {
      for (const u of units) {
        const a = await readArtifact(`${dir}/units.hybrid.${u}.json`);
        assertTrue(a.complete, `${u}: ${a.incompleteReason}`);
        assertTrue(a.figures.length > 0, `${u}: no figures`);
        for (const f of a.figures) {
          assertTrue(typeof f.value === "number" && Number.isFinite(f.value), `${u}: ${f.column} ${f.value}`);
          assertTrue(
            typeof f.stderr === "number" && Number.isFinite(f.stderr) && f.stderr >= 0,
            `${u}: stderr`,
          );
          assertEquals(f.n > 0, true);
        }
        for (const s of a.series ?? []) assertTrue(s.y.every(Number.isFinite), `${u}: series ${s.name}`);
        if (u !== SUMMARY_UNIT) {
          const acc = a.figures.find((f) => f.column.endsWith("_acc"))!;
          const flags = a.series!.find((s) => s.name === perImageSeriesName(acc.column, acc.row))!;
          assertEquals(flags.y.length, acc.n, `${u}: one correct/incorrect flag per test image`);
          assertEquals(
            flags.y.reduce((x, y) => x + y, 0) / acc.n,
            acc.value,
            `${u}: flags make the accuracy`,
          );
          const bpd = a.figures.find((f) => f.column.endsWith("_bpd"));
          const curve = a.series!.find((s) => s.name.startsWith("test bits/dim "));
          if (!bpd) assertEquals(curve, undefined, `${u}: λ = 0 runs make no bits/dim evaluations`);
          else {
            // Smoke: 3 steps, an evaluation after each; the last is the final evaluation itself.
            const c = a.series!.find((s) => s.name === bpdCurveSeriesName(bpd.column, bpd.row))!;
            assertEquals(c.x, [1, 2, 3], `${u}: periodic evaluation steps`);
            assertEquals(c.y[2], bpd.value, `${u}: the last periodic evaluation is the table's cell`);
            for (const step of c.x) {
              const per = a.series!.find((s) =>
                s.name === perImageAtStepSeriesName(bpd.column, bpd.row, step)
              );
              assertEquals(per?.y.length, bpd.n, `${u}: per-image values at step ${step}`);
            }
          }
        }
        all.push(...a.figures);
      }
    });

    await t.step(
      "each training unit fills its cells of the paper's table, the published value beside",
      () => {
        for (const u of trainingUnits(MNIST)) {
          const cols = u.lambda.key === "l0" ? ["acc"] : ["bpd", "acc"];
          for (const c of cols) {
            const column = `mnist_${u.lambda.key}_${c}`;
            const f = all.find((x) => x.table === HYBRID_TABLE && x.row === u.row.row && x.column === column);
            assertTrue(f !== undefined, `${u.row.row}/${column} missing`);
            assertEquals(f.published, publishedValue(HYBRID_TABLE, u.row.row, column));
            if (c === "acc") {
              assertTrue(f.value! >= 0 && f.value! <= 1 && f.ci !== undefined, `${column}: ${f.value}`);
              assertEquals(f.n, 16);
            } else assertTrue(f.value! > 0, `${column}: ${f.value}`);
          }
        }
        const drops = all.filter((f) => f.table === ACCURACY_DROP_TABLE);
        assertEquals(drops.length, HYBRID_ROWS.length);
      },
    );

    await t.step("the summary's PNGs are readable", async () => {
      const a = await readArtifact(`${dir}/units.hybrid.${SUMMARY_UNIT}.json`);
      const files = plotFiles(MNIST);
      assertEquals([...(a.files ?? [])].sort(), [files.scatter, files.error].sort());
      for (const f of a.files!) {
        const info = await pngInfo(await Deno.readFile(`${dir}/${f}`));
        assertTrue(info.width > 0 && info.height > 0, `${f} is not a readable PNG`);
      }
      assertTrue(a.notes!.includes("SVHN was not run"), a.notes ?? "");
    });

    await t.step(
      "merged: every MNIST claim not testable at smoke (gates), SVHN unchecked",
      async () => {
        const [m] = await mergeExperiments([hybridExperiment], {
          ...settings,
          adapter: "test",
          backend: "cpu",
        });
        assertTrue(m.artifact !== null && m.artifact.complete, m.artifact?.incompleteReason ?? "no artifact");
        assertEquals(m.claims.length, 5);
        for (const c of m.claims) {
          if (c.statement.includes("SVHN")) assertEquals(c.holds, null, c.statement);
          else if (c.statement.includes("accuracy")) {
            assertEquals(claimOutcome(c), "not testable", c.detail);
            assertTrue(
              c.detail.startsWith("gate: Residual λ = 0 test accuracy"),
              c.detail,
            );
          } else {
            // 3 periodic evaluations: too few for the bits/dim gate (it needs 4).
            assertEquals(claimOutcome(c), "not testable", c.detail);
            assertTrue(c.detail.includes("3 evaluations of the difference, need 4"), c.detail);
          }
        }
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("hybrid: a unit resumes from its checkpoint, and refuses an unreadable one", async (t) => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  const logs: string[] = [];
  const logged = { ...ctx, log: (m: string) => logs.push(m) };
  const unit = "mnist-coupling-l1d";
  const values = (r: UnitResult) => r.figures.map((f) => [f.column, f.value, f.stderr]);
  try {
    const fresh = await unitNamed(hybridExperiment, "smoke", unit).run(logged);
    await checkUnitResult(`hybrid/${unit}`, "smoke", fresh, ctx.outDir);
    await t.step("resumed at the last step: no training, the same figures", async () => {
      const bars: [string, number][] = [];
      const again = await unitNamed(hybridExperiment, "smoke", unit).run({
        ...logged,
        resume: true,
        progress: (label, total, u) => (bars.push([label, total]), ctx.progress(label, total, u)),
      });
      assertEquals(values(again), values(fresh));
      const train = bars.find(([label]) => label.startsWith("train"));
      assertEquals(train?.[1], 0, "the training bar counts the steps left, so its rate is this process's");
      assertTrue(logs.some((m) => m.includes("resumed from its checkpoint at step 3")), logs.join("; "));
      assertTrue(again.notes!.some((n) => n.includes("Resumed from a checkpoint at step 3")));
    });
    await t.step("an unreadable checkpoint is an error naming it, not a silent retrain", async () => {
      const path = checkpointPath(ctx.workDir);
      await Deno.writeTextFile(path, "not a checkpoint");
      await assertRejects(
        () => unitNamed(hybridExperiment, "smoke", unit).run({ ...logged, resume: true }),
        new RegExp(`Cannot load checkpoint ${path}.*delete it to train this unit again`),
      );
      const redo = await unitNamed(hybridExperiment, "smoke", unit).run(logged);
      assertEquals(values(redo), values(fresh), "without --resume the unit trains from the start");
    });
  } finally {
    await removeTestContext(ctx);
  }
});

Deno.test("hybrid: accuracy with its binomial standard error and Wilson interval", async (t) => {
  await t.step("90 of 100: SE 0.03, Wilson [0.8256, 0.9448]", () => {
    const a = accuracyOf(90, 100);
    assertEquals(a.value, 0.9);
    assertClose(a.stderr, 0.03, WILSON_TOL);
    assertClose(a.ci[0], 0.8256, WILSON_TOL);
    assertClose(a.ci[1], 0.9448, WILSON_TOL);
  });
  await t.step("all correct: SE 0 but the interval stays open below", () => {
    const a = accuracyOf(16, 16);
    assertEquals(a.stderr, 0);
    assertTrue(a.ci[0] < 0.85 && a.ci[1] === 1, `${a.ci}`);
  });
  await t.step("impossible counts throw", () => {
    assertThrows(() => accuracyOf(5, 4), /Cannot compute an accuracy/);
    assertThrows(() => accuracyOf(0, 0), /Cannot compute an accuracy/);
  });
});

Deno.test("hybrid: unit names and the SVHN check", async (t) => {
  await t.step("every training unit name parses back; others do not", () => {
    for (const ds of HYBRID_DATASETS) {
      for (const u of trainingUnits(ds)) {
        const p = parseTrainingUnit(trainingUnitName(u));
        assertTrue(p !== null && p.dataset === u.dataset && p.row === u.row && p.lambda === u.lambda);
      }
    }
    for (const bad of ["summary", "mnist-residual", "cifar10-residual-l1", "mnist-residual-l1-x"]) {
      assertEquals(parseTrainingUnit(bad), null, bad);
    }
    assertThrows(
      () => unitNamed(hybridExperiment, "quick", "mnist-foo-l1"),
      /Cannot find unit "mnist-foo-l1" of hybrid/,
    );
  });
  await t.step("SVHN units are planned only when both official files are in the data folder", async () => {
    const dir = await Deno.makeTempDir({ prefix: "resflow-hybrid-svhn-" });
    try {
      assertEquals(svhnAvailability(dir).present, false);
      assertEquals(hybridExperiment.units("quick", { dataDir: dir }).length, 10);
      await Deno.mkdir(`${dir}/svhn`);
      await Deno.writeFile(`${dir}/svhn/train_32x32.mat`, new Uint8Array(1));
      const half = svhnAvailability(dir);
      assertTrue(!half.present && half.reason.includes("test_32x32.mat"), half.reason);
      await Deno.writeFile(`${dir}/test_32x32.mat`, new Uint8Array(1));
      assertEquals(svhnAvailability(dir).present, true);
      const units = hybridExperiment.units("quick", { dataDir: dir }).map((u) => u.name);
      assertEquals(units.length, 19);
      assertEquals(units[9], "svhn-coupling-l0");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("hybrid: the column keys the units write and the claims read are the published table's", () => {
  const measures = (l: string): HybridMeasure[] => (l === "l0" ? ["acc"] : ["bpd", "acc"]);
  const columns = HYBRID_DATASETS.flatMap((d) =>
    HYBRID_LAMBDAS.flatMap((l) => measures(l.key).map((m) => hybridColumn(d.key, l.key, m)))
  );
  assertEquals(columns, [...PUBLISHED.hybrid.columns]);
});

/** Figures of the hybrid table from a function of (row, column); null leaves the cell out. */
function synthetic(value: (row: string, column: string) => number | null): Figure[] {
  const columns = HYBRID_DATASETS.flatMap((d) =>
    HYBRID_LAMBDAS.flatMap((l) =>
      (l.key === "l0" ? ["acc"] : ["bpd", "acc"]).map((c) => `${d.key}_${l.key}_${c}`)
    )
  );
  return HYBRID_ROWS.flatMap((r) =>
    columns.flatMap((c) => {
      const v = value(r.row, c);
      return v === null ? [] : [{
        table: HYBRID_TABLE,
        row: r.row,
        column: c,
        value: v,
        stderr: 0.001,
        unit: c.endsWith("acc") ? "accuracy" : "bits/dim",
        published: null,
        scale: "test",
        n: 1,
      }];
    })
  );
}

/**
 * Periodic test bits/dim curves of every bits/dim cell of `figs`: four evaluations, flat at the cell's
 * value (SE 0.001), so the bits/dim claims' plateau gate passes and the verdict is the cells'.
 */
function plateaued(figs: readonly Figure[]): Series[] {
  return figs.filter((f) => f.column.endsWith("_bpd")).map((f) => ({
    name: bpdCurveSeriesName(f.column, f.row),
    x: [30, 60, 90, 120],
    y: [f.value!, f.value!, f.value!, f.value!],
    yErr: [0.001, 0.001, 0.001, 0.001],
  }));
}

Deno.test("hybrid claims: verdicts on cells with a known answer", async (t) => {
  const paper = (r: string, c: string) => {
    const p = publishedValue(HYBRID_TABLE, r, c);
    return typeof p === "number" ? p : null;
  };
  const judged = (figs: Figure[], more: Series[] = []) => hybridClaims(figs, [...plateaued(figs), ...more]);
  await t.step("the paper's own numbers: every claim holds", () => {
    const claims = judged(synthetic(paper));
    assertEquals(claims.length, 5);
    for (const c of claims) assertEquals(c.holds, true, `${c.statement}: ${c.detail}`);
  });
  await t.step("Coupling below Residual at λ = 1/D on MNIST breaks only that claim", () => {
    const claims = judged(
      synthetic((r, c) => (r === "Coupling" && c === "mnist_l1d_bpd" ? 0.9 : paper(r, c))),
    );
    claims.forEach((c, i) => assertEquals(c.holds, i !== 0, c.statement));
  });
  await t.step("a residual model that loses its accuracy at λ = 1 breaks both accuracy claims", () => {
    const claims = judged(
      synthetic((r, c) => (r === "Residual" && c === "mnist_l1_acc" ? 0.9 : paper(r, c))),
    );
    assertEquals(claims.map((c) => c.holds), [true, true, false, false, true]);
  });
  await t.step("a bits/dim cell with non-finite test images left out fails its claim only", () => {
    const cells = synthetic(paper).map((f) =>
      f.row === "Residual" && f.column === "mnist_l1d_bpd" ? { ...f, nonFinite: 3 } : f
    );
    const claims = hybridClaims(cells);
    assertEquals(claims.map(claimOutcome).slice(0, 2), ["fails", "not testable"]);
    assertTrue(claims[0].detail.includes("Residual/mnist_l1d_bpd: 3 non-finite"), claims[0].detail);
  });
  await t.step("accuracy claims are gated on λ = 0 accuracy >= 97 % of every compared row", () => {
    const low = judged(
      synthetic((r, c) => (r === "Coupling" && c === "mnist_l0_acc" ? 0.869 : paper(r, c))),
    );
    assertEquals(low.map(claimOutcome), ["holds", "holds", "not testable", "not testable", "holds"]);
    assertTrue(low[2].detail.includes("Coupling λ = 0 test accuracy on MNIST 0.8690"), low[2].detail);
    assertEquals(low[2].gate?.statement.includes(`>= ${ACCURACY_GATE}`), true);
    const ok = judged(synthetic(paper));
    assertEquals(ok[2].gate?.passed, true, "the paper's accuracies pass the gate");
  });
  await t.step("with per-image series the gaps use the paired SE of the per-image differences", () => {
    // Residual is right on every image Coupling is right on, plus 10 more of 1000: a difference of 0.01
    // with a paired SE of about 0.003 (the two independent binomial SEs combine to about 0.013).
    const flags = (k: number) => Array.from({ length: 1000 }, (_, i) => (i < k ? 1 : 0));
    const perImage = (row: string, k: number): Series => ({
      name: perImageSeriesName("mnist_l1_acc", row),
      x: flags(k).map((_, i) => i),
      y: flags(k),
    });
    const figs = synthetic(paper);
    const rows = [["Residual", 990], ["Coupling", 980], ["Coupling + 1x1 Conv", 980]] as const;
    const claims = hybridClaims(figs, rows.map(([r, k]) => perImage(r, k)));
    const acc = claims[3];
    const paired = pairedDifference(flags(990), flags(980)).stderr;
    assertTrue(Math.abs(paired - Math.sqrt(0.01 * 0.99 / 999)) < 1e-12, `${paired}`);
    assertTrue(acc.detail.includes("paired SE"), acc.detail);
    assertTrue(!hybridClaims(figs)[3].detail.includes("paired SE"), "unpaired without the series");
  });
  await t.step("at long: Residual vs Coupling only, λ = 1/D not testable", () => {
    const long = synthetic(paper).map((f) => ({ ...f, scale: "long: x" }))
      .filter((f) => f.row !== "Coupling + 1x1 Conv" && !f.column.includes("_l1d_"));
    const claims = judged(long);
    assertEquals(claims.map(claimOutcome), ["not testable", "holds", "holds", "holds", "not testable"]);
    assertTrue(claims[0].detail.includes("l1d not trained at long"), claims[0].detail);
    assertTrue(
      claims[1].statement.includes("lower test bits/dim than Coupling at λ = 1"),
      claims[1].statement,
    );
  });
  await t.step("bits/dim claims: gated on plateaued curves or a settled paired gap", async (t) => {
    // Residual vs both couplings at λ = 1 on MNIST, 200 images, evaluations at steps 30..150: every
    // curve still falls by 0.1 per evaluation (no plateau); Residual − baseline per image is `gap(k)`
    // at the k-th evaluation plus per-image noise of ±0.01 (paired SE about 0.0007).
    const column = "mnist_l1_bpd";
    const steps = [30, 60, 90, 120, 150];
    const rows = ["Residual", "Coupling", "Coupling + 1x1 Conv"];
    const base = Array.from({ length: 200 }, (_, i) => 1 + (i % 17) / 10);
    const noise = (i: number) => (i % 2 ? 0.01 : -0.01);
    const make = (gap: (k: number) => number): { figs: Figure[]; series: Series[] } => {
      const values = (row: string, k: number) =>
        base.map((b, i) => b - 0.1 * k + (row === "Residual" ? gap(k) + noise(i) : 0));
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      const series: Series[] = rows.flatMap((row) => [
        {
          name: bpdCurveSeriesName(column, row),
          x: steps,
          y: steps.map((_, k) => mean(values(row, k))),
          yErr: steps.map(() => 0.03),
        },
        ...steps.map((s, k) => ({
          name: perImageAtStepSeriesName(column, row, s),
          x: base.map((_, i) => i),
          y: values(row, k),
        })),
      ]);
      const last = steps.length - 1;
      const figs = synthetic((r, c) =>
        c === column ? mean(values(r, last)) : c.endsWith("_bpd") ? null : paper(r, c)
      );
      return { figs, series };
    };
    const l1 = (m: { figs: Figure[]; series: Series[] }) =>
      hybridClaims(m.figs, m.series).find((c) => c.statement.includes("at λ = 1 on MNIST"))!;
    await t.step("a gap that holds its sign and size while both still improve: judged", () => {
      const lower = l1(make(() => -0.05));
      assertEquals(claimOutcome(lower), "holds", lower.detail);
      assertTrue(lower.gate!.detail.includes("settled"), lower.gate!.detail);
      assertEquals(lower.trend?.step, steps);
      const higher = l1(make(() => 0.05));
      assertEquals(claimOutcome(higher), "fails", higher.detail);
    });
    await t.step("a gap closing toward zero (Residual catching up): not testable, with the trend", () => {
      const c = l1(make((k) => 0.3 - 0.05 * k));
      assertEquals(claimOutcome(c), "not testable", c.detail);
      assertTrue(c.detail.includes("shrank by"), c.detail);
      assertTrue(c.detail.includes("Residual − Coupling + 1x1 Conv"), "both baselines' trends are given");
    });
    await t.step("without periodic evaluations: not testable", () => {
      const { figs } = make(() => -0.05);
      const c = l1({ figs, series: [] });
      assertEquals(claimOutcome(c), "not testable", c.detail);
      assertTrue(c.detail.includes("no periodic test bits/dim of Residual and Coupling"), c.detail);
    });
    await t.step("flat curves pass the plateau route without per-image values", () => {
      const { figs } = make(() => -0.05);
      const c = l1({ figs, series: plateaued(figs) });
      assertEquals(claimOutcome(c), "holds", c.detail);
    });
  });
  await t.step("missing cells give null verdicts that say why", () => {
    const claims = hybridClaims(
      synthetic((r, c) => (c.startsWith("svhn") || r === "Residual" ? null : paper(r, c))),
    );
    for (const c of claims) assertEquals(c.holds, null, c.statement);
    assertTrue(claims[4].detail.includes("no SVHN cells"), claims[4].detail);
  });
});

Deno.test("hybrid summary: a corrupt training artifact is an error naming the file, not 'no artifact yet'", async () => {
  const ctx = await testContext("smoke", await createDevice("cpu"));
  try {
    const first = trainingUnitName(trainingUnits(MNIST)[0]);
    await Deno.writeTextFile(`${ctx.outDir}/units.hybrid.${first}.json`, '{"schemaVersion": 1, "fig');
    await assertRejects(
      () => unitNamed(hybridExperiment, "smoke", SUMMARY_UNIT).run(ctx),
      new RegExp(`Cannot read artifact .*units\\.hybrid\\.${first}\\.json: `),
    );
  } finally {
    await removeTestContext(ctx);
  }
});
