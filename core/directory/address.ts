/**
 * Address normalisation shared by every lookup: one function decides what
 * "the same address" means, so Postfix's lowercased access-map keys,
 * postmap's verbatim keys and Dovecot's usernames all land on the same entry.
 * The directory stores addresses case-insensitively (caseIgnoreIA5Match), so
 * local parts are folded too.
 */

export interface SplitAddress {
  local: string;
  domain: string;
}

/** Longest address we consider (RFC 5321 path limit); anything longer is not an address. */
export const maxAddressLength = 254;

/** Lower-cases and trims an address, removing one pair of angle brackets. Returns null if it is not user@domain. */
export function normaliseAddress(raw: string): string | null {
  let value = raw.trim();
  if (value.startsWith("<") && value.endsWith(">")) value = value.slice(1, -1).trim();
  if (value.length === 0 || value.length > maxAddressLength) return null;
  const at = value.lastIndexOf("@");
  // Exactly one @: quoted local parts holding one are not addresses we serve.
  if (at <= 0 || at === value.length - 1 || value.indexOf("@") !== at) return null;
  // Control characters, spaces and commas never occur in addresses we serve;
  // refusing them keeps map replies (comma-separated) unambiguous.
  if (/[\s,\x00-\x1f\x7f]/.test(value)) return null;
  return value.toLowerCase();
}

export function splitAddress(address: string): SplitAddress {
  const at = address.lastIndexOf("@");
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/**
 * Removes a recipient-delimiter extension (`user+tag@domain` → `user@domain`),
 * like Postfix does with recipient_delimiter: the first delimiter character in
 * the local part starts the extension. Returns null when there is none.
 */
export function stripExtension(address: string, delimiters: string): string | null {
  if (delimiters.length === 0) return null;
  const { local, domain } = splitAddress(address);
  let cut = -1;
  for (const ch of delimiters) {
    const index = local.indexOf(ch);
    if (index > 0 && (cut === -1 || index < cut)) cut = index;
  }
  if (cut === -1) return null;
  return `${local.slice(0, cut)}@${domain}`;
}

export function normaliseDomain(raw: string): string {
  return raw.trim().toLowerCase().replace(/\.$/, "");
}
