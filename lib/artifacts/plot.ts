/**
 * Plots as SVG, rasterised to PNG by sharp: line plots (training curves, several series, optional
 * error bands, dashed styles, reference lines), grouped bar charts (e.g. memory by method), and
 * scatter plots with an optional y = x line (estimate vs actual). Every plot has a title, axes with
 * "nice" ticks and tick labels, axis labels and a legend below the plot area (never over the data).
 * Margins are sized from the text they hold, so labels are not clipped.
 * @module
 */
import { svgToPng } from "./png.ts";

/** How a line is drawn. */
export type LineStyle = "solid" | "dashed" | "dotted";

/** One curve of a line plot. */
export interface LineSeries {
  /** Legend text. */
  readonly name: string;
  /** The x values. */
  readonly x: readonly number[];
  /** Non-finite values break the line. */
  readonly y: readonly number[];
  /** Half-width of a shaded band around y (e.g. a standard error), one per point. */
  readonly band?: readonly number[];
  /** CSS colour (default: the palette in order). */
  readonly color?: string;
  /** Line style (default solid). */
  readonly style?: LineStyle;
  /** Draw a dot at each point (default: only when there are at most 30 points). */
  readonly markers?: boolean;
}

/** A horizontal reference line (e.g. the paper's value). */
export interface ReferenceLine {
  /** Where the line is drawn. */
  readonly y: number;
  /** Legend text. */
  readonly label: string;
  /** CSS colour (default grey). */
  readonly color?: string;
}

/** Size and title shared by every plot. */
export interface PlotFrame {
  /** Shown centred above the plot. */
  readonly title: string;
  /** Pixels (default 720 × 450). */
  readonly width?: number;
  /** Pixels (default 450). */
  readonly height?: number;
}

/** A line plot. */
export interface LinePlotSpec extends PlotFrame {
  /** Label of the x axis. */
  readonly xLabel: string;
  /** Label of the y axis. */
  readonly yLabel: string;
  /** The curves. */
  readonly series: readonly LineSeries[];
  /** Horizontal reference lines, listed in the legend. */
  readonly referenceLines?: readonly ReferenceLine[];
  /** Logarithmic y axis (positive values only). */
  readonly yLog?: boolean;
  /** Fixed axis ranges; by default they fit the data. */
  readonly xRange?: readonly [number, number];
  /** Fixed y range. */
  readonly yRange?: readonly [number, number];
}

/** One group member of a bar chart: one value per category (`null` leaves a gap). */
export interface BarSeries {
  /** Legend text. */
  readonly name: string;
  /** One value per category. */
  readonly values: readonly (number | null)[];
  /** Error bar half-widths, one per category. */
  readonly errors?: readonly (number | null)[];
  /** CSS colour (default: the palette in order). */
  readonly color?: string;
}

/** A grouped bar chart: for each category, one bar per series. */
export interface BarChartSpec extends PlotFrame {
  /** Labels of the groups along the x axis. */
  readonly categories: readonly string[];
  /** One bar per series in each group. */
  readonly series: readonly BarSeries[];
  /** Label of the x axis (none by default). */
  readonly xLabel?: string;
  /** Label of the y axis. */
  readonly yLabel: string;
  /** Print each bar's value above it (default true). */
  readonly valueLabels?: boolean;
  /** Logarithmic y axis. */
  readonly yLog?: boolean;
}

/** Points of a scatter plot. */
export interface ScatterSeries {
  /** Legend text. */
  readonly name: string;
  /** The x values. */
  readonly x: readonly number[];
  /** The y values, one per x. */
  readonly y: readonly number[];
  /** CSS colour (default: the palette in order). */
  readonly color?: string;
  /** Also join the points with a line. */
  readonly line?: boolean;
}

/** A scatter plot, e.g. estimated vs actual bits/dim. */
export interface ScatterPlotSpec extends PlotFrame {
  /** Label of the x axis. */
  readonly xLabel: string;
  /** Label of the y axis. */
  readonly yLabel: string;
  /** The point sets. */
  readonly series: readonly ScatterSeries[];
  /** Draw the y = x line (default false). */
  readonly identityLine?: boolean;
}

/** The default palette (Tableau 10), used in order. */
export const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";
const TITLE_SIZE = 16;
const LABEL_SIZE = 13;
const TICK_SIZE = 11;
const LEGEND_SIZE = 12;
/** Average advance of a character, as a fraction of the font size (DejaVu Sans is wide). */
const CHAR_EM = 0.6;

/** Escapes text for SVG. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}

/** Estimated width in pixels of `text` at `size`. */
export function textWidth(text: string, size: number): number {
  return [...text].length * size * CHAR_EM;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** "Nice" tick values (1, 2, 2.5, 5 × 10^k steps) covering [min, max] with about `count` ticks. */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; step: number } {
  if (!(Number.isFinite(min) && Number.isFinite(max))) {
    throw new Error(`Cannot place ticks: range [${min}, ${max}]`);
  }
  if (max <= min) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - d, max + d, count);
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999)!;
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/** Formats a tick value with as many decimals as the step needs (exponent form for extreme magnitudes). */
export function formatTick(v: number, step: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) {
    const digits = Math.max(0, Math.min(3, Math.round(Math.log10(a) - Math.log10(step))));
    return v.toExponential(digits).replace("e+", "e");
  }
  let decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals++;
  return v.toFixed(decimals);
}

/** Formats a value shortly (3 significant digits), for bar labels and legends. */
export function formatValue(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace("e+", "e");
  return Number(v.toPrecision(3)).toString();
}

interface Scale {
  readonly map: (v: number) => number;
  readonly ticks: readonly { v: number; label: string }[];
  readonly min: number;
  readonly max: number;
}

/** Fraction of the data range left free at each end of a padded axis, so no point sits on the frame. */
const AXIS_MARGIN = 0.04;

/**
 * A linear axis mapping data to pixels `p0..p1`. "nice": the range is widened to whole tick steps (bar
 * charts, whose base stays at 0); "padded": the data range plus a small margin, ticks inside it.
 */
function linearScale(
  lo: number,
  hi: number,
  p0: number,
  p1: number,
  mode: "nice" | "padded",
  fixed?: readonly [number, number],
): Scale {
  let min: number, max: number;
  if (fixed) [min, max] = fixed;
  else if (mode === "padded") {
    const r = hi > lo ? hi - lo : Math.abs(lo) * 0.1 || 1;
    [min, max] = hi > lo ? [lo - AXIS_MARGIN * r, hi + AXIS_MARGIN * r] : [lo - r, hi + r];
  } else {
    const { step } = niceTicks(lo, hi, 5);
    min = Math.floor(lo / step + 1e-9) * step;
    max = Math.ceil(hi / step - 1e-9) * step;
    if (max <= min) [min, max] = [min - step, max + step];
  }
  const { ticks, step } = niceTicks(min, max, 5);
  return {
    min,
    max,
    map: (v) => p0 + ((v - min) / (max - min)) * (p1 - p0),
    ticks: ticks.map((v) => ({ v, label: formatTick(v, step) })),
  };
}

/** A logarithmic axis over the data range plus a small margin, with ticks at powers of ten. */
function logScale(lo: number, hi: number, p0: number, p1: number): Scale {
  if (!(lo > 0)) throw new Error(`Cannot draw a log axis: the smallest value is ${lo}, expected > 0`);
  let l0 = Math.log10(lo), l1 = Math.log10(hi);
  const r = l1 > l0 ? l1 - l0 : 1;
  l0 -= AXIS_MARGIN * r;
  l1 += AXIS_MARGIN * r;
  if (Math.ceil(l0) > Math.floor(l1)) [l0, l1] = [Math.floor(l0), Math.ceil(l1)];
  const e0 = Math.ceil(l0 - 1e-9), e1 = Math.floor(l1 + 1e-9);
  const every = Math.max(1, Math.ceil((e1 - e0) / 6));
  const ticks = [];
  for (let e = e0; e <= e1; e += every) {
    const v = 10 ** e;
    ticks.push({ v, label: e >= -3 && e <= 5 ? String(Number(v.toPrecision(6))) : `1e${e}` });
  }
  return {
    min: 10 ** l0,
    max: 10 ** l1,
    map: (v) => p0 + ((Math.log10(v) - l0) / (l1 - l0)) * (p1 - p0),
    ticks,
  };
}

function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

function text(
  x: number,
  y: number,
  s: string,
  size: number,
  opts: {
    anchor?: "start" | "middle" | "end";
    weight?: string;
    rotate?: number;
    fill?: string;
    baseline?: string;
  } = {},
): string {
  const t = opts.rotate ? ` transform="rotate(${opts.rotate} ${r2(x)} ${r2(y)})"` : "";
  return `<text x="${r2(x)}" y="${r2(y)}" font-size="${size}" font-family="${FONT}" fill="${
    opts.fill ?? "#222"
  }" text-anchor="${opts.anchor ?? "start"}"${opts.weight ? ` font-weight="${opts.weight}"` : ""}${
    opts.baseline ? ` dominant-baseline="${opts.baseline}"` : ""
  }${t}>${escapeXml(s)}</text>`;
}

function dashArray(style: LineStyle | undefined): string {
  return style === "dashed" ? ` stroke-dasharray="7 4"` : style === "dotted" ? ` stroke-dasharray="2 3"` : "";
}

interface LegendEntry {
  readonly name: string;
  readonly color: string;
  readonly kind: "line" | "bar" | "point";
  readonly style?: LineStyle;
}

const LEGEND_ROW = LEGEND_SIZE + 9;
const LEGEND_SWATCH = 38;
const LEGEND_GAP = 22;

/** Lays legend entries out in a grid of equal columns, as many per row as fit in `maxWidth`. */
function legendRows(
  entries: readonly LegendEntry[],
  maxWidth: number,
): { entry: LegendEntry; x: number; width: number }[][] {
  if (entries.length === 0) return [];
  const colW = Math.min(
    maxWidth,
    Math.max(...entries.map((e) => LEGEND_SWATCH + textWidth(e.name, LEGEND_SIZE))),
  );
  const cols = Math.max(
    1,
    Math.min(entries.length, Math.floor((maxWidth + LEGEND_GAP) / (colW + LEGEND_GAP))),
  );
  const rows: { entry: LegendEntry; x: number; width: number }[][] = [];
  entries.forEach((entry, i) => {
    if (i % cols === 0) rows.push([]);
    rows[rows.length - 1].push({ entry, x: (i % cols) * (colW + LEGEND_GAP), width: colW });
  });
  return rows;
}

/** Cuts `s` so that it fits `width` pixels at `size`, ending in "…". */
function fitText(s: string, size: number, width: number): string {
  const max = Math.floor(width / (size * CHAR_EM) + 1e-6);
  return [...s].length <= max ? s : [...s].slice(0, Math.max(1, max - 1)).join("") + "…";
}

function legendSvg(L: Layout): string {
  if (L.legend.length === 0) return "";
  const parts: string[] = [];
  const gridW = L.legend[0][L.legend[0].length - 1].x + L.legend[0][L.legend[0].length - 1].width;
  const rowWidths = L.legend.map(() => gridW);
  const boxW = gridW + 20;
  const boxX = (L.width - boxW) / 2;
  const boxH = L.legend.length * LEGEND_ROW + 8;
  parts.push(
    `<rect x="${r2(boxX)}" y="${r2(L.legendY)}" width="${r2(boxW)}" height="${
      r2(boxH)
    }" fill="#fff" stroke="#ccc"/>`,
  );
  L.legend.forEach((row, i) => {
    const x0 = (L.width - rowWidths[i]) / 2;
    const cy = L.legendY + 4 + LEGEND_ROW * i + LEGEND_ROW / 2;
    for (const { entry: e, x, width } of row) {
      const ex = x0 + x;
      if (e.kind === "bar") {
        parts.push(`<rect x="${r2(ex + 6)}" y="${r2(cy - 5)}" width="20" height="10" fill="${e.color}"/>`);
      } else if (e.kind === "line") {
        parts.push(
          `<line x1="${r2(ex + 2)}" y1="${r2(cy)}" x2="${r2(ex + 30)}" y2="${
            r2(cy)
          }" stroke="${e.color}" stroke-width="2"${dashArray(e.style)}/>`,
        );
      } else {
        parts.push(`<circle cx="${r2(ex + 16)}" cy="${r2(cy)}" r="3.5" fill="${e.color}"/>`);
      }
      parts.push(
        text(
          ex + LEGEND_SWATCH - 2,
          cy + LEGEND_SIZE * 0.35,
          fitText(e.name, LEGEND_SIZE, width - LEGEND_SWATCH),
          LEGEND_SIZE,
        ),
      );
    }
  });
  return parts.join("");
}

interface Layout {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
  /** Baseline of the x-axis label (when there is one). */
  readonly xLabelY: number;
  readonly legendY: number;
  readonly legend: { entry: LegendEntry; x: number; width: number }[][];
}

function layout(
  frame: PlotFrame,
  yTickLabels: readonly string[],
  legendEntries: readonly LegendEntry[],
  xTickHeight: number,
  hasXLabel: boolean,
): Layout {
  const width = frame.width ?? 720, height = frame.height ?? 450;
  const legend = legendRows(legendEntries, width - 40);
  const legendH = legend.length ? legend.length * LEGEND_ROW + 8 : 0;
  const tickW = Math.max(0, ...yTickLabels.map((l) => textWidth(l, TICK_SIZE)));
  const left = 12 + LABEL_SIZE + 10 + tickW + 8;
  const right = width - 24;
  const top = 12 + TITLE_SIZE + 14;
  const legendY = height - 8 - legendH;
  const xLabelY = legendY - (legendH ? 10 : 4) - 4;
  const bottom = (hasXLabel ? xLabelY - LABEL_SIZE - 6 : legendY - 6) - 8 - xTickHeight;
  if (right - left < 80 || bottom - top < 60) {
    throw new Error(
      `Cannot draw plot "${frame.title}": ${width}×${height} pixels leave no room for the data once labels and legend are placed`,
    );
  }
  return { width, height, left, right, top, bottom, xLabelY, legendY, legend };
}

function frameSvg(
  L: Layout,
  title: string,
  xLabel: string,
  yLabel: string,
  xTicks: readonly { px: number; label: string }[],
  yTicks: readonly { py: number; label: string }[],
  body: string,
  xTickRotate = 0,
): string {
  const grid = [
    ...yTicks.map((t) =>
      `<line x1="${r2(L.left)}" y1="${r2(t.py)}" x2="${r2(L.right)}" y2="${r2(t.py)}" stroke="#e6e6e6"/>`
    ),
    ...xTicks.filter(() => xTickRotate === 0).map((t) =>
      `<line x1="${r2(t.px)}" y1="${r2(L.top)}" x2="${r2(t.px)}" y2="${r2(L.bottom)}" stroke="#f0f0f0"/>`
    ),
  ].join("");
  const yTickSvg = yTicks.map((t) =>
    `<line x1="${r2(L.left - 5)}" y1="${r2(t.py)}" x2="${r2(L.left)}" y2="${r2(t.py)}" stroke="#333"/>` +
    text(L.left - 8, t.py + TICK_SIZE * 0.35, t.label, TICK_SIZE, { anchor: "end" })
  ).join("");
  const xTickSvg = xTicks.map((t) =>
    `<line x1="${r2(t.px)}" y1="${r2(L.bottom)}" x2="${r2(t.px)}" y2="${r2(L.bottom + 5)}" stroke="#333"/>` +
    (xTickRotate
      ? text(t.px + 3, L.bottom + 10 + TICK_SIZE * 0.5, t.label, TICK_SIZE, {
        anchor: "end",
        rotate: xTickRotate,
      })
      : text(t.px, L.bottom + 8 + TICK_SIZE, t.label, TICK_SIZE, { anchor: "middle" }))
  ).join("");
  const cx = (L.left + L.right) / 2, cy = (L.top + L.bottom) / 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(L.width / 2, 12 + TITLE_SIZE, fitText(title, TITLE_SIZE, L.width - 20), TITLE_SIZE, {
      anchor: "middle",
      weight: "bold",
    }),
    grid,
    `<clipPath id="plot-area"><rect x="${r2(L.left)}" y="${r2(L.top)}" width="${
      r2(L.right - L.left)
    }" height="${r2(L.bottom - L.top)}"/></clipPath>`,
    `<g clip-path="url(#plot-area)">${body}</g>`,
    `<rect x="${r2(L.left)}" y="${r2(L.top)}" width="${r2(L.right - L.left)}" height="${
      r2(L.bottom - L.top)
    }" fill="none" stroke="#333"/>`,
    yTickSvg,
    xTickSvg,
    xLabel ? text(cx, L.xLabelY, xLabel, LABEL_SIZE, { anchor: "middle" }) : "",
    text(12 + LABEL_SIZE, cy, fitText(yLabel, LABEL_SIZE, L.bottom - L.top), LABEL_SIZE, {
      anchor: "middle",
      rotate: -90,
    }),
    legendSvg(L),
    `</svg>`,
  ].join("\n");
}

function polyline(points: readonly [number, number][], color: string, style?: LineStyle): string {
  const segments: string[] = [];
  let current: string[] = [];
  for (const [px, py] of points) {
    if (Number.isFinite(px) && Number.isFinite(py)) current.push(`${r2(px)},${r2(py)}`);
    else if (current.length) {
      segments.push(current.join(" "));
      current = [];
    }
  }
  if (current.length) segments.push(current.join(" "));
  return segments.map((s) =>
    `<polyline points="${s}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"${
      dashArray(style)
    }/>`
  ).join("");
}

function checkLengths(
  name: string,
  x: readonly number[],
  y: readonly number[],
  extra?: readonly unknown[],
): void {
  if (x.length !== y.length || (extra && extra.length !== y.length)) {
    throw new Error(
      `Cannot draw series "${name}": x has ${x.length} values, y ${y.length}${
        extra ? `, band ${extra.length}` : ""
      }`,
    );
  }
}

/** A line plot as an SVG document. */
export function linePlotSvg(spec: LinePlotSpec): string {
  spec.series.forEach((s) => checkLengths(s.name, s.x, s.y, s.band));
  const entries: LegendEntry[] = spec.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    kind: "line",
    style: s.style,
  }));
  const refEntries: LegendEntry[] = (spec.referenceLines ?? []).map((r) => ({
    name: r.label,
    color: r.color ?? "#555",
    kind: "line",
    style: "dotted",
  }));
  const xs = extent(spec.series.flatMap((s) => s.x));
  const yVals = spec.series.flatMap((s) =>
    s.band ? s.y.flatMap((v, i) => [v - s.band![i], v + s.band![i], v]) : [...s.y]
  ).concat((spec.referenceLines ?? []).map((r) => r.y));
  const ys = extent(spec.yLog ? yVals.filter((v) => v > 0) : yVals);
  // First pass for the tick labels' width, second with the real pixel range.
  const probe = spec.yLog
    ? logScale(ys[0], ys[1], 0, 1)
    : linearScale(ys[0], ys[1], 0, 1, "padded", spec.yRange);
  const L = layout(
    spec,
    probe.ticks.map((t) => t.label),
    [...entries, ...refEntries],
    TICK_SIZE + 8,
    spec.xLabel !== "",
  );
  const xS = linearScale(xs[0], xs[1], L.left, L.right, "padded", spec.xRange);
  const yS = spec.yLog
    ? logScale(ys[0], ys[1], L.bottom, L.top)
    : linearScale(ys[0], ys[1], L.bottom, L.top, "padded", spec.yRange);
  const body: string[] = [];
  spec.series.forEach((s, i) => {
    const color = entries[i].color;
    if (s.band) {
      const upper = s.x.map((x, j) => `${r2(xS.map(x))},${r2(yS.map(s.y[j] + s.band![j]))}`);
      const lower = s.x.map((x, j) => `${r2(xS.map(x))},${r2(yS.map(s.y[j] - s.band![j]))}`).reverse();
      const pts = [...upper, ...lower].filter((p) => !p.includes("NaN"));
      body.push(`<polygon points="${pts.join(" ")}" fill="${color}" fill-opacity="0.18" stroke="none"/>`);
    }
  });
  (spec.referenceLines ?? []).forEach((r, i) => {
    const py = yS.map(r.y);
    body.push(
      `<line x1="${r2(L.left)}" y1="${r2(py)}" x2="${r2(L.right)}" y2="${r2(py)}" stroke="${
        refEntries[i].color
      }" stroke-width="1.5"${dashArray("dotted")}/>`,
    );
  });
  spec.series.forEach((s, i) => {
    const color = entries[i].color;
    const pts = s.x.map((x, j) => [xS.map(x), yS.map(s.y[j])] as [number, number]);
    body.push(polyline(pts, color, s.style));
    if (s.markers ?? s.x.length <= 30) {
      for (const [px, py] of pts) {
        if (Number.isFinite(px) && Number.isFinite(py)) {
          body.push(`<circle cx="${r2(px)}" cy="${r2(py)}" r="3" fill="${color}"/>`);
        }
      }
    }
  });
  return frameSvg(
    L,
    spec.title,
    spec.xLabel,
    spec.yLabel,
    xS.ticks.map((t) => ({ px: xS.map(t.v), label: t.label })),
    yS.ticks.map((t) => ({ py: yS.map(t.v), label: t.label })),
    body.join(""),
  );
}

/** A grouped bar chart as an SVG document. */
export function barChartSvg(spec: BarChartSpec): string {
  for (const s of spec.series) {
    if (
      s.values.length !== spec.categories.length || (s.errors && s.errors.length !== spec.categories.length)
    ) {
      throw new Error(
        `Cannot draw bar series "${s.name}": ${s.values.length} values for ${spec.categories.length} categories`,
      );
    }
  }
  const entries: LegendEntry[] = spec.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    kind: "bar",
  }));
  const tops = spec.series.flatMap((s) =>
    s.values.map((v, j) => (v ?? NaN) + (s.errors?.[j] ?? 0)).filter(Number.isFinite)
  );
  const values = spec.series.flatMap((s) =>
    s.values.filter((v): v is number => v !== null && Number.isFinite(v))
  );
  const [lo, hi] = extent([...values, ...tops]);
  const yMin = spec.yLog ? lo : Math.min(0, lo);
  const yMax = spec.yLog ? hi : Math.max(0, hi) * (spec.valueLabels === false ? 1.02 : 1.1);
  const probe = spec.yLog ? logScale(yMin, yMax, 0, 1) : linearScale(yMin, yMax, 0, 1, "nice");
  // Category labels: horizontal when they fit their slot, else rotated 30°.
  const width = spec.width ?? 720;
  const approxSlot = (width * 0.6) / Math.max(1, spec.categories.length);
  const longest = Math.max(0, ...spec.categories.map((c) => textWidth(c, TICK_SIZE)));
  const rotate = longest > approxSlot - 6;
  const xTickHeight = rotate ? Math.min(longest, 160) * 0.5 + TICK_SIZE : TICK_SIZE + 8;
  const L = layout(spec, probe.ticks.map((t) => t.label), entries, xTickHeight, !!spec.xLabel);
  const yS = spec.yLog
    ? logScale(yMin, yMax, L.bottom, L.top)
    : linearScale(yMin, yMax, L.bottom, L.top, "nice");
  const slot = (L.right - L.left) / Math.max(1, spec.categories.length);
  const groupW = slot * 0.8;
  const barW = groupW / Math.max(1, spec.series.length);
  const base = spec.yLog ? L.bottom : yS.map(0);
  const labelLen = Math.max(
    1,
    ...spec.series.flatMap((s) =>
      s.values.filter((v): v is number => v !== null).map((v) => formatValue(v).length)
    ),
  );
  const labelSize = Math.min(TICK_SIZE, Math.max(7, (barW + 4) / (labelLen * CHAR_EM)));
  const body: string[] = [];
  spec.series.forEach((s, i) => {
    s.values.forEach((v, j) => {
      if (v === null || !Number.isFinite(v) || (spec.yLog && v <= 0)) return;
      const x = L.left + slot * j + (slot - groupW) / 2 + barW * i;
      const py = yS.map(v);
      const y0 = Math.min(py, base), h = Math.abs(base - py);
      body.push(
        `<rect x="${r2(x + 1)}" y="${r2(y0)}" width="${r2(Math.max(1, barW - 2))}" height="${r2(h)}" fill="${
          entries[i].color
        }"/>`,
      );
      const err = s.errors?.[j];
      if (err !== null && err !== undefined && err > 0) {
        const cx = x + barW / 2,
          a = yS.map(v + err),
          b = yS.map(spec.yLog ? Math.max(v - err, yS.min) : v - err);
        body.push(
          `<path d="M${r2(cx)},${r2(a)}V${r2(b)}M${r2(cx - 4)},${r2(a)}H${r2(cx + 4)}M${r2(cx - 4)},${
            r2(b)
          }H${r2(cx + 4)}" stroke="#222" stroke-width="1.2" fill="none"/>`,
        );
      }
      if (spec.valueLabels !== false) {
        const ly = v >= 0 ? Math.min(py, err ? yS.map(v + err) : py) - 4 : py + labelSize + 2;
        body.push(text(x + barW / 2, ly, formatValue(v), labelSize, { anchor: "middle", fill: "#333" }));
      }
    });
  });
  if (!spec.yLog && yS.min < 0) {
    body.push(
      `<line x1="${r2(L.left)}" y1="${r2(base)}" x2="${r2(L.right)}" y2="${r2(base)}" stroke="#333"/>`,
    );
  }
  return frameSvg(
    L,
    spec.title,
    spec.xLabel ?? "",
    spec.yLabel,
    spec.categories.map((c, j) => ({
      px: L.left + slot * (j + 0.5),
      label: rotate ? fitText(c, TICK_SIZE, 160) : c,
    })),
    yS.ticks.map((t) => ({ py: yS.map(t.v), label: t.label })),
    body.join(""),
    rotate ? -30 : 0,
  );
}

/** A scatter plot (optionally with lines joining the points, and the y = x line) as an SVG document. */
export function scatterPlotSvg(spec: ScatterPlotSpec): string {
  spec.series.forEach((s) => checkLengths(s.name, s.x, s.y));
  const entries: LegendEntry[] = spec.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    kind: s.line ? "line" : "point",
  }));
  if (spec.identityLine) entries.push({ name: "y = x", color: "#777", kind: "line", style: "dashed" });
  let xs = extent(spec.series.flatMap((s) => s.x));
  let ys = extent(spec.series.flatMap((s) => s.y));
  if (spec.identityLine) {
    const both = extent([...xs, ...ys]);
    xs = both;
    ys = both;
  }
  const probe = linearScale(ys[0], ys[1], 0, 1, "padded");
  const L = layout(spec, probe.ticks.map((t) => t.label), entries, TICK_SIZE + 8, spec.xLabel !== "");
  const xS = linearScale(xs[0], xs[1], L.left, L.right, "padded");
  const yS = linearScale(ys[0], ys[1], L.bottom, L.top, "padded");
  const body: string[] = [];
  if (spec.identityLine) {
    const a = Math.min(xS.min, yS.min), b = Math.max(xS.max, yS.max);
    body.push(
      `<line x1="${r2(xS.map(a))}" y1="${r2(yS.map(a))}" x2="${r2(xS.map(b))}" y2="${
        r2(yS.map(b))
      }" stroke="#777" stroke-width="1.5" stroke-dasharray="7 4"/>`,
    );
  }
  spec.series.forEach((s, i) => {
    const color = entries[i].color;
    const pts = s.x.map((x, j) => [xS.map(x), yS.map(s.y[j])] as [number, number]);
    if (s.line) body.push(polyline(pts, color));
    for (const [px, py] of pts) {
      if (Number.isFinite(px) && Number.isFinite(py)) {
        body.push(
          `<circle cx="${r2(px)}" cy="${r2(py)}" r="3.5" fill="${color}" stroke="#fff" stroke-width="0.6"/>`,
        );
      }
    }
  });
  return frameSvg(
    L,
    spec.title,
    spec.xLabel,
    spec.yLabel,
    xS.ticks.map((t) => ({ px: xS.map(t.v), label: t.label })),
    yS.ticks.map((t) => ({ py: yS.map(t.v), label: t.label })),
    body.join(""),
  );
}

/** A line plot as PNG bytes. */
export async function linePlotPng(spec: LinePlotSpec): Promise<Uint8Array> {
  return await svgToPng(linePlotSvg(spec));
}

/** A grouped bar chart as PNG bytes. */
export async function barChartPng(spec: BarChartSpec): Promise<Uint8Array> {
  return await svgToPng(barChartSvg(spec));
}

/** A scatter plot as PNG bytes. */
export async function scatterPlotPng(spec: ScatterPlotSpec): Promise<Uint8Array> {
  return await svgToPng(scatterPlotSvg(spec));
}
