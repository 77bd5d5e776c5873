/**
 * How LDAP entries become the directory model. The attribute and objectClass
 * names are configuration: the default follows the department schema
 * (inetMailUser / inetMailGroup, see deploy/ldap/mail-schema.ldif), and an
 * Active-Directory-style directory (sAMAccountName, memberOf, quota in another
 * attribute, disabled accounts in userAccountControl) is expressed by another
 * mapping, never by code. Conversion is pure: entries in, directory and a list
 * of skipped entries out.
 */

import type { DeepReadonly } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { normaliseAddress } from "../directory/address.js";
import type { DirectoryGroup, DirectoryUser, DomainSet } from "../directory/model.js";

export interface UserMapping {
  /** Search base, relative to nothing (a full DN). */
  base: string;
  /** LDAP filter selecting mail users (admin-written configuration). */
  filter: string;
  login: string;
  primaryAddress: string;
  alternateAddresses: string[];
  forwardingAddresses: string;
  quota: string;
  /** Multiplier turning the quota attribute into bytes (1 for bytes, 1048576 for MiB). */
  quotaUnit: number;
  status: string;
  /** Values of `status` (case-insensitive) meaning inactive. */
  inactiveValues: string[];
  /** When set, `status` is an integer and these bits mean inactive (AD userAccountControl: 2). */
  inactiveBitmask: number | null;
  category: string;
  home: string;
  uidNumber: string;
  gidNumber: string;
  mailLocation: string;
  alternateStorage: string;
  mailHost: string;
  /** Password hash attribute (e.g. userPassword); empty to never read hashes. */
  passwordHash: string;
  /** Group DNs listed on the user (AD memberOf); empty when groups list their members. */
  memberOf: string;
}

export interface GroupMapping {
  base: string;
  filter: string;
  name: string;
  addresses: string[];
  /** Members named by login. */
  memberLogins: string;
  /** Members named by DN (users or nested groups). */
  memberDns: string;
  /** DNs of users or groups allowed to post; absent means anyone. */
  allowedPosters: string;
  status: string;
}

export interface LdapMapping {
  users: UserMapping;
  groups: GroupMapping;
}

export function defaultMapping(baseDn: string): LdapMapping {
  return {
    users: {
      base: `ou=people,${baseDn}`,
      filter: "(objectClass=inetMailUser)",
      login: "uid",
      primaryAddress: "mail",
      alternateAddresses: ["mailAlternateAddress"],
      forwardingAddresses: "mailForwardingAddress",
      quota: "mailQuota",
      quotaUnit: 1,
      status: "mailUserStatus",
      inactiveValues: ["inactive", "disabled"],
      inactiveBitmask: null,
      category: "employeeType",
      home: "homeDirectory",
      uidNumber: "uidNumber",
      gidNumber: "gidNumber",
      mailLocation: "",
      alternateStorage: "",
      mailHost: "",
      passwordHash: "userPassword",
      memberOf: "",
    },
    groups: {
      base: `ou=groups,${baseDn}`,
      filter: "(objectClass=inetMailGroup)",
      name: "cn",
      addresses: ["mail", "mailAlternateAddress"],
      memberLogins: "memberUid",
      memberDns: "member",
      allowedPosters: "mailAllowedBroadcaster",
      status: "mailUserStatus",
    },
  };
}

/** The attributes to request for each kind of entry (empty names dropped). */
export function requestedAttributes(mapping: LdapMapping): { users: string[]; groups: string[] } {
  const u = mapping.users;
  const g = mapping.groups;
  const users = [
    u.login,
    u.primaryAddress,
    ...u.alternateAddresses,
    u.forwardingAddresses,
    u.quota,
    u.status,
    u.category,
    u.home,
    u.uidNumber,
    u.gidNumber,
    u.mailLocation,
    u.alternateStorage,
    u.mailHost,
    u.passwordHash,
    u.memberOf,
  ];
  const groups = [g.name, ...g.addresses, g.memberLogins, g.memberDns, g.allowedPosters, g.status];
  const clean = (names: string[]) => [...new Set(names.filter((name) => name.length > 0))];
  return { users: clean(users), groups: clean(groups) };
}

/** An entry as ldapts returns it: attribute names as requested (any case), values as strings or Buffers. */
export type RawEntry = { dn: string } & Record<string, unknown>;

export interface EntryProblem {
  dn: string;
  message: string;
  /** True when the whole entry was left out; false for a problem inside a kept entry. */
  skipped: boolean;
}

export interface ConvertedDirectory {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  problems: EntryProblem[];
}

/** Lower-cases a DN and removes spaces around separators so equal DNs compare equal. */
export function normaliseDn(dn: string): string {
  return dn
    .split(",")
    .map((rdn) =>
      rdn
        .split("=")
        .map((part) => part.trim())
        .join("="),
    )
    .join(",")
    .toLowerCase();
}

function values(entry: RawEntry, attribute: string): string[] {
  if (attribute.length === 0) return [];
  const wanted = attribute.toLowerCase();
  for (const [name, value] of Object.entries(entry)) {
    if (name.toLowerCase() !== wanted) continue;
    const list = Array.isArray(value) ? value : [value];
    return list.map((item) => (Buffer.isBuffer(item) ? item.toString("utf8") : String(item)));
  }
  return [];
}

function first(entry: RawEntry, attribute: string): string | undefined {
  return values(entry, attribute)[0];
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  const value = Number(text.trim());
  return Number.isSafeInteger(value) ? value : undefined;
}

function isInactive(raw: string | undefined, inactiveValues: string[], bitmask: number | null): boolean {
  if (raw === undefined) return false;
  if (bitmask !== null) return ((integer(raw) ?? 0) & bitmask) !== 0;
  return inactiveValues.some((value) => value.toLowerCase() === raw.trim().toLowerCase());
}

function addresses(list: string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const address = normaliseAddress(raw);
    if (address !== null && !out.includes(address)) out.push(address);
  }
  return out;
}

/** Converts user and group entries into the directory model; entries missing required attributes are skipped and reported. */
export function convertEntries(
  userEntries: RawEntry[],
  groupEntries: RawEntry[],
  mapping: LdapMapping,
  domains: DomainSet,
): ConvertedDirectory {
  const problems: EntryProblem[] = [];
  const skip = (dn: string, message: string) => problems.push({ dn, message, skipped: true });
  const users: DirectoryUser[] = [];
  const loginByDn = new Map<string, string>();
  const memberOf = new Map<string, string[]>();
  const u = mapping.users;

  for (const entry of userEntries) {
    const login = first(entry, u.login)?.trim().toLowerCase();
    if (login === undefined || login.length === 0) {
      skip(entry.dn, `missing required attribute ${u.login}`);
      continue;
    }
    const primaryRaw = first(entry, u.primaryAddress) ?? `${login}@${domains.primary}`;
    const primaryAddress = normaliseAddress(primaryRaw);
    if (primaryAddress === null) {
      skip(entry.dn, `${u.primaryAddress} "${primaryRaw.slice(0, 80)}" is not an address`);
      continue;
    }
    const quotaText = first(entry, u.quota);
    const quota = integer(quotaText);
    if (quotaText !== undefined && (quota === undefined || quota < 0)) {
      skip(entry.dn, `${u.quota} "${quotaText.slice(0, 40)}" is not a number of bytes`);
      continue;
    }
    const user: DirectoryUser = {
      login,
      source: entry.dn,
      primaryAddress,
      alternateAddresses: addresses(u.alternateAddresses.flatMap((name) => values(entry, name))).filter(
        (address) => address !== primaryAddress,
      ),
      forwardingAddresses: addresses(values(entry, u.forwardingAddresses)),
      quotaBytes: quota === undefined ? null : quota * u.quotaUnit,
      status: isInactive(first(entry, u.status), u.inactiveValues, u.inactiveBitmask) ? "inactive" : "active",
    };
    const optional: Array<[keyof DirectoryUser, string]> = [
      ["category", u.category],
      ["home", u.home],
      ["mailLocation", u.mailLocation],
      ["alternateStorage", u.alternateStorage],
      ["mailHost", u.mailHost],
    ];
    for (const [field, attribute] of optional) {
      const value = first(entry, attribute);
      if (value !== undefined && value.length > 0)
        (user as unknown as Record<string, unknown>)[field] = value;
    }
    const uidNumber = integer(first(entry, u.uidNumber));
    const gidNumber = integer(first(entry, u.gidNumber));
    if (uidNumber !== undefined) user.uidNumber = uidNumber;
    if (gidNumber !== undefined) user.gidNumber = gidNumber;
    const hash = first(entry, u.passwordHash);
    // Only scheme-tagged hashes: a cleartext value is never copied anywhere.
    if (hash !== undefined && /^\{[A-Za-z0-9.-]+\}/.test(hash)) user.passwordHash = hash;
    users.push(user);
    loginByDn.set(normaliseDn(entry.dn), login);
    for (const groupDn of values(entry, u.memberOf)) {
      const key = normaliseDn(groupDn);
      memberOf.set(key, [...(memberOf.get(key) ?? []), login]);
    }
  }

  const g = mapping.groups;
  const nameByDn = new Map<string, string>();
  for (const entry of groupEntries) {
    const name = first(entry, g.name)?.trim().toLowerCase();
    if (name !== undefined && name.length > 0) nameByDn.set(normaliseDn(entry.dn), name);
  }

  const groups: DirectoryGroup[] = [];
  for (const entry of groupEntries) {
    const name = nameByDn.get(normaliseDn(entry.dn));
    if (name === undefined) {
      skip(entry.dn, `missing required attribute ${g.name}`);
      continue;
    }
    const groupAddresses = addresses(g.addresses.flatMap((attribute) => values(entry, attribute)));
    const memberLogins = values(entry, g.memberLogins).map((login) => login.trim().toLowerCase());
    const memberGroups: string[] = [];
    for (const dn of values(entry, g.memberDns)) {
      const key = normaliseDn(dn);
      const login = loginByDn.get(key);
      const group = nameByDn.get(key);
      if (login !== undefined) memberLogins.push(login);
      else if (group !== undefined) memberGroups.push(group);
      else problems.push({ dn: entry.dn, message: `member ${dn} does not exist`, skipped: false });
    }
    memberLogins.push(...(memberOf.get(normaliseDn(entry.dn)) ?? []));
    const posterDns = values(entry, g.allowedPosters).map(normaliseDn);
    const posting =
      posterDns.length === 0
        ? null
        : {
            logins: posterDns.flatMap((dn) => loginByDn.get(dn) ?? []),
            groups: posterDns.flatMap((dn) => nameByDn.get(dn) ?? []),
          };
    groups.push({
      name,
      source: entry.dn,
      addresses: groupAddresses,
      memberLogins: [...new Set(memberLogins)],
      memberGroups: [...new Set(memberGroups)],
      memberAddresses: [],
      posting,
      status: isInactive(first(entry, g.status), u.inactiveValues, null) ? "inactive" : "active",
    });
  }
  return { users, groups, problems };
}

/** The mapping the configuration describes ([ldap.users], [ldap.groups]); empty bases default under base_dn. */
export function mappingFromConfig(ldap: DeepReadonly<Config["ldap"]>): LdapMapping {
  const u = ldap.users;
  const g = ldap.groups;
  const defaults = defaultMapping(ldap.base_dn);
  return {
    users: {
      base: u.base === "" ? defaults.users.base : u.base,
      filter: u.filter,
      login: u.login,
      primaryAddress: u.primary_address,
      alternateAddresses: [...u.alternate_addresses],
      forwardingAddresses: u.forwarding_addresses,
      quota: u.quota,
      quotaUnit: u.quota_unit,
      status: u.status,
      inactiveValues: [...u.inactive_values],
      inactiveBitmask: u.inactive_bitmask === 0 ? null : u.inactive_bitmask,
      category: u.category,
      home: u.home,
      uidNumber: u.uid_number,
      gidNumber: u.gid_number,
      mailLocation: u.mail_location,
      alternateStorage: u.alternate_storage,
      mailHost: u.mail_host,
      passwordHash: u.password_hash,
      memberOf: u.member_of,
    },
    groups: {
      base: g.base === "" ? defaults.groups.base : g.base,
      filter: g.filter,
      name: g.name,
      addresses: [...g.addresses],
      memberLogins: g.member_logins,
      memberDns: g.member_dns,
      allowedPosters: g.allowed_posters,
      status: g.status,
    },
  };
}
