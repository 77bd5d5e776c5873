/**
 * Merging the sources into one directory. LDAP and the legacy files may both
 * define an address during the migration; the configured precedence decides
 * which entry keeps it, the other loses that address (and is dropped when it
 * has none left), and every such decision is reported with both sources so
 * the admin can clean the loser up. Addresses that two LDAP entries claim are
 * left alone here: they stay ambiguous and conflicts.ts reports them. Member
 * addresses that belong to a directory entry become logins or nested groups,
 * so the resolver expands them; the rest stay outside addresses. The result
 * is sorted (users by login, groups by name, members alphabetically) so the
 * same sources always give the same snapshot, whatever order LDAP returned.
 * The inputs are never modified: groups are copied, and users are copied only
 * when the merge changes them (the others are shared with the input, which
 * keeps a 100,000-user merge cheap).
 */
import { normaliseDomain, splitAddress } from "../core/directory/address.js";
import type { Directory, DirectoryGroup, DirectoryUser, DomainSet } from "../core/directory/model.js";
import type { LegacySource } from "./legacy-source.js";

export type SourceName = "ldap" | "legacy";

export interface MergeInput {
  ldap: { users: DirectoryUser[]; groups: DirectoryGroup[] } | null;
  legacy: LegacySource | null;
  /** The first listed source keeps an address both define; a missing name ranks last. */
  precedence: SourceName[];
  domains: DomainSet;
}

export type MergeProblemKind =
  /** The address stays with the winner and was taken from the loser. */
  | "address_overridden"
  /** As above, and the loser had no address left, so it is not in the directory. */
  | "entry_dropped"
  /** A domain list names a login no user has. */
  | "unknown_login"
  /** The same login, group name or legacy address twice in one source: the first is kept. */
  | "duplicate_entry";

export interface MergeProblem {
  kind: MergeProblemKind;
  address?: string;
  /** The entry this changed or ignored (an LDAP DN or `file:line`): the one to clean up. */
  source: string;
  /** Every entry involved: the one kept first, then the one that lost. */
  sources: string[];
  message: string;
}

export interface MergeResult {
  directory: Directory;
  problems: MergeProblem[];
}

/** One entry's hold on an address, before precedence is applied. */
type Holder =
  | { kind: "user"; user: DirectoryUser }
  | { kind: "group"; group: DirectoryGroup; origin: SourceName }
  | { kind: "member"; login: string; source: string };

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function rank(precedence: SourceName[], source: SourceName): number {
  const index = precedence.indexOf(source);
  return index === -1 ? precedence.length : index;
}

function holderName(holder: Holder): string {
  switch (holder.kind) {
    case "user":
      return `user ${holder.user.login} (${holder.user.source})`;
    case "group":
      return `group ${holder.group.name} (${holder.group.source})`;
    case "member":
      return `domain member ${holder.login} (${holder.source})`;
    default: {
      const unreachable: never = holder;
      return unreachable;
    }
  }
}

function holderSource(holder: Holder): string {
  return holder.kind === "user"
    ? holder.user.source
    : holder.kind === "group"
      ? holder.group.source
      : holder.source;
}

function copyUser(user: DirectoryUser): DirectoryUser {
  return {
    ...user,
    alternateAddresses: [...user.alternateAddresses],
    forwardingAddresses: [...user.forwardingAddresses],
  };
}

function copyGroup(group: DirectoryGroup): DirectoryGroup {
  return {
    ...group,
    addresses: [...group.addresses],
    memberLogins: [...group.memberLogins],
    memberGroups: [...group.memberGroups],
    memberAddresses: [...group.memberAddresses],
    posting:
      group.posting === null
        ? null
        : { logins: [...group.posting.logins], groups: [...group.posting.groups] },
  };
}

/** Merges LDAP entries and legacy files into one directory, applying the configured precedence. */
export function mergeSources(input: MergeInput): MergeResult {
  const problems: MergeProblem[] = [];
  const duplicate = (kept: string, ignored: string, what: string, address?: string): void => {
    problems.push({
      kind: "duplicate_entry",
      ...(address === undefined ? {} : { address }),
      source: ignored,
      sources: [kept, ignored],
      message: `${what} is defined by both ${kept} and ${ignored}; the first is kept`,
    });
  };

  // Users are shared with the input until something changes them (most
  // never do); then the map gets a copy, so the input is never modified.
  const users = new Map<string, DirectoryUser>();
  const copied = new Set<DirectoryUser>();
  const writable = (login: string): DirectoryUser => {
    const user = users.get(login)!;
    if (copied.has(user)) return user;
    const copy = copyUser(user);
    copied.add(copy);
    users.set(login, copy);
    return copy;
  };
  for (const user of input.ldap?.users ?? []) {
    const login = user.login.toLowerCase();
    const earlier = users.get(login);
    if (earlier !== undefined) duplicate(earlier.source, user.source, `login ${login}`);
    else if (login === user.login) users.set(login, user);
    else {
      const copy = copyUser({ ...user, login });
      copied.add(copy);
      users.set(login, copy);
    }
  }

  // Groups of both sources share one name space; legacy names are addresses,
  // so a clash means an LDAP cn with an @, decided by precedence like addresses.
  const groups = new Map<string, { group: DirectoryGroup; origin: SourceName }>();
  const legacyFirst = rank(input.precedence, "legacy") < rank(input.precedence, "ldap");
  const groupBatches: Array<[SourceName, DirectoryGroup[]]> = [
    ["ldap", input.ldap?.groups ?? []],
    ["legacy", input.legacy?.groups ?? []],
  ];
  if (legacyFirst) groupBatches.reverse();
  for (const [origin, list] of groupBatches) {
    for (const group of list) {
      const name = group.name.toLowerCase();
      const earlier = groups.get(name);
      if (earlier === undefined) groups.set(name, { group: copyGroup({ ...group, name }), origin });
      else duplicate(earlier.group.source, group.source, `group ${name}`);
    }
  }

  // Legacy holds each address at most once (the first definition). Only the
  // addresses legacy holds need deciding, so only those are looked up on the
  // LDAP side; LDAP may hold one several times (left for the conflict report).
  const legacyHolder = new Map<string, Holder>();
  const holdLegacy = (address: string, holder: Holder): void => {
    const earlier = legacyHolder.get(address);
    if (earlier === undefined) legacyHolder.set(address, holder);
    else duplicate(holderSource(earlier), holderSource(holder), address, address);
  };
  for (const { group, origin } of groups.values()) {
    if (origin !== "legacy") continue;
    for (const address of new Set(group.addresses)) holdLegacy(address, { kind: "group", group, origin });
  }
  for (const member of input.legacy?.domainMembers ?? []) {
    const source = `${member.file}:${member.line}`;
    const owner = users.get(member.login);
    if (owner === undefined) {
      problems.push({
        kind: "unknown_login",
        address: member.address,
        source,
        sources: [source],
        message: `${member.address} is listed for login ${member.login}, which no user has; the address is not added`,
      });
      continue;
    }
    // Already the user's own address (LDAP carries it too): nothing to decide.
    if (owner.primaryAddress === member.address || owner.alternateAddresses.includes(member.address))
      continue;
    holdLegacy(member.address, { kind: "member", login: member.login, source });
  }
  const ldapHolders = new Map<string, Holder[]>();
  const holdLdap = (address: string, holder: Holder): void => {
    if (!legacyHolder.has(address)) return;
    const list = ldapHolders.get(address);
    if (list === undefined) ldapHolders.set(address, [holder]);
    else list.push(holder);
  };
  for (const user of users.values()) {
    holdLdap(user.primaryAddress, { kind: "user", user });
    for (const address of new Set(user.alternateAddresses))
      if (address !== user.primaryAddress) holdLdap(address, { kind: "user", user });
  }
  for (const { group, origin } of groups.values()) {
    if (origin !== "ldap") continue;
    for (const address of new Set(group.addresses)) holdLdap(address, { kind: "group", group, origin });
  }

  const lost = new Map<DirectoryUser | DirectoryGroup, Set<string>>();
  const takeFrom = (holder: Holder, address: string): void => {
    if (holder.kind === "member") return;
    const entry = holder.kind === "user" ? holder.user : holder.group;
    const set = lost.get(entry) ?? new Set<string>();
    set.add(address);
    lost.set(entry, set);
  };
  const decisions: Array<{ address: string; winner: Holder; loser: Holder }> = [];
  for (const [address, legacy] of legacyHolder) {
    const ldap = ldapHolders.get(address);
    if (ldap === undefined) continue;
    if (legacyFirst) {
      for (const holder of ldap) {
        takeFrom(holder, address);
        decisions.push({ address, winner: legacy, loser: holder });
      }
    } else {
      takeFrom(legacy, address);
      legacyHolder.delete(address);
      decisions.push({ address, winner: ldap[0]!, loser: legacy });
    }
  }

  const dropped = new Set<DirectoryUser | DirectoryGroup>();
  const promotedTo = new Map<DirectoryUser, { from: string; to: string }>();
  for (const [entry, addresses] of lost) {
    if ("login" in entry) {
      const user = writable(entry.login);
      user.alternateAddresses = user.alternateAddresses.filter((address) => !addresses.has(address));
      if (!addresses.has(user.primaryAddress)) continue;
      // The mailbox stays (Dovecot finds it by login); mail for the lost
      // address now goes where the winner says.
      const promoted = user.alternateAddresses.shift();
      if (promoted === undefined) {
        dropped.add(entry);
        users.delete(entry.login);
      } else {
        promotedTo.set(entry, { from: user.primaryAddress, to: promoted });
        user.primaryAddress = promoted;
      }
    } else {
      entry.addresses = entry.addresses.filter((address) => !addresses.has(address));
      if (entry.addresses.length === 0) {
        dropped.add(entry);
        groups.delete(entry.name);
      }
    }
  }
  for (const { address, winner, loser } of decisions) {
    const entry = loser.kind === "user" ? loser.user : loser.kind === "group" ? loser.group : null;
    const gone = entry !== null && dropped.has(entry);
    const promotion = loser.kind === "user" ? promotedTo.get(loser.user) : undefined;
    problems.push({
      kind: gone ? "entry_dropped" : "address_overridden",
      address,
      source: holderSource(loser),
      sources: [holderSource(winner), holderSource(loser)],
      message:
        `${address} is kept by ${holderName(winner)} and taken from ${holderName(loser)}` +
        (gone ? ", which has no address left and is left out" : "") +
        (promotion?.from === address ? `; its primary address is now ${promotion.to}` : ""),
    });
  }

  for (const [address, holder] of legacyHolder) {
    if (holder.kind !== "member") continue;
    if (!users.has(holder.login)) {
      problems.push({
        kind: "unknown_login",
        address,
        source: holder.source,
        sources: [holder.source],
        message: `${address} is listed for login ${holder.login}, which was left out above; the address is not added`,
      });
      continue;
    }
    writable(holder.login).alternateAddresses.push(address);
  }

  const domains = mergeDomains(input.domains, input.legacy?.virtualDomains ?? []);
  const sortedUsers = [...users.values()].sort((a, b) => compare(a.login, b.login));
  const sortedGroups = [...groups.values()].map(({ group }) => group).sort((a, b) => compare(a.name, b.name));
  resolveMembers(sortedUsers, sortedGroups, domains);

  problems.sort(
    (a, b) => compare(a.address ?? "", b.address ?? "") || compare(a.sources.join(" "), b.sources.join(" ")),
  );
  return { directory: { users: sortedUsers, groups: sortedGroups, domains }, problems };
}

function mergeDomains(configured: DomainSet, legacyVirtual: string[]): DomainSet {
  const primary = normaliseDomain(configured.primary);
  const aliasDomains = [...new Set(configured.aliasDomains.map(normaliseDomain))];
  const virtual = [...new Set(configured.virtualDomains.map(normaliseDomain))];
  const known = new Set([primary, ...aliasDomains, ...virtual]);
  const added = [...new Set(legacyVirtual.map(normaliseDomain))].filter((domain) => !known.has(domain));
  return { primary, aliasDomains, virtualDomains: [...virtual, ...added.sort(compare)] };
}

/**
 * Turns member addresses into logins and nested groups: an address one user
 * owns (directly, or as an alternate address through an alias domain, as the
 * resolver reads it) becomes that login, one group owns becomes that group. A
 * primary-domain address nobody claims whose local part is a login is that
 * login too: a bare name in an aliases(5) file means the local user, and so
 * does a group naming itself (`jsmith: jsmith, jsmith@gmail.example`). An
 * address two entries claim stays an address (it is ambiguous).
 */
function resolveMembers(users: DirectoryUser[], groups: DirectoryGroup[], domains: DomainSet): void {
  // One owner per address; null marks an address two entries claim.
  type Owner = { login: string } | { group: string } | null;
  const owners = new Map<string, Owner>();
  const alternates = new Map<string, string | null>();
  const own = (address: string, owner: Owner): void => {
    const earlier = owners.get(address);
    if (earlier === undefined) owners.set(address, owner);
    else if (
      earlier !== null &&
      !("login" in earlier && owner !== null && "login" in owner && earlier.login === owner.login)
    )
      owners.set(address, null);
  };
  const logins = new Set<string>();
  for (const user of users) {
    logins.add(user.login);
    const owner = { login: user.login };
    own(user.primaryAddress, owner);
    for (const address of user.alternateAddresses) {
      own(address, owner);
      const earlier = alternates.get(address);
      alternates.set(address, earlier === undefined || earlier === user.login ? user.login : null);
    }
  }
  for (const group of groups) {
    const owner = { group: group.name };
    for (const address of new Set(group.addresses)) own(address, owner);
  }
  const aliasDomains = new Set(domains.aliasDomains);

  for (const group of groups) {
    const memberLogins = group.memberLogins.map((login) => login.toLowerCase());
    const memberGroups = group.memberGroups.map((name) => name.toLowerCase());
    const memberAddresses: string[] = [];
    for (const address of group.memberAddresses) {
      const { local, domain } = splitAddress(address);
      const loginHere = domain === domains.primary && logins.has(local) ? local : null;
      if (group.addresses.includes(address)) {
        if (loginHere !== null) memberLogins.push(loginHere);
        else memberAddresses.push(address);
        continue;
      }
      let owner: Owner | undefined;
      if (aliasDomains.has(domain)) {
        const login = alternates.get(`${local}@${domains.primary}`);
        owner = login === undefined ? undefined : login === null ? null : { login };
      } else owner = owners.get(address);
      if (owner === undefined && loginHere !== null) memberLogins.push(loginHere);
      else if (owner === undefined || owner === null) memberAddresses.push(address);
      else if ("login" in owner) memberLogins.push(owner.login);
      else memberGroups.push(owner.group);
    }
    group.memberLogins = sortedUnique(memberLogins);
    group.memberGroups = sortedUnique(memberGroups);
    group.memberAddresses = sortedUnique(memberAddresses);
  }
}

/** The list without repeats, in code-unit order; cheap when it already is (LDAP often returns it so). */
function sortedUnique(list: string[]): string[] {
  let ordered = true;
  for (let index = 1; index < list.length && ordered; index++) ordered = list[index - 1]! < list[index]!;
  return ordered ? list : [...new Set(list)].sort(compare);
}
