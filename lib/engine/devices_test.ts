/** createDevice: every kind, "auto" choosing WebGPU when an adapter exists and the CPU otherwise. */
import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { createDevice, DEVICE_KINDS, type DeviceKind } from "./devices.ts";

/** Whether this machine has a WebGPU adapter (Mesa's llvmpipe counts). */
async function hasAdapter(): Promise<boolean> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  return gpu ? (await gpu.requestAdapter()) !== null : false;
}

Deno.test("createDevice", async (t) => {
  await t.step("cpu, cpu64 and meta", async () => {
    assertEquals((await createDevice("cpu")).backend.dtype, "float32");
    assertEquals((await createDevice("cpu64")).backend.dtype, "float64");
    assertEquals((await createDevice("meta")).name, "meta");
  });

  await t.step("wasm is float32 with its own name", async () => {
    const dev = await createDevice("wasm");
    assertEquals([dev.name, dev.backend.dtype], ["wasm", "float32"]);
  });

  await t.step("auto is WebGPU exactly when an adapter exists", async () => {
    const reasons: string[] = [];
    const dev = await createDevice("auto", { onFallback: (r) => reasons.push(r) });
    if (await hasAdapter()) {
      assertEquals([dev.name, reasons.length], ["webgpu", 0]);
    } else {
      assertEquals([dev.name, dev.backend.dtype, reasons.length], ["cpu", "float32", 1]);
    }
  });

  await t.step("auto falls back to the CPU, with the reason, when no adapter is returned", async () => {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) return; // no WebGPU at all: the previous step already took the fallback path
    const original = Object.getOwnPropertyDescriptor(gpu, "requestAdapter");
    Object.defineProperty(gpu, "requestAdapter", { value: () => Promise.resolve(null), configurable: true });
    try {
      const reasons: string[] = [];
      const dev = await createDevice("auto", { onFallback: (r) => reasons.push(r) });
      assertEquals([dev.name, dev.backend.dtype], ["cpu", "float32"]);
      assertEquals(reasons.length, 1);
      assertTrue(/requestAdapter\(\) returned null/.test(reasons[0]), reasons[0]);
      await assertRejects(() => createDevice("webgpu"), /requestAdapter\(\) returned null/);
    } finally {
      if (original) Object.defineProperty(gpu, "requestAdapter", original);
      else delete (gpu as unknown as Record<string, unknown>).requestAdapter;
    }
  });

  await t.step("an unknown kind names the accepted ones", async () => {
    await assertRejects(
      () => createDevice("gpu" as DeviceKind),
      new RegExp(`Cannot create device "gpu": expected one of ${DEVICE_KINDS.join(", ")}`),
    );
  });
});
