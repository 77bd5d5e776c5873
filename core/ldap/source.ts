/**
 * The LDAP source of sync-agent: reads every mail user and group with paged
 * searches and turns them into the directory model (full sync), or reads only
 * the entries changed since a watermark (incremental sync, see
 * incremental.ts for how they are merged). The watermark is the greatest
 * modification timestamp seen, as the server wrote it, so the next
 * incremental search asks the server in its own notation. A full fetch is all
 * or nothing: if any search fails the promise rejects and no part of the
 * directory is returned, because a partial directory would look like mass
 * deletions.
 */
import { AndFilter, FilterParser, GreaterThanEqualsFilter } from "ldapts";
import type { DirectoryGroup, DirectoryUser, DomainSet } from "../directory/model.js";
import { type LdapConnection, LdapRefusedError } from "./client.js";
import {
  convertEntries,
  type EntryProblem,
  type LdapMapping,
  type RawEntry,
  requestedAttributes,
} from "./mapping.js";

export interface LdapFetch {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  problems: EntryProblem[];
  /** Greatest modification timestamp among the entries read, as the server wrote it; null when none had one. */
  watermark: string | null;
  /** Entries the searches returned (before conversion skipped any). */
  entries: { users: number; groups: number };
}

export interface LdapChanges {
  userEntries: RawEntry[];
  groupEntries: RawEntry[];
  /** Greatest modification timestamp among the changed entries; null when nothing changed (keep the old one). */
  watermark: string | null;
}

const GENERALIZED_TIME =
  /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?$/;

/**
 * Milliseconds since the epoch for an LDAP GeneralizedTime (RFC 4517:
 * YYYYMMDDHH[MM[SS]][.fraction][Z|+hhmm]); undefined when it is not one.
 * Without a zone the time is taken as UTC, as servers write UTC in practice.
 */
export function parseGeneralizedTime(text: string): number | undefined {
  const match = GENERALIZED_TIME.exec(text.trim());
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  let ms = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute ?? 0),
    Number(second ?? 0),
  );
  if (Number.isNaN(ms) || Number(month) < 1 || Number(month) > 12 || Number(day) < 1 || Number(day) > 31) {
    return undefined;
  }
  // The fraction belongs to the last field written (RFC 4517 3.3.13).
  if (fraction !== undefined) {
    const unit = second !== undefined ? 1000 : minute !== undefined ? 60_000 : 3_600_000;
    ms += Math.floor(Number(`0.${fraction}`) * unit);
  }
  if (zone !== undefined && zone !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const offset = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5) || 0);
    ms -= sign * offset * 60_000;
  }
  return ms;
}

/** The later of two timestamps (each as written, or null); unparsable values lose. */
export function laterTimestamp(current: string | null, candidate: string): string | null {
  const candidateMs = parseGeneralizedTime(candidate);
  if (candidateMs === undefined) return current;
  if (current === null) return candidate;
  const currentMs = parseGeneralizedTime(current);
  return currentMs === undefined || candidateMs > currentMs ? candidate : current;
}

/** Greatest value of `attribute` (any case) among the entries, as written. */
export function greatestTimestamp(entries: readonly RawEntry[], attribute: string): string | null {
  const wanted = attribute.toLowerCase();
  let greatest: string | null = null;
  for (const entry of entries) {
    for (const [name, value] of Object.entries(entry)) {
      if (name.toLowerCase() !== wanted) continue;
      for (const item of Array.isArray(value) ? value : [value]) {
        if (typeof item === "string") greatest = laterTimestamp(greatest, item);
      }
    }
  }
  return greatest;
}

const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;

function requireAttributeName(attribute: string): void {
  if (!ATTRIBUTE_NAME.test(attribute)) {
    throw new LdapRefusedError(
      `modify timestamp attribute "${attribute.slice(0, 80)}" is not an LDAP attribute name`,
      undefined,
    );
  }
}

/**
 * `(&<base filter>(<attribute>>=<since>))`. The base filter is
 * administrator-written configuration and is used as it is (parsed, so a bad
 * one is reported); `since` is escaped as a filter value (RFC 4515).
 */
export function changedSinceFilter(baseFilter: string, attribute: string, since: string): string {
  requireAttributeName(attribute);
  let base: ReturnType<typeof FilterParser.parseString>;
  try {
    base = FilterParser.parseString(baseFilter);
  } catch (error) {
    throw new LdapRefusedError(`filter ${baseFilter.slice(0, 200)} is not a valid LDAP filter`, undefined, {
      cause: error,
    });
  }
  return new AndFilter({
    filters: [base, new GreaterThanEqualsFilter({ attribute, value: since })],
  }).toString();
}

function withTimestamp(attributes: string[], attribute: string): string[] {
  return attributes.some((name) => name.toLowerCase() === attribute.toLowerCase())
    ? attributes
    : [...attributes, attribute];
}

/**
 * Reads all users and groups and converts them, in pages of `pageSize`
 * entries (default: the connection's, from [ldap] page_size). Rejects (TransientError or
 * LdapRefusedError from client.ts) if any search fails; never returns part of
 * the directory.
 */
export async function fetchDirectory(
  connection: LdapConnection,
  mapping: LdapMapping,
  domains: DomainSet,
  modifyTimestampAttribute: string,
  pageSize = connection.pageSize,
): Promise<LdapFetch> {
  requireAttributeName(modifyTimestampAttribute);
  const attributes = requestedAttributes(mapping);
  const userEntries = await connection.pagedSearch(
    mapping.users.base,
    mapping.users.filter,
    withTimestamp(attributes.users, modifyTimestampAttribute),
    pageSize,
  );
  const groupEntries = await connection.pagedSearch(
    mapping.groups.base,
    mapping.groups.filter,
    withTimestamp(attributes.groups, modifyTimestampAttribute),
    pageSize,
  );
  const converted = convertEntries(userEntries, groupEntries, mapping, domains);
  return {
    users: converted.users,
    groups: converted.groups,
    problems: converted.problems,
    watermark: greatestTimestamp([...userEntries, ...groupEntries], modifyTimestampAttribute),
    entries: { users: userEntries.length, groups: groupEntries.length },
  };
}

/**
 * Reads the users and groups whose modification timestamp is at or after
 * `since`. Inclusive on purpose: timestamps have a resolution of one second,
 * so a change made in the same second as the last one read would otherwise be
 * missed; entries seen twice are simply applied again. Deleted entries do not
 * show here (full syncs remove them).
 */
export async function fetchChanges(
  connection: LdapConnection,
  mapping: LdapMapping,
  _domains: DomainSet,
  modifyTimestampAttribute: string,
  since: string,
  pageSize = connection.pageSize,
): Promise<LdapChanges> {
  requireAttributeName(modifyTimestampAttribute);
  const attributes = requestedAttributes(mapping);
  const userEntries = await connection.pagedSearch(
    mapping.users.base,
    changedSinceFilter(mapping.users.filter, modifyTimestampAttribute, since),
    withTimestamp(attributes.users, modifyTimestampAttribute),
    pageSize,
  );
  const groupEntries = await connection.pagedSearch(
    mapping.groups.base,
    changedSinceFilter(mapping.groups.filter, modifyTimestampAttribute, since),
    withTimestamp(attributes.groups, modifyTimestampAttribute),
    pageSize,
  );
  return {
    userEntries,
    groupEntries,
    watermark: greatestTimestamp([...userEntries, ...groupEntries], modifyTimestampAttribute),
  };
}
