import { assertEquals, assertThrows, assertTrue } from "../testing/asserts.ts";
import {
  barChartPng,
  barChartSvg,
  escapeXml,
  formatTick,
  formatValue,
  linePlotPng,
  linePlotSvg,
  niceTicks,
  PALETTE,
  scatterPlotPng,
  scatterPlotSvg,
} from "./plot.ts";
import { decodePng, ensureSharp, type RawImage } from "./png.ts";

const SHARP_WORKS = await ensureSharp().then(() => true, () => false);

const LINES = {
  title: "Training <curves> & more",
  xLabel: "iteration",
  yLabel: "bits/dim",
  series: [
    { name: "train", x: [0, 100, 200, 300], y: [3, 2, 1.6, 1.5], band: [0.1, 0.1, 0.05, 0.05] },
    { name: "test", x: [0, 100, 200, 300], y: [3.1, 2.2, NaN, 1.7], style: "dashed" as const },
  ],
  referenceLines: [{ y: 0.97, label: "paper: 0.97" }],
};

const BARS = {
  title: "Memory",
  yLabel: "GB",
  categories: ["mnist_elu", "mnist_lipswish", "cifar10_elu"],
  series: [
    { name: "naive backprop", values: [92, 192.1, 120.2] },
    { name: "both", values: [4.9, null, 6.6], errors: [0.2, null, 0.3] },
  ],
};

const SCATTER = {
  title: "Estimate vs actual",
  xLabel: "actual bits/dim",
  yLabel: "estimated bits/dim",
  series: [{ name: "biased", x: [1, 1.5, 2], y: [0.9, 1.4, 1.8] }],
  identityLine: true,
};

/** Counts pixels within 8 levels of `hex` on every channel. */
function countColour(img: RawImage, hex: string): number {
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let p = 0; p < img.width * img.height; p++) {
    const o = p * img.channels;
    if (rgb.every((v, c) => Math.abs(img.pixels[o + c] - v) <= 8)) n++;
  }
  return n;
}

Deno.test("plot helpers", async (t) => {
  await t.step("nice ticks use 1, 2, 2.5, 5 steps inside the range", () => {
    assertEquals(niceTicks(0, 1, 5), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 });
    assertEquals(niceTicks(0.93, 3.07, 5).ticks, [1, 1.5, 2, 2.5, 3]);
    assertEquals(niceTicks(0, 3000, 5).ticks, [0, 1000, 2000, 3000]);
    assertEquals(niceTicks(0, 3000, 8).ticks, [0, 500, 1000, 1500, 2000, 2500, 3000]);
    assertEquals(niceTicks(5, 5, 5).ticks.includes(5), true);
  });

  await t.step("tick and value labels", () => {
    assertEquals(formatTick(0.5, 0.5), "0.5");
    assertEquals(formatTick(2, 0.25), "2.00");
    assertEquals(formatTick(1500, 500), "1500");
    assertEquals(formatTick(0, 0.1), "0");
    assertEquals(formatTick(2e-5, 1e-5), "2e-5");
    assertEquals(formatValue(192.1), "192");
    assertEquals(formatValue(0.071), "0.071");
    assertEquals(formatValue(3.29), "3.29");
  });

  await t.step("text is escaped for SVG", () => {
    assertEquals(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
  });
});

Deno.test("plots as SVG", async (t) => {
  await t.step("a line plot has its title, axis labels, ticks and legend", () => {
    const svg = linePlotSvg(LINES);
    assertTrue(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
    for (
      const s of [
        "Training &lt;curves&gt; &amp; more",
        ">iteration<",
        ">bits/dim<",
        ">train<",
        ">test<",
        ">paper: 0.97<",
      ]
    ) {
      assertTrue(svg.includes(s), `missing ${s}`);
    }
    assertTrue(svg.includes(">200<") && svg.includes(">2.0<"), "tick labels");
    assertTrue(svg.includes("<polygon"), "error band");
    // The NaN breaks the "test" line into two pieces.
    assertEquals((svg.match(new RegExp(`<polyline[^>]*stroke="${PALETTE[1]}"`, "g")) ?? []).length, 2);
  });

  await t.step("a bar chart draws one bar per non-null value, with error bars", () => {
    const svg = barChartSvg(BARS);
    assertEquals((svg.match(new RegExp(`<rect[^>]*fill="${PALETTE[0]}"`, "g")) ?? []).length, 3 + 1);
    assertEquals((svg.match(new RegExp(`<rect[^>]*fill="${PALETTE[1]}"`, "g")) ?? []).length, 2 + 1);
    assertEquals((svg.match(/<path d="M/g) ?? []).length, 2);
    assertTrue(svg.includes(">192<") && svg.includes(">mnist_lipswish<"));
  });

  await t.step("a scatter plot can draw y = x", () => {
    const svg = scatterPlotSvg(SCATTER);
    assertEquals((svg.match(/<circle/g) ?? []).length, 3 + 1); // three points and the legend's swatch
    assertTrue(svg.includes(">y = x<"));
  });

  await t.step("inconsistent data and impossible sizes are refused", () => {
    assertThrows(
      () => linePlotSvg({ ...LINES, series: [{ name: "s", x: [1, 2], y: [1] }] }),
      /Cannot draw series "s": x has 2 values, y 1/,
    );
    assertThrows(
      () => barChartSvg({ ...BARS, categories: ["a"] }),
      /Cannot draw bar series "naive backprop"/,
    );
    assertThrows(() => linePlotSvg({ ...LINES, width: 100, height: 80 }), /Cannot draw plot .* no room/);
    assertThrows(
      () =>
        linePlotSvg({ ...LINES, yLog: true, series: [{ name: "s", x: [1], y: [-1] }], referenceLines: [] }),
      /Cannot draw a log axis/,
    );
  });
});

Deno.test({
  name: "plots as PNG",
  ignore: !SHARP_WORKS,
  fn: async (t) => {
    for (
      const [name, make] of [
        ["line", () => linePlotPng({ ...LINES, width: 640, height: 400 })],
        ["bar", () => barChartPng({ ...BARS, width: 500, height: 360 })],
        ["scatter", () => scatterPlotPng({ ...SCATTER, width: 420, height: 420 })],
      ] as const
    ) {
      await t.step(`${name}: a PNG of the requested size with the series drawn`, async () => {
        const img = await decodePng(await make());
        const want = { line: [640, 400], bar: [500, 360], scatter: [420, 420] }[name];
        assertEquals([img.width, img.height], want);
        assertTrue(img.channels >= 3);
        assertTrue(countColour(img, PALETTE[0]) > 50, `${name}: the first series' colour is on the image`);
        assertTrue(
          countColour(img, "#ffffff") > img.width * img.height * 0.5,
          `${name}: mostly white background`,
        );
      });
    }
  },
});
