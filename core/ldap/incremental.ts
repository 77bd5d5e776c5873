/**
 * Applies an incremental LDAP read (the entries changed since the last
 * watermark, see source.ts) to the directory of the previous sync. Pure: the
 * previous users and groups and the changed entries in, the new users and
 * groups out.
 *
 * A changed user replaces the previous user with the same login or the same
 * source DN (so a login renamed on the same entry replaces the old one); a
 * changed group replaces the group with the same name or DN. Member DNs of
 * changed groups are resolved against the changed entries and against the
 * previous users' and groups' DNs, so a group that gained an unchanged user
 * is right. With a memberOf-style mapping (the user lists its groups, as in
 * Active Directory) the memberships of every changed user are recomputed:
 * its login (and its old login, if renamed) is taken out of all groups and
 * put into the groups its memberOf names.
 *
 * What an incremental read cannot see, and full syncs correct:
 * - deleted entries, and entries that stopped matching the filter (they are
 *   not returned, so they stay);
 * - an entry moved to a new DN with a new login (neither key matches, so the
 *   old one stays beside the new one);
 * - in unchanged groups, members named by a login that was renamed, and
 *   member groups whose name changed;
 * - in Active Directory, memberOf changes that did not touch the user's own
 *   timestamp (AD updates the group's, and reads them from the group).
 */
import type { DirectoryGroup, DirectoryUser, DomainSet } from "../directory/model.js";
import {
  convertEntries,
  type EntryProblem,
  type LdapMapping,
  normaliseDn,
  type RawEntry,
} from "./mapping.js";

export interface DirectoryState {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
}

export interface AppliedChanges extends DirectoryState {
  /** Problems of the changed entries only (skipped entries, unknown member DNs). */
  problems: EntryProblem[];
}

/**
 * Stand-ins for previous entries: just enough for convertEntries to resolve
 * a DN to a login or a group name, without a second copy of its rules.
 */
function stubUser(user: DirectoryUser, mapping: LdapMapping): RawEntry {
  const stub: RawEntry = { dn: user.source, [mapping.users.login]: [user.login] };
  if (mapping.users.primaryAddress !== "") stub[mapping.users.primaryAddress] = [user.primaryAddress];
  return stub;
}

function stubGroup(group: DirectoryGroup, mapping: LdapMapping): RawEntry {
  return { dn: group.source, [mapping.groups.name]: [group.name] };
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/**
 * Replaces each previous item matched by one of its keys with the changed
 * item for that key, in place; changed items matching nothing are appended.
 * A changed item matching several previous items keeps the first place.
 */
function replace<Item>(
  previous: readonly Item[],
  changed: readonly Item[],
  keys: (item: Item) => string[],
  merge: (changed: Item, previous: Item | undefined) => Item,
  keep: (previous: Item) => Item,
): Item[] {
  const changedByKey = new Map<string, Item>();
  for (const item of changed) for (const key of keys(item)) changedByKey.set(key, item);
  const placed = new Set<Item>();
  const out: Item[] = [];
  for (const item of previous) {
    const replacement = keys(item)
      .map((key) => changedByKey.get(key))
      .find((found) => found !== undefined);
    if (replacement === undefined) out.push(keep(item));
    else if (!placed.has(replacement)) {
      placed.add(replacement);
      out.push(merge(replacement, item));
    }
  }
  for (const item of changed) if (!placed.has(item)) out.push(merge(item, undefined));
  return out;
}

export function applyChanges(
  previous: DirectoryState,
  userEntries: RawEntry[],
  groupEntries: RawEntry[],
  mapping: LdapMapping,
  domains: DomainSet,
): AppliedChanges {
  const changedDns = new Set([...userEntries, ...groupEntries].map((entry) => normaliseDn(entry.dn)));
  const userStubs = previous.users
    .filter((user) => !changedDns.has(normaliseDn(user.source)))
    .map((user) => stubUser(user, mapping));
  const groupStubs = previous.groups
    .filter((group) => !changedDns.has(normaliseDn(group.source)))
    .map((group) => stubGroup(group, mapping));
  // One conversion over changed entries and stubs: member DNs of changed
  // groups resolve against both, and with a memberOf mapping the stubs of
  // unchanged groups collect the changed users that name them.
  const converted = convertEntries(
    [...userEntries, ...userStubs],
    [...groupEntries, ...groupStubs],
    mapping,
    domains,
  );
  const isChanged = (source: string) => changedDns.has(normaliseDn(source));
  const changedUsers = converted.users.filter((user) => isChanged(user.source));
  const changedGroups = converted.groups.filter((group) => isChanged(group.source));
  const collectedByDn = new Map(
    converted.groups
      .filter((group) => !isChanged(group.source))
      .map((group) => [normaliseDn(group.source), group]),
  );

  const userKeys = (user: DirectoryUser) => [`login:${user.login}`, `dn:${normaliseDn(user.source)}`];
  const users = replace(
    previous.users,
    changedUsers,
    userKeys,
    (user) => user,
    (user) => user,
  );
  // Logins whose memberships are recomputed: the changed users', and the old
  // login of a user renamed on the same entry.
  const changedUserKeys = new Set(changedUsers.flatMap(userKeys));
  const replacedLogins = new Set([
    ...changedUsers.map((user) => user.login),
    ...previous.users
      .filter((user) => userKeys(user).some((key) => changedUserKeys.has(key)))
      .map((user) => user.login),
  ]);

  const memberOf = mapping.users.memberOf !== "";
  const stillMembers = (group: DirectoryGroup) =>
    group.memberLogins.filter((login) => !replacedLogins.has(login));
  const groupKeys = (group: DirectoryGroup) => [`name:${group.name}`, `dn:${normaliseDn(group.source)}`];
  const groups = replace(
    previous.groups,
    changedGroups,
    groupKeys,
    (group, old) =>
      memberOf && old !== undefined
        ? // The group's own entry does not list users who name it in memberOf.
          { ...group, memberLogins: unique([...stillMembers(old), ...group.memberLogins]) }
        : group,
    (group) => {
      if (!memberOf) return group;
      const collected = collectedByDn.get(normaliseDn(group.source))?.memberLogins ?? [];
      return { ...group, memberLogins: unique([...stillMembers(group), ...collected]) };
    },
  );

  const problems = converted.problems.filter((problem) => isChanged(problem.dn));
  return { users, groups, problems };
}
