/**
 * What a new snapshot changes against the published one, and the safety rail
 * that refuses to publish one that loses too much. The diff is what `emailng
 * sync run --dry-run` shows an admin before anything moves; the rail catches
 * the half-failed LDAP search (a size limit, a wrong base) that would
 * otherwise make the relays reject thousands of valid recipients at once.
 * An address here is one the snapshot itself resolves: users' primary and
 * alternate addresses and groups' addresses (alias-domain forms and
 * extensions follow from those and are not counted again). All lists are
 * sorted, so two runs over the same data print the same report.
 */
import type { Directory, DirectoryGroup, UserStatus } from "../core/directory/model.js";

export interface MemberSet {
  logins: string[];
  groups: string[];
  addresses: string[];
}

export interface AddedRemoved {
  added: string[];
  removed: string[];
}

export interface DirectoryDiff {
  /** True when there was no previous snapshot: everything counts as added. */
  firstSnapshot: boolean;
  users: AddedRemoved;
  groups: AddedRemoved;
  addresses: AddedRemoved;
  /** Quota in bytes; null is the configured default. */
  quotaChanges: Array<{ login: string; from: number | null; to: number | null }>;
  statusChanges: Array<{ entry: "user" | "group"; name: string; from: UserStatus; to: UserStatus }>;
  /** Direct members of groups present in both snapshots. */
  membershipChanges: Array<{ group: string; added: MemberSet; removed: MemberSet }>;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Calls `visit` with every address the directory resolves by itself (see the module comment), repeats included. */
function forEachAddress(directory: Directory, visit: (address: string) => void): void {
  for (const user of directory.users) {
    visit(user.primaryAddress);
    for (const address of user.alternateAddresses) visit(address);
  }
  for (const group of directory.groups) for (const address of group.addresses) visit(address);
}

/** Every address the directory resolves by itself, once. */
export function directoryAddresses(directory: Directory): Set<string> {
  const addresses = new Set<string>();
  forEachAddress(directory, (address) => addresses.add(address));
  return addresses;
}

/** Added and removed addresses with one map (1 = before, 2 = after, 3 = both): half the work of two sets. */
function addressChanges(before: Directory, after: Directory): AddedRemoved {
  const seen = new Map<string, number>();
  forEachAddress(before, (address) => seen.set(address, 1));
  forEachAddress(after, (address) => seen.set(address, (seen.get(address) ?? 0) | 2));
  const added: string[] = [];
  const removed: string[] = [];
  for (const [address, where] of seen) {
    if (where === 1) removed.push(address);
    else if (where === 2) added.push(address);
  }
  return { added: added.sort(compare), removed: removed.sort(compare) };
}

function addedRemoved(
  before: ReadonlySet<string> | Map<string, unknown>,
  after: ReadonlySet<string> | Map<string, unknown>,
): AddedRemoved {
  const added: string[] = [];
  const removed: string[] = [];
  for (const item of after.keys()) if (!before.has(item)) added.push(item);
  for (const item of before.keys()) if (!after.has(item)) removed.push(item);
  return { added: added.sort(compare), removed: removed.sort(compare) };
}

function byKey<T>(list: T[], key: (item: T) => string): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of list) if (!map.has(key(item))) map.set(key(item), item);
  return map;
}

function memberChange(
  before: DirectoryGroup,
  after: DirectoryGroup,
): { added: MemberSet; removed: MemberSet } {
  const logins = addedRemoved(new Set(before.memberLogins), new Set(after.memberLogins));
  const groups = addedRemoved(new Set(before.memberGroups), new Set(after.memberGroups));
  const addresses = addedRemoved(new Set(before.memberAddresses), new Set(after.memberAddresses));
  return {
    added: { logins: logins.added, groups: groups.added, addresses: addresses.added },
    removed: { logins: logins.removed, groups: groups.removed, addresses: addresses.removed },
  };
}

function memberCount(members: MemberSet): number {
  return members.logins.length + members.groups.length + members.addresses.length;
}

/** Compares two snapshots; a null previous snapshot makes everything added. */
export function diffDirectories(previous: Directory | null, next: Directory): DirectoryDiff {
  const before = previous ?? { users: [], groups: [], domains: next.domains };
  const usersBefore = byKey(before.users, (user) => user.login);
  const usersAfter = byKey(next.users, (user) => user.login);
  const groupsBefore = byKey(before.groups, (group) => group.name);
  const groupsAfter = byKey(next.groups, (group) => group.name);

  const diff: DirectoryDiff = {
    firstSnapshot: previous === null,
    users: addedRemoved(usersBefore, usersAfter),
    groups: addedRemoved(groupsBefore, groupsAfter),
    addresses: addressChanges(before, next),
    quotaChanges: [],
    statusChanges: [],
    membershipChanges: [],
  };
  for (const [login, user] of usersAfter) {
    const old = usersBefore.get(login);
    if (old === undefined) continue;
    if (old.quotaBytes !== user.quotaBytes)
      diff.quotaChanges.push({ login, from: old.quotaBytes, to: user.quotaBytes });
    if (old.status !== user.status)
      diff.statusChanges.push({ entry: "user", name: login, from: old.status, to: user.status });
  }
  for (const [name, group] of groupsAfter) {
    const old = groupsBefore.get(name);
    if (old === undefined) continue;
    if (old.status !== group.status)
      diff.statusChanges.push({ entry: "group", name, from: old.status, to: group.status });
    const change = memberChange(old, group);
    if (change !== null && memberCount(change.added) + memberCount(change.removed) > 0)
      diff.membershipChanges.push({ group: name, ...change });
  }
  diff.quotaChanges.sort((a, b) => compare(a.login, b.login));
  diff.statusChanges.sort((a, b) => compare(a.entry, b.entry) || compare(a.name, b.name));
  diff.membershipChanges.sort((a, b) => compare(a.group, b.group));
  return diff;
}

/** Items shown per list in the text report before "… and N more". */
export const diffListLimit = 50;

function capped(items: string[], limit = diffListLimit): string[] {
  if (items.length <= limit) return items;
  return [...items.slice(0, limit), `… and ${items.length - limit} more`];
}

const units: Array<[string, number]> = [
  ["TiB", 1024 ** 4],
  ["GiB", 1024 ** 3],
  ["MiB", 1024 ** 2],
  ["KiB", 1024],
];

/** A quota for people: `2 GiB`, `1.5 MiB`, `512 bytes`, or `default`. */
export function formatQuota(bytes: number | null): string {
  if (bytes === null) return "default";
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))} ${unit}`;
  }
  return `${bytes} bytes`;
}

function formatMembers(sign: "+" | "-", members: MemberSet): string[] {
  return [...members.logins, ...members.groups.map((name) => `group ${name}`), ...members.addresses].map(
    (member) => `${sign}${member}`,
  );
}

/** The human report for `emailng sync run --dry-run`: counts first, then each non-empty list. */
export function formatDiffText(diff: DirectoryDiff): string {
  const lines: string[] = [];
  if (diff.firstSnapshot) lines.push("no published snapshot yet: everything below is new");
  lines.push(
    `users +${diff.users.added.length} -${diff.users.removed.length}, ` +
      `groups +${diff.groups.added.length} -${diff.groups.removed.length}, ` +
      `addresses +${diff.addresses.added.length} -${diff.addresses.removed.length}, ` +
      `quota changes ${diff.quotaChanges.length}, status changes ${diff.statusChanges.length}, ` +
      `membership changes ${diff.membershipChanges.length}`,
  );
  const section = (title: string, items: string[]): void => {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`, ...capped(items).map((item) => `  ${item}`));
  };
  section("users added", diff.users.added);
  section("users removed", diff.users.removed);
  section("groups added", diff.groups.added);
  section("groups removed", diff.groups.removed);
  section("addresses added", diff.addresses.added);
  section("addresses removed", diff.addresses.removed);
  section(
    "quota changes",
    diff.quotaChanges.map(({ login, from, to }) => `${login}: ${formatQuota(from)} → ${formatQuota(to)}`),
  );
  section(
    "status changes",
    diff.statusChanges.map(({ entry, name, from, to }) => `${entry} ${name}: ${from} → ${to}`),
  );
  section(
    "membership changes",
    diff.membershipChanges.map(
      ({ group, added, removed }) =>
        `${group}: ${capped([...formatMembers("+", added), ...formatMembers("-", removed)]).join(" ")}`,
    ),
  );
  return `${lines.join("\n")}\n`;
}

export type SafetyResult =
  | { ok: true }
  | { ok: false; dropped: number; previousCount: number; percent: number; message: string };

/**
 * Refuses a snapshot that would make more than maxDropPercent % of the
 * previous snapshot's addresses disappear. No previous snapshot (or an empty
 * one) always passes: there is nothing to lose.
 */
export function safetyCheck(
  previous: Directory | null,
  next: Directory,
  maxDropPercent: number,
): SafetyResult {
  if (previous === null) return { ok: true };
  const remaining = directoryAddresses(previous);
  const previousCount = remaining.size;
  if (previousCount === 0) return { ok: true };
  forEachAddress(next, (address) => remaining.delete(address));
  const dropped = remaining.size;
  const percent = (dropped * 100) / previousCount;
  if (percent <= maxDropPercent) return { ok: true };
  const shown = Number(percent.toFixed(2));
  return {
    ok: false,
    dropped,
    previousCount,
    percent,
    message:
      `the new snapshot would drop ${dropped} of the ${previousCount} addresses in the published one ` +
      `(${shown}%), more than sync.max_drop_percent (${maxDropPercent}%); nothing was published. ` +
      "Check the sources (a failed or cut-short LDAP search, a missing legacy file); if the drop is " +
      "intended, publish anyway with: emailng sync run --force",
  };
}
