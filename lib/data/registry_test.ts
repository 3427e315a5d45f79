import { assertEquals } from "../testing/asserts.ts";
import { encodeCifarBinary } from "./cifar10.ts";
import { DATA_DIR_ENV, DATASET_NAMES, loadDataset, resolveDataDir } from "./registry.ts";
import { expectDatasetError, withTempDir } from "./testing_util.ts";

/** Official page each dataset's "missing" error must point to. */
const OFFICIAL: Record<string, RegExp> = {
  cifar10: /https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar\.html/,
  "cifar10-exact": /cifar\.html/,
  svhn: /http:\/\/ufldl\.stanford\.edu\/housenumbers\//,
  imagenet32: /https:\/\/image-net\.org\/download-images\.php/,
  imagenet64: /https:\/\/image-net\.org\/download-images\.php/,
  celeba5bit: /github\.com\/aravindsrinivas\/flowpp/,
};

Deno.test("registry", async (t) => {
  await t.step(
    "an empty data folder gives each dataset a DatasetError naming the file and the official page",
    async () => {
      await withTempDir(async (dir) => {
        for (const name of DATASET_NAMES) {
          if (name === "mnist") continue; // embedded
          for (const split of ["train", "test"] as const) {
            // cifar10-exact also looks in ../shared; point it at the empty folder explicitly.
            const opts = name === "cifar10-exact" ? { dir, split } : { dataDir: dir, split };
            await expectDatasetError(
              () => loadDataset(name, opts),
              new RegExp(dir.replaceAll("/", "\\/")),
              OFFICIAL[name],
            );
          }
        }
      });
    },
  );

  await t.step("unknown names and splits are DatasetErrors listing the valid ones", async () => {
    await expectDatasetError(
      () => loadDataset("cifar100"),
      /unknown name, expected one of mnist, cifar10, cifar10-exact/,
    );
    await expectDatasetError(
      () => loadDataset("mnist", { split: "val" as "test" }),
      /split "val", expected "train" or "test"/,
    );
  });

  await t.step("the data folder comes from the option, else RESFLOW_DATA_DIR, else ./data", async () => {
    const before = Deno.env.get(DATA_DIR_ENV);
    try {
      Deno.env.delete(DATA_DIR_ENV);
      assertEquals(resolveDataDir(), "data");
      Deno.env.set(DATA_DIR_ENV, "/tmp/somewhere");
      assertEquals([resolveDataDir(), resolveDataDir("/x")], ["/tmp/somewhere", "/x"]);
      await withTempDir(async (dir) => {
        await Deno.mkdir(`${dir}/cifar10-exact`);
        const images = new Uint8Array(1000 * 3072).fill(5);
        await Deno.writeFile(
          `${dir}/cifar10-exact/test_exact_1000.bin`,
          encodeCifarBinary(images, new Array(1000).fill(2)),
        );
        Deno.env.set(DATA_DIR_ENV, dir);
        const ds = await loadDataset("cifar10-exact", { split: "test", limit: 10 });
        assertEquals([ds.count, ds.files[0]], [10, `${dir}/cifar10-exact/test_exact_1000.bin`]);
      });
    } finally {
      if (before === undefined) Deno.env.delete(DATA_DIR_ENV);
      else Deno.env.set(DATA_DIR_ENV, before);
    }
  });

  await t.step("MNIST loads through the registry without a data folder", async () => {
    const ds = await loadDataset("mnist", { split: "test", dataDir: "/nonexistent", limit: 2 });
    assertEquals([ds.count, Array.from(ds.labels!)], [2, [7, 2]]);
  });
});
