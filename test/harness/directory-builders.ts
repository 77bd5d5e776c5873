// Builders for directory entries in unit and integration tests: a user or a
// group in the cs.example.org model with every list empty, no quota, no
// posting policy and status active; `extra` overrides any field.
import type { DirectoryGroup, DirectoryUser } from "../../core/directory/model.js";

/** A user `login` with source `uid=<login>` and primary address `<login>@cs.example.org`. */
export function testUser(login: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return {
    login,
    source: `uid=${login}`,
    primaryAddress: `${login}@cs.example.org`,
    alternateAddresses: [],
    forwardingAddresses: [],
    quotaBytes: null,
    status: "active",
    ...extra,
  };
}

/** A group `name` with source `cn=<name>` and the one address `<name>@cs.example.org`. */
export function testGroup(name: string, extra: Partial<DirectoryGroup> = {}): DirectoryGroup {
  return {
    name,
    source: `cn=${name}`,
    addresses: [`${name}@cs.example.org`],
    memberLogins: [],
    memberGroups: [],
    memberAddresses: [],
    posting: null,
    status: "active",
    ...extra,
  };
}
