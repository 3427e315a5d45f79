import { gunzipSync, gzipSync } from "node:zlib";
import { assertEquals } from "../testing/asserts.ts";
import { encodeTar, isSafeTarPath, listTar } from "./tar.ts";
import { expectDatasetError } from "./testing_util.ts";

Deno.test("tar", async (t) => {
  const files = [
    {
      name: "cifar-10-batches-bin/batches.meta.txt",
      data: new TextEncoder().encode("airplane\nautomobile\n"),
    },
    {
      name: "cifar-10-batches-bin/data_batch_1.bin",
      data: Uint8Array.from({ length: 1500 }, (_, i) => i & 255),
    },
    { name: "cifar-10-batches-bin/empty", data: new Uint8Array(0) },
  ];

  await t.step("round trip through gzip: names, sizes and bytes", () => {
    const tgz = new Uint8Array(gzipSync(encodeTar(files)));
    const entries = listTar(new Uint8Array(gunzipSync(tgz)), "x.tar");
    assertEquals(
      entries.map((e) => [e.name, e.type, e.size]),
      files.map((f) => [f.name, "file", f.data.length]),
    );
    assertEquals(entries[1].data, files[1].data);
  });

  await t.step("reads a GNU tar archive made by the tar command, with a long name", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const long = "d/" + "n".repeat(120);
      await Deno.mkdir(`${dir}/d`);
      await Deno.writeTextFile(`${dir}/${long}`, "hello");
      await Deno.writeTextFile(`${dir}/d/short.txt`, "x");
      const out = await new Deno.Command("tar", {
        args: ["-C", dir, "--format=gnu", "-cf", "-", "d"],
        stdout: "piped",
      })
        .output();
      const entries = listTar(out.stdout, "gnu.tar");
      const byName = new Map(entries.map((e) => [e.name.replace(/\/$/, ""), e]));
      assertEquals(byName.get("d")!.type, "dir");
      assertEquals(new TextDecoder().decode(byName.get(long)!.data), "hello");
      assertEquals(new TextDecoder().decode(byName.get("d/short.txt")!.data), "x");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("truncation, a damaged header and non-tar data are DatasetErrors", async () => {
    const tar = encodeTar(files);
    await expectDatasetError(() => listTar(tar.subarray(0, 1024 + 512), "t.tar"), /t\.tar/, /truncated/);
    await expectDatasetError(
      () => listTar(tar.subarray(0, tar.length - 1024), "e.tar"),
      /without the end-of-archive blocks/,
    );
    const damaged = tar.slice();
    damaged[512 + 512 + 5] ^= 0xff; // inside the second header
    await expectDatasetError(() => listTar(damaged, "d.tar"), /d\.tar/, /checksum .* the archive is damaged/);
    await expectDatasetError(() => listTar(new Uint8Array(1024).fill(65), "n.tar"), /not a tar archive/);
  });

  await t.step("unsafe member paths are recognised", () => {
    for (const bad of ["/etc/passwd", "../x", "a/../../x", "C:/x", "a\\b"]) {
      assertEquals(isSafeTarPath(bad), false, bad);
    }
    for (const ok of ["cifar-10-batches-bin/data_batch_1.bin", "a/b..c"]) {
      assertEquals(isSafeTarPath(ok), true, ok);
    }
  });
});
