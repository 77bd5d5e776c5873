/**
 * One user looked up in LDAP by login or address: verifyd's live path for
 * users created since the last sync. The filter is the configured user
 * filter AND the name on the login attribute, or the address on the primary
 * and alternate address attributes, built with ldapts' filter classes (the
 * name comes from the network). The entry goes through the same conversion
 * as a full sync, so a live answer means what the snapshot would say.
 */
import { AndFilter, EqualityFilter, FilterParser, OrFilter } from "ldapts";
import type { DirectoryUser, DomainSet } from "../directory/model.js";
import { type LdapConnection, LdapRefusedError } from "./client.js";
import { convertEntries, type LdapMapping, requestedAttributes } from "./mapping.js";

/** `(&<users.filter>(<login>=name))`, or for an address `(&<users.filter>(|(<mail>=a)(<alt>=a)…))`. */
export function userLookupFilter(mapping: LdapMapping, name: string): string {
  const users = mapping.users;
  let base: ReturnType<typeof FilterParser.parseString>;
  try {
    base = FilterParser.parseString(users.filter);
  } catch (error) {
    throw new LdapRefusedError(`filter ${users.filter.slice(0, 200)} is not a valid LDAP filter`, undefined, {
      cause: error,
    });
  }
  const match = name.includes("@")
    ? new OrFilter({
        filters: [users.primaryAddress, ...users.alternateAddresses].map(
          (attribute) => new EqualityFilter({ attribute, value: name }),
        ),
      })
    : new EqualityFilter({ attribute: users.login, value: name });
  return new AndFilter({ filters: [base, match] }).toString();
}

export type UserLookup =
  | { kind: "found"; user: DirectoryUser }
  | { kind: "not-found" }
  /** More than one entry, or one the mapping cannot convert: the snapshot's next sync reports it. */
  | { kind: "undecidable"; reason: string };

/** Looks one user up; rejects with TransientError/LdapRefusedError when LDAP cannot answer. */
export async function lookupUser(
  connection: LdapConnection,
  mapping: LdapMapping,
  domains: DomainSet,
  name: string,
): Promise<UserLookup> {
  const entries = await connection.pagedSearch(
    mapping.users.base,
    userLookupFilter(mapping, name),
    requestedAttributes(mapping).users,
    2,
  );
  if (entries.length === 0) return { kind: "not-found" };
  if (entries.length > 1) return { kind: "undecidable", reason: `${entries.length} entries match` };
  const converted = convertEntries(entries, [], mapping, domains);
  const user = converted.users[0];
  if (user === undefined) {
    return { kind: "undecidable", reason: converted.problems[0]?.message ?? "entry not convertible" };
  }
  return { kind: "found", user };
}
