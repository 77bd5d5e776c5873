/**
 * What `emailng sync run` prints: a short human summary (status, sources,
 * changes, conflicts, skipped input) or the same as JSON for scripts and
 * monitoring.
 */
import { conflictsJson } from "./conflicts.js";
import { formatDiffText } from "./diff.js";
import type { SyncOutcome } from "./sync-run.js";

const MAX_PROBLEMS_SHOWN = 50;

function headline(outcome: SyncOutcome): string {
  const what = `sync (${outcome.mode}, LDAP ${outcome.ldap})`;
  switch (outcome.status) {
    case "published":
      return `${what}: published snapshot version ${outcome.meta.version} ${outcome.meta.contentHash}`;
    case "unchanged":
      return `${what}: no change; snapshot version ${outcome.meta.version} stays`;
    case "dry-run":
      return `${what}: dry run, nothing published${outcome.refusal === null ? "" : " (a real run would be refused)"}`;
    case "refused":
      return `${what}: NOT published, the safety rail refused`;
  }
}

export function formatSyncOutcome(outcome: SyncOutcome): string {
  const { counts } = outcome;
  const lines = [headline(outcome)];
  lines.push(`  directory: ${counts.users} users, ${counts.groups} groups`);
  for (const source of outcome.sources) {
    lines.push(
      `  source ${source.name}: ${source.users} users, ${source.groups} groups, ${source.skipped} skipped`,
    );
  }
  if (outcome.status === "dry-run" || outcome.status === "refused") {
    lines.push(
      ...formatDiffText(outcome.diff)
        .trimEnd()
        .split("\n")
        .map((line) => `  ${line}`),
    );
    if (outcome.refusal !== null) lines.push(`  ${outcome.refusal}`);
  } else if (outcome.status === "published") {
    lines.push(
      ...formatDiffText(outcome.diff)
        .trimEnd()
        .split("\n")
        .map((line) => `  ${line}`),
    );
  }
  if (outcome.conflicts !== null && outcome.conflicts.length > 0) {
    lines.push(`  conflicts: ${outcome.conflicts.length} (list them with: emailng sync conflicts)`);
  }
  if (outcome.problems.length > 0) {
    lines.push(`  skipped input: ${outcome.problems.length}`);
    for (const problem of outcome.problems.slice(0, MAX_PROBLEMS_SHOWN)) {
      lines.push(`    ${problem.source}: ${problem.message}`);
    }
    if (outcome.problems.length > MAX_PROBLEMS_SHOWN) {
      lines.push(`    … and ${outcome.problems.length - MAX_PROBLEMS_SHOWN} more`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function syncOutcomeJson(outcome: SyncOutcome): Record<string, unknown> {
  return {
    status: outcome.status,
    mode: outcome.mode,
    ldap: outcome.ldap,
    ...(outcome.status === "published" || outcome.status === "unchanged"
      ? {
          version: outcome.meta.version,
          contentHash: outcome.meta.contentHash,
          createdAt: outcome.meta.createdAt,
        }
      : {}),
    ...(outcome.status === "dry-run" || outcome.status === "refused" ? { refusal: outcome.refusal } : {}),
    users: outcome.counts.users,
    groups: outcome.counts.groups,
    sources: outcome.sources,
    problems: outcome.problems,
    conflicts: outcome.conflicts === null ? null : conflictsJson(outcome.conflicts),
    diff: outcome.diff,
  };
}
