/**
 * A small SVG line-chart writer for docs/performance.md: categories along x
 * (connections 1/10/50, directory sizes, percentiles), a linear or
 * logarithmic y axis with round tick values, one coloured line with point
 * markers per series and a legend. Pure: data in, SVG text out; text is
 * escaped, missing points (NaN) break the line instead of drawing zero.
 */

export interface ChartSeries {
  name: string;
  /** One value per category; NaN or null where nothing was measured. */
  values: ReadonlyArray<number | null>;
  /** Draw dashed (anchors, ceilings). */
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  categories: readonly string[];
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  yScale?: "linear" | "log";
  /** Formats tick labels (default: compact numbers). */
  formatY?: (value: number) => string;
  width?: number;
  height?: number;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
];

export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** 1234 → "1.2k", 1500000 → "1.5M", 0.5 → "0.5". */
export function compactNumber(value: number): string {
  const abs = Math.abs(value);
  const trim = (n: number) => String(Number(n.toFixed(abs >= 1 ? 1 : 3)));
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

/** Round tick values covering [min, max] on a linear axis starting at zero when min ≥ 0. */
export function linearTicks(min: number, max: number, target = 5): number[] {
  const low = Math.min(0, min);
  const high = max > low ? max : low + 1;
  const rough = (high - low) / target;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((factor) => factor * magnitude >= rough) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let value = Math.floor(low / step) * step; value < high + step * 0.999; value += step) {
    ticks.push(Number(value.toPrecision(12)));
    if (value >= high) break;
  }
  return ticks;
}

/** 1-2-5 ticks per decade covering [min, max] (both > 0) on a log axis. */
export function logTicks(min: number, max: number): number[] {
  const low = 10 ** Math.floor(Math.log10(min));
  const high = 10 ** Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let decade = low; decade <= high * 1.000001; decade = Number((decade * 10).toPrecision(12))) {
    for (const factor of [1, 2, 5]) {
      const value = Number((decade * factor).toPrecision(12));
      if (value >= low && value <= high) ticks.push(value);
    }
  }
  // Fewer labels when the range spans many decades.
  const powerOfTen = (value: number) => Math.abs(Math.log10(value) - Math.round(Math.log10(value))) < 1e-9;
  return ticks.length > 13 ? ticks.filter(powerOfTen) : ticks;
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const margin = { top: 40, right: 20, bottom: 56 + 18 * Math.ceil(options.series.length / 3), left: 72 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const format = options.formatY ?? compactNumber;
  const log = options.yScale === "log";
  const values = options.series
    .flatMap((series) => series.values)
    .filter((value): value is number => value !== null && Number.isFinite(value) && (!log || value > 0));
  const dataMin = values.length > 0 ? Math.min(...values) : log ? 1 : 0;
  const dataMax = values.length > 0 ? Math.max(...values) : 1;
  const ticks = log ? logTicks(dataMin, dataMax) : linearTicks(dataMin, dataMax);
  const axisMin = ticks[0]!;
  const axisMax = ticks[ticks.length - 1]!;
  const y = (value: number) => {
    const fraction = log
      ? (Math.log10(value) - Math.log10(axisMin)) / (Math.log10(axisMax) - Math.log10(axisMin) || 1)
      : (value - axisMin) / (axisMax - axisMin || 1);
    return margin.top + plotHeight - fraction * plotHeight;
  };
  const count = options.categories.length;
  const x = (index: number) => margin.left + (count <= 1 ? plotWidth / 2 : (index / (count - 1)) * plotWidth);
  const fixed = (n: number) => n.toFixed(1);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img" aria-labelledby="chart-title">`,
    `<title id="chart-title">${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  for (const tick of ticks) {
    const ty = fixed(y(tick));
    parts.push(
      `<line x1="${margin.left}" y1="${ty}" x2="${margin.left + plotWidth}" y2="${ty}" stroke="#e0e0e0"/>`,
      `<text x="${margin.left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${escapeXml(format(tick))}</text>`,
    );
  }
  options.categories.forEach((category, index) => {
    const tx = fixed(x(index));
    parts.push(
      `<line x1="${tx}" y1="${margin.top + plotHeight}" x2="${tx}" y2="${margin.top + plotHeight + 5}" stroke="#333"/>`,
      `<text x="${tx}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${escapeXml(category)}</text>`,
    );
  });
  parts.push(
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotHeight}" stroke="#333"/>`,
    `<line x1="${margin.left}" y1="${margin.top + plotHeight}" x2="${margin.left + plotWidth}" y2="${margin.top + plotHeight}" stroke="#333"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${margin.top + plotHeight + 36}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text x="16" y="${margin.top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 16 ${margin.top + plotHeight / 2})">${escapeXml(options.yLabel)}</text>`,
  );
  options.series.forEach((series, index) => {
    const colour = PALETTE[index % PALETTE.length]!;
    const dash = series.dashed === true ? ' stroke-dasharray="6 4"' : "";
    // One path segment per run of measured points.
    let segment: string[] = [];
    const segments: string[][] = [];
    series.values.forEach((value, position) => {
      if (value === null || !Number.isFinite(value) || (log && value <= 0) || position >= count) {
        if (segment.length > 0) segments.push(segment);
        segment = [];
        return;
      }
      segment.push(`${fixed(x(position))},${fixed(y(value))}`);
    });
    if (segment.length > 0) segments.push(segment);
    for (const points of segments) {
      if (points.length > 1) {
        parts.push(
          `<polyline points="${points.join(" ")}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`,
        );
      }
      for (const point of points) {
        const [px, py] = point.split(",");
        parts.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${colour}"/>`);
      }
    }
    const legendX = margin.left + (index % 3) * (plotWidth / 3);
    const legendY = margin.top + plotHeight + 56 + Math.floor(index / 3) * 18;
    parts.push(
      `<line x1="${legendX}" y1="${legendY - 4}" x2="${legendX + 20}" y2="${legendY - 4}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${legendX + 26}" y="${legendY}">${escapeXml(series.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
