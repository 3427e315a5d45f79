import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { isRefusedCallable, MAX_MARKS, opcodeName, unpickle } from "./pickle.ts";
import { CHECKPOINTS, encodeTagged, expectTorchError, PickleWriter } from "./testing_util.ts";
import { isObject, type PickledObject, type TorchValue } from "./values.ts";

function run(bytes: Uint8Array, source = "x.pkl"): TorchValue {
  return unpickle(bytes, { source }).value;
}

Deno.test("pickle VM", async (t) => {
  const golden = JSON.parse(await Deno.readTextFile(CHECKPOINTS + "golden_expected.json"));

  for (let p = 0; p <= 5; p++) {
    await t.step(`protocol ${p}: Python's pickle of plain values is read exactly`, async () => {
      const bytes = await Deno.readFile(CHECKPOINTS + `plain_p${p}.pkl`);
      const { value, end } = unpickle(bytes, { source: `plain_p${p}.pkl` });
      assertEquals(end, bytes.length);
      assertEquals(encodeTagged(value), golden.plain);
      const shared = (value as Map<TorchValue, TorchValue>).get("shared") as TorchValue[];
      assertTrue(shared[0] === shared[1], "a list pickled once (memo) is one object");
      const ns = (value as Map<TorchValue, TorchValue>).get("namespace");
      assertTrue(isObject(ns, "argparse", "Namespace"), "Namespace kept as an inert record");
    });
  }

  await t.step("an unknown class is an inert record that BUILD fills; a bare GLOBAL is an inert name", () => {
    const w = new PickleWriter().proto(2).global("evil.module", "Thing").emptyTuple().raw(0x81); // NEWOBJ
    w.dict().str("a").int(5).setitem().raw(0x62).stop(); // BUILD
    const v = run(w.bytes()) as PickledObject;
    assertEquals(v.kind, "object");
    assertEquals([v.module, v.name], ["evil.module", "Thing"]);
    assertEquals(v.state, new Map([["a", 5]]));
    const ref = run(new PickleWriter().proto(2).global("os", "system").stop().bytes());
    assertEquals(ref, { kind: "global", module: "os", name: "system" });
  });

  await t.step(
    "a pickle that calls os.system, posix.system, subprocess, eval or getattr is refused",
    async () => {
      const calls: [string, string][] = [
        ["os", "system"],
        ["posix", "system"],
        ["nt", "system"],
        ["subprocess", "Popen"],
        ["subprocess", "check_output"],
        ["builtins", "eval"],
        ["builtins", "exec"],
        ["__builtin__", "getattr"],
        ["builtins", "__import__"],
      ];
      for (const [m, n] of calls) {
        // The classic exploit: GLOBAL os system, ("echo pwned",), REDUCE.
        const bytes = new PickleWriter().proto(2).global(m, n).mark().str("echo pwned").tuple().reduce()
          .stop().bytes();
        await expectTorchError(
          () => run(bytes, "evil.pth"),
          new RegExp(`^Cannot read evil\\.pth: the pickle calls ${m.replace(/_/g, "_")}\\.${n}`),
          /which this reader never executes/,
          /REDUCE at byte \d+/,
        );
      }
      // The same through STACK_GLOBAL (protocol 4) and NEWOBJ.
      const sg = new PickleWriter().proto(4);
      sg.raw(0x8c, 5, ...new TextEncoder().encode("posix"), 0x8c, 6, ...new TextEncoder().encode("system"));
      sg.raw(0x93).mark().str("id").tuple().raw(0x81).stop();
      await expectTorchError(() => run(sg.bytes(), "evil4.pth"), /calls posix\.system \(opcode NEWOBJ/);
      assertTrue(isRefusedCallable("subprocess", "run") && isRefusedCallable("os.path", "join"));
      assertTrue(!isRefusedCallable("collections", "OrderedDict") && !isRefusedCallable("builtins", "set"));
    },
  );

  await t.step(
    "unknown opcode, truncation, missing STOP and damaged structure: errors with offsets",
    async () => {
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0xff]), "bad.pkl"),
        /^Cannot read bad\.pkl: unknown pickle opcode 0xff at byte 2/,
      );
      // BINUNICODE that claims 100 bytes with 3 left.
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x58, 100, 0, 0, 0, 0x61, 0x62, 0x2e]), "short.pkl"),
        /^Cannot read short\.pkl: its string claims 100 bytes but only 3 bytes remain.*BINUNICODE at byte 2/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x4a, 1, 2]), "cut.pkl"),
        /^Cannot read cut\.pkl: the pickle ends at byte 5, 2 bytes short of its argument.*BININT at byte 2/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x4e]), "nostop.pkl"),
        /^Cannot read nostop\.pkl: the pickle ends at byte 3 before its STOP opcode; the file is truncated/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x2e]), "e.pkl"),
        /pops an empty stack.*STOP/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x68, 7, 0x2e]), "m.pkl"),
        /memo entry 7 was never/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x06, 0x4e, 0x2e]), "p.pkl"),
        /pickle protocol 6, expected 0 to 5/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x82, 1, 0x2e]), "x.pkl"),
        /extension registry.*EXT1/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x75, 0x2e]), "s.pkl"),
        /needs a MARK but none is set/,
      );
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x02, 0x29, 0x4e, 0x61, 0x2e]), "a.pkl"),
        /appends to a tuple of 0 items, expected a list.*APPEND/,
      );
      assertEquals(opcodeName(0x8c), "SHORT_BINUNICODE");
      assertEquals(opcodeName(0xff), undefined);
    },
  );

  await t.step("length fields claiming 2^40 bytes fail at once, allocating nothing", async () => {
    const huge = [0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]; // 2^40, little-endian
    const before = Deno.memoryUsage().rss;
    const t0 = performance.now();
    for (const op of [0x8d, 0x8e, 0x96, 0x95]) { // BINUNICODE8, BINBYTES8, BYTEARRAY8, FRAME
      await expectTorchError(
        () => run(new Uint8Array([0x80, 0x04, op, ...huge, 0x2e]), "huge.pkl"),
        /claims 1099511627776 bytes but only 1 bytes remain/,
      );
    }
    await expectTorchError(
      () => run(new Uint8Array([0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0x7f, 0x2e]), "long4.pkl"),
      /claims 2147483647 bytes but only 1 bytes remain/,
    );
    const ms = performance.now() - t0;
    assertTrue(ms < 1000, `took ${ms} ms`);
    assertTrue(Deno.memoryUsage().rss - before < 64 << 20, "no large allocation");
  });

  await t.step("APPENDS of 300,000 items onto a list and onto a list subclass object", () => {
    const n = 300_000;
    const list = new Uint8Array(n + 6).fill(0x4e); // NONE
    list.set([0x80, 0x02, 0x5d, 0x28]); // PROTO 2, EMPTY_LIST, MARK
    list.set([0x65, 0x2e], n + 4); // APPENDS, STOP
    assertEquals((run(list) as TorchValue[]).length, n);
    const head = new PickleWriter().proto(2).global("m", "L").emptyTuple().raw(0x81, 0x28).bytes();
    const obj = new Uint8Array(head.length + n + 2).fill(0x4e);
    obj.set(head);
    obj.set([0x65, 0x2e], head.length + n);
    assertEquals((run(obj) as PickledObject).listItems?.length, n);
  });

  await t.step("nesting deeper than the MARK cap is refused, not followed", async () => {
    const bytes = new Uint8Array(MAX_MARKS + 4).fill(0x28);
    bytes.set([0x80, 0x02]);
    await expectTorchError(() => run(bytes, "deep.pkl"), /more than 65536 nested MARKs/);
  });

  await t.step("big and negative integers (LONG1/LONG4), floats, bytes via _codecs.encode", () => {
    const w = new PickleWriter().proto(2).mark().long(-1n).long(2n ** 64n).long(-(2n ** 70n)).long(0n);
    w.raw(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0); // BINFLOAT 1.5 (big-endian)
    w.global("_codecs", "encode").mark().str("\u00ff\u0001").str("latin1").tuple().reduce();
    w.raw(0x8b, 1, 0, 0, 0, 0x80); // LONG4 of one byte: -128
    const v = run(w.tuple().stop().bytes()) as TorchValue[];
    assertEquals(v, [-1, 2n ** 64n, -(2n ** 70n), 0, 1.5, new Uint8Array([255, 1]), -128]);
  });
});
