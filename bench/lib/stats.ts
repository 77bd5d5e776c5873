/**
 * Summaries the report is built from: the median of repeated measurements
 * (the figure the issue asks for, robust to one disturbed repetition on a
 * shared machine), its spread, and ratios to the ceiling measured in the
 * same sitting. Pure functions over plain numbers.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Smallest and largest value, for "median (min–max)" in the tables. */
export function spread(values: readonly number[]): { min: number; max: number } {
  if (values.length === 0) return { min: Number.NaN, max: Number.NaN };
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** target / ceiling, or NaN when the ceiling is missing or zero. */
export function ratio(target: number, ceiling: number): number {
  return ceiling > 0 && Number.isFinite(target) ? target / ceiling : Number.NaN;
}

/** Rounds to a number of significant digits for display (123456 → 123000 with 3). */
export function significant(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const factor = 10 ** (digits - 1 - magnitude);
  return Math.round(value * factor) / factor;
}

/** "12,345" style, for requests per second. */
export function formatCount(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return Math.round(value).toLocaleString("en-US");
}

/** Latency in microseconds shown in the unit that reads best: "85 µs", "1.42 ms", "1.2 s". */
export function formatMicros(micros: number): string {
  if (!Number.isFinite(micros)) return "–";
  if (micros < 1_000) return `${significant(micros, 3)} µs`;
  if (micros < 1_000_000) return `${significant(micros / 1_000, 3)} ms`;
  return `${significant(micros / 1_000_000, 3)} s`;
}

export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : "–";
}
