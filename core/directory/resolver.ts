/**
 * The resolver: the single place that knows what an address means. Built once
 * per snapshot version into in-memory indexes, then every lookup is a few Map
 * reads, so verifyd, policyd and quotad answer the same thing for the same
 * address and the relay can never disagree with the back-end.
 *
 * Outcomes: not ours (domain not served), unknown, inactive, ambiguous (two
 * entries claim the address: never delivered to both), mailbox, forward, group
 * (nested members flattened, duplicates collapsed, inactive members silently
 * left out, cycles cut, expansion and depth limits).
 */
import { normaliseAddress, normaliseDomain, splitAddress, stripExtension } from "./address.js";
import {
  type Directory,
  type DirectoryGroup,
  type DirectoryUser,
  type DomainSet,
  defaultResolverOptions,
  type ResolverOptions,
} from "./model.js";

export type Claim = { kind: "user"; user: DirectoryUser } | { kind: "group"; group: DirectoryGroup };

export interface GroupExpansion {
  /** Active member users, nested groups flattened, each once, in directory order. */
  users: DirectoryUser[];
  /** Member addresses that are not directory users (legacy alias targets, outside addresses). */
  externalAddresses: string[];
  /** Set when a limit stopped the expansion; the member lists are then incomplete. */
  limitExceeded: "expansion" | "depth" | null;
}

interface Matched {
  /** The address as asked, normalised. */
  address: string;
  /** The directory key that matched (extension removed, alias domain rewritten). */
  key: string;
}

export type Resolution =
  | { kind: "invalid"; input: string }
  | ({ kind: "not_ours" } & Matched)
  | ({ kind: "unknown" } & Matched)
  | ({ kind: "inactive"; claim: Claim } & Matched)
  | ({ kind: "ambiguous"; claims: Claim[] } & Matched)
  | ({ kind: "mailbox"; user: DirectoryUser } & Matched)
  | ({ kind: "forward"; user: DirectoryUser; targets: string[]; keepCopy: boolean } & Matched)
  | ({ kind: "group"; group: DirectoryGroup; expansion: GroupExpansion } & Matched);

export type ResolutionKind = Resolution["kind"];

export class Resolver {
  readonly options: ResolverOptions;
  /** The domains of the directory this resolver was built from. */
  readonly domains: DomainSet;
  /**
   * Address → its claim, or its claims when several entries claim it (rare):
   * one array per address would cost more memory than the rest of the index.
   */
  private readonly byAddress = new Map<string, Claim | Claim[]>();
  private readonly usersByLogin = new Map<string, DirectoryUser>();
  private readonly groupsByName = new Map<string, DirectoryGroup>();
  private readonly servedDomains = new Map<string, "primary" | "alias" | "virtual">();
  private readonly expansions = new Map<string, GroupExpansion>();
  private readonly memberSets = new Map<string, Set<string>>();
  private readonly primaryDomain: string;

  constructor(directory: Directory, options: Partial<ResolverOptions> = {}) {
    this.options = { ...defaultResolverOptions, ...options };
    this.domains = directory.domains;
    this.primaryDomain = normaliseDomain(directory.domains.primary);
    this.servedDomains.set(this.primaryDomain, "primary");
    for (const domain of directory.domains.aliasDomains)
      this.servedDomains.set(normaliseDomain(domain), "alias");
    for (const domain of directory.domains.virtualDomains) {
      this.servedDomains.set(normaliseDomain(domain), "virtual");
    }
    for (const user of directory.users) {
      this.usersByLogin.set(user.login.toLowerCase(), user);
      const own = new Set([user.primaryAddress, ...user.alternateAddresses]);
      const claim: Claim = { kind: "user", user };
      for (const address of own) this.claim(address, claim);
    }
    for (const group of directory.groups) {
      this.groupsByName.set(group.name.toLowerCase(), group);
      const claim: Claim = { kind: "group", group };
      for (const address of new Set(group.addresses)) this.claim(address, claim);
    }
  }

  private claim(address: string, claim: Claim): void {
    const existing = this.byAddress.get(address);
    if (existing === undefined) this.byAddress.set(address, claim);
    else if (Array.isArray(existing)) existing.push(claim);
    else this.byAddress.set(address, [existing, claim]);
  }

  private claimsOf(address: string): Claim[] | undefined {
    const found = this.byAddress.get(address);
    return found === undefined ? undefined : Array.isArray(found) ? found : [found];
  }

  /** Every address some entry claims, with its claims (for exports and conflict reports). */
  *claimedAddresses(): IterableIterator<[string, Claim[]]> {
    for (const [address, found] of this.byAddress) yield [address, Array.isArray(found) ? found : [found]];
  }

  /** Every user, in directory order (Dovecot's userdb iteration). */
  users(): IterableIterator<DirectoryUser> {
    return this.usersByLogin.values();
  }

  user(login: string): DirectoryUser | undefined {
    return this.usersByLogin.get(login.toLowerCase());
  }

  group(name: string): DirectoryGroup | undefined {
    return this.groupsByName.get(name.toLowerCase());
  }

  isServedDomain(domain: string): boolean {
    return this.servedDomains.has(normaliseDomain(domain));
  }

  resolve(input: string): Resolution {
    const address = normaliseAddress(input);
    if (address === null) return { kind: "invalid", input };
    const domain = splitAddress(address).domain;
    const domainKind = this.servedDomains.get(domain);
    if (domainKind === undefined) return { kind: "not_ours", address, key: address };

    const candidates = [address];
    const withoutExtension = stripExtension(address, this.options.recipientDelimiters);
    if (withoutExtension !== null) candidates.push(withoutExtension);

    for (const candidate of candidates) {
      const found = this.lookupKey(candidate, domainKind);
      if (found !== null) return this.interpret(address, found.key, found.claims);
    }
    return { kind: "unknown", address, key: withoutExtension ?? address };
  }

  private lookupKey(
    key: string,
    domainKind: "primary" | "alias" | "virtual",
  ): { key: string; claims: Claim[] } | null {
    if (domainKind !== "alias") {
      const claims = this.claimsOf(key);
      return claims === undefined ? null : { key, claims };
    }
    // An alias domain carries users' alternate addresses only: the
    // lastname.firstname form at the university-wide domain.
    const rewritten = `${splitAddress(key).local}@${this.primaryDomain}`;
    const claims = this.claimsOf(rewritten)?.filter(
      (claim) => claim.kind === "user" && claim.user.alternateAddresses.includes(rewritten),
    );
    return claims === undefined || claims.length === 0 ? null : { key: rewritten, claims };
  }

  private interpret(address: string, key: string, claims: Claim[]): Resolution {
    if (claims.length > 1) return { kind: "ambiguous", address, key, claims };
    const claim = claims[0]!;
    switch (claim.kind) {
      case "user": {
        const user = claim.user;
        if (user.status === "inactive") return { kind: "inactive", address, key, claim };
        if (user.forwardingAddresses.length === 0) return { kind: "mailbox", address, key, user };
        const own = new Set([user.primaryAddress, ...user.alternateAddresses]);
        const targets = user.forwardingAddresses.filter((target) => !own.has(target));
        const keepCopy = targets.length < user.forwardingAddresses.length;
        if (targets.length === 0) return { kind: "mailbox", address, key, user };
        return { kind: "forward", address, key, user, targets, keepCopy };
      }
      case "group": {
        if (claim.group.status === "inactive") return { kind: "inactive", address, key, claim };
        return { kind: "group", address, key, group: claim.group, expansion: this.expand(claim.group) };
      }
      default: {
        const unreachable: never = claim;
        return unreachable;
      }
    }
  }

  /** Flattened, de-duplicated active membership of a group (cached per snapshot). */
  expand(group: DirectoryGroup): GroupExpansion {
    const cached = this.expansions.get(group.name);
    if (cached !== undefined) return cached;
    const users: DirectoryUser[] = [];
    const seenUsers = new Set<string>();
    const external: string[] = [];
    const seenExternal = new Set<string>();
    const visited = new Set<string>();
    let limitExceeded: GroupExpansion["limitExceeded"] = null;
    const max = this.options.maxExpansion;

    const visit = (current: DirectoryGroup, depth: number): void => {
      if (limitExceeded !== null) return;
      if (depth > this.options.maxDepth) {
        limitExceeded = "depth";
        return;
      }
      visited.add(current.name.toLowerCase());
      for (const login of current.memberLogins) {
        const user = this.usersByLogin.get(login.toLowerCase());
        if (user === undefined || user.status === "inactive" || seenUsers.has(user.login)) continue;
        if (users.length + external.length >= max) {
          limitExceeded = "expansion";
          return;
        }
        seenUsers.add(user.login);
        users.push(user);
      }
      for (const target of current.memberAddresses) {
        if (seenExternal.has(target)) continue;
        if (users.length + external.length >= max) {
          limitExceeded = "expansion";
          return;
        }
        seenExternal.add(target);
        external.push(target);
      }
      for (const name of current.memberGroups) {
        const child = this.groupsByName.get(name.toLowerCase());
        // A group already on the way down is a cycle: cut it (sync reports it).
        if (child === undefined || child.status === "inactive" || visited.has(child.name.toLowerCase()))
          continue;
        visit(child, depth + 1);
      }
    };
    visit(group, 0);
    const expansion: GroupExpansion = { users, externalAddresses: external, limitExceeded };
    this.expansions.set(group.name, expansion);
    return expansion;
  }

  /** True when the login is a (nested) member of the group, active or not. */
  isMember(login: string, groupName: string): boolean {
    const key = groupName.toLowerCase();
    let members = this.memberSets.get(key);
    if (members === undefined) {
      members = new Set<string>();
      const group = this.groupsByName.get(key);
      const visited = new Set<string>();
      const walk = (current: DirectoryGroup): void => {
        visited.add(current.name.toLowerCase());
        for (const member of current.memberLogins) members!.add(member.toLowerCase());
        for (const name of current.memberGroups) {
          const child = this.groupsByName.get(name.toLowerCase());
          if (child !== undefined && !visited.has(child.name.toLowerCase())) walk(child);
        }
      };
      if (group !== undefined) walk(group);
      this.memberSets.set(key, members);
    }
    return members.has(login.toLowerCase());
  }
}
