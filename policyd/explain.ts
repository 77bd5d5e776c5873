/**
 * What `emailng policy explain|reset KEY` looks at. KEY names a principal
 * the way an administrator thinks of it, and this module finds the
 * counters of every rule that counts by it:
 *
 *   gpapadop            a SASL login (and, if it has a dot, also a domain)
 *   user@example.org    a sender and a recipient address
 *   @example.org        a sender and a recipient domain
 *   192.0.2.7, 2001:db8::1, 192.0.2.0/24
 *                       a client address (cut to each rule's prefix)
 *   global              the global counters
 *   login:NAME, sender:ADDR, recipient:ADDR, domain:NAME, client:IP
 *                       one kind only
 *
 * Pure: the caller reads the counters from the store.
 */
import type { Resolver } from "../core/directory/resolver.js";
import { classOf } from "./classes.js";
import {
  clientNetwork,
  type KeyKind,
  normaliseLogin,
  normaliseRecipient,
  normaliseSender,
  parseClientAddress,
} from "./keys.js";
import { counterId } from "./limits.js";
import { type PolicySettings, windowLimit } from "./rules.js";
import type { CounterOperation } from "./store.js";

export interface KeyTarget {
  /** Counters to read or reset, with the rule and window they belong to. */
  counters: Array<CounterOperation & { rule: string; key: KeyKind; value: string }>;
  /** The login, when KEY names one (holds, burst figures). */
  login: string | null;
  /** The greylisting client record, when KEY is a client address. */
  greylistClientId: string | null;
}

type Values = Partial<Record<KeyKind, string>>;

const PREFIXED = /^(login|sender|recipient|domain|client):(.+)$/;

/** The key values KEY stands for, per key kind; null when KEY is not understood. */
export function interpretKey(text: string, recipientDelimiters: string): Values | null {
  const key = text.trim();
  if (key === "" || key.length > 300 || /[\s\x00-\x1f\x7f]/.test(key)) return null;
  if (key === "global" || key === "*") return { global: "*" };
  const prefixed = PREFIXED.exec(key);
  if (prefixed) {
    const [, kind = "", value = ""] = prefixed;
    switch (kind) {
      case "login":
        return optional({ sasl_login: normaliseLogin(value) });
      case "sender":
        return optional({ sender: normaliseSender(value, recipientDelimiters) });
      case "recipient":
        return optional({ recipient: normaliseRecipient(value, recipientDelimiters) });
      case "domain":
        return domainValues(value);
      default:
        return clientValue(value);
    }
  }
  const client = clientValue(key);
  if (client !== null) return client;
  if (key.startsWith("@")) return domainValues(key.slice(1));
  if (key.includes("@")) {
    return optional({
      sender: normaliseSender(key, recipientDelimiters),
      recipient: normaliseRecipient(key, recipientDelimiters),
    });
  }
  const login = normaliseLogin(key);
  if (login === null) return null;
  return key.includes(".") ? { sasl_login: login, ...domainValues(key) } : { sasl_login: login };
}

function optional(values: Record<string, string | null>): Values | null {
  const kept = Object.fromEntries(Object.entries(values).filter(([, value]) => value !== null)) as Values;
  return Object.keys(kept).length === 0 ? null : kept;
}

function domainValues(domain: string): Values | null {
  const value = domain.trim().toLowerCase().replace(/\.$/, "");
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(value)) return null;
  return { sender_domain: value, recipient_domain: value };
}

/** An address or a network; the network's address stands for it (each rule applies its own prefix). */
function clientValue(text: string): Values | null {
  const [address] = text.split("/", 1);
  const parsed = parseClientAddress(address);
  return parsed === null ? null : { client_address: parsed.toString() };
}

export function targetsOf(values: Values, settings: PolicySettings, resolver: Resolver | null): KeyTarget {
  const login = values.sasl_login ?? null;
  const className = classOf(login, resolver, settings.classes);
  const counters: KeyTarget["counters"] = [];
  let greylistClientId: string | null = null;
  const client = values.client_address === undefined ? null : parseClientAddress(values.client_address);
  if (client !== null && settings.greylist.enabled) {
    greylistClientId = `gl:c:${clientNetwork(client, settings.greylist.ipv4Prefix, settings.greylist.ipv6Prefix)}`;
  }
  for (const rule of settings.rules) {
    let value = values[rule.key];
    if (value === undefined) continue;
    if (rule.key === "client_address" && client !== null) {
      value = clientNetwork(client, rule.ipv4Prefix, rule.ipv6Prefix);
    }
    for (const window of rule.windows) {
      counters.push({
        id: counterId(rule.name, window.periodMs, value),
        spec: { algorithm: rule.algorithm, periodMs: window.periodMs, limit: windowLimit(window, className) },
        cost: 1,
        rule: rule.name,
        key: rule.key,
        value,
      });
    }
  }
  return { counters, login, greylistClientId };
}
