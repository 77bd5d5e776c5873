/**
 * The directory model every emailng program shares: users, groups (lists) and
 * the domains we serve, as plain data. Sources (LDAP, legacy files) produce it,
 * the snapshot stores it, and the resolver is the only code that interprets it.
 * Addresses here are already normalised (see address.ts): lower case, no
 * surrounding brackets or spaces.
 */

export type UserStatus = "active" | "inactive";

export interface DirectoryUser {
  /** Login name (LDAP uid or sAMAccountName); unique key of a user. */
  login: string;
  /** Source entry, for reports (an LDAP DN or `file:line`). */
  source: string;
  /** The address the mailbox belongs to. */
  primaryAddress: string;
  /** More addresses that resolve to this user (lastname.firstname, a personal alias, hosted-domain forms). */
  alternateAddresses: string[];
  /** When non-empty, mail goes here instead of the mailbox; listing the primary address keeps a copy. */
  forwardingAddresses: string[];
  /** Mailbox limit in bytes; null means the configured default applies. */
  quotaBytes: number | null;
  status: UserStatus;
  /** Informational category (faculty, staff, pg, student); group membership is what counts. */
  category?: string;
  home?: string;
  uidNumber?: number;
  gidNumber?: number;
  /** Dovecot mail location for this user, when the directory overrides the site default. */
  mailLocation?: string;
  /** Alternate storage path (Dovecot ALT=), when the user has one. */
  alternateStorage?: string;
  /** The back-end holding the mailbox (for IMAP/ManageSieve proxies). */
  mailHost?: string;
  /** Password hash with its {SCHEME} prefix; only ever in the internal snapshot, never in the relay view. */
  passwordHash?: string;
}

export interface PostingPolicy {
  /** Logins allowed to post. */
  logins: string[];
  /** Groups whose (nested) members may post. */
  groups: string[];
}

export interface DirectoryGroup {
  /** Group name (cn); unique key of a group. */
  name: string;
  source: string;
  /** All addresses of the group; the first is its primary address. */
  addresses: string[];
  memberLogins: string[];
  memberGroups: string[];
  /** Member addresses that are not directory entries (legacy alias files, outside addresses). */
  memberAddresses: string[];
  /** Who may post; null means anyone. */
  posting: PostingPolicy | null;
  status: UserStatus;
}

export interface DomainSet {
  /** The department domain; logins and primary addresses live here. */
  primary: string;
  /**
   * Domains whose addresses mean the same users as at the primary domain, for
   * users' alternate addresses only (lastname.firstname@example.org); not
   * stored in the directory.
   */
  aliasDomains: string[];
  /** Hosted domains whose members are listed explicitly (an address exists only if an entry carries it). */
  virtualDomains: string[];
}

export interface Directory {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  domains: DomainSet;
}

export interface ResolverOptions {
  /** Postfix recipient_delimiter characters; empty disables extensions. */
  recipientDelimiters: string;
  /** Most mailbox/target addresses one group may expand to. */
  maxExpansion: number;
  /** Deepest group nesting followed. */
  maxDepth: number;
}

export const defaultResolverOptions: ResolverOptions = {
  recipientDelimiters: "+",
  maxExpansion: 10_000,
  maxDepth: 16,
};
