import { assertEquals } from "../testing/asserts.ts";
import { makeConfig, upgradeLegacyConfig } from "./config.ts";

Deno.test("upgradeLegacyConfig: the estimator's old memEff key reads as backwardInForward", async (t) => {
  await t.step("memEff is renamed, the value kept, the other fields untouched", () => {
    const old = { nBlocks: [1], estimator: { kind: "unbiased", memEff: false } };
    assertEquals(upgradeLegacyConfig(old), {
      nBlocks: [1],
      estimator: { kind: "unbiased", backwardInForward: false },
    });
  });
  await t.step("a current config, or anything that is not one, is returned as it is", () => {
    const cur = { estimator: { backwardInForward: true } };
    assertEquals(upgradeLegacyConfig(cur), cur);
    assertEquals(upgradeLegacyConfig(null), null);
    assertEquals(upgradeLegacyConfig({ estimator: null }), { estimator: null });
  });
  await t.step("makeConfig accepts a legacy estimator and gives the current config", () => {
    const legacy = makeConfig({
      inputShape: [1, 28, 28],
      estimator: { memEff: false } as unknown as ReturnType<typeof makeConfig>["estimator"],
    });
    assertEquals(legacy.estimator.backwardInForward, false);
    assertEquals("memEff" in legacy.estimator, false);
    assertEquals(legacy, makeConfig({ inputShape: [1, 28, 28], estimator: { ...legacy.estimator } }));
  });
});
