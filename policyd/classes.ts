/**
 * Which class of principal a request belongs to, for per-class limits and
 * class exceptions. The principal is the SASL login when the client
 * authenticated, else the directory user owning the envelope sender (an
 * unauthenticated sender can be forged, so a class should only ever raise
 * a limit a little, never lift it). The first configured class whose groups
 * hold the login (nested groups count) or whose attribute matches wins.
 * Without a snapshot there is no class and the rules' own limits apply.
 */
import type { Resolver } from "../core/directory/resolver.js";
import type { RequestFacts } from "./facts.js";
import type { CompiledClass } from "./rules.js";

/** The directory login of the principal, or null (no login and no local sender). */
export function principalLogin(facts: RequestFacts, resolver: Resolver | null): string | null {
  if (facts.login !== null) return facts.login;
  if (resolver === null || facts.sender === null) return null;
  const resolution = resolver.resolve(facts.sender);
  if (resolution.kind === "mailbox" || resolution.kind === "forward") return resolution.user.login;
  return null;
}

export function classOf(
  login: string | null,
  resolver: Resolver | null,
  classes: readonly CompiledClass[],
): string | null {
  if (login === null || resolver === null || classes.length === 0) return null;
  const user = resolver.user(login);
  for (const entry of classes) {
    if (entry.groups.some((group) => resolver.isMember(login, group))) return entry.name;
    if (user !== undefined && entry.attribute !== null) {
      const value = entry.attribute === "category" ? user.category : user.mailHost;
      if (value !== undefined && entry.values.has(value.toLowerCase())) return entry.name;
    }
  }
  return null;
}
