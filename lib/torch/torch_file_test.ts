import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { encodeZip } from "../data/zip.ts";
import {
  CHECKPOINTS,
  concat,
  encodeTagged,
  expectTorchError,
  tensorPickle,
  type TensorPickleOptions,
  u64,
} from "./testing_util.ts";
import { unpickle } from "./pickle.ts";
import { parseTorchFile, readTorchCheckpoint, readTorchFile } from "./torch_file.ts";
import {
  asTensorMap,
  isObject,
  isTensor,
  namespaceToRecord,
  objectAttributes,
  type TorchTensor,
  type TorchValue,
} from "./values.ts";

interface Digest {
  dtype: string;
  shape: number[];
  sha256: string;
}
interface Expected {
  keys: string[];
  args: Record<string, unknown>;
  state_dict: Record<string, Digest>;
  shadow_params: Record<string, Digest>;
}

async function sha256(t: TorchTensor): Promise<string> {
  const d = t.data;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function checkDigests(got: Map<string, TorchTensor>, want: Record<string, Digest>, what: string) {
  assertEquals([...got.keys()], Object.keys(want), `${what}: names in order`);
  for (const [k, t] of got) {
    const w = want[k];
    assertEquals(t.dtype, w.dtype, `${what}[${k}] dtype`);
    assertEquals([...t.shape], w.shape, `${what}[${k}] shape`);
    assertEquals(await sha256(t), w.sha256, `${what}[${k}] bytes (SHA-256, as PyTorch holds them)`);
  }
}

Deno.test("torch checkpoints written by the authors' code", async (t) => {
  const expected: Expected = JSON.parse(await Deno.readTextFile(CHECKPOINTS + "checkpoint_expected.json"));
  const files = {
    zip: await readTorchCheckpoint(CHECKPOINTS + "checkpoint_zip.pth"),
    legacy: await readTorchCheckpoint(CHECKPOINTS + "checkpoint_legacy.pth"),
  };

  for (const [format, ckpt] of Object.entries(files)) {
    await t.step(`${format}: dict keys, 234 state_dict tensors, dtypes and exact bytes`, async () => {
      assertEquals(ckpt.format, format);
      assertEquals([...ckpt.root.keys()], expected.keys);
      assertEquals(expected.keys, ["state_dict", "optimizer_state_dict", "args", "ema", "test_bpd"]);
      const sd = asTensorMap(ckpt.root.get("state_dict"), "state_dict");
      assertEquals(sd.size, 234);
      assertTrue([...sd.keys()].every((k) => k.startsWith("module.")), "every name has the module. prefix");
      for (const [k, v] of sd) {
        const want = k.endsWith("geom_p") ? "float64" : k.endsWith("initialized") ? "int64" : "float32";
        assertEquals(v.dtype, want, `${k} dtype`);
      }
      assertEquals(
        [...sd.get("module.transforms.0.chain.2.nnet.0.weight")!.shape],
        expected.state_dict["module.transforms.0.chain.2.nnet.0.weight"].shape,
      );
      await checkDigests(sd, expected.state_dict, `${format} state_dict`);
    });

    await t.step(
      `${format}: ema is an inert object with 105 shadow params and the pickled model`,
      async () => {
        const ema = ckpt.root.get("ema");
        assertTrue(isObject(ema, "resflows.utils", "ExponentialMovingAverage"), "ema's class");
        const attrs = objectAttributes(ema, "ema");
        const shadow = asTensorMap(attrs.get("shadow_params"), "ema.shadow_params");
        assertEquals(shadow.size, 105);
        assertTrue([...shadow.keys()].every((k) => !k.startsWith("module.")), "shadow names have no prefix");
        await checkDigests(shadow, expected.shadow_params, `${format} shadow_params`);
        const model = attrs.get("module");
        assertTrue(isObject(model, "resflows.resflow", "ResidualFlow"), "the pickled model object");
        const params = objectAttributes(model, "model").get("_parameters");
        assertTrue(params instanceof Map, "the model's _parameters dict");
      },
    );

    await t.step(`${format}: args is an argparse.Namespace with the run's options`, () => {
      const args = namespaceToRecord(ckpt.root.get("args"));
      assertEquals(args.nblocks, "2-2");
      assertEquals(args.idim, 32);
      assertEquals(args, expected.args as Record<string, TorchValue>);
      assertTrue(Number.isNaN(ckpt.root.get("test_bpd")), "test_bpd is NaN");
    });
  }

  await t.step("the zip and legacy files give bit-identical tensors", () => {
    const a = asTensorMap(files.zip.root.get("state_dict"), "zip");
    const b = asTensorMap(files.legacy.root.get("state_dict"), "legacy");
    for (const [k, x] of a) assertEquals(x.data, b.get(k)!.data, k);
  });

  await t.step("the pickled model's parameters hold the state_dict's values (walked by attributes)", () => {
    const sd = asTensorMap(files.zip.root.get("state_dict"), "sd");
    let node: TorchValue | undefined = objectAttributes(files.zip.root.get("ema"), "ema").get("module");
    for (const name of ["transforms", "0", "chain", "2", "nnet", "0"]) {
      node = (objectAttributes(node, name).get("_modules") as Map<TorchValue, TorchValue>).get(name);
    }
    const params = asTensorMap(objectAttributes(node, "conv").get("_parameters"), "_parameters");
    const w = params.get("weight")!;
    assertTrue(w.isParameter && w.requiresGrad, "pickled as a Parameter that requires grad");
    assertEquals(w.data, sd.get("module.transforms.0.chain.2.nnet.0.weight")!.data);
  });
});

Deno.test("torch golden files written by PyTorch 1.13 (both formats, protocols 2 and 5)", async (t) => {
  const golden = JSON.parse(await Deno.readTextFile(CHECKPOINTS + "golden_expected.json"));
  for (
    const name of ["golden_zip_p2.pth", "golden_zip_p5.pth", "golden_legacy_p2.pth", "golden_legacy_p5.pth"]
  ) {
    await t.step(
      `${name}: every value exact (views, dtypes, shared storage, Parameter, plain values)`,
      async () => {
        const file = await readTorchFile(CHECKPOINTS + name);
        assertEquals(file.format, name.includes("zip") ? "zip" : "legacy");
        assertEquals(encodeTagged(file.root), golden.tensors);
        const root = file.root as Map<TorchValue, TorchValue>;
        const sliced = root.get("sliced") as TorchTensor;
        assertEquals([...sliced.fileStrides], [4, 1]);
        assertEquals(sliced.storageOffset, 5);
        assertEquals([...sliced.strides], [2, 1]);
        const expanded = root.get("expanded") as TorchTensor;
        assertEquals([...expanded.fileStrides], [0, 1]);
        const a = root.get("share_a") as TorchTensor;
        const b = root.get("share_b") as TorchTensor;
        assertEquals(a.storageKey, b.storageKey);
      },
    );
  }

  await t.step("readTorchCheckpoint wants a dict at the top; readTorchFile names a folder", async () => {
    const dir = await Deno.makeTempDir({ prefix: "resflow-torch-test-" });
    try {
      const bare = `${dir}/bare.pth`;
      const pkl = tensorPickle({ numel: 1, size: [1], stride: [1] });
      // The same tensor with the dict around it removed: PROTO, then the tensor, then STOP.
      const inner = concat(pkl.subarray(0, 2), pkl.subarray(9, pkl.length - 2), new Uint8Array([0x2e]));
      await Deno.writeFile(
        bare,
        encodeZip([{ name: "x/data.pkl", data: inner }, { name: "x/data/0", data: new Uint8Array(4) }]),
      );
      assertTrue(isTensor((await readTorchFile(bare)).root), "a bare tensor file reads");
      await expectTorchError(
        () => readTorchCheckpoint(bare),
        /^Cannot read .*bare\.pth: it holds a float32 tensor of shape \[1\], expected a checkpoint dict/,
      );
      await expectTorchError(
        () => readTorchFile(dir),
        /^Cannot read .*: it is a folder; expected a PyTorch checkpoint/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("parseTorchFile reads bytes in memory the same", async () => {
    const bytes = await Deno.readFile(CHECKPOINTS + "golden_zip_p2.pth");
    assertEquals(encodeTagged(parseTorchFile(bytes, "mem.pth").root), golden.tensors);
  });
});

/** `{t: tensor}` saved in the ZIP format over one storage of `bytes`. */
function zipTensor(opts: TensorPickleOptions, bytes: Uint8Array): TorchTensor {
  const z = encodeZip([
    { name: "m/data.pkl", data: tensorPickle(opts) },
    { name: `m/data/${opts.key ?? "0"}`, data: bytes },
  ]);
  return (parseTorchFile(z, "hand.pth").root as Map<TorchValue, TorchValue>).get("t") as TorchTensor;
}

Deno.test("torch tensors as other PyTorch versions pickle them (hand-assembled)", async (t) => {
  const four = new Uint8Array(new Float32Array([1.5, -2, 3, 4]).buffer);
  await t.step("_rebuild_tensor (PyTorch 0.4 and older)", () => {
    const v = zipTensor({ rebuild: "v1", numel: 4, offset: 1, size: [3], stride: [1] }, four);
    assertEquals([v.dtype, [...v.shape], v.data], ["float32", [3], new Float32Array([-2, 3, 4])]);
  });

  await t.step("_rebuild_tensor_v3 reinterprets an untyped storage as its dtype", () => {
    const opts = {
      rebuild: "v3",
      storageType: "UntypedStorage",
      numel: 16,
      size: [2, 2],
      stride: [1, 2],
    } as const;
    const v = zipTensor({ ...opts, dtype: "float32" }, four);
    assertEquals([v.dtype, v.data], ["float32", new Float32Array([1.5, 3, -2, 4])]);
    const i = zipTensor({ ...opts, dtype: "int32", size: [1], stride: [1] }, four);
    assertEquals(i.data, new Int32Array([0x3fc00000]));
  });

  await t.step("_rebuild_from_type_v2(_rebuild_tensor_v2, Parameter, ...) gives a parameter", () => {
    const v = zipTensor({ fromTypeParameter: true, numel: 4, size: [2], stride: [2] }, four);
    assertEquals([v.isParameter, v.data], [true, new Float32Array([1.5, 3])]);
  });

  await t.step("legacy storage views (view_key, offset, size) read their part of the root storage", () => {
    const pkl = tensorPickle({ key: "root", numel: 4, view: ["v1", 1, 2], size: [2], stride: [1] });
    const golden = Deno.readFileSync(CHECKPOINTS + "golden_legacy_p2.pth");
    let end = 0;
    for (let i = 0; i < 3; i++) end = unpickle(golden, { source: "x", start: end }).end;
    const keys = new Uint8Array([0x80, 0x02, 0x5d, 0x58, 4, 0, 0, 0, 0x72, 0x6f, 0x6f, 0x74, 0x61, 0x2e]);
    const file = concat(golden.subarray(0, end), pkl, keys, u64(4n), four);
    const v = (parseTorchFile(file, "views.pth").root as Map<TorchValue, TorchValue>).get("t") as TorchTensor;
    assertEquals([v.storageKey, v.data], ["v1", new Float32Array([-2, 3])]);
  });
});
