/**
 * The conflict report: what in a merged directory will misdeliver, bounce or
 * confuse, found before the snapshot is published (`emailng sync run`) or on
 * demand (`emailng sync conflicts`). Everything is read through the resolver,
 * so a conflict is exactly what verifyd would do with the snapshot. The rules
 * follow the department's naming policy (admin manual, "Names and Aliases"):
 *
 * - alias_is_login: an address at the primary domain whose local part is the
 *   login of a user who does not own it (someone else's alias or group holds
 *   the name). An alias equal to another entry's alias is address_claimed_twice.
 * - alias_too_short: a user-chosen alias is at least 10 characters. Which
 *   alternate addresses are user-chosen: those at the primary domain whose
 *   local part has no "." and is not the login; lastname.firstname always has
 *   a dot and hosted-domain forms live in other domains. (A user-chosen alias
 *   with a dot cannot be told from lastname.firstname and is not checked.)
 * - missing_member: a member login or group that does not exist, or a member
 *   address in a domain we serve that resolves to no one.
 * - group_cycle: groups nested in a circle; each cycle once, with its path.
 * - forward_loop: forwarding that comes back (a → b → a), followed through
 *   addresses, alias domains, extensions and groups; each loop once.
 * - address_claimed_twice: two entries claim one address (it resolves to
 *   neither).
 * - group_too_large: the expansion verifyd would send in one socketmap reply
 *   (`OK ` + the comma-joined addresses: members' primary addresses and
 *   outside addresses) exceeds 100,000 bytes, or hits max_expansion or
 *   max_depth so the expansion is cut.
 *
 * A cycle search reports the cycle closed by each back edge of one
 * depth-first walk: every circular structure is reported, none twice, though
 * a tangle of overlapping circles may show as fewer lines than it has cycles.
 */
import { splitAddress } from "../core/directory/address.js";
import type { Directory, DirectoryGroup, DirectoryUser, ResolverOptions } from "../core/directory/model.js";
import { type Claim, Resolver } from "../core/directory/resolver.js";
import { MAX_SOCKETMAP_REPLY_PAYLOAD } from "../core/protocols/socketmap.js";

export const conflictKinds = [
  "alias_is_login",
  "alias_too_short",
  "missing_member",
  "group_cycle",
  "forward_loop",
  "address_claimed_twice",
  "group_too_large",
] as const;

export type ConflictKind = (typeof conflictKinds)[number];

export interface Conflict {
  kind: ConflictKind;
  address?: string;
  /** The entries involved: LDAP DNs or `file:line`. */
  entries: string[];
  message: string;
}

export type ConflictOptions = ResolverOptions & {
  /** Shortest user-chosen alias (local part, characters). Default 10. */
  minAliasLength?: number;
  /** Largest socketmap reply payload Postfix accepts. Default 100,000. */
  maxReplyBytes?: number;
};

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The `address` field when there is one (kept absent rather than undefined). */
function at(address: string | undefined): { address?: string } {
  return address === undefined ? {} : { address };
}

function claimName(claim: Claim): string {
  return claim.kind === "user" ? `user ${claim.user.login}` : `group ${claim.group.name}`;
}

function claimSource(claim: Claim): string {
  return claim.kind === "user" ? claim.user.source : claim.group.source;
}

/** Finds every conflict in the directory, sorted by kind (in conflictKinds order), then address and message. */
export function findConflicts(directory: Directory, options: ConflictOptions): Conflict[] {
  const resolver = new Resolver(directory, options);
  // Logins by their lower-case form, as the resolver keys them; kept here so
  // the hundreds of thousands of lookups below do not lower-case every key.
  const logins = new Map<string, DirectoryUser>();
  for (const user of directory.users) logins.set(user.login.toLowerCase(), user);
  const conflicts: Conflict[] = [
    ...claimConflicts(resolver, logins, directory.domains.primary),
    ...shortAliases(directory.users, directory.domains.primary, options.minAliasLength ?? 10),
    ...missingMembers(resolver, logins, directory.groups),
    ...groupCycles(resolver, directory.groups),
    ...forwardLoops(resolver, directory.users),
    ...largeGroups(resolver, directory.groups, options.maxReplyBytes ?? MAX_SOCKETMAP_REPLY_PAYLOAD),
  ];
  const order = new Map<string, number>(conflictKinds.map((kind, index) => [kind, index]));
  return conflicts.sort(
    (a, b) =>
      order.get(a.kind)! - order.get(b.kind)! ||
      compare(a.address ?? "", b.address ?? "") ||
      compare(a.message, b.message),
  );
}

function claimConflicts(
  resolver: Resolver,
  logins: Map<string, DirectoryUser>,
  primaryDomain: string,
): Conflict[] {
  const out: Conflict[] = [];
  for (const [address, claims] of resolver.claimedAddresses()) {
    if (claims.length > 1) {
      out.push({
        kind: "address_claimed_twice",
        address,
        entries: claims.map(claimSource),
        message: `${address} is claimed by ${claims.map(claimName).join(" and ")}; it resolves to neither`,
      });
    }
    const { local, domain } = splitAddress(address);
    if (domain !== primaryDomain) continue;
    // Addresses are normalised (lower case), so the local part is a lookup key as it is.
    const owner = logins.get(local);
    if (owner === undefined || claims.some((claim) => claim.kind === "user" && claim.user === owner))
      continue;
    out.push({
      kind: "alias_is_login",
      address,
      entries: [...claims.map(claimSource), owner.source],
      message: `${address} belongs to ${claims.map(claimName).join(" and ")} but ${local} is the login of another user`,
    });
  }
  return out;
}

function shortAliases(users: DirectoryUser[], primaryDomain: string, minimum: number): Conflict[] {
  const out: Conflict[] = [];
  for (const user of users) {
    for (const address of new Set(user.alternateAddresses)) {
      const { local, domain } = splitAddress(address);
      if (domain !== primaryDomain || local.includes(".") || local === user.login) continue;
      const length = [...local].length;
      if (length >= minimum) continue;
      out.push({
        kind: "alias_too_short",
        address,
        entries: [user.source],
        message: `${address}, the alias user ${user.login} chose, has ${length} characters; at least ${minimum} are required`,
      });
    }
  }
  return out;
}

function missingMembers(
  resolver: Resolver,
  logins: Map<string, DirectoryUser>,
  groups: DirectoryGroup[],
): Conflict[] {
  const out: Conflict[] = [];
  for (const group of groups) {
    const missing = (message: string, address?: string): void => {
      out.push({
        kind: "missing_member",
        ...at(address),
        entries: [group.source],
        message: `group ${group.name}: ${message}`,
      });
    };
    for (const login of new Set(group.memberLogins))
      if (!logins.has(login) && !logins.has(login.toLowerCase())) missing(`member login ${login} is no user`);
    for (const name of new Set(group.memberGroups))
      if (resolver.group(name) === undefined) missing(`member group ${name} does not exist`);
    for (const address of new Set(group.memberAddresses))
      if (resolver.resolve(address).kind === "unknown") missing(`member ${address} is unknown`, address);
  }
  return out;
}

function groupCycles(resolver: Resolver, groups: DirectoryGroup[]): Conflict[] {
  const names = groups.map((group) => group.name.toLowerCase()).sort(compare);
  const members = (name: string): string[] =>
    (resolver.group(name)?.memberGroups ?? [])
      .map((member) => member.toLowerCase())
      .filter((member) => resolver.group(member) !== undefined);
  return findCycles(names, members).map((cycle) => ({
    kind: "group_cycle",
    ...at(resolver.group(cycle[0]!)?.addresses[0]),
    entries: cycle.map((name) => resolver.group(name)!.source),
    message: `groups nested in a cycle: ${[...cycle, cycle[0]].join(" → ")}`,
  }));
}

/** Forwarding targets that leave the mailbox, or none when the user does not forward (or is inactive). */
function forwardTargets(user: DirectoryUser): string[] {
  if (user.status === "inactive") return [];
  const own = new Set([user.primaryAddress, ...user.alternateAddresses]);
  return user.forwardingAddresses.filter((target) => !own.has(target));
}

function forwardLoops(resolver: Resolver, users: DirectoryUser[]): Conflict[] {
  // Nodes are "u:login" (a user who forwards) and "g:name" (a group on the
  // way); a user who keeps mail ends the chain.
  const reach = (address: string): string[] => {
    const resolution = resolver.resolve(address);
    if (resolution.kind === "forward") return [`u:${resolution.user.login}`];
    if (resolution.kind === "group") return [`g:${resolution.group.name}`];
    return [];
  };
  const successors = (node: string): string[] => {
    const key = node.slice(2);
    if (node.startsWith("u:")) return forwardTargets(resolver.user(key)!).flatMap(reach);
    const expansion = resolver.expand(resolver.group(key)!);
    return [
      ...expansion.users.filter((user) => forwardTargets(user).length > 0).map((user) => `u:${user.login}`),
      ...expansion.externalAddresses.flatMap(reach),
    ];
  };
  const roots = users
    .filter((user) => forwardTargets(user).length > 0)
    .map((user) => `u:${user.login}`)
    .sort(compare);
  const describe = (node: string): string =>
    node.startsWith("u:") ? node.slice(2) : `group ${node.slice(2)}`;
  const source = (node: string): string =>
    node.startsWith("u:") ? resolver.user(node.slice(2))!.source : resolver.group(node.slice(2))!.source;
  return findCycles(roots, successors)
    .filter((cycle) => cycle.some((node) => node.startsWith("u:")))
    .map((cycle) => ({
      kind: "forward_loop",
      ...at(resolver.user(cycle.find((node) => node.startsWith("u:"))!.slice(2))?.primaryAddress),
      entries: cycle.map(source),
      message: `forwarding loop: ${[...cycle, cycle[0]!].map(describe).join(" → ")}`,
    }));
}

function largeGroups(resolver: Resolver, groups: DirectoryGroup[], maxReplyBytes: number): Conflict[] {
  const out: Conflict[] = [];
  const { maxExpansion, maxDepth } = resolver.options;
  for (const group of groups) {
    const expansion = resolver.expand(group);
    const addresses = [...expansion.users.map((user) => user.primaryAddress), ...expansion.externalAddresses];
    let bytes = "OK ".length + Math.max(0, addresses.length - 1);
    for (const address of addresses) bytes += Buffer.byteLength(address);
    const problems: string[] = [];
    if (bytes > maxReplyBytes)
      problems.push(`its ${addresses.length} addresses make a ${bytes}-byte reply (limit ${maxReplyBytes})`);
    if (expansion.limitExceeded === "expansion")
      problems.push(`it expands to more than max_expansion (${maxExpansion}) addresses and is cut there`);
    if (expansion.limitExceeded === "depth")
      problems.push(`it nests deeper than max_depth (${maxDepth}) and is cut there`);
    if (problems.length === 0) continue;
    out.push({
      kind: "group_too_large",
      ...at(group.addresses[0]),
      entries: [group.source],
      message: `group ${group.name}: ${problems.join("; ")}`,
    });
  }
  return out;
}

/**
 * Cycles of a directed graph, each once, rotated to start at their smallest
 * node: the cycle each back edge of an iterative depth-first walk closes
 * (no recursion, so a long chain cannot overflow the stack).
 */
export function findCycles(roots: string[], successors: (node: string) => string[]): string[][] {
  const finished = new Set<string>();
  const onPath = new Map<string, number>();
  const found = new Map<string, string[]>();
  for (const root of roots) {
    if (finished.has(root)) continue;
    const path: Array<{ node: string; next: string[]; index: number }> = [];
    const enter = (node: string): void => {
      onPath.set(node, path.length);
      path.push({ node, next: successors(node), index: 0 });
    };
    enter(root);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const child = top.next[top.index++];
      if (child === undefined) {
        path.pop();
        onPath.delete(top.node);
        finished.add(top.node);
        continue;
      }
      if (finished.has(child)) continue;
      const start = onPath.get(child);
      if (start === undefined) {
        enter(child);
        continue;
      }
      const cycle = path.slice(start).map((frame) => frame.node);
      let smallest = 0;
      for (let index = 1; index < cycle.length; index++)
        if (cycle[index]! < cycle[smallest]!) smallest = index;
      const rotated = [...cycle.slice(smallest), ...cycle.slice(0, smallest)];
      const key = rotated.join("\n");
      if (!found.has(key)) found.set(key, rotated);
    }
  }
  return [...found.values()];
}

/** One line per conflict, grouped by kind with counts; for `emailng sync conflicts`. */
export function formatConflictsText(conflicts: Conflict[]): string {
  if (conflicts.length === 0) return "no conflicts\n";
  const lines = [`${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}`];
  for (const kind of conflictKinds) {
    const ofKind = conflicts.filter((conflict) => conflict.kind === kind);
    if (ofKind.length === 0) continue;
    lines.push("", `${kind} (${ofKind.length})`);
    for (const conflict of ofKind) lines.push(`  ${conflict.message} [${conflict.entries.join(" | ")}]`);
  }
  return `${lines.join("\n")}\n`;
}

export interface ConflictsJson {
  total: number;
  /** Every kind, zero included, so scripts can read any count. */
  byKind: Record<ConflictKind, number>;
  conflicts: Array<{ kind: ConflictKind; address: string | null; entries: string[]; message: string }>;
}

/** The report as JSON with a stable shape (`emailng sync conflicts --json`, `sync run --json`). */
export function conflictsJson(conflicts: Conflict[]): ConflictsJson {
  const byKind = Object.fromEntries(conflictKinds.map((kind) => [kind, 0])) as Record<ConflictKind, number>;
  for (const conflict of conflicts) byKind[conflict.kind] += 1;
  return {
    total: conflicts.length,
    byKind,
    conflicts: conflicts.map((conflict) => ({
      kind: conflict.kind,
      address: conflict.address ?? null,
      entries: [...conflict.entries],
      message: conflict.message,
    })),
  };
}
