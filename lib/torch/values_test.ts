import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { expectTorchError } from "./testing_util.ts";
import {
  asMap,
  asTensor,
  asTensorMap,
  describeValue,
  isObject,
  isTuple,
  namespaceToRecord,
  objectAttributes,
  type PickledObject,
  type TorchValue,
} from "./values.ts";

const ns = (state: TorchValue): PickledObject => ({
  kind: "object",
  module: "argparse",
  name: "Namespace",
  args: [],
  state,
});

Deno.test("checkpoint value helpers", async (t) => {
  await t.step("asMap, asTensor and asTensorMap say what they found instead", async () => {
    await expectTorchError(
      () => asMap([1, 2], "ckpt.pth state_dict"),
      /^Cannot read ckpt\.pth state_dict: it is a list of 2 items, expected a dict\.$/,
    );
    await expectTorchError(() => asTensor(null, "w"), /^Cannot read w: it is None, expected a tensor\.$/);
    await expectTorchError(
      () => asTensorMap(new Map<TorchValue, TorchValue>([["a", 1.5]]), "sd"),
      /^Cannot read sd\["a"\]: it is the number 1\.5, expected a tensor\.$/,
    );
    await expectTorchError(
      () => asTensorMap(new Map([[3, null]]), "sd"),
      /it has the key the number 3, expected names/,
    );
    assertEquals(asTensorMap(new Map(), "sd").size, 0);
  });

  await t.step(
    "namespaceToRecord and objectAttributes read an object's state, (dict, slots) merged",
    async () => {
      assertEquals(
        namespaceToRecord(ns(new Map<TorchValue, TorchValue>([["idim", 32], ["nblocks", "2-2"]]))),
        {
          idim: 32,
          nblocks: "2-2",
        },
      );
      const slots = Object.freeze([new Map([["a", 1]]), new Map([["b", 2]])]) as TorchValue[];
      assertEquals(objectAttributes(ns(slots), "x"), new Map([["a", 1], ["b", 2]]));
      assertEquals(objectAttributes(ns(null), "x").size, 0);
      await expectTorchError(
        () => namespaceToRecord(new Map(), "args"),
        /^Cannot read args: it is a dict of 0 items, expected an argparse\.Namespace/,
      );
      await expectTorchError(
        () => objectAttributes(ns("text"), "x"),
        /the state of its argparse\.Namespace object is the string "text"/,
      );
    },
  );

  await t.step("isTuple, isObject and describeValue", () => {
    assertTrue(isTuple(Object.freeze([1]) as TorchValue[]) && !isTuple([1]));
    assertTrue(
      isObject(ns(null), "argparse") && !isObject(ns(null), "argparse", "Other") && !isObject(new Map()),
    );
    assertEquals(describeValue(2n ** 70n), "the int 1180591620717411303424");
    assertEquals(describeValue({ kind: "global", module: "os", name: "system" }), "a reference to os.system");
  });
});
