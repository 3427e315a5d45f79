/** Get and set a model's tensors by name. */
import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { createDevice } from "../engine/devices.ts";
import { tensor } from "../engine/ops/creation.ts";
import { Rng } from "../engine/random.ts";
import { makeConfig } from "./config.ts";
import { ResidualFlow } from "./model.ts";
import { namedTensors, setTensor } from "./named.ts";

Deno.test("named tensors: every parameter and buffer by name; set by name with shape checks", async (t) => {
  const device = await createDevice("cpu");
  const model = new ResidualFlow(
    makeConfig({ inputShape: [1, 8, 8], nBlocks: [1, 1], hiddenChannels: 4, fcEnd: false }),
    { rng: new Rng(0), device },
  );
  const named = namedTensors(model);
  await t.step("names and kinds", () => {
    assertEquals(
      [...named.values()].filter((n) => n.kind === "parameter").length,
      model.parameters().length,
    );
    assertEquals([...named.values()].filter((n) => n.kind === "buffer").length, model.buffers().length);
    assertEquals(named.get("2.nnet.0.weight")?.kind, "parameter");
    assertEquals(named.get("2.nnet.0.u")?.kind, "buffer");
    assertEquals(named.get("1.initialized")?.value, null, "ActNorm before its first batch");
  });
  await t.step("set a parameter from host data, and from a tensor", async () => {
    setTensor(model, "1.bias", { data: [0.25], shape: [1] });
    assertEquals(Array.from(await model.parameters().find((p) => p.name === "1.bias")!.value.read()), [0.25]);
    setTensor(model, "1.weight", tensor([-0.5], [1], device));
    assertEquals(Array.from(await namedTensors(model).get("1.weight")!.value!.read()), [-0.5]);
  });
  await t.step("an empty buffer takes any shape; a filled one keeps its own", () => {
    setTensor(model, "1.initialized", { data: [1], shape: [] });
    assertTrue(namedTensors(model).get("1.initialized")!.value !== null);
    assertThrows(
      () => setTensor(model, "2.nnet.0.u", { data: [1, 2], shape: [2] }),
      /Cannot set tensor 2\.nnet\.0\.u: shape \[2\] given, the module's is \[256\]/,
    );
  });
  await t.step("unknown names and wrong parameter shapes are errors", () => {
    assertThrows(
      () => setTensor(model, "9.nope", { data: [1], shape: [1] }),
      /Cannot set tensor 9\.nope: the module has no parameter or buffer of that name/,
    );
    assertThrows(() => setTensor(model, "1.bias", { data: [1, 2], shape: [2] }), /shape \[2\] given/);
  });
  model.dispose();
});
