import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import { joinNegativeValues, OptionError, type OptionSpec, parseOptions } from "./args.ts";

const OPTIONS: Record<string, OptionSpec> = {
  seed: { type: "string", short: "s", help: "seed" },
  lr: { type: "string", help: "rate" },
  resume: { type: "boolean", help: "resume" },
};

Deno.test("parseOptions", async (t) => {
  await t.step("a negative number after a string option is its value, not an option", () => {
    assertEquals(joinNegativeValues(["--seed", "-5", "--lr", "-1e-3", "-s", "-.5"], OPTIONS), [
      "--seed=-5",
      "--lr=-1e-3",
      "-s-.5",
    ]);
    assertEquals(joinNegativeValues(["--seed", "--resume", "--lr", "-Infinity"], OPTIONS), [
      "--seed",
      "--resume",
      "--lr=-Infinity",
    ]);
    const v = parseOptions("cmd", "", OPTIONS, ["--seed", "-5", "--lr", "-NaN"])!;
    assertEquals([v.seed, v.lr], ["-5", "-NaN"]);
  });

  await t.step("unknown options and missing values are OptionErrors listing the valid options", () => {
    for (const argv of [["--bogus"], ["--seed"], ["--resume=3"], ["positional"]]) {
      let caught: unknown = null;
      try {
        parseOptions("cmd", "", OPTIONS, argv);
      } catch (e) {
        caught = e;
      }
      assertTrue(caught instanceof OptionError, `${argv}: ${caught}`);
      assertTrue(
        /^Cannot parse the options of cmd: .*Valid options: --seed, --lr, --resume, --help$/.test(
          (caught as Error).message,
        ),
        (caught as Error).message,
      );
    }
    assertThrows(() => parseOptions("cmd", "", OPTIONS, ["--lr", "-x"]), /Cannot parse the options/);
  });
});
