/**
 * `emailng quota report`: who uses the most, who is over or near the limit,
 * whose usage is too old to be trusted and which usage records belong to
 * nobody in the directory. Built from every usage record and the directory
 * snapshot (for logins, addresses and limits, the same way the daemon reads
 * them); pure, so the text and JSON forms are tested without a store.
 */
import type { Directory } from "../core/directory/model.js";
import type { QuotaSettings } from "./decision.js";
import { formatAge, formatBytes, percentOf } from "./format.js";
import { dovecotUsernameOf, limitOf } from "./plan.js";
import type { UsageEntry } from "./usage-store.js";

export interface ReportRow {
  username: string;
  login: string | null;
  address: string | null;
  storageBytes: number | null;
  messages: number | null;
  limitBytes: number | null;
  /** Usage as a share of the limit, rounded down; null without a limit or usage. */
  percent: number | null;
  ageMs: number | null;
  /** Older than usage_max_age, or of unknown age: never used to refuse. */
  stale: boolean;
}

export interface QuotaReport {
  generatedAt: string;
  /** Usage records read. */
  records: number;
  nearPercent: number;
  /** At or over the limit: they take no more mail. Highest share first. */
  over: ReportRow[];
  /** At least nearPercent of the limit, still under it. Highest share first. */
  near: ReportRow[];
  /** The `top` biggest users. */
  top: ReportRow[];
  stale: ReportRow[];
  /** Usage recorded for a name no directory user has (or every name, without a snapshot). */
  notInDirectory: string[];
}

export interface ReportOptions {
  top: number;
  nearPercent: number;
}

export function buildReport(
  entries: readonly UsageEntry[],
  directory: Directory | null,
  settings: QuotaSettings,
  now: number,
  options: ReportOptions,
): QuotaReport {
  const users = new Map<string, Directory["users"][number]>();
  for (const user of directory?.users ?? []) {
    const username = dovecotUsernameOf(user, settings);
    if (username !== null && user.status === "active") users.set(username, user);
  }
  const rows: ReportRow[] = [];
  const notInDirectory: string[] = [];
  for (const entry of entries) {
    const user = users.get(entry.username);
    if (user === undefined) notInDirectory.push(entry.username);
    const limitBytes = user === undefined ? null : limitOf(user, settings);
    const ageMs = entry.updatedAt === null ? null : Math.max(0, now - entry.updatedAt);
    rows.push({
      username: entry.username,
      login: user?.login ?? null,
      address: user?.primaryAddress ?? null,
      storageBytes: entry.storageBytes,
      messages: entry.messages,
      limitBytes,
      percent: percentOf(entry.storageBytes, limitBytes),
      ageMs,
      stale: ageMs === null || ageMs > settings.usageMaxAgeMs,
    });
  }
  const byShare = (a: ReportRow, b: ReportRow) =>
    (b.percent ?? 0) - (a.percent ?? 0) || a.username.localeCompare(b.username);
  const fresh = rows.filter((row) => !row.stale);
  return {
    generatedAt: new Date(now).toISOString(),
    records: entries.length,
    nearPercent: options.nearPercent,
    over: fresh
      .filter((row) => row.limitBytes !== null && (row.storageBytes ?? 0) >= row.limitBytes)
      .sort(byShare),
    near: fresh
      .filter(
        (row) =>
          row.limitBytes !== null &&
          (row.storageBytes ?? 0) < row.limitBytes &&
          (row.percent ?? 0) >= options.nearPercent,
      )
      .sort(byShare),
    top: [...rows]
      .sort((a, b) => (b.storageBytes ?? 0) - (a.storageBytes ?? 0) || a.username.localeCompare(b.username))
      .slice(0, options.top),
    stale: rows.filter((row) => row.stale).sort((a, b) => a.username.localeCompare(b.username)),
    notInDirectory: notInDirectory.sort(),
  };
}

/** Lists in the text form show at most this many names. */
const TEXT_LIST_LIMIT = 50;

function line(row: ReportRow): string {
  const who =
    row.login !== null && row.login !== row.username ? `${row.username} (${row.login})` : row.username;
  const used = row.storageBytes === null ? "?" : formatBytes(row.storageBytes);
  const limit = row.limitBytes === null ? "no limit" : formatBytes(row.limitBytes);
  const share = row.percent === null ? "" : ` ${row.percent}%`;
  const messages = row.messages === null ? "" : `, ${row.messages} messages`;
  return `  ${who}: ${used} of ${limit}${share}${messages}, updated ${formatAge(row.ageMs)}${row.stale ? " (stale)" : ""}\n`;
}

function section(title: string, rows: readonly ReportRow[]): string {
  if (rows.length === 0) return `${title}: none\n`;
  const shown = rows.slice(0, TEXT_LIST_LIMIT).map(line).join("");
  const more = rows.length > TEXT_LIST_LIMIT ? `  … and ${rows.length - TEXT_LIST_LIMIT} more\n` : "";
  return `${title} (${rows.length}):\n${shown}${more}`;
}

export function formatReportText(report: QuotaReport): string {
  const parts = [
    `Mailbox usage, ${report.records} records, ${report.generatedAt}\n`,
    section("Over their limit (refused)", report.over),
    section(`Near their limit (${report.nearPercent}% or more)`, report.near),
    section(`Top ${report.top.length} by usage`, report.top),
    section("Stale (too old to refuse on; refresh with `emailng quota import`)", report.stale),
  ];
  if (report.notInDirectory.length > 0) {
    const names = report.notInDirectory.slice(0, TEXT_LIST_LIMIT).join(", ");
    const more = report.notInDirectory.length > TEXT_LIST_LIMIT ? ", …" : "";
    parts.push(`Not in the directory (${report.notInDirectory.length}): ${names}${more}\n`);
  }
  return parts.join("\n");
}
