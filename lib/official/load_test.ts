/**
 * The authors' checkpoints onto our model: both fixture files (ZIP and legacy, written by the authors'
 * train_img.py) load, every tensor is mapped or on the bookkeeping list, the values land where they
 * belong (EMA parameters, state_dict buffers), and each kind of mismatch is one error naming the tensors
 * or options. The name walk is also checked against the authors' own names for two other architectures
 * (squeeze-first + factor-out + FC end; no logit, no ActNorm), fixture testdata/official/official_names.json.
 */
import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { Rng } from "../engine/random.ts";
import { ResidualFlow } from "../flow/model.ts";
import { namedTensors } from "../flow/named.ts";
import type { TorchTensor, TorchValue } from "../torch/values.ts";
import { officialConfig } from "./args.ts";
import {
  buildOfficialModel,
  DATA_PARALLEL_PREFIX,
  type OfficialCheckpoint,
  parseOfficialCheckpoint,
  tensorNumbers,
} from "./load.ts";
import { readOfficialCheckpoint } from "./model_file.ts";
import { BOOKKEEPING_BUFFERS, officialNames } from "./names.ts";

const DIR = new URL("../../testdata/checkpoints/", import.meta.url).pathname;
const FILES = ["checkpoint_zip.pth", "checkpoint_legacy.pth"] as const;
/** Tensors in the fixture's state_dict (its README). */
const STATE_DICT_SIZE = 234;
/** Tensors in the fixture's EMA shadow_params (its README). */
const SHADOW_SIZE = 105;

const device = await createDevice("cpu");

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a.length === b.length && Array.from(a).every((v, i) => v === b[i]);
}

async function read(file: string): Promise<OfficialCheckpoint> {
  return (await readOfficialCheckpoint(DIR + file)).checkpoint;
}

/** A copy of a checkpoint with a changed state_dict (keys with prefix) or args. */
function variant(
  ck: OfficialCheckpoint,
  change: { sd?: (m: Map<string, TorchTensor>) => void; args?: Record<string, TorchValue> },
): OfficialCheckpoint {
  const sd = new Map(ck.stateDict);
  change.sd?.(sd);
  return { ...ck, stateDict: sd, args: { ...ck.args, ...(change.args ?? {}) } };
}

for (const file of FILES) {
  Deno.test(`official load: ${file}: every tensor mapped or bookkeeping, values in place`, async (t) => {
    const ck = await read(file);
    await t.step("parts of the dictionary", () => {
      assertEquals(ck.stateDict.size, STATE_DICT_SIZE);
      assertTrue(ck.prefixed, "the fixture was saved from DataParallel");
      assertEquals(ck.shadow?.size, SHADOW_SIZE);
      assertEquals(ck.args.data, "mnist");
    });
    const { model, spec, report } = buildOfficialModel(ck, { device });
    const roles = officialNames(model);
    await t.step("each state_dict name has a role; bookkeeping only from the documented list", () => {
      for (const name of ck.stateDict.keys()) assertTrue(roles.has(name), `${name} unmapped`);
      for (const name of report.bookkeeping) {
        assertTrue(name.split(".").pop()! in BOOKKEEPING_BUFFERS, `${name} is not documented bookkeeping`);
      }
      const counts = new Map<string, number>();
      for (const name of ck.stateDict.keys()) {
        const r = roles.get(name)!.role;
        counts.set(r, (counts.get(r) ?? 0) + 1);
      }
      // 89 parameters + 24·2 vectors u, v + 9 ActNorm flags copied; 48 bookkeeping; the rest consumed.
      assertEquals(counts.get("parameter"), model.parameters().length);
      assertEquals(
        report.mapped,
        counts.get("parameter")! + counts.get("buffer")! + counts.get("actnormFlag")!,
      );
      assertEquals(report.bookkeeping.length, counts.get("bookkeeping"));
      assertEquals(report.nDistParam, 2, "λ of the blocks' lamb");
      assertEquals(spec.config.logitAlpha, 1e-6, "the authors' MNIST α");
    });
    await t.step("parameters equal the EMA shadow; u, v equal the state_dict", async () => {
      const mine = namedTensors(model);
      for (const [name, role] of roles) {
        if (role.role === "parameter") {
          const want = tensorNumbers(ck.shadow!.get(name)!);
          assertTrue(
            sameValues(await mine.get(role.ours)!.value!.read(), want),
            `${role.ours} != ema ${name}`,
          );
        } else if (role.role === "buffer") {
          const want = tensorNumbers(ck.stateDict.get(name)!);
          assertTrue(sameValues(await mine.get(role.ours)!.value!.read(), want), `${role.ours} != ${name}`);
        } else if (role.role === "actnormFlag") {
          assertTrue(mine.get(role.ours)!.value !== null, `${role.ours} left uninitialised`);
        }
      }
    });
    await t.step("raw weights come from the state_dict", async () => {
      const raw = buildOfficialModel(ck, { device, weights: "raw" });
      const mine = namedTensors(raw.model);
      for (const [name, role] of officialNames(raw.model)) {
        if (role.role !== "parameter") continue;
        const want = tensorNumbers(ck.stateDict.get(name)!);
        assertTrue(sameValues(await mine.get(role.ours)!.value!.read(), want), `${role.ours} != ${name}`);
      }
      raw.model.dispose();
    });
    model.dispose();
  });
}

Deno.test("official load: the ZIP and legacy files hold identical tensors and options", async () => {
  const [a, b] = await Promise.all(FILES.map(read));
  assertEquals([...a.stateDict.keys()], [...b.stateDict.keys()]);
  for (const [n, t] of a.stateDict) {
    assertTrue(sameValues(tensorNumbers(t), tensorNumbers(b.stateDict.get(n)!)), n);
  }
  for (const [n, t] of a.shadow!) {
    assertTrue(sameValues(tensorNumbers(t), tensorNumbers(b.shadow!.get(n)!)), n);
  }
  assertEquals(JSON.stringify(a.args), JSON.stringify(b.args));
});

Deno.test("official load: mismatches are one error naming the tensors", async (t) => {
  const ck = await read(FILES[0]);
  const conv = "transforms.0.chain.2.nnet.0";
  await t.step("without the module. prefix: loads the same", () => {
    const stripped = { ...ck, prefixed: false };
    const { model } = buildOfficialModel(stripped, { device });
    model.dispose();
  });
  await t.step("a wrong prefix: every name unexpected, every required one missing", () => {
    const sd = new Map<TorchValue, TorchValue>();
    for (const [n, v] of ck.stateDict) sd.set(`model.${n}`, v);
    const root = new Map<TorchValue, TorchValue>([["state_dict", sd], ["args", argsObject(ck.args)]]);
    const bad = parseOfficialCheckpoint(root, "wrong.pth");
    assertThrows(
      () => buildOfficialModel(bad, { device, weights: "raw" }),
      /wrong\.pth: state_dict lacks \d+ tensor\(s\): transforms\.0\.chain\.1\.weight.*this model does not have: model\.transforms\.0\.chain\.1\.weight/,
    );
  });
  await t.step("mixed prefixes", () => {
    const sd = new Map<TorchValue, TorchValue>();
    for (const [n, v] of ck.stateDict) sd.set(n.startsWith("transforms.0") ? n : DATA_PARALLEL_PREFIX + n, v);
    const root = new Map<TorchValue, TorchValue>([["state_dict", sd], ["args", argsObject(ck.args)]]);
    assertThrows(() => parseOfficialCheckpoint(root, "mixed.pth"), /mixed\.pth: state_dict mixes names/);
  });
  await t.step("a missing tensor", () => {
    const bad = variant(ck, { sd: (m) => m.delete(`${conv}.u`) });
    assertThrows(
      () => buildOfficialModel(bad, { device }),
      /lacks 1 tensor\(s\): module\.transforms\.0\.chain\.2\.nnet\.0\.u$/,
    );
  });
  await t.step("an extra tensor", () => {
    const bad = variant(ck, { sd: (m) => m.set(`${conv}.extra_thing`, m.get(`${conv}.scale`)!) });
    assertThrows(
      () => buildOfficialModel(bad, { device }),
      /does not have: module\.transforms\.0\.chain\.2\.nnet\.0\.extra_thing/,
    );
  });
  await t.step("a misshapen tensor", () => {
    const bad = variant(ck, { sd: (m) => m.set(`${conv}.v`, m.get(`${conv}.u`)!) });
    assertThrows(
      () => buildOfficialModel(bad, { device }),
      /shapes differ: transforms\.0\.chain\.2\.nnet\.0\.v \[25088\]/,
    );
  });
  await t.step("an EMA without a parameter", () => {
    const shadow = new Map(ck.shadow!);
    shadow.delete(`${conv}.bias`);
    assertThrows(
      () => buildOfficialModel({ ...ck, shadow }, { device }),
      /ema\.shadow_params lacks 1 parameter\(s\): transforms\.0\.chain\.2\.nnet\.0\.bias/,
    );
  });
  await t.step("blocks with different λ", () => {
    const lamb = ck.shadow!.get("transforms.0.chain.2.lamb")!;
    const shadow = new Map(ck.shadow!);
    shadow.set("transforms.0.chain.2.lamb", { ...lamb, data: new Float32Array([3]) });
    assertThrows(() => buildOfficialModel({ ...ck, shadow }, { device }), /lamb differ \(2 to 3\)/);
  });
  await t.step("unsupported options: every one named", () => {
    const bad = variant(ck, { args: { act: "lcube", padding: 1, task: "hybrid" } });
    assertThrows(
      () => buildOfficialModel(bad, { device }),
      /task="hybrid".*padding=1.*act="lcube" \(supported: swish, elu/,
    );
  });
  await t.step("a file without args or state_dict", () => {
    assertThrows(
      () => parseOfficialCheckpoint(new Map([["state_dict", new Map()]]), "x.pth"),
      /x\.pth: it has no "args" entry/,
    );
  });
});

function argsObject(args: Readonly<Record<string, TorchValue>>): TorchValue {
  return {
    kind: "object",
    module: "argparse",
    name: "Namespace",
    args: [],
    state: new Map(Object.entries(args)),
  };
}

interface NamesFixture {
  readonly args: Record<string, unknown>;
  readonly state_dict: [string, number[]][];
}

Deno.test("official names: the walk gives the authors' own names and shapes for other architectures", async (t) => {
  const fx = JSON.parse(
    await Deno.readTextFile(new URL("../../testdata/official/official_names.json", import.meta.url)),
  ) as Record<string, NamesFixture>;
  for (const [name, f] of Object.entries(fx)) {
    await t.step(name, () => {
      const spec = officialConfig({ ...f.args, n_dist: "poisson" });
      const model = new ResidualFlow(spec.config, { rng: new Rng(0), device });
      const roles = officialNames(model);
      const theirs = new Map(f.state_dict);
      assertEquals([...roles.keys()].sort(), [...theirs.keys()].sort());
      const mine = namedTensors(model);
      for (const [n, role] of roles) {
        if (role.role !== "parameter" && role.role !== "buffer") continue;
        const shape = mine.get(role.ours)!.value!.shape;
        const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
        assertEquals(size(shape), size(theirs.get(n)!), `${n} vs ${role.ours}`);
      }
      model.dispose();
    });
  }
});
