/**
 * createDevice: every kind; "auto" choosing WebGPU on a hardware adapter, the wasm backend on a software
 * rasterizer and the CPU without an adapter.
 */
import { assertEquals, assertRejects, assertTrue } from "../testing/asserts.ts";
import { autoDeviceChoice, createDevice, DEVICE_KINDS, type DeviceKind } from "./devices.ts";
import { isSoftwareAdapter } from "./webgpu/gemm_select.ts";

/** This machine's default WebGPU adapter (Mesa's llvmpipe counts), or null. */
async function defaultAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  return gpu ? await gpu.requestAdapter() : null;
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

  await t.step(
    "auto: WebGPU on hardware, wasm on a software rasterizer, the CPU without an adapter",
    async () => {
      const reasons: string[] = [];
      const dev = await createDevice("auto", { onFallback: (r) => reasons.push(r) });
      const adapter = await defaultAdapter();
      if (adapter && isSoftwareAdapter(adapter.info)) {
        assertEquals([dev.name, reasons.length], ["wasm", 1]);
        assertTrue(/software rasterizer/.test(reasons[0]), reasons[0]);
      } else if (adapter) {
        assertEquals([dev.name, reasons.length], ["webgpu", 0]);
      } else {
        assertEquals([dev.name, dev.backend.dtype, reasons.length], ["cpu", "float32", 1]);
      }
    },
  );

  await t.step("the auto rule, from adapter facts alone", () => {
    const llvmpipe = { vendor: "mesa", description: "llvmpipe (LLVM 15.0.6, 256 bits)" };
    const choice = autoDeviceChoice(llvmpipe, null);
    assertEquals(choice.kind, "wasm");
    assertTrue(
      /software rasterizer \(llvmpipe \(LLVM 15\.0\.6, 256 bits\)\)/.test(choice.reason!),
      choice.reason!,
    );
    assertEquals(autoDeviceChoice({ vendor: "google", device: "SwiftShader Device" }, null).kind, "wasm");
    assertEquals(autoDeviceChoice({ isFallbackAdapter: true }, null).kind, "wasm");
    assertEquals(autoDeviceChoice({ vendor: "nvidia", description: "NVIDIA GeForce RTX 3080" }, null), {
      kind: "webgpu",
      reason: null,
    });
    // Without WebAssembly SIMD, a software rasterizer still beats the plain CPU reference.
    assertEquals(autoDeviceChoice(llvmpipe, "no SIMD").kind, "webgpu");
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
