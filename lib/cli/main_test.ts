import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { OptionError } from "./args.ts";
import { DEBUG_ENV, describeFailure } from "./main.ts";

Deno.test("describeFailure", async (t) => {
  await t.step("option errors exit 2, 'Cannot ...' errors exit 1, each one line", () => {
    assertEquals(describeFailure("cmd", new OptionError("Cannot use --n 0: expected >= 1")), {
      line: "Cannot use --n 0: expected >= 1",
      status: 2,
    });
    assertEquals(describeFailure("cmd", new Error("Cannot read a.bin: truncated.\n  Where: here\n")), {
      line: "Cannot read a.bin: truncated. Where: here",
      status: 1,
    });
  });

  await t.step("a missing permission and Deno's file errors name what failed, in one line", () => {
    const nc = describeFailure(
      "deno task train",
      new Deno.errors.NotCapable('Requires write access to "/x", run again with the --allow-write flag'),
    );
    assertEquals(nc.status, 1);
    assertTrue(
      /^Cannot run deno task train: a permission it was not given is needed: Requires write access to "\/x"/
        .test(nc.line),
      nc.line,
    );
    const nd = describeFailure(
      "cmd",
      new Deno.errors.NotADirectory("Not a directory (os error 20): mkdir 'f/x'"),
    );
    assertEquals(nd, { line: "Cannot run cmd: Not a directory (os error 20): mkdir 'f/x'", status: 1 });
  });

  await t.step("anything else is one line with its name; the stack only with RESFLOW_DEBUG=1", () => {
    const prev = Deno.env.get(DEBUG_ENV);
    try {
      Deno.env.delete(DEBUG_ENV);
      const r = describeFailure("cmd", new TypeError("x is undefined\nmore"));
      assertEquals(r, {
        line: `Cannot run cmd: unexpected TypeError: x is undefined more (set ${DEBUG_ENV}=1 to see where)`,
        status: 1,
      });
      assertEquals(
        describeFailure("cmd", "a string").line.startsWith("Cannot run cmd: unexpected Error"),
        true,
      );
    } finally {
      if (prev !== undefined) Deno.env.set(DEBUG_ENV, prev);
    }
  });
});
