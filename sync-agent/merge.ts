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
  const duplicate = (kept: string, ignored: string, what: string): void => {
    problems.push({
      kind: "duplicate_entry",
      source: ignored,
      sources: [kept, ignored],
      message: `${what} is defined by both ${kept} and ${ignored}; the first is kept`,
    });
  };

  const users = new Map<string, DirectoryUser>();
  for (const user of input.ldap?.users ?? []) {
    const login = user.login.toLowerCase();
    const earlier = users.get(login);
    if (earlier === undefined) users.set(login, copyUser({ ...user, login }));
    else duplicate(earlier.source, user.source, `login ${login}`);
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

  // Who holds each address, by source. LDAP may hold one address several
  // times (left for the conflict report); legacy holds it at most once.
  const ldapHolders = new Map<string, Holder[]>();
  const legacyHolder = new Map<string, Holder>();
  const hold = (address: string, holder: Holder, origin: SourceName): void => {
    if (origin === "ldap") {
      const list = ldapHolders.get(address);
      if (list === undefined) ldapHolders.set(address, [holder]);
      else list.push(holder);
      return;
    }
    const earlier = legacyHolder.get(address);
    if (earlier === undefined) legacyHolder.set(address, holder);
    else duplicate(holderSource(earlier), holderSource(holder), address);
  };
  for (const user of users.values()) {
    for (const address of new Set([user.primaryAddress, ...user.alternateAddresses]))
      hold(address, { kind: "user", user }, "ldap");
  }
  for (const { group, origin } of groups.values()) {
    for (const address of new Set(group.addresses)) hold(address, { kind: "group", group, origin }, origin);
  }
  for (const member of input.legacy?.domainMembers ?? []) {
    const source = `${member.file}:${member.line}`;
    if (!users.has(member.login)) {
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
    if (ldapHolders.get(member.address)?.some((h) => h.kind === "user" && h.user.login === member.login))
      continue;
    hold(member.address, { kind: "member", login: member.login, source }, "legacy");
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
  const promotedFrom = new Map<DirectoryUser, string>();
  for (const [entry, addresses] of lost) {
    if ("login" in entry) {
      entry.alternateAddresses = entry.alternateAddresses.filter((address) => !addresses.has(address));
      if (addresses.has(entry.primaryAddress)) {
        // The mailbox stays (Dovecot finds it by login); mail for the lost
        // address now goes where the winner says.
        const promoted = entry.alternateAddresses.shift();
        if (promoted === undefined) dropped.add(entry);
        else {
          promotedFrom.set(entry, entry.primaryAddress);
          entry.primaryAddress = promoted;
        }
      }
    } else {
      entry.addresses = entry.addresses.filter((address) => !addresses.has(address));
      if (entry.addresses.length === 0) dropped.add(entry);
    }
  }
  for (const { address, winner, loser } of decisions) {
    const entry = loser.kind === "user" ? loser.user : loser.kind === "group" ? loser.group : null;
    const gone = entry !== null && dropped.has(entry);
    const promoted =
      loser.kind === "user" && promotedFrom.get(loser.user) === address
        ? `; its primary address is now ${loser.user.primaryAddress}`
        : "";
    problems.push({
      kind: gone ? "entry_dropped" : "address_overridden",
      address,
      source: holderSource(loser),
      sources: [holderSource(winner), holderSource(loser)],
      message:
        `${address} is kept by ${holderName(winner)} and taken from ${holderName(loser)}` +
        (gone ? ", which has no address left and is left out" : promoted),
    });
  }

  for (const user of users.values()) if (dropped.has(user)) users.delete(user.login);
  for (const [name, { group }] of groups) if (dropped.has(group)) groups.delete(name);
  for (const [address, holder] of legacyHolder) {
    if (holder.kind !== "member") continue;
    const user = users.get(holder.login);
    if (user === undefined) {
      problems.push({
        kind: "unknown_login",
        address,
        source: holder.source,
        sources: [holder.source],
        message: `${address} is listed for login ${holder.login}, which was left out above; the address is not added`,
      });
      continue;
    }
    if (user.primaryAddress !== address && !user.alternateAddresses.includes(address))
      user.alternateAddresses.push(address);
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
  const owners = new Map<string, Array<{ login: string } | { group: string }>>();
  const alternates = new Map<string, string[]>();
  const own = (address: string, owner: { login: string } | { group: string }): void => {
    const list = owners.get(address);
    if (list === undefined) owners.set(address, [owner]);
    else list.push(owner);
  };
  const logins = new Set<string>();
  for (const user of users) {
    logins.add(user.login);
    for (const address of new Set([user.primaryAddress, ...user.alternateAddresses]))
      own(address, { login: user.login });
    for (const address of new Set(user.alternateAddresses))
      alternates.set(address, [...(alternates.get(address) ?? []), user.login]);
  }
  for (const group of groups)
    for (const address of new Set(group.addresses)) own(address, { group: group.name });
  const aliasDomains = new Set(domains.aliasDomains);

  for (const group of groups) {
    const memberLogins = new Set(group.memberLogins.map((login) => login.toLowerCase()));
    const memberGroups = new Set(group.memberGroups.map((name) => name.toLowerCase()));
    const memberAddresses = new Set<string>();
    const ownAddresses = new Set(group.addresses);
    for (const address of group.memberAddresses) {
      const { local, domain } = splitAddress(address);
      const loginHere = domain === domains.primary && logins.has(local) ? local : null;
      if (ownAddresses.has(address)) {
        if (loginHere !== null) memberLogins.add(loginHere);
        else memberAddresses.add(address);
        continue;
      }
      const claims = aliasDomains.has(domain)
        ? (alternates.get(`${local}@${domains.primary}`) ?? []).map((login) => ({ login }))
        : (owners.get(address) ?? []);
      const only = claims.length === 1 ? claims[0]! : null;
      if (only !== null && "login" in only) memberLogins.add(only.login);
      else if (only !== null) memberGroups.add(only.group);
      else if (claims.length === 0 && loginHere !== null) memberLogins.add(loginHere);
      else memberAddresses.add(address);
    }
    group.memberLogins = [...memberLogins].sort(compare);
    group.memberGroups = [...memberGroups].sort(compare);
    group.memberAddresses = [...memberAddresses].sort(compare);
  }
}
