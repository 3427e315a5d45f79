/**
 * The authors' options onto our configuration: their code's choices (MNIST α 1e-6, 0.05 elsewhere;
 * Poisson N; evaluation with 20 exact terms; sn_tol), the script's defaults for missing options, the
 * datasets whose size the script forces, and one error naming every unsupported value.
 */
import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { OFFICIAL_ARG_DEFAULTS, officialConfig, officialScales } from "./args.ts";

Deno.test("official args: configuration from the authors' options", async (t) => {
  await t.step("the fixture's MNIST run", () => {
    const s = officialConfig({
      data: "mnist",
      imagesize: 28,
      nblocks: "2-2",
      idim: 32,
      fc_idim: 64,
      sn_tol: 1e-3,
      seed: 7,
      lr: 1e-3,
    });
    assertEquals(s.dataset, "mnist");
    assertEquals(s.config.inputShape, [1, 28, 28]);
    assertEquals(s.config.nBlocks, [2, 2]);
    assertEquals(s.config.hiddenChannels, 32);
    assertEquals(s.config.fcHidden, 64);
    assertEquals(s.config.logitAlpha, 1e-6);
    assertEquals(s.config.activation, "lipswish");
    assertEquals(s.config.estimator.nDist, "poisson");
    assertEquals(s.config.estimator.evalExactTerms, 20);
    assertEquals(s.config.spectral, { nIterations: null, tol: 1e-3, maxIterations: 200 });
    assertEquals(s.unknownArgs, [], "seed and lr are known training-only options");
  });
  await t.step("the script's defaults (CIFAR-10, 16-16-16 of width 512, α 0.05)", () => {
    const s = officialConfig({});
    assertEquals(s.args.data, OFFICIAL_ARG_DEFAULTS.data);
    assertEquals(s.config.inputShape, [3, 32, 32]);
    assertEquals(s.config.nBlocks, [16, 16, 16]);
    assertEquals(s.config.hiddenChannels, 512);
    assertEquals(s.config.fcHidden, 128);
    assertEquals(s.config.logitAlpha, 0.05);
  });
  await t.step("ImageNet 64 and CelebA 5-bit: sizes the script forces", () => {
    const im = officialConfig({
      data: "imagenet64",
      imagesize: 32,
      nblocks: "32-32-32",
      factor_out: true,
      squeeze_first: true,
    });
    assertEquals(im.config.inputShape, [3, 64, 64]);
    assertEquals([im.config.squeezeFirst, im.config.factorOut], [true, true]);
    assertEquals(im.nScales, 3);
    const ce = officialConfig({ data: "celeba_5bit", act: "elu", logit_transform: false });
    assertEquals([ce.dataset, ce.config.nvals, ce.config.activation, ce.config.logitAlpha], [
      "celeba5bit",
      32,
      "elu",
      null,
    ]);
  });
  await t.step("options that change the estimator or the power iteration", () => {
    const s = officialConfig({ n_power_series: 10, n_dist: "geometric", n_lipschitz_iters: 5, sn_tol: 1e-4 });
    assertEquals(s.config.estimator.kind, "truncated");
    assertEquals(s.config.estimator.nTruncated, 10);
    assertEquals(s.config.estimator.nDist, "geometric");
    assertEquals(s.config.spectral.nIterations, 5);
    assertEquals(s.config.spectral.tol, 1e-4);
  });
  await t.step("unknown options are reported, not fatal", () => {
    assertEquals(officialConfig({ data: "mnist", imagesize: 28, some_new_flag: 1 }).unknownArgs, [
      "some_new_flag",
    ]);
  });
  await t.step("unsupported values: one error naming each", () => {
    assertThrows(
      () => officialConfig({ data: "celebahq", vnorms: "2222f", block: "coupling", quadratic: true }),
      /Cannot use the checkpoint's options: data="celebahq" .*block="coupling".*vnorms="2222f".*quadratic=True/,
    );
    assertThrows(() => officialConfig({ kernels: "3-1" }), /kernels="3-1" \(supported: three odd sizes/);
    assertThrows(() => officialConfig({ n_samples: 4 }), /n_samples=4/);
    assertThrows(() => officialConfig({ nblocks: "4" }), /nblocks="4" with imagesize 32 gives 1 scale/);
  });
  await t.step("scales as the authors' builder counts them", () => {
    assertEquals(
      [officialScales(28, 5), officialScales(32, 5), officialScales(7, 5), officialScales(64, 3)],
      [
        3,
        4,
        1,
        3,
      ],
    );
  });
});
