/**
 * Which mailboxes a recipient's mail would land in, as the directory's
 * resolver says (core/directory/resolver.ts is the only code that reads
 * aliases, groups and forwards; this module only walks what it answers).
 * An alternate address resolves to its mailbox; a forward to the mailboxes
 * of its targets that are ours (and its own when it keeps a copy), so a
 * chain of forwards ends at the mailbox that would bounce; a forward-only
 * address to somewhere else has no mailbox here and is not checked; a group
 * to its members' mailboxes, unless the group policy is "accept", in which
 * case it is not expanded at all. Cycles and chains deeper than
 * directory.max_depth are cut (never refused for).
 *
 * The result is a tree of targets whose mailboxes carry the Dovecot
 * username their usage is stored under and their limit; decision.ts
 * evaluates it against usage readings. Pure: no clock, no store, no I/O.
 */
import type { DirectoryGroup, DirectoryUser } from "../core/directory/model.js";
import type { Resolution, Resolver } from "../core/directory/resolver.js";
import { normaliseUsername } from "./usage-store.js";

export interface PlanSettings {
  /** Bytes for a user whose directory entry has no quota; 0 = no limit. */
  defaultLimitBytes: number;
  /** Which name Dovecot uses for a user (the quota_clone key). */
  dovecotUsername: "login" | "primary_address";
  groupPolicy: "accept" | "any" | "all";
  /** Deepest forward/group chain followed. */
  maxDepth: number;
}

export type Target =
  | {
      kind: "mailbox";
      address: string;
      login: string;
      /** Normalised Dovecot username; null when the user's name cannot be one (never checked). */
      username: string | null;
      /** null = unlimited. */
      limitBytes: number | null;
    }
  /** Delivered elsewhere (another domain, an address the directory does not hold): not checked. */
  | { kind: "external"; address: string }
  | { kind: "forward"; address: string; login: string; parts: Target[] }
  | {
      kind: "group";
      address: string;
      name: string;
      /** Empty when the policy is "accept" (not expanded). */
      members: Target[];
      /** A directory limit cut the expansion: "all" cannot be proven. */
      incomplete: boolean;
    }
  /** A cycle or a chain deeper than maxDepth: followed no further, never refused for. */
  | { kind: "cut"; address: string; reason: "cycle" | "depth" };

export type RecipientPlan =
  /** Not an address we hold a mailbox for: unknown, inactive, ambiguous, another domain, not an address. */
  | {
      kind: "not-ours";
      address: string;
      resolution: Exclude<Resolution["kind"], "mailbox" | "forward" | "group">;
    }
  | { kind: "targets"; address: string; root: Target };

export function dovecotUsernameOf(user: DirectoryUser, settings: PlanSettings): string | null {
  return normaliseUsername(settings.dovecotUsername === "login" ? user.login : user.primaryAddress);
}

export function limitOf(user: DirectoryUser, settings: PlanSettings): number | null {
  const limit = user.quotaBytes ?? settings.defaultLimitBytes;
  // Dovecot reads a zero limit as "no limit" (quota_rule = *:bytes=0).
  return limit > 0 ? limit : null;
}

/** Group plans are the same for every request against one snapshot; big lists are walked once. */
const groupCache = new WeakMap<Resolver, Map<string, Target>>();
const GROUP_CACHE_ENTRIES = 10_000;

export function planRecipient(recipient: string, resolver: Resolver, settings: PlanSettings): RecipientPlan {
  const resolution = resolver.resolve(recipient);
  switch (resolution.kind) {
    case "invalid":
      return { kind: "not-ours", address: recipient, resolution: "invalid" };
    case "not_ours":
    case "unknown":
    case "inactive":
    case "ambiguous":
      return { kind: "not-ours", address: resolution.address, resolution: resolution.kind };
    case "mailbox":
    case "forward":
    case "group":
      return {
        kind: "targets",
        address: resolution.address,
        root: fromResolution(resolution, resolver, settings, new Set(), 0),
      };
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

type Deliverable = Extract<Resolution, { kind: "mailbox" | "forward" | "group" }>;

function fromResolution(
  resolution: Deliverable,
  resolver: Resolver,
  settings: PlanSettings,
  path: ReadonlySet<string>,
  depth: number,
): Target {
  switch (resolution.kind) {
    case "mailbox":
      return mailboxTarget(resolution.address, resolution.user, settings);
    case "forward":
      return forwardTarget(resolution.address, resolution.user, resolution.targets, resolution.keepCopy, {
        resolver,
        settings,
        path,
        depth,
      });
    case "group":
      return groupTarget(resolution.address, resolution.group, { resolver, settings, path, depth });
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

interface Walk {
  resolver: Resolver;
  settings: PlanSettings;
  /** Entries on the way down ("user:login", "group:name"): meeting one again is a cycle. */
  path: ReadonlySet<string>;
  depth: number;
}

function mailboxTarget(address: string, user: DirectoryUser, settings: PlanSettings): Target {
  return {
    kind: "mailbox",
    address,
    login: user.login,
    username: dovecotUsernameOf(user, settings),
    limitBytes: limitOf(user, settings),
  };
}

function forwardTarget(
  address: string,
  user: DirectoryUser,
  targets: readonly string[],
  keepCopy: boolean,
  walk: Walk,
): Target {
  const key = `user:${user.login.toLowerCase()}`;
  if (walk.path.has(key)) return { kind: "cut", address, reason: "cycle" };
  if (walk.depth >= walk.settings.maxDepth) return { kind: "cut", address, reason: "depth" };
  const path = new Set(walk.path).add(key);
  const parts: Target[] = keepCopy ? [mailboxTarget(address, user, walk.settings)] : [];
  for (const target of targets) parts.push(follow(target, { ...walk, path, depth: walk.depth + 1 }));
  return { kind: "forward", address, login: user.login, parts };
}

function groupTarget(address: string, group: DirectoryGroup, walk: Walk): Target {
  if (walk.settings.groupPolicy === "accept") {
    return { kind: "group", address, name: group.name, members: [], incomplete: false };
  }
  const key = `group:${group.name.toLowerCase()}`;
  if (walk.path.has(key)) return { kind: "cut", address, reason: "cycle" };
  if (walk.depth >= walk.settings.maxDepth) return { kind: "cut", address, reason: "depth" };
  // Only top-level groups are cached: below the top the path (and so the cycle cuts) differs.
  const cacheable = walk.path.size === 0;
  const cacheKey = `${settingsKey(walk.settings)} ${group.name}`;
  let cache = groupCache.get(walk.resolver);
  const cached = cacheable ? cache?.get(cacheKey) : undefined;
  if (cached !== undefined && cached.kind === "group") return { ...cached, address };

  const path = new Set(walk.path).add(key);
  const below: Walk = { ...walk, path, depth: walk.depth + 1 };
  const expansion = walk.resolver.expand(group);
  const members: Target[] = [];
  for (const user of expansion.users) members.push(userTarget(user, below));
  for (const external of expansion.externalAddresses) members.push(follow(external, below));
  const target: Target = {
    kind: "group",
    address,
    name: group.name,
    members,
    incomplete: expansion.limitExceeded !== null,
  };
  if (cacheable) {
    if (cache === undefined) {
      cache = new Map();
      groupCache.set(walk.resolver, cache);
    }
    if (cache.size >= GROUP_CACHE_ENTRIES) cache.clear();
    cache.set(cacheKey, target);
  }
  return target;
}

function settingsKey(settings: PlanSettings): string {
  return `${settings.groupPolicy} ${settings.dovecotUsername} ${settings.defaultLimitBytes} ${settings.maxDepth}`;
}

/** A member user of a group: its mailbox, or where it forwards to. */
function userTarget(user: DirectoryUser, walk: Walk): Target {
  const resolution = walk.resolver.resolve(user.primaryAddress);
  if (resolution.kind === "forward" && resolution.user === user) {
    return forwardTarget(user.primaryAddress, user, resolution.targets, resolution.keepCopy, walk);
  }
  return mailboxTarget(user.primaryAddress, user, walk.settings);
}

/** A forward target or a group's outside member: ours is followed, anything else is external. */
function follow(address: string, walk: Walk): Target {
  const resolution = walk.resolver.resolve(address);
  switch (resolution.kind) {
    case "mailbox":
    case "forward":
    case "group":
      return fromResolution(resolution, walk.resolver, walk.settings, walk.path, walk.depth);
    case "invalid":
      return { kind: "external", address };
    case "not_ours":
    case "unknown":
    case "inactive":
    case "ambiguous":
      return { kind: "external", address: resolution.address };
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

/** Every distinct username in the tree, in first-seen order (what the store is asked for). */
export function usernamesOf(root: Target, into: Set<string> = new Set()): Set<string> {
  switch (root.kind) {
    case "mailbox":
      if (root.username !== null) into.add(root.username);
      break;
    case "forward":
      for (const part of root.parts) usernamesOf(part, into);
      break;
    case "group":
      for (const member of root.members) usernamesOf(member, into);
      break;
    case "external":
    case "cut":
      break;
    default: {
      const unreachable: never = root;
      return unreachable;
    }
  }
  return into;
}
