import { assertEquals, assertTrue } from "../testing/asserts.ts";
import { formatDuration, formatRate, ProgressBar } from "./progress.ts";

/** A clock the test moves by hand, and a writer that records what would be printed. */
function fakes() {
  let ms = 1000;
  const out: string[] = [];
  return {
    now: () => ms,
    advance: (seconds: number) => (ms += seconds * 1000),
    write: (s: string) => void out.push(s),
    out,
  };
}

Deno.test("progress formatting", async (t) => {
  await t.step("durations", () => {
    assertEquals(formatDuration(0), "0s");
    assertEquals(formatDuration(44.6), "45s");
    assertEquals(formatDuration(185), "3m05s");
    assertEquals(formatDuration(7620), "2h07m");
    assertEquals(formatDuration(NaN), "?");
    assertEquals(formatDuration(Infinity), "?");
  });

  await t.step("rates", () => {
    assertEquals(formatRate(12.34), "12.3 it/s");
    assertEquals(formatRate(0.25, "step"), "4.00 s/step");
    assertEquals(formatRate(1234.5, "img"), "1235 img/s");
    assertEquals(formatRate(0), "? it/s");
  });
});

Deno.test("ProgressBar", async (t) => {
  await t.step("rate and ETA follow the clock", () => {
    const f = fakes();
    const bar = new ProgressBar({
      total: 100,
      label: "train",
      now: f.now,
      write: f.write,
      isTerminal: false,
    });
    f.advance(10);
    bar.tick(20, "loss 3.21");
    assertEquals(bar.rate, 2);
    assertEquals(bar.etaSeconds, 40);
    assertEquals(bar.line(), "train:  20% 20/100 · 2.0 it/s · elapsed 10s · ETA 40s · loss 3.21");
  });

  await t.step("without a terminal: a few plain lines, no control codes", () => {
    const f = fakes();
    const bar = new ProgressBar({
      total: 1000,
      label: "eval",
      unit: "img",
      now: f.now,
      write: f.write,
      isTerminal: false,
    });
    for (let i = 0; i < 1000; i++) {
      f.advance(0.01);
      bar.tick();
    }
    bar.finish();
    assertEquals(f.out, [
      "eval: started, 1000 img\n",
      "eval:  25% 250/1000 · 100 img/s · elapsed 3s · ETA 8s\n",
      "eval:  50% 500/1000 · 100 img/s · elapsed 5s · ETA 5s\n",
      "eval:  75% 750/1000 · 100 img/s · elapsed 8s · ETA 3s\n",
      "eval: 100% 1000/1000 · 100 img/s · done in 10s\n",
    ]);
    assertTrue(f.out.every((l) => !l.includes("\r") && !l.includes("\x1b")));
  });

  await t.step("on a terminal: redraws in place, throttled, and ends with a newline", () => {
    const f = fakes();
    const bar = new ProgressBar({
      total: 4,
      now: f.now,
      write: f.write,
      isTerminal: true,
      barWidth: 8,
      redrawMs: 100,
    });
    bar.tick(); // same instant as the first draw: throttled
    f.advance(1);
    bar.tick();
    f.advance(1);
    bar.finish();
    assertEquals(f.out, [
      "\r  0% [--------] 0/4 · ? it/s · elapsed 0s · ETA ?\x1b[K",
      "\r 50% [####----] 2/4 · 2.0 it/s · elapsed 1s · ETA 1s\x1b[K",
      "\r 50% [####----] 2/4 · 1.0 it/s · done in 2s\x1b[K\n",
    ]);
  });

  await t.step("on a narrow terminal, lines are cut so they never wrap", () => {
    const f = fakes();
    const bar = new ProgressBar({
      total: 10,
      label: "x",
      now: f.now,
      write: f.write,
      isTerminal: true,
      columns: 20,
    });
    bar.finish();
    assertEquals(f.out[0], "\rx:   0% [---------…\x1b[K");
  });

  await t.step("an unknown total shows count and rate only", () => {
    const f = fakes();
    const bar = new ProgressBar({ label: "sample", now: f.now, write: f.write, isTerminal: false });
    f.advance(4);
    bar.tick(8);
    assertEquals(bar.line(), "sample: 8 it · 2.0 it/s · elapsed 4s");
    bar.finish();
    assertEquals(f.out.length, 2);
  });

  await t.step("ticks after finish are ignored", () => {
    const f = fakes();
    const bar = new ProgressBar({ total: 2, now: f.now, write: f.write, isTerminal: false });
    bar.finish();
    bar.tick();
    bar.finish();
    assertEquals(f.out.length, 2);
  });
});
