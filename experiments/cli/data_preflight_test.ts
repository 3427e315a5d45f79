import { assertEquals, assertRejects } from "../../lib/testing/asserts.ts";
import { encodeIdx } from "../../lib/data/idx.ts";
import { checkReproduceData } from "./data_preflight.ts";
import { writeCifarBatchStubs } from "../framework/test_util.ts";

Deno.test("checkReproduceData", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "preflight_test_" });
  try {
    await t.step("an explicit data folder must exist", async () => {
      await assertRejects(
        () => checkReproduceData(`${dir}/missing`, ["memory"], "smoke"),
        /Cannot use --data-dir .*missing: no such folder/,
      );
    });

    await t.step("an empty folder, or experiments that read no data, check nothing", async () => {
      assertEquals(await checkReproduceData(dir, ["density", "hybrid"], "smoke"), []);
      await Deno.mkdir(`${dir}/svhn`);
      await Deno.writeFile(`${dir}/svhn/train_32x32.mat`, new Uint8Array(200));
      await Deno.writeFile(`${dir}/svhn/test_32x32.mat`, new Uint8Array(200));
      assertEquals(await checkReproduceData(dir, ["memory", "estimators"], "smoke"), []);
    });

    await t.step("a damaged file the units would read ends the run before it starts, naming it", async () => {
      await assertRejects(
        () => checkReproduceData(dir, ["hybrid"], "smoke"),
        /Cannot read .*svhn\/train_32x32\.mat/,
      );
      await Deno.remove(`${dir}/svhn`, { recursive: true });
      await Deno.mkdir(`${dir}/mnist`);
      await Deno.writeFile(
        `${dir}/mnist/train-images-idx3-ubyte`,
        encodeIdx("uint8", [1, 28, 28], new Uint8Array(784)).subarray(0, 100),
      );
      await Deno.writeFile(`${dir}/mnist/train-labels-idx1-ubyte`, encodeIdx("uint8", [1], [3]));
      await assertRejects(
        () => checkReproduceData(dir, ["samples"], "smoke"),
        /train-images-idx3-ubyte.*truncated/,
      );
      await Deno.remove(`${dir}/mnist`, { recursive: true });
    });

    await t.step(
      "CIFAR-10: the set of the preset is checked (the full batches only under long and paper)",
      async () => {
        await writeCifarBatchStubs(dir, 100);
        // smoke and quick train on the exact subset, which is absent here (derived later): nothing to check.
        assertEquals(await checkReproduceData(dir, ["density"], "smoke"), []);
        assertEquals(await checkReproduceData(dir, ["density"], "quick"), []);
        for (const preset of ["long", "paper"] as const) {
          await assertRejects(() => checkReproduceData(dir, ["density"], preset), /cifar-10-batches-bin/);
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
