// Hand-written SVG line charts for health series: time on x, a value with
// its unit on y, gaps where samples are missing, and client-side averaging
// when there are more points than pixels. Built with createElementNS (via
// s()); no text is ever parsed as markup.

import { s } from "./dom";

/** Series is one line: [time in ms, value] pairs, oldest first. */
export interface Series {
  label: string;
  /** CSS class of the line (its colour). */
  cls: string;
  points: Array<[number, number]>;
}

export interface ChartOptions {
  /** Accessible name, e.g. "CPU usage". */
  title: string;
  from: number;
  to: number;
  series: Series[];
  /** Fixed top of the y axis (100 for percentages); otherwise a round number above the data. */
  yMax?: number;
  /** Tick label for a y value, without the unit. */
  yTick: (v: number) => string;
  /** Unit shown on the y axis: "%", "GiB", "MiB/s". */
  unit: string;
  /** Break the line where two points are further apart than this. */
  gapMs: number;
}

const W = 640, H = 200;
const ML = 48, MR = 14, MT = 22, MB = 26;
const plotH = H - MT - MB;
/** plotW is the plot's width in SVG units: more points than this are averaged. */
export const plotW = W - ML - MR;

/** niceCeil rounds up to 1, 2, 2.5 or 5 times a power of ten. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * p >= v - 1e-9 * p) return m * p;
  }
  return 10 * p;
}

/**
 * downsample averages points into at most n buckets of equal time width,
 * each plotted at the mean time of its points. NaN values are skipped.
 */
export function downsample(points: Array<[number, number]>, from: number, to: number, n: number): Array<[number, number]> {
  if (points.length <= n) return points;
  const width = (to - from) / n;
  const out: Array<[number, number]> = [];
  let bucket = -1, st = 0, sv = 0, c = 0;
  const flush = () => {
    if (c > 0) out.push([st / c, sv / c]);
    st = sv = c = 0;
  };
  for (const [t, v] of points) {
    if (!Number.isFinite(v)) continue;
    const b = Math.floor((t - from) / width);
    if (b !== bucket) {
      flush();
      bucket = b;
    }
    st += t;
    sv += v;
    c++;
  }
  flush();
  return out;
}

const minute = 60_000, hour = 60 * minute, day = 24 * hour;
const tickSteps = [5 * minute, 10 * minute, 15 * minute, 30 * minute, hour, 2 * hour, 3 * hour, 4 * hour, 6 * hour, 12 * hour, day, 2 * day];
const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const pad = (n: number) => String(n).padStart(2, "0");

/** timeTicks picks 4–8 tick times between from and to, on local-time boundaries. */
export function timeTicks(from: number, to: number): { step: number; ticks: number[] } {
  const span = to - from;
  const step = tickSteps.find((st) => span / st <= 8) ?? tickSteps[tickSteps.length - 1]!;
  const off = new Date(from).getTimezoneOffset() * minute;
  const ticks: number[] = [];
  for (let t = Math.ceil((from - off) / step) * step + off; t <= to; t += step) ticks.push(t);
  return { step, ticks };
}

function tickLabel(t: number, step: number): string {
  const d = new Date(t);
  if (step >= day || (d.getHours() === 0 && d.getMinutes() === 0 && step >= 4 * hour)) {
    return `${weekdays[d.getDay()]} ${d.getDate()}`;
  }
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** lineChart draws the series; an empty range says so inside the frame. */
export function lineChart(o: ChartOptions): SVGSVGElement {
  const span = Math.max(1, o.to - o.from);
  const x = (t: number) => ML + ((t - o.from) / span) * plotW;
  let max = 0;
  const lines = o.series.map((se) => {
    const pts = downsample(se.points.filter(([t]) => t >= o.from && t <= o.to), o.from, o.to, plotW);
    for (const [, v] of pts) if (Number.isFinite(v)) max = Math.max(max, v);
    return { se, pts };
  });
  const yMax = o.yMax ?? niceCeil(max * 1.05);
  const y = (v: number) => MT + plotH - (Math.min(Math.max(v, 0), yMax) / yMax) * plotH;

  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": o.title,
    preserveAspectRatio: "xMidYMid meet",
  }, s("title", null, o.title));

  // Grid and y axis.
  const grid = s("g", { class: "chart-grid" });
  const labels = s("g", { class: "chart-labels" });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const yy = y(v);
    grid.append(s("line", { x1: ML, x2: W - MR, y1: yy, y2: yy }));
    labels.append(s("text", { x: ML - 6, y: yy + 4, class: "tick tick-y" }, o.yTick(v)));
  }
  labels.append(s("text", { x: ML - 6, y: MT - 9, class: "tick tick-y unit" }, o.unit));
  const { step, ticks } = timeTicks(o.from, o.to);
  for (const t of ticks) {
    const xx = x(t);
    grid.append(s("line", { x1: xx, x2: xx, y1: MT, y2: MT + plotH, class: "v" }));
    labels.append(s("text", { x: xx, y: H - 8, class: "tick tick-x" }, tickLabel(t, step)));
  }
  svg.append(grid, s("rect", { x: ML, y: MT, width: plotW, height: plotH, class: "chart-frame" }), labels);

  // Lines, broken at gaps.
  let any = false;
  for (const { se, pts } of lines) {
    let d = "";
    const dots: Array<[number, number]> = [];
    let prevT = -Infinity;
    let run: Array<[number, number]> = [];
    const endRun = () => {
      if (run.length === 1) dots.push(run[0]!);
      else if (run.length > 1) d += run.map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)} ${y(v).toFixed(1)}`).join("");
      run = [];
    };
    for (const p of pts) {
      if (!Number.isFinite(p[1])) {
        endRun();
        continue;
      }
      if (p[0] - prevT > o.gapMs) endRun();
      run.push(p);
      prevT = p[0];
    }
    endRun();
    if (d) svg.append(s("path", { d, class: `chart-line ${se.cls}` }, s("title", null, se.label)));
    for (const [t, v] of dots) svg.append(s("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, class: `chart-dot ${se.cls}` }));
    if (d || dots.length) any = true;
  }
  if (!any) {
    svg.append(s("text", { x: ML + plotW / 2, y: MT + plotH / 2, class: "chart-empty" }, "No samples in this range"));
  }
  return svg;
}

/** byteUnit picks the binary unit that keeps max below 1024 of it. */
export function byteUnit(max: number): { div: number; name: string } {
  const names = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, div = 1;
  while (max / div >= 1024 && i < names.length - 1) {
    div *= 1024;
    i++;
  }
  return { div, name: names[i]! };
}

/** numTick formats an axis number compactly: 0, 2.5, 10, 120. */
export function numTick(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(Number.isInteger(v) ? 0 : 1);
  return Number.isInteger(v) ? String(v) : v.toFixed(v * 10 === Math.round(v * 10) ? 1 : 2);
}

/** BarSeries is one set of bars: one value per label. */
export interface BarSeries {
  label: string;
  /** CSS class of the bars (their colour): s1…s5. */
  cls: string;
  values: number[];
}

export interface BarOptions {
  /** Accessible name, e.g. "Tickets per day". */
  title: string;
  /** One label per group of bars (days, categories). */
  labels: string[];
  series: BarSeries[];
  /** Tick label for a y value. */
  yTick: (v: number) => string;
  unit: string;
  /** Show every n-th label only (many days); default: as many as fit. */
  labelEvery?: number;
  /** Values are counts: the y axis gets whole-number ticks. */
  integer?: boolean;
}

/**
 * barChart draws grouped bars: for each label, one bar per series, with a
 * <title> per bar giving its exact value (hover, screen readers).
 */
export function barChart(o: BarOptions): SVGSVGElement {
  let max = 0;
  for (const se of o.series) for (const v of se.values) if (Number.isFinite(v)) max = Math.max(max, v);
  // Counts: a multiple of 4 so that the 4 grid steps are whole numbers.
  const yMax = o.integer ? Math.max(4, Math.ceil(niceCeil(max * 1.05) / 4) * 4) : niceCeil(max * 1.05);
  const y = (v: number) => MT + plotH - (Math.min(Math.max(v, 0), yMax) / yMax) * plotH;
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": o.title,
    preserveAspectRatio: "xMidYMid meet",
  }, s("title", null, o.title));
  const grid = s("g", { class: "chart-grid" });
  const labels = s("g", { class: "chart-labels" });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const yy = y(v);
    grid.append(s("line", { x1: ML, x2: W - MR, y1: yy, y2: yy }));
    labels.append(s("text", { x: ML - 6, y: yy + 4, class: "tick tick-y" }, o.yTick(v)));
  }
  labels.append(s("text", { x: ML - 6, y: MT - 9, class: "tick tick-y unit" }, o.unit));
  const n = Math.max(1, o.labels.length);
  const group = plotW / n;
  const every = o.labelEvery ?? Math.max(1, Math.ceil(n / 10));
  const bars = s("g", { class: "chart-bars" });
  const inner = group * 0.8 / Math.max(1, o.series.length);
  o.labels.forEach((lab, i) => {
    const gx = ML + i * group + group * 0.1;
    if (i % every === 0) {
      const text = lab.length > 14 ? lab.slice(0, 13) + "…" : lab;
      labels.append(s("text", { x: (ML + i * group + group / 2).toFixed(1), y: H - 8, class: "tick tick-x" }, text));
    }
    o.series.forEach((se, k) => {
      const v = se.values[i] ?? 0;
      const top = y(v);
      bars.append(s("rect", {
        x: (gx + k * inner).toFixed(1), y: top.toFixed(1), width: Math.max(1, inner - 1).toFixed(1), height: (MT + plotH - top).toFixed(1),
        class: `chart-bar ${se.cls}`, data: { testid: "chart-bar" },
      }, s("title", null, `${lab}: ${se.label} ${o.yTick(v)}`)));
    });
  });
  svg.append(grid, s("rect", { x: ML, y: MT, width: plotW, height: plotH, class: "chart-frame" }), bars, labels);
  if (max === 0) {
    svg.append(s("text", { x: ML + plotW / 2, y: MT + plotH / 2, class: "chart-empty" }, "Nothing in this period"));
  }
  return svg;
}
