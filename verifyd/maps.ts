/**
 * verifyd's Postfix socketmap maps: what each map name answers for a key,
 * decided from the snapshot in use and nothing else (no sockets, no logging,
 * no clock: freshness comes in with the snapshot). The answers are chosen
 * for how Postfix uses each map; README.md gives the main.cf lines.
 *
 *   recipient  relay_recipient_maps, and check_recipient_access for the one
 *              case that needs a clear refusal. Values are access(5) actions
 *              so that one map serves both: a deliverable address is
 *              `OK DUNNO` (found; "no decision" as an access action, so the
 *              restrictions after it still run), an address two directory
 *              entries claim is `OK 550 5.1.0 …` (a 550 naming the conflict
 *              through check_recipient_access), anything else NOTFOUND (550
 *              "User unknown in relay recipient table").
 *   alias      virtual_alias_maps. Alternate address → primary address
 *              (extension kept); primary address → NOTFOUND (nothing to
 *              rewrite); forward → its targets, plus the address itself for
 *              a local copy (Postfix stops expanding an address that maps to
 *              itself); group → the members' primary addresses and its
 *              outside addresses. Postfix expands the result again, so a
 *              member who forwards is forwarded. An expansion cut by a limit,
 *              one too large for a reply, or an address two entries claim is
 *              TEMP: the mail waits, it is never half-delivered nor delivered
 *              to both claimants.
 *   login      smtpd_sender_login_maps: the logins owning an address (a
 *              user's own addresses, active or not); for a list address the
 *              logins its posting policy allows (named logins and the active
 *              members of the named groups); a list anyone may post to has
 *              no owner (NOTFOUND).
 *   domain     relay_domains: the domains the snapshot serves.
 *
 * Failure semantics (DESIGN "never bounce the valid"): NOTFOUND only from a
 * loaded, fresh snapshot. No snapshot, a stale one or an exception → TEMP for
 * every map. An unknown map name or a malformed request → PERM (Postfix
 * treats it as a configuration error and defers too).
 */

import { normaliseDomain, splitAddress } from "../core/directory/address.js";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { Claim, Resolution, Resolver } from "../core/directory/resolver.js";
import {
  MAX_SOCKETMAP_REPLY_PAYLOAD,
  parseSocketmapRequest,
  type SocketmapReply,
  socketmapReplyOverLimit,
} from "../core/protocols/socketmap.js";

export const MAP_NAMES = ["recipient", "alias", "login", "domain"] as const;
export type MapName = (typeof MAP_NAMES)[number];

const MAP_NAME_SET: ReadonlySet<string> = new Set(MAP_NAMES);

export function isMapName(name: string): name is MapName {
  return MAP_NAME_SET.has(name);
}

/** The recipient map's value for a deliverable address: found, and "no decision" as an access action. */
export const RECIPIENT_DELIVERABLE = "DUNNO";
/** The recipient map's value for an address two entries claim, for check_recipient_access. */
export const RECIPIENT_AMBIGUOUS =
  "550 5.1.0 Address claimed by more than one directory entry; the postmaster must resolve the conflict";

/**
 * A reply and why it was given, for metrics and the log line. `detail` is a
 * short fixed word (a resolution kind or a failure reason); `problem` is set
 * when an operator should read about it (logged at warn).
 */
export interface MapAnswer {
  reply: SocketmapReply;
  detail: string;
  problem?: string;
}

/**
 * Most answers are one of a few constants (NOTFOUND, or `OK DUNNO` for a
 * deliverable recipient, each with a fixed detail word): made once per
 * detail, frozen, and shared by every lookup that gives them.
 */
function constantAnswers(reply: SocketmapReply): (detail: string) => MapAnswer {
  const frozen = Object.freeze(reply);
  const byDetail = new Map<string, MapAnswer>();
  return (detail) => {
    let answer = byDetail.get(detail);
    if (answer === undefined) {
      answer = Object.freeze({ reply: frozen, detail });
      byDetail.set(detail, answer);
    }
    return answer;
  };
}

const notFound = constantAnswers({ status: "NOTFOUND" });
const deliverable = constantAnswers({ status: "OK", data: RECIPIENT_DELIVERABLE });
const found = (data: string, detail: string): MapAnswer => ({ reply: { status: "OK", data }, detail });
const temporary = (reason: string, detail: string, problem?: string): MapAnswer =>
  problem === undefined
    ? { reply: { status: "TEMP", reason }, detail }
    : { reply: { status: "TEMP", reason }, detail, problem };

/** Answers a raw socketmap request payload (`NAME SP KEY`). */
export function answerRequest(
  payload: Uint8Array,
  snapshot: CurrentSnapshot | null,
): MapAnswer & {
  map: string;
  /** The key asked, when the request parsed. */
  key?: string;
} {
  const parsed = parseSocketmapRequest(payload);
  if (!parsed.ok) return { map: "", ...malformedRequest(parsed.error.message) };
  const { name, key } = parsed.request;
  return { map: name, key, ...lookupMap(name, key, snapshot) };
}

/** The answer to a request that did not parse (PERM: Postfix defers and logs a configuration error). */
export function malformedRequest(message: string): MapAnswer {
  return { reply: { status: "PERM", reason: message }, detail: "malformed", problem: message };
}

/** lookupMap without the explanation: the reply only. */
export function lookup(mapName: string, key: string, snapshot: CurrentSnapshot | null): SocketmapReply {
  return lookupMap(mapName, key, snapshot).reply;
}

export function lookupMap(mapName: string, key: string, snapshot: CurrentSnapshot | null): MapAnswer {
  if (!isMapName(mapName)) {
    return {
      reply: { status: "PERM", reason: `unknown map name; verifyd serves ${MAP_NAMES.join(", ")}` },
      detail: "unknown_map",
      problem: "unknown map name (check the socketmap:…:NAME in main.cf)",
    };
  }
  if (snapshot === null) return temporary("no directory snapshot loaded", "no_snapshot");
  if (!snapshot.fresh) {
    return temporary(`directory snapshot v${snapshot.meta.version} is older than its maximum age`, "stale");
  }
  try {
    const answer = answerFresh(mapName, key, snapshot.resolver);
    const payloadBytes = socketmapReplyOverLimit(answer.reply);
    if (payloadBytes !== undefined) {
      return temporary(
        "expansion too large for a socketmap reply",
        "too_large",
        `${mapName} answer of ${payloadBytes} bytes exceeds Postfix's ${MAX_SOCKETMAP_REPLY_PAYLOAD}`,
      );
    }
    return answer;
  } catch (error) {
    return temporary(
      "internal error",
      "exception",
      `lookup failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function answerFresh(map: MapName, key: string, resolver: Resolver): MapAnswer {
  switch (map) {
    case "recipient":
      return recipientAnswer(resolver.resolve(key));
    case "alias":
      return aliasAnswer(resolver.resolve(key));
    case "login":
      return loginAnswer(resolver.resolve(key), resolver);
    case "domain":
      return domainAnswer(key, resolver);
    default: {
      const unreachable: never = map;
      return unreachable;
    }
  }
}

/** A group delivers when its expansion reaches at least one mailbox or outside address. */
function groupDelivers(resolution: Extract<Resolution, { kind: "group" }>): boolean {
  const { users, externalAddresses } = resolution.expansion;
  return users.length + externalAddresses.length > 0;
}

/** The kinds that name nothing deliverable; the recipient and alias maps answer NOTFOUND for them. */
type Undeliverable = Extract<Resolution, { kind: "invalid" | "not_ours" | "unknown" | "inactive" }>;

function isUndeliverable(resolution: Resolution): resolution is Undeliverable {
  const { kind } = resolution;
  return kind === "invalid" || kind === "not_ours" || kind === "unknown" || kind === "inactive";
}

function recipientAnswer(resolution: Resolution): MapAnswer {
  if (isUndeliverable(resolution)) return notFound(resolution.kind);
  switch (resolution.kind) {
    case "mailbox":
    case "forward":
      return deliverable(resolution.kind);
    case "group":
      // An empty list cannot deliver: refuse it now rather than bounce later.
      return groupDelivers(resolution) ? deliverable("group") : notFound("empty_group");
    case "ambiguous":
      return {
        ...found(RECIPIENT_AMBIGUOUS, "ambiguous"),
        problem: `address claimed by ${describeClaims(resolution.claims)}`,
      };
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

/** The part of the asked address's local part beyond the matched key's (`+tag`), or "". */
function extensionOf(resolution: { address: string; key: string }): string {
  const asked = splitAddress(resolution.address).local;
  const matched = splitAddress(resolution.key).local;
  return asked.length > matched.length && asked.startsWith(matched) ? asked.slice(matched.length) : "";
}

function withExtension(address: string, extension: string): string {
  if (extension === "") return address;
  const { local, domain } = splitAddress(address);
  return `${local}${extension}@${domain}`;
}

function aliasAnswer(resolution: Resolution): MapAnswer {
  if (isUndeliverable(resolution)) return notFound(resolution.kind);
  switch (resolution.kind) {
    case "mailbox":
    case "forward": {
      const primary = resolution.user.primaryAddress;
      if (resolution.key !== primary) {
        // Rewrite to the primary address; Postfix looks that up in turn (a forward expands there).
        return found(withExtension(primary, extensionOf(resolution)), `${resolution.kind}_rewrite`);
      }
      if (resolution.kind === "mailbox") return notFound("mailbox");
      const targets = resolution.keepCopy ? [...resolution.targets, resolution.address] : resolution.targets;
      return found(unique(targets).join(","), "forward");
    }
    case "group": {
      const { users, externalAddresses, limitExceeded } = resolution.expansion;
      if (limitExceeded !== null) {
        return temporary(
          "group expansion exceeds a limit",
          "limit_exceeded",
          `group ${resolution.group.name} stopped at the ${limitExceeded} limit (directory.max_expansion / max_depth)`,
        );
      }
      const members = unique([...users.map((user) => user.primaryAddress), ...externalAddresses]);
      if (members.length === 0) return notFound("empty_group");
      return found(members.join(","), "group");
    }
    case "ambiguous":
      return temporary(
        "address claimed by more than one directory entry",
        "ambiguous",
        `address claimed by ${describeClaims(resolution.claims)}`,
      );
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

function ownersOf(claim: Claim, resolver: Resolver): string[] {
  switch (claim.kind) {
    case "user":
      return [claim.user.login];
    case "group": {
      const posting = claim.group.posting;
      if (posting === null) return [];
      const logins = [...posting.logins];
      for (const name of posting.groups) {
        const group = resolver.group(name);
        if (group !== undefined) logins.push(...resolver.expand(group).users.map((user) => user.login));
      }
      return logins;
    }
    default: {
      const unreachable: never = claim;
      return unreachable;
    }
  }
}

function loginAnswer(resolution: Resolution, resolver: Resolver): MapAnswer {
  let claims: Claim[];
  switch (resolution.kind) {
    case "mailbox":
    case "forward":
      claims = [{ kind: "user", user: resolution.user }];
      break;
    case "group":
      claims = [{ kind: "group", group: resolution.group }];
      break;
    case "inactive":
      // Ownership does not lapse with the account: nobody else may send as it.
      claims = [resolution.claim];
      break;
    case "ambiguous":
      claims = resolution.claims;
      break;
    case "invalid":
    case "not_ours":
    case "unknown":
      return notFound(resolution.kind);
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
  const logins = unique(claims.flatMap((claim) => ownersOf(claim, resolver)));
  return logins.length === 0 ? notFound("no_owner") : found(logins.join(","), resolution.kind);
}

function domainAnswer(key: string, resolver: Resolver): MapAnswer {
  const domain = normaliseDomain(key);
  if (domain === "" || /[@\s,]/.test(domain)) return notFound("invalid");
  return resolver.isServedDomain(domain) ? found(domain, "served") : notFound("not_ours");
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function describeClaims(claims: readonly Claim[]): string {
  return claims
    .map((claim) => (claim.kind === "user" ? `user ${claim.user.login}` : `group ${claim.group.name}`))
    .join(" and ");
}
