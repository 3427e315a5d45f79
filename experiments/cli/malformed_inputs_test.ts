/**
 * A corpus of malformed inputs run through `deno task train`, `sample`, `data` and `reproduce` exactly
 * as a user would (the tasks' own permissions, subprocesses): damaged, truncated, wrong-magic and
 * bomb data files of every format, damaged checkpoints, bad option values and output folders. Every
 * case must end non-zero within {@link CASE_TIMEOUT_MS} with exactly one line on stderr that names
 * the file or option, and no stack trace; where `/usr/bin/time` exists, under {@link MAX_RSS_KB}.
 * @module
 */
import { deflateSync, gzipSync } from "node:zlib";
import { assertTrue } from "../../lib/testing/asserts.ts";
import { encodeCifarBinary } from "../../lib/data/cifar10.ts";
import { encodeIdx } from "../../lib/data/idx.ts";
import { encodeMat5 } from "../../lib/data/mat5.ts";
import { encodeNpy } from "../../lib/data/npy.ts";
import { encodeNpz } from "../../lib/data/npz.ts";
import { loadSafetensors } from "../../lib/artifacts/safetensors.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** A case must end within this (the bar set for the suite: 60 s). */
const CASE_TIMEOUT_MS = 60_000;
/** Peak resident memory allowed to a case (the bar set for the suite: 2 GB). */
const MAX_RSS_KB = 2_000_000;
/** Cases run at once (each is a Deno process; the machines have 2 cores). */
const POOL = 4;
const TIME = "/usr/bin/time";
const HAS_TIME = await Deno.stat(TIME).then(() => true, () => false);
/** Whether WebGPU has an adapter here (cases on the default device need one). */
const HAS_WEBGPU = await (async () => {
  try {
    return (await navigator.gpu?.requestAdapter()) != null;
  } catch {
    return false;
  }
})();

/** One malformed input: the task, its arguments, and what its one line must name. */
interface Case {
  readonly name: string;
  /** Reported as ignored: a case whose refusal another branch adds (see where it is built). */
  readonly ignore?: boolean;
  readonly task: "train" | "sample" | "data" | "reproduce";
  readonly args: readonly string[];
  /** The line must match this (the file or option concerned). */
  readonly names: RegExp;
}

/** The tiny CPU training run every train case uses (fails before any real work). */
const TINY = ["--device", "cpu", "--blocks", "1", "--hidden", "8", "--fc-blocks", "0", "--batch", "4"];
const LIMITS = ["--train-limit", "8", "--eval-limit", "4", "--eval-batch", "4", "--steps", "1"];

function rand(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

/** A gzip of `header` followed by `zeros` zero bytes. */
function gzipBomb(header: Uint8Array, zeros: number): Uint8Array {
  const raw = new Uint8Array(header.length + zeros);
  raw.set(header);
  return new Uint8Array(gzipSync(raw));
}

/** Overwrites the uncompressed size of the first central-directory entry named `entry` of a ZIP. */
function setZipSize(zip: Uint8Array, entry: string, size: number): Uint8Array {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const name = new TextEncoder().encode(entry);
  for (let p = zip.length - 22; p >= 0; p--) {
    if (v.getUint32(p, true) === 0x02014b50 && name.every((b, i) => zip[p + 46 + i] === b)) {
      v.setUint32(p + 24, size, true);
      return zip;
    }
  }
  throw new Error(`no entry ${entry}`);
}

/** A MAT-file with one compressed element whose inner tag declares `declared` bytes. */
function matBomb(declared: number, zeros: number): Uint8Array {
  const header = encodeMat5([{ name: "X", className: "uint8", dims: [1, 1], data: [1] }]).subarray(0, 128);
  const inner = new Uint8Array(8 + zeros);
  new DataView(inner.buffer).setUint32(0, 14, true);
  new DataView(inner.buffer).setUint32(4, declared, true);
  const z = new Uint8Array(deflateSync(inner));
  const out = new Uint8Array(136 + z.length);
  out.set(header);
  new DataView(out.buffer).setUint32(128, 15, true);
  new DataView(out.buffer).setUint32(132, z.length, true);
  out.set(z, 136);
  return out;
}

/** Writes the corpus's files under `dir`; returns the cases. */
async function buildCorpus(dir: string, checkpoint: Uint8Array): Promise<Case[]> {
  const cases: Case[] = [];
  const write = async (rel: string, bytes: Uint8Array | string) => {
    const path = `${dir}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
    else await Deno.writeFile(path, bytes);
    return path;
  };
  const train = (name: string, dataset: string, names: RegExp, extra: string[] = []) =>
    cases.push({
      name,
      task: "train",
      args: [
        "--dataset",
        dataset,
        "--data-dir",
        `${dir}/d-${cases.length}`,
        ...TINY,
        ...LIMITS,
        ...extra,
        "--out",
        `${dir}/out-${cases.length}`,
      ],
      names,
    });
  const dataDir = () => `${dir}/d-${cases.length}`;

  // --- MNIST-format IDX files in <data-dir>/mnist/ -------------------------------------------------
  const goodImages = encodeIdx("uint8", [8, 28, 28], rand(8 * 784, 1));
  const goodLabels = encodeIdx("uint8", [8], [0, 1, 2, 3, 4, 5, 6, 7]);
  const mnist = async (images: Uint8Array | null, labels: Uint8Array = goodLabels, gz = false) => {
    const d = dataDir();
    if (images) await write(`d-${cases.length}/mnist/train-images-idx3-ubyte${gz ? ".gz" : ""}`, images);
    await write(`d-${cases.length}/mnist/train-labels-idx1-ubyte`, labels);
    return d;
  };
  await mnist(goodImages.subarray(0, 1000));
  train("mnist images truncated", "mnist", /train-images-idx3-ubyte.*truncated/);
  const wrongMagic = goodImages.slice();
  wrongMagic[2] = 0x42;
  await mnist(wrongMagic);
  train("mnist images wrong magic", "mnist", /train-images-idx3-ubyte.*magic number/);
  await mnist(rand(5000, 2));
  train("mnist images garbage", "mnist", /train-images-idx3-ubyte/);
  await mnist(new Uint8Array(0));
  train("mnist images empty", "mnist", /train-images-idx3-ubyte/);
  await mnist(
    gzipBomb(encodeIdx("uint8", [1, 28, 28], new Uint8Array(784)).subarray(0, 16), 64 << 20),
    undefined,
    true,
  );
  train(
    "mnist gzip bomb (header declares 1 image)",
    "mnist",
    /train-images-idx3-ubyte\.gz.*decompresses to more/,
  );
  {
    const h = encodeIdx("uint8", [1, 28, 28], new Uint8Array(784)).subarray(0, 16).slice();
    new DataView(h.buffer).setUint32(4, 4_000_000_000);
    await mnist(gzipBomb(h, 64 << 20), undefined, true);
  }
  train(
    "mnist gzip declaring 4e9 images",
    "mnist",
    /train-images-idx3-ubyte\.gz.*declares .* more than the limit/,
  );
  await mnist(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, ...rand(100, 3)]), undefined, true);
  train("mnist corrupt gzip", "mnist", /train-images-idx3-ubyte\.gz/);
  await mnist(goodImages, encodeIdx("uint8", [7], [0, 1, 2, 3, 4, 5, 6]));
  train("mnist label count differs", "mnist", /train-(images|labels)-idx/);
  await mnist(goodImages, encodeIdx("uint8", [8], [0, 1, 2, 3, 4, 5, 6, 12]));
  train("mnist label out of range", "mnist", /train-labels-idx1-ubyte.*expected 0–9/);
  await mnist(encodeIdx("float32", [8, 28, 28], new Float32Array(8 * 784)));
  train("mnist images of float32", "mnist", /train-images-idx3-ubyte.*expected uint8/);
  await mnist(encodeIdx("uint8", [8, 32, 32], new Uint8Array(8 * 1024)));
  train("mnist images 32x32", "mnist", /train-images-idx3-ubyte.*dims/);
  await mnist(null);
  train("mnist labels only", "mnist", /train-images-idx3-ubyte/);
  await Deno.symlink("/dev/zero", `${await mnist(null)}/mnist/train-images-idx3-ubyte`);
  train("mnist images a link to /dev/zero", "mnist", /train-images-idx3-ubyte/);
  await Deno.mkdir(`${await mnist(null)}/mnist/train-images-idx3-ubyte`, { recursive: true });
  train("mnist images path is a folder", "mnist", /train-images-idx3-ubyte/);

  // --- CIFAR-10 binary batches ---------------------------------------------------------------------
  const cifar = async (bytes: Uint8Array) =>
    await write(`d-${cases.length}/cifar-10-batches-bin/data_batch_1.bin`, bytes);
  const record = encodeCifarBinary(rand(2 * 3072, 4), [3, 7]);
  await cifar(record.subarray(0, 5000));
  train("cifar10 batch truncated", "cifar10", /data_batch_1\.bin/);
  await cifar(new Uint8Array(0));
  train("cifar10 batch empty", "cifar10", /data_batch_1\.bin/);
  const badLabel = record.slice();
  badLabel[0] = 11;
  await cifar(badLabel);
  train("cifar10 label 11", "cifar10", /data_batch_1\.bin/);
  await Deno.mkdir(dataDir(), { recursive: true });
  train("cifar10 missing folder", "cifar10", /cifar-10-batches-bin/);
  await write(`d-${cases.length}/cifar10-exact/train_exact_4000.bin`, record.subarray(0, 3000));
  train("cifar10-exact truncated", "cifar10-exact", /train_exact_4000\.bin/);

  // --- SVHN .mat ---------------------------------------------------------------------------------------
  const svhn = async (bytes: Uint8Array) => await write(`d-${cases.length}/svhn/train_32x32.mat`, bytes);
  await svhn(rand(4000, 5));
  train("svhn garbage", "svhn", /train_32x32\.mat/);
  const mat = encodeMat5([
    { name: "X", className: "uint8", dims: [32, 32, 3, 2], data: new Uint8Array(6144) },
    { name: "y", className: "double", dims: [2, 1], data: [1, 2] },
  ], true);
  await svhn(mat.subarray(0, 100));
  train("svhn shorter than its header", "svhn", /train_32x32\.mat/);
  await svhn(mat.subarray(0, mat.length - 40));
  train("svhn truncated", "svhn", /train_32x32\.mat/);
  const v73 = mat.slice();
  v73.set(new TextEncoder().encode("MATLAB 7.3 MAT-file"), 0);
  await svhn(v73);
  train("svhn v7.3 (HDF5)", "svhn", /train_32x32\.mat.*7\.3/);
  const ver = mat.slice();
  ver[124] = 0;
  ver[125] = 2;
  await svhn(ver);
  train("svhn wrong version field", "svhn", /train_32x32\.mat.*version 0x0200/);
  await svhn(matBomb(16, 64 << 20));
  train("svhn compressed bomb", "svhn", /train_32x32\.mat.*decompresses to more/);
  await svhn(matBomb(0xfffffff0, 1 << 20));
  train("svhn compressed element declaring 4 GB", "svhn", /train_32x32\.mat.*more than the limit/);
  await svhn(mat);
  train("svhn too few images", "svhn", /train_32x32\.mat/);

  // --- ImageNet .npz ----------------------------------------------------------------------------------
  const inet = async (bytes: Uint8Array) =>
    await write(`d-${cases.length}/imagenet32/train_data_batch_1.npz`, bytes);
  const batch = (compressed: boolean) =>
    encodeNpz({
      data: encodeNpy("|u1", [2, 3072], new Uint8Array(6144)),
      labels: encodeNpy("<i8", [2], [1n, 2n]),
    }, compressed);
  await inet(rand(3000, 6));
  train("imagenet32 not a zip", "imagenet32", /train_data_batch_1\.npz/);
  const okBatch = batch(false);
  await inet(okBatch.subarray(0, okBatch.length - 200));
  train("imagenet32 truncated", "imagenet32", /train_data_batch_1\.npz/);
  await inet(
    setZipSize(
      encodeNpz({ data: new Uint8Array(64 << 20), labels: new Uint8Array(8) }, true),
      "data.npy",
      1000,
    ),
  );
  train(
    "imagenet32 zip bomb (declared 1000 bytes)",
    "imagenet32",
    /train_data_batch_1\.npz.*decompresses to more/,
  );
  await inet(setZipSize(batch(true), "data.npy", 3_000_000_000));
  train("imagenet32 entry declaring 3 GB", "imagenet32", /train_data_batch_1\.npz.*more than the limit/);
  await inet(encodeNpz({ data: encodeNpy("|u1", [2, 3072], new Uint8Array(6144)) }));
  train("imagenet32 no labels", "imagenet32", /train_data_batch_1\.npz.*labels/);
  await inet(
    encodeNpz({
      data: encodeNpy("<f4", [2, 3072], new Float32Array(6144)),
      labels: encodeNpy("<i8", [2], [1n, 2n]),
    }),
  );
  train("imagenet32 float data", "imagenet32", /train_data_batch_1\.npz.*uint8/);
  {
    const header = "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n";
    const npy = new Uint8Array(10 + header.length + 8);
    npy.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]);
    npy.set(new TextEncoder().encode(header), 10);
    await inet(encodeNpz({ data: npy, labels: encodeNpy("<i8", [2], [1n, 2n]) }));
  }
  train("imagenet32 pickled object array", "imagenet32", /train_data_batch_1\.npz.*object array/);

  // --- CelebA .npy ------------------------------------------------------------------------------------
  const celeba = async (bytes: Uint8Array) =>
    await write(`d-${cases.length}/celeba/celeba_full_64x64_5bit.npy`, bytes);
  await celeba(rand(3000, 7));
  train("celeba bad magic", "celeba5bit", /celeba_full_64x64_5bit\.npy/);
  const good = encodeNpy("|u1", [2, 64, 64, 3], new Uint8Array(2 * 64 * 64 * 3));
  await celeba(good.subarray(0, 5000));
  train("celeba truncated", "celeba5bit", /celeba_full_64x64_5bit\.npy.*truncated/);
  {
    const big = encodeNpy("|u1", [1, 64, 64, 3], new Uint8Array(64 * 64 * 3));
    const text = new TextDecoder("latin1").decode(big.subarray(0, 128)).replace(
      "(1, 64, 64, 3)",
      "(99999999, 64, 64, 3)",
    );
    const bytes = big.slice();
    bytes.set(new TextEncoder().encode(text.slice(0, 128)).subarray(0, 128), 0);
    await celeba(bytes);
  }
  train("celeba header declaring 1e8 images", "celeba5bit", /celeba_full_64x64_5bit\.npy/);
  await celeba(encodeNpy("|u1", [2, 64, 64, 3], new Uint8Array(2 * 64 * 64 * 3).fill(200)));
  train("celeba values above 31", "celeba5bit", /celeba_full_64x64_5bit\.npy/);
  await celeba(encodeNpy("|u1", [2, 64, 64], new Uint8Array(2 * 64 * 64)));
  train("celeba without a channel axis", "celeba5bit", /celeba_full_64x64_5bit\.npy.*shape/);

  // --- train options and output folders ----------------------------------------------------------------
  const opt = (name: string, args: string[], names: RegExp) =>
    cases.push({ name, task: "train", args: [...TINY, ...LIMITS, ...args], names });
  opt("unknown option", ["--bogus", "1"], /--bogus/);
  opt("negative steps", ["--steps", "-5"], /--steps "-5"/);
  opt("zero batch", ["--batch", "0"], /--batch "0"/);
  opt("NaN learning rate", ["--lr", "NaN"], /--lr "NaN"/);
  opt("negative hidden", ["--hidden", "-1"], /--hidden "-1"/);
  opt("huge hidden width", ["--hidden", "100000"], /--hidden "100000"/);
  opt("steps beyond safe integers", ["--steps", "1e20"], /--steps "1e20"/);
  opt("too many scales", ["--blocks", "1-1-1-1-1-1-1"], /--blocks "1-1-1-1-1-1-1"/);
  opt("coeff above 1", ["--coeff", "1.5"], /--coeff "1\.5"/);
  opt("empty seed", ["--seed", ""], /--seed ""/);
  opt("unknown dataset", ["--dataset", "cifar100"], /--dataset "cifar100"/);
  opt("unknown device", ["--device", "tpu"], /--device "tpu"/);
  opt("bad blocks", ["--blocks", "4-x"], /--blocks "4-x"/);
  opt("value missing", ["--steps"], /--steps/);
  opt("positional argument", ["mnist"], /mnist/);
  opt("huge batch", ["--batch", "100000000", "--out", `${dir}/out-huge-batch`], /--batch/);
  await write("a-file", "not a folder");
  opt("--out under a regular file", ["--out", `${dir}/a-file/run`], /--out .*a-file\/run/);
  opt(
    "--out outside the task's folders",
    ["--out", "/tmp/resflow-corpus-not-allowed"],
    /--out \/tmp\/resflow-corpus-not-allowed/,
  );
  opt("--out empty", ["--out", ""], /--out ""/);
  opt("--out in /proc", ["--out", "/proc/resflow-corpus"], /\/proc\/resflow-corpus/);
  opt(
    "--data-dir missing, mnist",
    ["--data-dir", `${dir}/no-such-dir`, "--out", `${dir}/o-nd-mnist`],
    /--data-dir .*no-such-dir/,
  );
  opt("--data-dir missing, cifar10", [
    "--dataset",
    "cifar10",
    "--data-dir",
    `${dir}/no-such-dir`,
    "--out",
    `${dir}/o-nd`,
  ], /no-such-dir/);

  // --- checkpoints: train --resume and sample --------------------------------------------------------------
  const headerLen = Number(new DataView(checkpoint.buffer, checkpoint.byteOffset).getBigUint64(0, true));
  const ckCases: [string, Uint8Array, RegExp][] = [
    ["checkpoint truncated", checkpoint.subarray(0, checkpoint.length - 100), /truncated|bytes|expected/],
    ["checkpoint empty", new Uint8Array(0), /./],
    ["checkpoint garbage", rand(5000, 8), /./],
    [
      "checkpoint header length huge",
      (() => {
        const b = checkpoint.slice();
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      })(),
      /header/,
    ],
    [
      "checkpoint header not JSON",
      (() => {
        const b = checkpoint.slice();
        b[8] = "x".charCodeAt(0);
        return b;
      })(),
      /JSON|header/,
    ],
    ["checkpoint tensor data cut", checkpoint.subarray(0, 8 + headerLen + 10), /./],
  ];
  const rewrite = (edit: (h: Record<string, Record<string, unknown>>) => void) => {
    const h = JSON.parse(new TextDecoder().decode(checkpoint.subarray(8, 8 + headerLen)));
    edit(h);
    const text = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + text.length + checkpoint.length - 8 - headerLen);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    out.set(checkpoint.subarray(8 + headerLen), 8 + text.length);
    return out;
  };
  const firstTensor = (h: Record<string, Record<string, unknown>>) =>
    Object.keys(h).find((k) => k !== "__metadata__")!;
  ckCases.push(
    [
      "checkpoint tensor flattened (same bytes, another shape)",
      rewrite((h) => {
        const conv = Object.keys(h).find((k) =>
          !k.startsWith("adam.") && (h[k].shape as number[] | undefined)?.length === 4
        )!;
        h[conv].shape = [(h[conv].shape as number[]).reduce((a, b) => a * b, 1)];
      }),
      /./,
    ],
    ["checkpoint tensor of an unknown dtype", rewrite((h) => (h[firstTensor(h)].dtype = "Q7")), /./],
    ["checkpoint without metadata", rewrite((h) => delete h.__metadata__), /./],
    ["checkpoint config not JSON", rewrite((h) => (h.__metadata__.config = "{not json")), /./],
    ["checkpoint offsets past the end", rewrite((h) => (h[firstTensor(h)].data_offsets = [0, 1e9])), /./],
  );
  for (const [name, bytes, what] of ckCases) {
    const run = `${dir}/ck-${cases.length}`;
    const path = await write(`ck-${cases.length}/checkpoint.safetensors`, bytes);
    cases.push({
      name: `train --resume: ${name}`,
      task: "train",
      args: [...TINY, ...LIMITS, "--out", run, "--resume"],
      names: new RegExp(`${escape(path)}.*(${what.source})`),
    });
    cases.push({
      name: `sample: ${name}`,
      task: "sample",
      args: ["--checkpoint", path, "--device", "cpu", "--n", "2", "--out", `${dir}/s-${cases.length}.png`],
      names: new RegExp(`${escape(path)}.*(${what.source})`),
    });
  }
  if (HAS_WEBGPU) {
    // The default device: WebGPU starts before the checkpoint is read, and must print nothing itself.
    const path = await write("ck-webgpu/checkpoint.safetensors", checkpoint.subarray(0, 50));
    const args = TINY.filter((_, k) => k > 1); // without --device cpu
    cases.push({
      name: "train --resume on WebGPU: truncated checkpoint",
      task: "train",
      args: [...args, ...LIMITS, "--out", `${dir}/ck-webgpu`, "--resume"],
      names: new RegExp(escape(path)),
    });
    cases.push({
      name: "sample on WebGPU: truncated checkpoint",
      task: "sample",
      args: ["--checkpoint", path, "--n", "2"],
      names: new RegExp(escape(path)),
    });
  }
  {
    // A checkpoint of another architecture: --hidden 16 where it was written with 8.
    const run = `${dir}/ck-shape`;
    const path = await write("ck-shape/checkpoint.safetensors", checkpoint);
    cases.push({
      name: "train --resume: checkpoint of another shape",
      task: "train",
      args: [...TINY, ...LIMITS, "--hidden", "16", "--out", run, "--resume"],
      names: new RegExp(escape(path)),
    });
    const ckDir = `${dir}/ck-dir.safetensors`;
    await Deno.mkdir(ckDir, { recursive: true });
    cases.push({
      name: "sample: checkpoint is a folder",
      task: "sample",
      args: ["--checkpoint", ckDir, "--device", "cpu"],
      names: /ck-dir\.safetensors/,
    });
    cases.push({
      name: "sample: checkpoint missing",
      task: "sample",
      args: ["--checkpoint", `${dir}/nope.safetensors`, "--device", "cpu"],
      names: /nope\.safetensors/,
    });
    cases.push({
      name: "sample: --run without a checkpoint",
      task: "sample",
      args: ["--run", `${dir}/a-run-never-made`, "--device", "cpu"],
      names: /a-run-never-made/,
    });
  }
  {
    // NaN in the first float32 tensor: refused on load, naming the file and the tensor.
    const header = JSON.parse(new TextDecoder().decode(checkpoint.subarray(8, 8 + headerLen)));
    const first = Object.entries(header).find(([k, v]) =>
      k !== "__metadata__" && (v as { dtype: string }).dtype === "F32"
    );
    const nan = checkpoint.slice();
    const at = 8 + headerLen + (first![1] as { data_offsets: number[] }).data_offsets[0];
    new DataView(nan.buffer).setFloat32(at, NaN, true);
    const path = await write("ck-nan/checkpoint.safetensors", nan);
    cases.push({
      name: "train --resume: checkpoint holding NaN",
      task: "train",
      args: [...TINY, ...LIMITS, "--steps", "2", "--out", `${dir}/ck-nan`, "--resume"],
      names: new RegExp(`${escape(path)}.*(NaN|finite)`),
    });
  }
  const ok = await write("good/checkpoint.safetensors", checkpoint);
  await Deno.symlink("/dev/zero", `${dir}/zero.safetensors`);
  cases.push({
    name: "sample: checkpoint a link to /dev/zero",
    task: "sample",
    args: ["--checkpoint", `${dir}/zero.safetensors`, "--device", "cpu"],
    names: /zero\.safetensors/,
  });
  const sample = (name: string, args: string[], names: RegExp) =>
    cases.push({
      name: `sample: ${name}`,
      task: "sample",
      args: ["--checkpoint", ok, "--device", "cpu", ...args],
      names,
    });
  sample("zero images", ["--n", "0"], /--n "0"/);
  sample("negative temperature", ["--temperature", "-1"], /--temperature "-1"/);
  sample("NaN temperature", ["--temperature", "NaN"], /--temperature "NaN"/);
  sample("unknown weights", ["--weights", "best"], /--weights "best"/);
  sample("unknown device", ["--device", "tpu"], /--device "tpu"/);
  sample("--out under a regular file", ["--out", `${dir}/a-file/x.png`], /a-file/);
  sample("--out is a folder", ["--out", `${dir}/`], /--out/);
  sample("huge scale", ["--scale", "100000"], /--scale "100000"/);
  cases.push({
    name: "sample: no checkpoint given",
    task: "sample",
    args: ["--device", "cpu"],
    names: /--checkpoint/,
  });

  // --- data ------------------------------------------------------------------------------------------------
  const data = (name: string, args: string[], names: RegExp) =>
    cases.push({ name: `data: ${name}`, task: "data", args, names });
  data("unknown dataset", ["cifar100"], /"cifar100"/);
  data("two names", ["mnist", "svhn"], /2 names/);
  data("no name", [], /no dataset named/);
  data("unknown option", ["mnist", "--bogus"], /--bogus/);
  data("bad --base-url", ["cifar10", "--base-url", "not a url"], /--base-url "not a url"/);
  data("unreachable mirror", [
    "cifar10",
    "--data-dir",
    "data/.corpus-unreachable",
    "--base-url",
    "http://127.0.0.1:9",
  ], /127\.0\.0\.1:9/);
  data(
    "--data-dir outside the task's folders",
    ["cifar10", "--data-dir", "/tmp/resflow-corpus-data"],
    /\/tmp\/resflow-corpus-data/,
  );
  data(
    "mnist check of damaged files",
    ["mnist", "--data-dir", await mnistDamaged(dir)],
    /train-images-idx3-ubyte/,
  );

  // --- reproduce ------------------------------------------------------------------------------------------
  const rep = (name: string, args: string[], names: RegExp) =>
    cases.push({ name: `reproduce: ${name}`, task: "reproduce", args, names });
  rep("unknown preset", ["--preset", "huge"], /--preset huge/);
  rep("unknown experiment", ["--only", "nonsense"], /--only nonsense/);
  rep("negative seed", ["--seed", "-1", "--preset", "smoke"], /--seed "-1"/);
  rep("bad shard", ["--shard", "3/2", "--preset", "smoke"], /--shard 3\/2/);
  rep("unknown device", ["--device", "tpu", "--preset", "smoke"], /--device "tpu"/);
  rep("unknown option", ["--presett", "smoke"], /--presett/);
  rep(
    "missing --data-dir",
    ["--preset", "smoke", "--data-dir", `${dir}/no-such-data`],
    /--data-dir .*no-such-data/,
  );
  await write("rep-svhn/svhn/train_32x32.mat", rand(3000, 9));
  await write("rep-svhn/svhn/test_32x32.mat", rand(3000, 10));
  rep("damaged SVHN in --data-dir", [
    "--preset",
    "smoke",
    "--only",
    "hybrid",
    "--data-dir",
    `${dir}/rep-svhn`,
  ], /svhn\/train_32x32\.mat/);
  await write(
    "rep-mnist/mnist/t10k-images-idx3-ubyte",
    encodeIdx("uint8", [1, 28, 28], new Uint8Array(784)).subarray(0, 50),
  );
  rep(
    "damaged MNIST in --data-dir",
    ["--preset", "smoke", "--data-dir", `${dir}/rep-mnist`],
    /rep-mnist\/mnist/,
  );
  rep("--results under a regular file", [
    "--preset",
    "smoke",
    "--only",
    "memory",
    "--results",
    `${dir}/a-file/res`,
  ], /a-file\/res/);
  rep("--results outside the task's folders", [
    "--preset",
    "smoke",
    "--only",
    "memory",
    "--results",
    "/tmp/resflow-corpus-results",
  ], /\/tmp\/resflow-corpus-results/);
  return cases;
}

async function mnistDamaged(dir: string): Promise<string> {
  const d = `${dir}/d-data-mnist`;
  await Deno.mkdir(`${d}/mnist`, { recursive: true });
  await Deno.writeFile(`${d}/mnist/train-images-idx3-ubyte`, new Uint8Array(100));
  return d;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

interface Outcome {
  readonly code: number;
  readonly stderr: string;
  readonly ms: number;
  readonly rssKb: number | null;
}

async function runCase(c: Case, scratch: string, i: number): Promise<Outcome> {
  const rssFile = `${scratch}/rss-${i}`;
  const deno = [Deno.execPath(), "task", "-q", c.task, ...c.args];
  const cmd = HAS_TIME ? [TIME, "-f", "%M", "-o", rssFile, ...deno] : deno;
  const t0 = performance.now();
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env: { NO_COLOR: "1", RESFLOW_DATA_DIR: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CASE_TIMEOUT_MS),
  }).output();
  const ms = performance.now() - t0;
  const rss = HAS_TIME
    ? Number((await Deno.readTextFile(rssFile).catch(() => "")).trim().split("\n").pop())
    : NaN;
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    ms,
    rssKb: Number.isFinite(rss) ? rss : null,
  };
}

/** Why an outcome fails the bar, or null when it passes. */
function judge(c: Case, o: Outcome): string | null {
  const lines = o.stderr.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== "");
  if (o.code === 0) return `exit status 0`;
  if (o.ms > CASE_TIMEOUT_MS) return `took ${(o.ms / 1000).toFixed(1)} s`;
  if (o.rssKb !== null && o.rssKb > MAX_RSS_KB) return `peak memory ${o.rssKb} kB`;
  if (lines.some((l) => /^\s+at /.test(l) || /Uncaught|error: /.test(l))) {
    return `a stack trace:\n${o.stderr}`;
  }
  if (lines.length !== 1) return `${lines.length} lines on stderr, expected 1:\n${o.stderr}`;
  if (!c.names.test(lines[0])) return `the line does not match ${c.names}: ${lines[0]}`;
  return null;
}

Deno.test("malformed inputs: each ends non-zero with one clear line, no stack trace", async (t) => {
  const dir = `${ROOT}/runs/.malformed-inputs-${Deno.pid}`;
  const scratch = await Deno.makeTempDir({ prefix: "resflow-corpus-" });
  await Deno.mkdir(dir, { recursive: true });
  try {
    // A real checkpoint to damage: one step of the tiny model.
    const made = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "train", ...TINY, ...LIMITS, "--out", `${dir}/seed-run`],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    assertTrue(made.code === 0, new TextDecoder().decode(made.stderr));
    const checkpoint = await Deno.readFile(`${dir}/seed-run/checkpoint.safetensors`);
    await loadSafetensors(`${dir}/seed-run/checkpoint.safetensors`); // the undamaged one reads
    const all = await buildCorpus(dir, checkpoint);
    const cases = all.filter((c) => !c.ignore);
    const results: (string | null)[] = new Array(cases.length).fill(null);
    const outcomes: Outcome[] = new Array(cases.length);
    let next = 0;
    await Promise.all(Array.from({ length: POOL }, async () => {
      while (next < cases.length) {
        const i = next++;
        outcomes[i] = await runCase(cases[i], scratch, i);
        results[i] = judge(cases[i], outcomes[i]);
      }
    }));
    if (Deno.env.get("CORPUS_TIMES")) {
      const order = [...outcomes.keys()].sort((a, b) => outcomes[b].ms - outcomes[a].ms);
      for (const i of order.slice(0, 15)) {
        console.log(`${(outcomes[i].ms / 1000).toFixed(1)} s ${outcomes[i].rssKb} kB ${cases[i].name}`);
      }
    }
    for (const c of all.filter((c) => c.ignore)) {
      await t.step({ name: `${c.task}: ${c.name}`, ignore: true, fn: () => {} });
    }
    for (let i = 0; i < cases.length; i++) {
      await t.step(`${cases[i].task}: ${cases[i].name}`, () => {
        assertTrue(results[i] === null, `${cases[i].task} ${cases[i].args.join(" ")}\n  ${results[i]}`);
      });
    }
    assertTrue(cases.length >= 60, `${cases.length} cases`);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    await Deno.remove(`${ROOT}/data/.corpus-unreachable`, { recursive: true }).catch(() => {});
  }
});
