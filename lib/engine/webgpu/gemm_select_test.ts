/** Choice of matrix-product kernels by adapter, with faked adapter facts. */
import { assertEquals, assertThrows } from "../../testing/asserts.ts";
import { type GemmKernelOption, isSoftwareAdapter, selectGemmKernel } from "./gemm_select.ts";

const LLVMPIPE = {
  vendor: "65541",
  description: "llvmpipe (LLVM 15.0.6, 256 bits)",
  isFallbackAdapter: true,
};
const NVIDIA = { vendor: "nvidia", architecture: "hopper", description: "NVIDIA H100 80GB HBM3" };

Deno.test("matrix-product kernels are chosen by adapter", async (t) => {
  await t.step("software rasterizers get the texture kernels", () => {
    assertEquals(selectGemmKernel(LLVMPIPE).kernel, "texture");
    assertEquals(selectGemmKernel({ description: "llvmpipe (LLVM 17)" }).kernel, "texture", "by name alone");
    assertEquals(selectGemmKernel({ vendor: "google", device: "SwiftShader Device" }).kernel, "texture");
    assertEquals(selectGemmKernel({ description: "Some GPU", isFallbackAdapter: true }).kernel, "texture");
    assertEquals(isSoftwareAdapter({ description: "Microsoft Basic Render Driver" }), true);
  });
  await t.step("any other adapter gets the tiled kernel", () => {
    assertEquals(selectGemmKernel(NVIDIA).kernel, "tiled");
    assertEquals(selectGemmKernel({ vendor: "amd", architecture: "rdna-3" }).kernel, "tiled");
    assertEquals(
      selectGemmKernel({}).kernel,
      "tiled",
      "an adapter that says nothing is not assumed software",
    );
    const s = selectGemmKernel(NVIDIA);
    assertEquals(s.reason.includes("NVIDIA H100"), true, `the reason names the adapter: ${s.reason}`);
  });
  await t.step("an explicit option overrides the adapter", () => {
    assertEquals(selectGemmKernel(LLVMPIPE, "tiled").kernel, "tiled");
    assertEquals(selectGemmKernel(NVIDIA, "texture").kernel, "texture");
    assertEquals(selectGemmKernel(NVIDIA, "auto").kernel, "tiled");
    assertThrows(
      () => selectGemmKernel(NVIDIA, "fast" as GemmKernelOption),
      /gemmKernel "fast" is not one of/,
    );
  });
});
