/**
 * The options of the authors' `train_img.py` (its pickled `argparse.Namespace`) turned into our model
 * configuration, with the authors' code's own choices where they differ from the paper's (SPEC 1.12): the
 * MNIST logit α of 1e-6 (0.05 elsewhere), N ~ Poisson(λ) by default, the evaluation estimator of 20 exact
 * terms then the roulette, the power iteration to an absolute and relative tolerance `sn_tol`.
 *
 * Every option that changes the architecture or the evaluation is read; an option value our model
 * cannot represent is an error naming it. Options missing from the file take the script's defaults
 * (older checkpoints pickle fewer options); options that only steer training are listed in
 * {@link TRAINING_ONLY_ARGS} and ignored; any other name is reported in `unknownArgs`.
 * @module
 */
import { DEFAULT_ESTIMATOR, makeConfig, type ResidualFlowConfig } from "../flow/config.ts";
import type { ActivationName } from "../flow/config.ts";

/** Dataset names of the authors' script mapped to ours (null: no loader in this suite). */
export const OFFICIAL_DATASETS: Readonly<Record<string, string | null>> = {
  mnist: "mnist",
  cifar10: "cifar10",
  svhn: "svhn",
  imagenet32: "imagenet32",
  imagenet64: "imagenet64",
  celeba_5bit: "celeba5bit",
  celebahq: null,
};

/**
 * Image channels, image side the script forces (null: `imagesize` is used; the script resizes MNIST,
 * CIFAR-10 and SVHN to it, which this suite does not, so `deno task evaluate` refuses a model whose input
 * differs from the stored images) and pixel levels per dataset.
 */
const DATASET_SHAPES: Readonly<
  Record<string, { c: number; side: number | null; nvals: number }>
> = {
  mnist: { c: 1, side: null, nvals: 256 },
  cifar10: { c: 3, side: null, nvals: 256 },
  svhn: { c: 3, side: null, nvals: 256 },
  imagenet32: { c: 3, side: 32, nvals: 256 },
  imagenet64: { c: 3, side: 64, nvals: 256 },
  celeba_5bit: { c: 3, side: 64, nvals: 32 },
};

/** The defaults of the script's parser for every option we read (used when a file lacks one). */
export const OFFICIAL_ARG_DEFAULTS: Readonly<Record<string, unknown>> = {
  data: "cifar10",
  imagesize: 32,
  nbits: 8,
  block: "resblock",
  coeff: 0.98,
  vnorms: "2222",
  n_lipschitz_iters: null,
  sn_tol: 1e-3,
  learn_p: false,
  n_power_series: null,
  factor_out: false,
  n_dist: "poisson",
  n_samples: 1,
  n_exact_terms: 2,
  neumann_grad: true,
  mem_eff: true,
  act: "swish",
  idim: 512,
  nblocks: "16-16-16",
  squeeze_first: false,
  actnorm: true,
  fc_actnorm: false,
  batchnorm: false,
  dropout: 0,
  fc: false,
  kernels: "3-1-3",
  logit_transform: true,
  add_noise: true,
  quadratic: false,
  fc_end: true,
  fc_idim: 128,
  preact: true,
  padding: 0,
  first_resblock: true,
  task: "density",
};

/** Options that only steer training, logging or data loading: read by nothing here. */
export const TRAINING_ONLY_ARGS: readonly string[] = [
  "dataroot",
  "var_reduc_lr",
  "cdim",
  "optimizer",
  "scheduler",
  "nepochs",
  "batchsize",
  "lr",
  "wd",
  "warmup_iters",
  "annealing_iters",
  "save",
  "val_batchsize",
  "seed",
  "ema_val",
  "update_freq",
  "scale_dim",
  "rcrop_pad_mode",
  "padding_dist",
  "resume",
  "begin_epoch",
  "nworkers",
  "print_freq",
  "vis_freq",
];

/** Activations of the script (`--act`) that our model has. */
const ACTIVATIONS: Readonly<Record<string, ActivationName>> = {
  swish: "lipswish",
  elu: "elu",
  softplus: "softplus",
  relu: "relu",
  identity: "identity",
};

/** What {@link officialConfig} derives from a checkpoint's options. */
export interface OfficialModelSpec {
  /** Our model configuration. */
  readonly config: ResidualFlowConfig;
  /** Our dataset name for the script's `data`. */
  readonly dataset: string;
  /** The script's `data` value. */
  readonly officialData: string;
  /** Scales the authors' model builds (for the name mapping). */
  readonly nScales: number;
  /** The options as read, defaults filled in for missing ones. */
  readonly args: Readonly<Record<string, unknown>>;
  /** Options present in the file that we neither read nor know as training-only. */
  readonly unknownArgs: readonly string[];
}

/** A value as Python prints it (None, True, 'text' in double quotes). */
function describe(v: unknown): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** Scales of the authors' builder: halvings while H, W >= 4, capped by the number of block groups. */
export function officialScales(side: number, groups: number): number {
  let n = 0;
  let h = side;
  while (h >= 4) {
    n++;
    h = Math.floor(h / 2);
  }
  return Math.min(groups, n);
}

/**
 * Our configuration for the options `raw` of an authors' checkpoint (`args`, as a plain record).
 * Throws "Cannot use the checkpoint's options: ..." naming every option whose value is not supported.
 */
export function officialConfig(raw: Readonly<Record<string, unknown>>): OfficialModelSpec {
  const args: Record<string, unknown> = { ...OFFICIAL_ARG_DEFAULTS, ...raw };
  const known = new Set([...Object.keys(OFFICIAL_ARG_DEFAULTS), ...TRAINING_ONLY_ARGS]);
  const unknownArgs = Object.keys(raw).filter((k) => !known.has(k)).sort();
  const problems: string[] = [];
  const bad = (name: string, expected: string) =>
    problems.push(`${name}=${describe(args[name])} (supported: ${expected})`);
  const num = (name: string, test: (v: number) => boolean, expected: string): number => {
    const v = args[name];
    if (typeof v !== "number" || !test(v)) {
      bad(name, expected);
      return NaN;
    }
    return v;
  };
  const bool = (name: string): boolean => {
    const v = args[name];
    if (typeof v !== "boolean") {
      bad(name, "True or False");
      return false;
    }
    return v;
  };
  const requireValue = (name: string, value: unknown, expected: string) => {
    if (args[name] !== value) bad(name, expected);
  };

  const data = String(args.data);
  const ours = OFFICIAL_DATASETS[data];
  const shape = DATASET_SHAPES[data];
  if (!ours || !shape) {
    bad("data", Object.keys(DATASET_SHAPES).join(", ") + " (celebahq has no loader in this suite)");
  }
  const imagesize = num("imagesize", (v) => Number.isInteger(v) && v >= 4, "an integer >= 4");
  const side = shape?.side ?? imagesize;
  requireValue("task", "density", '"density" (the classifier heads of hybrid models are not mapped)');
  requireValue("block", "resblock", '"resblock" (the coupling baseline\'s names are not mapped)');
  requireValue("padding", 0, "0 (padded channels are not supported)");
  requireValue("add_noise", true, "True (uniform dequantisation)");
  requireValue("vnorms", "2222", '"2222" (spectral norms; mixed norms are not mapped)');
  requireValue("learn_p", false, "False");
  requireValue("fc", false, "False (fully connected blocks in every scale are not supported)");
  requireValue("fc_actnorm", false, "False");
  requireValue("batchnorm", false, "False");
  requireValue("dropout", 0, "0");
  requireValue("quadratic", false, "False (the invertible 1x1 convolutions' names are not mapped)");
  requireValue("first_resblock", true, "True");
  requireValue("n_samples", 1, "1 (one roulette draw per block)");
  const act = ACTIVATIONS[String(args.act)];
  if (!act) bad("act", Object.keys(ACTIVATIONS).join(", "));
  const kernelText = String(args.kernels);
  const kernels = kernelText.split("-").map(Number);
  if (kernels.length !== 3 || kernels.some((k) => !Number.isInteger(k) || k < 1 || k % 2 === 0)) {
    bad("kernels", "three odd sizes such as 3-1-3");
  }
  const nBlocks = String(args.nblocks).split("-").map(Number);
  if (!nBlocks.length || nBlocks.some((b) => !Number.isInteger(b) || b < 0)) {
    bad("nblocks", "counts separated by '-', e.g. 16-16-16");
  }
  const idim = num("idim", (v) => Number.isInteger(v) && v >= 1, "a positive integer");
  const fcIdim = num("fc_idim", (v) => Number.isInteger(v) && v >= 1, "a positive integer");
  const coeff = num("coeff", (v) => v > 0 && v < 1, "a number in (0, 1)");
  const tol = num("sn_tol", (v) => v > 0, "a number > 0");
  const nExact = num("n_exact_terms", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
  const nDist = String(args.n_dist);
  if (nDist !== "poisson" && nDist !== "geometric") bad("n_dist", "poisson or geometric");
  const nIters = args.n_lipschitz_iters;
  if (nIters !== null && !(typeof nIters === "number" && Number.isInteger(nIters) && nIters >= 0)) {
    bad("n_lipschitz_iters", "None or an integer >= 0");
  }
  const nPower = args.n_power_series;
  if (nPower !== null && !(typeof nPower === "number" && Number.isInteger(nPower) && nPower >= 1)) {
    bad("n_power_series", "None or an integer >= 1");
  }
  const flags = Object.fromEntries(
    [
      "factor_out",
      "squeeze_first",
      "actnorm",
      "logit_transform",
      "fc_end",
      "preact",
      "neumann_grad",
      "mem_eff",
    ]
      .map((k) => [k, bool(k)]),
  ) as Record<string, boolean>;
  const innerSide = flags.squeeze_first ? side / 2 : side;
  if (flags.squeeze_first && side % 2 !== 0) bad("squeeze_first", "False for an odd image size");
  const nScales = officialScales(innerSide, nBlocks.length);
  if (nScales < 2) {
    problems.push(
      `nblocks=${
        describe(args.nblocks)
      } with imagesize ${side} gives ${nScales} scale(s) (supported: at least 2)`,
    );
  }
  if (problems.length) {
    throw new Error(`Cannot use the checkpoint's options: ${problems.join("; ")}`);
  }
  const config = makeConfig({
    inputShape: [shape!.c, side, side],
    nBlocks: nBlocks.slice(0, nScales),
    hiddenChannels: idim,
    kernels: [kernels[0], kernels[1], kernels[2]],
    activation: act!,
    coeff,
    preact: flags.preact,
    actnorm: flags.actnorm,
    fcEnd: flags.fc_end,
    fcHidden: fcIdim,
    fcBlocks: 4,
    factorOut: flags.factor_out,
    squeezeFirst: flags.squeeze_first,
    logitAlpha: flags.logit_transform ? (data === "mnist" ? 1e-6 : 0.05) : null,
    nvals: shape!.nvals,
    block: "resblock",
    quadratic: false,
    estimator: {
      ...DEFAULT_ESTIMATOR,
      kind: nPower === null ? "unbiased" : "truncated",
      nTruncated: nPower === null ? DEFAULT_ESTIMATOR.nTruncated : nPower as number,
      nDist: nDist as "poisson" | "geometric",
      // The script's blocks are built with λ = 2 and p = 0.5; the loader checks the stored values.
      nDistParam: nDist === "poisson" ? 2 : 0.5,
      nExactTerms: nExact,
      evalExactTerms: 20,
      neumannGrad: flags.neumann_grad,
      backwardInForward: flags.mem_eff,
    },
    spectral: { nIterations: nIters as number | null, tol, maxIterations: 200 },
  });
  return { config, dataset: ours!, officialData: data, nScales, args, unknownArgs };
}
