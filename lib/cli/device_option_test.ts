import { assertEquals, assertThrows } from "../testing/asserts.ts";
import { CLI_DEVICE_KINDS, openDevice, parseDeviceOption } from "./device_option.ts";

Deno.test("--device", async (t) => {
  await t.step("every listed kind parses to itself", () => {
    for (const k of CLI_DEVICE_KINDS) assertEquals(parseDeviceOption(k), k);
  });
  await t.step("anything else is an OptionError naming the value and the kinds", () => {
    assertThrows(
      () => parseDeviceOption("gpu"),
      /^OptionError: Cannot use --device "gpu": expected auto, webgpu, wasm or cpu$/,
    );
    assertThrows(() => parseDeviceOption("cpu64"), /expected auto, webgpu, wasm or cpu/);
  });
  await t.step("openDevice opens the kind asked for", async () => {
    assertEquals((await openDevice("cpu")).name, "cpu");
  });
});
