/**
 * Client address allow-lists for TCP listeners. A TCP listener answers only
 * the networks it is told to (Postfix and Dovecot hosts); everything else is
 * dropped before a single byte is read. Entries are CIDRs or bare addresses,
 * IPv4 or IPv6, parsed once at start so a typo stops the program instead of
 * silently refusing mail hosts. IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`,
 * what a dual-stack socket reports for IPv4 clients) are matched as the IPv4
 * address they carry.
 */
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Network = [Address, number];

export interface AllowList {
  /** True when the peer address is inside one of the networks. */
  allows(address: string | undefined): boolean;
  /** The entries as given, for log lines. */
  readonly entries: readonly string[];
}

/** Parse one entry; throws a message that names the bad entry. */
function parseEntry(entry: string): Network {
  const [addressText = "", bitsText, extra] = entry.trim().split("/");
  if (extra !== undefined) throw new Error(`allow entry "${entry}" is not an address or CIDR`);
  // ipaddr.js accepts legacy IPv4 forms ("10", "0x7f.1"); an allow-list must
  // mean exactly what it looks like, so IPv4 must be four decimal parts.
  let address: Address;
  if (ipaddr.IPv4.isValidFourPartDecimal(addressText)) address = ipaddr.IPv4.parse(addressText);
  else if (ipaddr.IPv6.isValid(addressText)) address = ipaddr.IPv6.parse(addressText);
  else throw new Error(`allow entry "${entry}" is not an IPv4 or IPv6 address`);
  const maxBits = address.kind() === "ipv4" ? 32 : 128;
  const bits = bitsText === undefined ? maxBits : Number(bitsText);
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) {
    throw new Error(`allow entry "${entry}" has an invalid prefix length`);
  }
  if (!Number.isInteger(bits) || bits < 0 || bits > maxBits) {
    throw new Error(`allow entry "${entry}": prefix length must be 0..${maxBits}`);
  }
  // Written as a mapped IPv6 network (::ffff:10.0.0.0/104): peers are
  // compared as IPv4, so compare the network as IPv4 too.
  if (address.kind() === "ipv6" && bits >= 96 && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [address, bits];
}

/** Normalise a peer address: mapped IPv6 becomes IPv4; undefined when unparsable. */
export function normalizePeerAddress(address: string | undefined): Address | undefined {
  if (address === undefined || !ipaddr.isValid(address)) return undefined;
  return ipaddr.process(address);
}

/** Build an allow-list; throws on the first invalid entry. An empty list allows nobody. */
export function createAllowList(entries: readonly string[]): AllowList {
  const networks = entries.map(parseEntry);
  return {
    entries: [...entries],
    allows(address) {
      const peer = normalizePeerAddress(address);
      if (peer === undefined) return false;
      return networks.some(([network, bits]) => network.kind() === peer.kind() && peer.match(network, bits));
    },
  };
}
