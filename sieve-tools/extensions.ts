/**
 * The Sieve capabilities the checker knows, and which of them a server
 * offers. The default set is what Dovecot 2.3 / Pigeonhole 0.5 announces
 * out of the box (its ManageSieve SIEVE capability); editheader,
 * vacation-seconds, spamtest, spamtestplus, virustest and ereject exist
 * but must be switched on in the server's sieve_extensions, so they are
 * accepted only when `--extensions` (or a server's capability) says so.
 */

export const KNOWN_EXTENSIONS = [
  "fileinto",
  "reject",
  "ereject",
  "envelope",
  "encoded-character",
  "vacation",
  "vacation-seconds",
  "subaddress",
  "comparator-i;ascii-numeric",
  "comparator-i;octet",
  "comparator-i;ascii-casemap",
  "relational",
  "regex",
  "imap4flags",
  "copy",
  "include",
  "variables",
  "body",
  "enotify",
  "environment",
  "mailbox",
  "date",
  "index",
  "ihave",
  "duplicate",
  "editheader",
  "mime",
  "foreverypart",
  "extracttext",
  "spamtest",
  "spamtestplus",
  "virustest",
] as const;

export type ExtensionName = (typeof KNOWN_EXTENSIONS)[number];

const KNOWN: ReadonlySet<string> = new Set(KNOWN_EXTENSIONS);

export function isKnownExtension(name: string): name is ExtensionName {
  return KNOWN.has(name);
}

/** Pigeonhole 0.5.19's SIEVE capability with its default settings (captured from managesieved). */
export const PIGEONHOLE_DEFAULT_EXTENSIONS: readonly ExtensionName[] = [
  "fileinto",
  "reject",
  "envelope",
  "encoded-character",
  "vacation",
  "subaddress",
  "comparator-i;ascii-numeric",
  "relational",
  "regex",
  "imap4flags",
  "copy",
  "include",
  "variables",
  "body",
  "enotify",
  "environment",
  "mailbox",
  "date",
  "index",
  "ihave",
  "duplicate",
  "mime",
  "foreverypart",
  "extracttext",
];

/** Always available, never announced (RFC 5228 2.7.3 requires i;octet and i;ascii-casemap). */
const IMPLICIT: readonly ExtensionName[] = ["comparator-i;octet", "comparator-i;ascii-casemap"];

/** Requiring one of these also makes the other's commands available. */
export const IMPLIES: Readonly<Partial<Record<ExtensionName, readonly ExtensionName[]>>> = {
  "vacation-seconds": ["vacation"],
  spamtestplus: ["spamtest"],
};

export interface ExtensionSet {
  allowed: ReadonlySet<string>;
  /** Names in the request that the checker does not know (reported by the caller). */
  unknown: string[];
}

/**
 * Builds the allowed set from a list of names. A list whose every entry
 * starts with + or - edits the default set (like Pigeonhole's
 * sieve_extensions); otherwise it replaces it.
 */
export function extensionSet(spec: readonly string[] | undefined): ExtensionSet {
  const names = (spec ?? []).flatMap((entry) => entry.split(/[\s,]+/)).filter((entry) => entry !== "");
  const unknown: string[] = [];
  const relative = names.length === 0 || names.every((name) => name.startsWith("+") || name.startsWith("-"));
  const allowed = new Set<string>(relative ? PIGEONHOLE_DEFAULT_EXTENSIONS : []);
  for (const entry of names) {
    const sign = entry.startsWith("-") ? "-" : "+";
    const name = entry.replace(/^[+-]/, "");
    if (!isKnownExtension(name)) {
      unknown.push(name);
      continue;
    }
    if (sign === "-") allowed.delete(name);
    else allowed.add(name);
  }
  for (const name of IMPLICIT) allowed.add(name);
  return { allowed, unknown };
}

/** Parses the SIEVE capability string a ManageSieve server announces. */
export function extensionsFromCapability(capability: string): string[] {
  return capability.split(/\s+/).filter((name) => name !== "");
}
