/**
 * Sizes and ages as people read them in `emailng quota report` and
 * `quota explain`: binary units like the configuration file's (K = 1024),
 * written KiB/MiB/GiB so nobody mistakes them for powers of ten, one
 * decimal below 10 units; ages in the largest whole unit.
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "?";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  const text = value < 10 ? value.toFixed(1) : Math.round(value).toString();
  return `${text} ${UNITS[unit]}`;
}

export function formatAge(ms: number | null): string {
  if (ms === null) return "unknown age";
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

/** Usage as a share of the limit, rounded down (100 means at the limit); null without a limit. */
export function percentOf(used: number | null, limit: number | null): number | null {
  if (used === null || limit === null || limit <= 0) return null;
  return Math.floor((used * 100) / limit);
}
