/**
 * Greylisting as pure functions. A triplet is (client network, normalised
 * sender, recipient); the client network is the address cut to the
 * configured prefix so that a sender retrying from another host of its pool
 * is recognised. The first attempt is deferred; a retry after `delay` and
 * within `retry_window` of the first attempt passes, and the triplet is then
 * known for `max_age` after its last use. A client network whose triplets
 * passed `auto_whitelist_after` times is no longer greylisted at all (until
 * it has been silent for `max_age`). Authenticated clients, exempt networks,
 * exempt client host names (provider pools) and exempt recipients are never
 * greylisted. The stores keep the records; greylistStep says what one
 * attempt does to them.
 */
import { splitAddress } from "../core/directory/address.js";
import type { RequestFacts } from "./facts.js";
import { clientNetwork } from "./keys.js";
import type { GreylistSettings } from "./rules.js";

export interface TripletRecord {
  firstSeen: number;
  lastSeen: number;
  /** True once a retry was accepted. */
  passed: boolean;
}

export interface ClientRecord {
  /** Triplets of this client network that passed after a retry. */
  passes: number;
  lastSeen: number;
}

export type GreylistDecision =
  | { kind: "whitelisted" }
  | { kind: "known" }
  | { kind: "passed"; delayedMs: number }
  | { kind: "deferred"; retryInMs: number; firstAttempt: boolean };

export interface GreylistStep {
  decision: GreylistDecision;
  triplet: TripletRecord | undefined;
  client: ClientRecord | undefined;
}

export interface GreylistQuery {
  tripletId: string;
  clientId: string;
}

/** Why greylisting does not apply to a request, or the store keys it uses. */
export type GreylistApplicability =
  | {
      applies: false;
      reason:
        | "disabled"
        | "authenticated"
        | "no_client"
        | "exempt_network"
        | "exempt_client_name"
        | "exempt_recipient"
        | "no_recipient";
    }
  | { applies: true; query: GreylistQuery };

export function greylistApplicability(
  settings: GreylistSettings,
  facts: RequestFacts,
): GreylistApplicability {
  if (!settings.enabled) return { applies: false, reason: "disabled" };
  if (facts.login !== null) return { applies: false, reason: "authenticated" };
  if (facts.client === null) return { applies: false, reason: "no_client" };
  if (facts.recipient === null) return { applies: false, reason: "no_recipient" };
  if (settings.exemptNetworks.entries.length > 0 && settings.exemptNetworks.allows(facts.client.toString())) {
    return { applies: false, reason: "exempt_network" };
  }
  if (facts.clientName !== null && matchesDomainList(facts.clientName, settings.exemptClientNames)) {
    return { applies: false, reason: "exempt_client_name" };
  }
  if (settings.exemptRecipients.matches(facts.recipient))
    return { applies: false, reason: "exempt_recipient" };
  const network = clientNetwork(facts.client, settings.ipv4Prefix, settings.ipv6Prefix);
  return {
    applies: true,
    query: {
      tripletId: `gl:t:${network}/${facts.sender ?? "<>"}/${facts.recipient}`,
      clientId: `gl:c:${network}`,
    },
  };
}

function matchesDomainList(name: string, domains: readonly string[]): boolean {
  return domains.some((domain) => name === domain || name.endsWith(`.${domain}`));
}

/** What one attempt decides and the records to store afterwards (undefined: leave as is). */
export function greylistStep(
  triplet: TripletRecord | undefined,
  client: ClientRecord | undefined,
  now: number,
  settings: Pick<GreylistSettings, "delayMs" | "retryWindowMs" | "maxAgeMs" | "autoWhitelistAfter">,
): GreylistStep {
  const { delayMs, retryWindowMs, maxAgeMs, autoWhitelistAfter } = settings;
  if (
    client !== undefined &&
    autoWhitelistAfter > 0 &&
    client.passes >= autoWhitelistAfter &&
    now - client.lastSeen <= maxAgeMs
  ) {
    return { decision: { kind: "whitelisted" }, triplet: undefined, client: { ...client, lastSeen: now } };
  }
  if (triplet?.passed && now - triplet.lastSeen <= maxAgeMs) {
    return { decision: { kind: "known" }, triplet: { ...triplet, lastSeen: now }, client: undefined };
  }
  if (triplet !== undefined && !triplet.passed && now - triplet.firstSeen <= retryWindowMs) {
    const waited = now - triplet.firstSeen;
    if (waited >= delayMs) {
      const current = client !== undefined && now - client.lastSeen <= maxAgeMs ? client.passes : 0;
      return {
        decision: { kind: "passed", delayedMs: waited },
        triplet: { firstSeen: triplet.firstSeen, lastSeen: now, passed: true },
        client: { passes: current + 1, lastSeen: now },
      };
    }
    return {
      decision: { kind: "deferred", retryInMs: delayMs - waited, firstAttempt: false },
      triplet: { ...triplet, lastSeen: now },
      client: undefined,
    };
  }
  return {
    decision: { kind: "deferred", retryInMs: delayMs, firstAttempt: true },
    triplet: { firstSeen: now, lastSeen: now, passed: false },
    client: undefined,
  };
}

export function tripletExpiresAt(
  triplet: TripletRecord,
  settings: Pick<GreylistSettings, "retryWindowMs" | "maxAgeMs">,
): number {
  return triplet.passed ? triplet.lastSeen + settings.maxAgeMs : triplet.firstSeen + settings.retryWindowMs;
}

export function clientExpiresAt(client: ClientRecord, settings: Pick<GreylistSettings, "maxAgeMs">): number {
  return client.lastSeen + settings.maxAgeMs;
}

/** The header added to a message that passed after a delay, in the style postgrey made familiar. */
export function greylistHeader(delayedMs: number, hostName: string, now: Date): string {
  const seconds = Math.round(delayedMs / 1000);
  return `X-Greylist: delayed ${seconds} seconds by emailng-policyd at ${hostName}; ${now.toUTCString()}`;
}

/** For log lines: the sender domain only, never the full triplet. */
export function describeTriplet(facts: RequestFacts): string {
  const senderDomain = facts.sender === null ? "<>" : splitAddress(facts.sender).domain;
  return `${facts.client?.toString() ?? "?"} ${senderDomain}`;
}
