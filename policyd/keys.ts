/**
 * What a rule counts by, taken from the attributes of one policy request:
 * the SASL login, the envelope sender or its domain, the client network
 * (the address cut to a configurable IPv4/IPv6 prefix, so that one IPv6
 * host cannot escape a limit by using another address of its /64), a
 * recipient or its domain, or one global counter. Values are normalised
 * (lower case, no recipient-delimiter extension, IPv4-mapped IPv6 as IPv4)
 * so that the same sender always lands on the same counter. A key that the
 * request does not carry (no login, the null sender, an unparsable address)
 * is null: the rule does not apply.
 */
import ipaddr from "ipaddr.js";
import { normaliseAddress, splitAddress, stripExtension } from "../core/directory/address.js";

export type KeyKind =
  | "sasl_login"
  | "sender"
  | "sender_domain"
  | "client_address"
  | "recipient"
  | "recipient_domain"
  | "global";

export const KEY_KINDS: readonly KeyKind[] = [
  "sasl_login",
  "sender",
  "sender_domain",
  "client_address",
  "recipient",
  "recipient_domain",
  "global",
];

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An IP literal as Postfix sends it; strict (no legacy IPv4 forms), mapped IPv6 taken as IPv4. */
export function parseClientAddress(text: string | undefined): Address | null {
  if (text === undefined || text.length === 0 || text.length > 64) return null;
  let address: Address;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) address = ipaddr.IPv4.parse(text);
  else if (text.includes(":") && ipaddr.IPv6.isValid(text)) address = ipaddr.IPv6.parse(text);
  else return null;
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (address as ipaddr.IPv6).toIPv4Address();
  }
  return address;
}

/** The network of `address` at the prefix for its family, as "network/prefix". */
export function clientNetwork(address: Address, ipv4Prefix: number, ipv6Prefix: number): string {
  const prefix = address.kind() === "ipv4" ? ipv4Prefix : ipv6Prefix;
  if (address.kind() === "ipv4") {
    // The hot path: four octets masked directly.
    const octets = (address as ipaddr.IPv4).octets;
    const masked = octets.map((octet, index) => {
      const bits = Math.min(Math.max(prefix - index * 8, 0), 8);
      return octet & ((0xff00 >> bits) & 0xff);
    });
    return `${masked.join(".")}/${prefix}`;
  }
  const bytes = address.toByteArray();
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    const index = bit >> 3;
    bytes[index] = (bytes[index] ?? 0) & ~(0x80 >> (bit & 7));
  }
  const network = ipaddr.fromByteArray(bytes);
  return `${network.toString()}/${prefix}`;
}

/**
 * A sender as counters and greylisting see it: lower case, without a
 * recipient-delimiter extension, and without a BATV tag
 * (prvs=TAG=user@domain), which changes with every message.
 */
export function normaliseSender(sender: string | undefined, delimiters: string): string | null {
  if (sender === undefined || sender === "") return null;
  const address = normaliseAddress(sender);
  if (address === null) return null;
  const { local, domain } = splitAddress(address);
  const batv = /^(?:prvs|msprvs[0-9])=[^=]+=(.+)$/.exec(local);
  const untagged = batv ? `${batv[1]}@${domain}` : address;
  return stripExtension(untagged, delimiters) ?? untagged;
}

export function normaliseRecipient(recipient: string | undefined, delimiters: string): string | null {
  if (recipient === undefined || recipient === "") return null;
  const address = normaliseAddress(recipient);
  if (address === null) return null;
  return stripExtension(address, delimiters) ?? address;
}

export function domainOf(address: string | null): string | null {
  return address === null ? null : splitAddress(address).domain;
}

/** A SASL login as counters see it; null when the client did not authenticate. */
export function normaliseLogin(login: string | undefined): string | null {
  if (login === undefined) return null;
  const trimmed = login.trim();
  if (trimmed === "" || trimmed.length > 256 || /[\s\x00-\x1f\x7f]/.test(trimmed)) return null;
  return trimmed.toLowerCase();
}

/**
 * A list of addresses, @domains and bare domains (exceptions, allowed
 * senders, greylisting exemptions): an entry with a local part matches that
 * address; "@domain" and "domain" match every address at the domain.
 */
export class AddressList {
  private readonly addresses = new Set<string>();
  private readonly domains = new Set<string>();

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      const at = entry.lastIndexOf("@");
      if (at > 0) this.addresses.add(entry);
      else this.domains.add(at === 0 ? entry.slice(1) : entry);
    }
  }

  get empty(): boolean {
    return this.addresses.size === 0 && this.domains.size === 0;
  }

  /** `address` is normalised (normaliseSender/normaliseRecipient) or null. */
  matches(address: string | null): boolean {
    if (address === null || this.empty) return false;
    return this.addresses.has(address) || this.domains.has(splitAddress(address).domain);
  }
}
