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
  // The common case, read by hand: ipaddr.js would run two regular expressions over it.
  const octets = dottedQuad(text);
  if (octets !== null) return new ipaddr.IPv4(octets);
  if (!text.includes(":") || !ipaddr.IPv6.isValid(text)) return null;
  const address = ipaddr.IPv6.parse(text);
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/** The four octets of a strict dotted quad (decimal, no leading zeros, each at most 255), or null. */
function dottedQuad(text: string): number[] | null {
  const octets = [0, 0, 0, 0];
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 46 /* . */) {
      if (digits === 0 || part === 3) return null;
      octets[part++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    if (code < 48 || code > 57 || (digits > 0 && value === 0)) return null;
    value = value * 10 + (code - 48);
    digits++;
    if (value > 255) return null;
  }
  if (part !== 3 || digits === 0) return null;
  octets[3] = value;
  return octets;
}

/** The network of `address` at the prefix for its family, as "network/prefix". */
export function clientNetwork(address: Address, ipv4Prefix: number, ipv6Prefix: number): string {
  if (address.kind() === "ipv4") {
    // The hot path: the address as one 32-bit number, masked.
    const [a = 0, b = 0, c = 0, d = 0] = (address as ipaddr.IPv4).octets;
    const mask = ipv4Prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(ipv4Prefix, 32))) >>> 0;
    const network = ((a << 24) | (b << 16) | (c << 8) | d) & mask;
    return `${network >>> 24}.${(network >>> 16) & 0xff}.${(network >>> 8) & 0xff}.${network & 0xff}/${ipv4Prefix}`;
  }
  const bytes = address.toByteArray();
  for (let bit = ipv6Prefix; bit < bytes.length * 8; bit++) {
    const index = bit >> 3;
    bytes[index] = (bytes[index] ?? 0) & ~(0x80 >> (bit & 7));
  }
  const network = ipaddr.fromByteArray(bytes);
  return `${network.toString()}/${ipv6Prefix}`;
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
