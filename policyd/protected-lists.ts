/**
 * Protected lists as a pure function over the directory. A group is
 * protected when the directory restricts its posting (DirectoryGroup.posting,
 * from mailAllowedBroadcaster) or when [[policyd.protected_lists.lists]]
 * names it. Mail to it is accepted only from
 *   - an authenticated login that is allowed by name or is a (nested) member
 *     of an allowed group — from anywhere, so staff may post from home;
 *   - a client in an allowed network (the list's own or the global one);
 *   - an allowed sender address (the list's own).
 * Everyone else gets 5.7.1 with the list's name. The recipient is resolved
 * by core/directory's Resolver, so every address of the list (alternates,
 * +extensions, alias domain) is protected alike. Without a snapshot nothing
 * can be said and the answer is temporary.
 */
import type { Resolver } from "../core/directory/resolver.js";
import type { RequestFacts } from "./facts.js";
import type { ProtectedListsSettings } from "./rules.js";

export type ListVerdict =
  | { kind: "not_protected" }
  | { kind: "allowed"; list: string; by: "login" | "group" | "network" | "sender" }
  | { kind: "refused"; list: string; allowedGroups: readonly string[] }
  | { kind: "unavailable" };

export function checkProtectedList(
  facts: RequestFacts,
  settings: ProtectedListsSettings,
  resolver: Resolver | null,
): ListVerdict {
  if (!settings.fromDirectory && settings.lists.size === 0) return { kind: "not_protected" };
  if (facts.recipient === null) return { kind: "not_protected" };
  if (resolver === null) return { kind: "unavailable" };
  const resolution = resolver.resolve(facts.recipient);
  if (resolution.kind !== "group") return { kind: "not_protected" };
  const group = resolution.group;
  const configured = settings.lists.get(group.name.toLowerCase());
  const posting = settings.fromDirectory ? group.posting : null;
  if (configured === undefined && posting === null) return { kind: "not_protected" };

  const allowedGroups = [...(posting?.groups ?? []), ...(configured?.allowedGroups ?? [])];
  const login = facts.login;
  if (login !== null) {
    const byName =
      configured?.allowedLogins.has(login) === true ||
      (posting?.logins.some((allowed) => allowed.toLowerCase() === login) ?? false);
    if (byName) return { kind: "allowed", list: group.name, by: "login" };
    if (allowedGroups.some((allowed) => resolver.isMember(login, allowed))) {
      return { kind: "allowed", list: group.name, by: "group" };
    }
  }
  if (facts.client !== null) {
    const client = facts.client.toString();
    const networks = [configured?.allowedNetworks, settings.allowedNetworks];
    if (networks.some((list) => list !== undefined && list.entries.length > 0 && list.allows(client))) {
      return { kind: "allowed", list: group.name, by: "network" };
    }
  }
  if (configured?.allowedSenders.matches(facts.sender) === true) {
    return { kind: "allowed", list: group.name, by: "sender" };
  }
  return { kind: "refused", list: group.name, allowedGroups: [...new Set(allowedGroups)] };
}

/** The 5.7.1 text: names the list and, briefly, who may post. */
export function protectedListText(list: string, allowedGroups: readonly string[]): string {
  const shown = allowedGroups.slice(0, 5).join(", ");
  const more = allowedGroups.length > 5 ? " and others" : "";
  return allowedGroups.length === 0
    ? `${list} is a protected list: you are not allowed to post to it`
    : `${list} is a protected list: only members of ${shown}${more} may post to it`;
}
