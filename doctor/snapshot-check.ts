/**
 * Judges the published directory snapshot from its metadata alone: is
 * there one, is it younger than snapshot.max_age (older, every daemon
 * answers "temporary failure"), is its creation time not in the future
 * (clock skew between hosts), and is it the view this host needs (the
 * Dovecot userdb/passdb dict needs the internal view: the relay view has
 * no homes, uids or password hashes). Pure: the metadata and the clock
 * are passed in.
 */
import type { SnapshotMeta } from "../core/directory/snapshot-store.js";
import { type Finding, fail, ok, warn } from "./findings.js";

export type SnapshotReading =
  | { kind: "missing" }
  | { kind: "unreadable"; reason: string }
  | { kind: "read"; meta: SnapshotMeta };

export interface SnapshotExpectations {
  path: string;
  maxAgeMs: number;
  nowMs: number;
  /** The Dovecot dict of verifyd is served from this file. */
  needsInternalView: boolean;
}

const REFRESH_FIX =
  "run `emailng sync run` on the internal host (or `emailng sync pull` on a relay) and check its timer: " +
  "systemctl list-timers 'emailng-*'; journalctl -u emailng-sync.service -u emailng-pull.service";

/** "3h 5m", "42s": enough to compare with max_age at a glance. */
export function formatAge(ms: number): string {
  const seconds = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${seconds % 60}s`;
  return `${seconds}s`;
}

export function judgeSnapshot(reading: SnapshotReading, expect: SnapshotExpectations): Finding[] {
  const check = "snapshot";
  switch (reading.kind) {
    case "missing":
      return [
        fail(
          check,
          `no snapshot at ${expect.path}: verifyd, policyd and quotad answer every lookup with a temporary failure`,
          `${REFRESH_FIX}; or correct [snapshot] path`,
        ),
      ];
    case "unreadable":
      return [
        fail(
          check,
          `cannot read the snapshot ${expect.path}: ${reading.reason}`,
          "check the file's owner and mode (group emailng, 0640) and rebuild it with `emailng sync run`",
        ),
      ];
    case "read":
      break;
    default: {
      const unexpected: never = reading;
      throw new Error(`unknown snapshot reading ${JSON.stringify(unexpected)}`);
    }
  }
  const { meta } = reading;
  const findings: Finding[] = [];
  const created = Date.parse(meta.createdAt);
  if (Number.isNaN(created)) {
    return [
      fail(
        check,
        `snapshot v${meta.version} has no valid creation time (${JSON.stringify(meta.createdAt)}): the daemons treat it as stale`,
        `rebuild it: ${REFRESH_FIX}`,
      ),
    ];
  }
  const age = expect.nowMs - created;
  const maxAge = formatAge(expect.maxAgeMs);
  if (age > expect.maxAgeMs) {
    findings.push(
      fail(
        check,
        `snapshot v${meta.version} is ${formatAge(age)} old, above snapshot.max_age (${maxAge}): lookups answer TEMP and Postfix answers 451`,
        REFRESH_FIX,
      ),
    );
  } else if (age < -60_000) {
    findings.push(
      warn(
        check,
        `snapshot v${meta.version} was created ${formatAge(age)} in the future: the clocks disagree`,
        "synchronise the clocks of the internal host and this one (NTP: timedatectl status)",
      ),
    );
  } else {
    findings.push(
      ok(
        check,
        `snapshot v${meta.version} (${meta.view} view) is ${formatAge(Math.max(age, 0))} old (max_age ${maxAge})`,
      ),
    );
  }
  if (expect.needsInternalView && meta.view !== "internal") {
    findings.push(
      fail(
        "snapshot view",
        `[verifyd.dovecot] listen serves Dovecot's userdb/passdb, but ${expect.path} is the ${meta.view} view (no homes, uids or password hashes)`,
        "on a back-end, point [snapshot] path at the snapshot `emailng sync run` writes, not at a pulled relay copy",
      ),
    );
  }
  return findings;
}
