import { describe, expect, it } from "vitest";
import {
  type DirectoryGroup,
  type DirectoryUser,
  type DomainSet,
  defaultResolverOptions,
} from "../core/directory/model.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import { findConflicts } from "./conflicts.js";
import { diffDirectories, safetyCheck } from "./diff.js";
import type { DomainMember } from "./legacy-files.js";
import type { LegacySource } from "./legacy-source.js";
import { type MergeInput, mergeSources } from "./merge.js";

const domains: DomainSet = { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] };

// Sources as the LDAP source writes them (DNs under their OU), which the reports name.
function user(login: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return testUser(login, { source: `uid=${login},ou=people`, ...extra });
}

function group(name: string, extra: Partial<DirectoryGroup> = {}): DirectoryGroup {
  return testGroup(name, { source: `cn=${name},ou=groups`, ...extra });
}

/** A legacy group as readLegacySources makes it: named by its address, source file:line. */
function alias(address: string, line: number, members: string[]): DirectoryGroup {
  return group(address, { source: `aliases:${line}`, addresses: [address], memberAddresses: members });
}

function member(address: string, login: string, line: number): DomainMember {
  return { address, login, file: "rise-users", line };
}

function legacy(groups: DirectoryGroup[], domainMembers: DomainMember[] = [], virtualDomains: string[] = []) {
  return { groups, domainMembers, virtualDomains, problems: [] } satisfies LegacySource;
}

function merge(input: Partial<MergeInput>) {
  return mergeSources({ ldap: null, legacy: null, precedence: ["ldap", "legacy"], domains, ...input });
}

describe("precedence between LDAP and legacy entries", () => {
  const ldap = {
    users: [
      user("gpapadop", { alternateAddresses: ["papadopoulos.georgios@cs.example.org"] }),
      user("jsmith", { alternateAddresses: ["smith.john@cs.example.org"] }),
      user("solo"),
    ],
    groups: [group("helpdesk")],
  };
  const files = legacy([
    alias("papadopoulos.georgios@cs.example.org", 1, ["gpapadop@cs.example.org"]),
    alias("jsmith@cs.example.org", 2, ["jsmith@cs.example.org", "john@gmail.example"]),
    alias("solo@cs.example.org", 3, ["someone@outside.example"]),
    alias("helpdesk@cs.example.org", 4, ["jsmith@cs.example.org"]),
  ]);

  it.each([
    {
      name: "LDAP first: the legacy entries lose and, with no address left, are left out",
      precedence: ["ldap", "legacy"] as const,
      wantUsers: [
        ["gpapadop", "gpapadop@cs.example.org", ["papadopoulos.georgios@cs.example.org"]],
        ["jsmith", "jsmith@cs.example.org", ["smith.john@cs.example.org"]],
        ["solo", "solo@cs.example.org", []],
      ],
      wantGroups: [["helpdesk", ["helpdesk@cs.example.org"]]],
      wantProblems: [
        ["entry_dropped", "helpdesk@cs.example.org", "cn=helpdesk,ou=groups", "aliases:4"],
        ["entry_dropped", "jsmith@cs.example.org", "uid=jsmith,ou=people", "aliases:2"],
        ["entry_dropped", "papadopoulos.georgios@cs.example.org", "uid=gpapadop,ou=people", "aliases:1"],
        ["entry_dropped", "solo@cs.example.org", "uid=solo,ou=people", "aliases:3"],
      ],
    },
    {
      name: "legacy first: LDAP entries lose the address; a lost primary address is replaced by an alternate",
      precedence: ["legacy", "ldap"] as const,
      wantUsers: [
        ["gpapadop", "gpapadop@cs.example.org", []],
        ["jsmith", "smith.john@cs.example.org", []],
      ],
      wantGroups: [
        ["helpdesk@cs.example.org", ["helpdesk@cs.example.org"]],
        ["jsmith@cs.example.org", ["jsmith@cs.example.org"]],
        ["papadopoulos.georgios@cs.example.org", ["papadopoulos.georgios@cs.example.org"]],
        ["solo@cs.example.org", ["solo@cs.example.org"]],
      ],
      wantProblems: [
        ["entry_dropped", "helpdesk@cs.example.org", "aliases:4", "cn=helpdesk,ou=groups"],
        ["address_overridden", "jsmith@cs.example.org", "aliases:2", "uid=jsmith,ou=people"],
        ["address_overridden", "papadopoulos.georgios@cs.example.org", "aliases:1", "uid=gpapadop,ou=people"],
        ["entry_dropped", "solo@cs.example.org", "aliases:3", "uid=solo,ou=people"],
      ],
    },
  ])("$name", ({ precedence, wantUsers, wantGroups, wantProblems }) => {
    const { directory, problems } = merge({ ldap, legacy: files, precedence: [...precedence] });
    expect(directory.users.map((u) => [u.login, u.primaryAddress, u.alternateAddresses])).toEqual(wantUsers);
    expect(directory.groups.map((g) => [g.name, g.addresses])).toEqual(wantGroups);
    expect(problems.map((p) => [p.kind, p.address, ...p.sources])).toEqual(wantProblems);
    for (const problem of problems) expect(problem.source).toBe(problem.sources[1]);
  });

  it("says what happened in each message", () => {
    const { problems } = merge({ ldap, legacy: files, precedence: ["legacy", "ldap"] });
    expect(problems.find((p) => p.address === "jsmith@cs.example.org")?.message).toBe(
      "jsmith@cs.example.org is kept by group jsmith@cs.example.org (aliases:2) and taken from user jsmith " +
        "(uid=jsmith,ou=people); its primary address is now smith.john@cs.example.org",
    );
    expect(problems.find((p) => p.address === "solo@cs.example.org")?.message).toBe(
      "solo@cs.example.org is kept by group solo@cs.example.org (aliases:3) and taken from user solo " +
        "(uid=solo,ou=people), which has no address left and is left out",
    );
  });

  it("a legacy alias naming itself delivers to the login (aliases(5) semantics)", () => {
    const { directory } = merge({ ldap, legacy: files, precedence: ["legacy", "ldap"] });
    const jsmith = directory.groups.find((g) => g.name === "jsmith@cs.example.org");
    expect([jsmith?.memberLogins, jsmith?.memberGroups, jsmith?.memberAddresses]).toEqual([
      ["jsmith"],
      [],
      ["john@gmail.example"],
    ]);
  });

  it("does not change its inputs", () => {
    const before = JSON.stringify({ ldap, files });
    merge({ ldap, legacy: files, precedence: ["legacy", "ldap"] });
    expect(JSON.stringify({ ldap, files })).toBe(before);
  });
});

describe("domain members", () => {
  const ldap = {
    users: [user("ank", { alternateAddresses: ["ank@rise.example"] }), user("andrim01")],
    groups: [group("team", { addresses: ["team@rise.example"] })],
  };
  const members = [
    member("ank@rise.example", "ank", 1),
    member("andrim@rise.example", "andrim01", 2),
    member("ghost@rise.example", "ghost", 3),
    member("team@rise.example", "andrim01", 4),
  ];

  it.each([
    {
      precedence: ["ldap", "legacy"] as const,
      wantAndrim: ["andrim@rise.example"],
      wantGroups: ["team"],
      wantProblems: [
        ["unknown_login", "ghost@rise.example", "rise-users:3"],
        ["address_overridden", "team@rise.example", "cn=team,ou=groups", "rise-users:4"],
      ],
    },
    {
      precedence: ["legacy", "ldap"] as const,
      wantAndrim: ["andrim@rise.example", "team@rise.example"],
      wantGroups: [],
      wantProblems: [
        ["unknown_login", "ghost@rise.example", "rise-users:3"],
        ["entry_dropped", "team@rise.example", "rise-users:4", "cn=team,ou=groups"],
      ],
    },
  ])("precedence $precedence", ({ precedence, wantAndrim, wantGroups, wantProblems }) => {
    const { directory, problems } = merge({
      ldap,
      legacy: legacy([], members, ["rise.example"]),
      precedence: [...precedence],
    });
    expect(directory.users.find((u) => u.login === "andrim01")?.alternateAddresses).toEqual(wantAndrim);
    expect(directory.users.find((u) => u.login === "ank")?.alternateAddresses).toEqual(["ank@rise.example"]);
    expect(directory.groups.map((g) => g.name)).toEqual(wantGroups);
    expect(problems.map((p) => [p.kind, p.address, ...p.sources])).toEqual(wantProblems);
    expect(directory.domains.virtualDomains).toEqual(["rise.example"]);
    expect(ldap.users.map((u) => u.alternateAddresses)).toEqual([["ank@rise.example"], []]);
  });
});

describe("member addresses become logins and groups", () => {
  const ldap = {
    users: [
      user("gpapadop", { alternateAddresses: ["papadopoulos.georgios@cs.example.org"] }),
      user("oddone", { primaryAddress: "odd.one@cs.example.org" }),
      user("twin1", { alternateAddresses: ["twin@cs.example.org"] }),
      user("twin2", { alternateAddresses: ["twin@cs.example.org"] }),
    ],
    groups: [group("csstaff", { memberLogins: ["GPAPADOP"] })],
  };
  const files = legacy([
    alias("all@cs.example.org", 1, [
      "gpapadop@cs.example.org",
      "papadopoulos.georgios@example.org",
      "oddone@cs.example.org",
      "csstaff@cs.example.org",
      "helpdesk@cs.example.org",
      "twin@cs.example.org",
      "nobody@cs.example.org",
      "friend@outside.example",
      "gpapadop@example.org",
    ]),
    alias("helpdesk@cs.example.org", 2, ["papadopoulos.georgios@cs.example.org"]),
  ]);
  const { directory } = merge({ ldap, legacy: files });
  const all = directory.groups.find((g) => g.name === "all@cs.example.org");

  it.each([
    { name: "logins", got: all?.memberLogins, want: ["gpapadop", "oddone"] },
    { name: "groups", got: all?.memberGroups, want: ["csstaff", "helpdesk@cs.example.org"] },
    {
      name: "addresses (outside, ambiguous, unknown, a login form at an alias domain)",
      got: all?.memberAddresses,
      want: [
        "friend@outside.example",
        "gpapadop@example.org",
        "nobody@cs.example.org",
        "twin@cs.example.org",
      ],
    },
    {
      name: "LDAP member logins are lower-cased",
      got: directory.groups.find((g) => g.name === "csstaff")?.memberLogins,
      want: ["gpapadop"],
    },
  ])("$name", ({ got, want }) => {
    expect(got).toEqual(want);
  });
});

describe("whole-directory rules", () => {
  it.each([
    {
      name: "no sources give an empty directory with the configured domains",
      input: {},
      want: { users: [], groups: [], virtual: [], problems: [] },
    },
    {
      name: "output sorted whatever the input order; duplicate logins keep the first",
      input: {
        ldap: {
          users: [user("zeta"), user("alpha"), user("Zeta", { source: "uid=zeta,ou=other" })],
          groups: [group("zz"), group("aa")],
        },
      },
      want: {
        users: ["alpha", "zeta"],
        groups: ["aa", "zz"],
        virtual: [],
        problems: [["duplicate_entry", "uid=zeta,ou=people", "uid=zeta,ou=other"]],
      },
    },
    {
      name: "legacy virtual domains are added after the configured ones, never the primary or an alias domain",
      input: {
        domains: { ...domains, virtualDomains: ["b.example"] },
        legacy: legacy([], [], ["d.example", "example.org", "c.example", "b.example", "cs.example.org"]),
      },
      want: { users: [], groups: [], virtual: ["b.example", "c.example", "d.example"], problems: [] },
    },
    {
      name: "one legacy address twice (an alias and a domain list): the alias is kept",
      input: {
        ldap: { users: [user("ank")], groups: [] },
        legacy: legacy(
          [alias("team@rise.example", 3, ["x@outside.example"])],
          [member("team@rise.example", "ank", 9)],
        ),
      },
      want: {
        users: ["ank"],
        groups: ["team@rise.example"],
        virtual: [],
        problems: [["duplicate_entry", "aliases:3", "rise-users:9"]],
      },
    },
    {
      name: "a group name in both sources: precedence decides",
      input: {
        ldap: { users: [], groups: [group("x@cs.example.org", { addresses: ["x-ldap@cs.example.org"] })] },
        legacy: legacy([alias("x@cs.example.org", 7, ["a@outside.example"])]),
        precedence: ["legacy", "ldap"] as ("ldap" | "legacy")[],
      },
      want: {
        users: [],
        groups: ["x@cs.example.org"],
        virtual: [],
        problems: [["duplicate_entry", "aliases:7", "cn=x@cs.example.org,ou=groups"]],
      },
    },
  ])("$name", ({ input, want }) => {
    const { directory, problems } = merge(input);
    expect({
      users: directory.users.map((u) => u.login),
      groups: directory.groups.map((g) => g.name),
      virtual: directory.domains.virtualDomains,
      problems: problems.map((p) => [p.kind, ...p.sources]),
    }).toEqual(want);
  });
});

describe("a department-sized directory (100,000 users, 5,000 groups)", () => {
  const pad = (index: number) => String(index).padStart(6, "0");
  const users = Array.from({ length: 100_000 }, (_, index) =>
    user(`u${pad(index)}`, { alternateAddresses: [`last${pad(index)}.first@cs.example.org`] }),
  );
  users[7]!.alternateAddresses.push("shorty@cs.example.org");
  users[10]!.forwardingAddresses = ["u000011@cs.example.org"];
  users[11]!.forwardingAddresses = ["last000010.first@cs.example.org"];
  users[20]!.alternateAddresses.push("same.name@cs.example.org");
  users[21]!.alternateAddresses.push("same.name@cs.example.org");
  const groups = Array.from({ length: 4_999 }, (_, index) =>
    group(`g${pad(index)}`, {
      memberLogins: Array.from({ length: 20 }, (_, member) => `u${pad(index * 20 + member)}`),
    }),
  );
  groups[0]!.memberGroups = ["g000001"];
  groups[1]!.memberGroups = ["g000000"];
  groups[2]!.memberLogins.push("ghost");
  groups.push(group("everyone", { memberLogins: users.map((u) => u.login) }));
  const files = legacy(
    [
      ...Array.from({ length: 1_000 }, (_, index) =>
        alias(`alias${pad(index)}@cs.example.org`, index + 1, [
          `u${pad(index)}@cs.example.org`,
          "x@outside.example",
        ]),
      ),
      alias("last000030.first@cs.example.org", 1_001, ["someone@outside.example"]),
    ],
    Array.from({ length: 1_000 }, (_, index) =>
      member(`m${pad(index)}@rise.example`, `u${pad(index)}`, index + 1),
    ),
    ["rise.example"],
  );

  it("merges, finds the planted conflicts and diffs against a changed copy", () => {
    const { directory, problems } = merge({ ldap: { users, groups }, legacy: files });
    expect(directory.users).toHaveLength(100_000);
    expect(directory.groups).toHaveLength(5_000 + 1_000);
    expect(problems.map((p) => [p.kind, p.address])).toEqual([
      ["entry_dropped", "last000030.first@cs.example.org"],
    ]);
    expect(directory.groups.find((g) => g.name === "alias000999@cs.example.org")?.memberLogins).toEqual([
      "u000999",
    ]);
    expect(directory.users[999]?.alternateAddresses).toEqual([
      "last000999.first@cs.example.org",
      "m000999@rise.example",
    ]);

    const conflicts = findConflicts(directory, defaultResolverOptions);
    expect(conflicts.map((c) => [c.kind, c.address ?? c.message])).toEqual([
      ["alias_too_short", "shorty@cs.example.org"],
      ["missing_member", "group g000002: member login ghost is no user"],
      ["group_cycle", "g000000@cs.example.org"],
      ["forward_loop", "u000010@cs.example.org"],
      ["address_claimed_twice", "same.name@cs.example.org"],
      ["group_too_large", "everyone@cs.example.org"],
    ]);

    const changed = {
      ...directory,
      users: directory.users.slice(0, 95_000),
      groups: directory.groups.filter((g) => g.name !== "g000004"),
    };
    const diff = diffDirectories(directory, changed);
    expect(diff.users.removed).toHaveLength(5_000);
    expect(diff.groups.removed).toEqual(["g000004"]);
    expect(diff.addresses.removed).toHaveLength(5_000 * 2 + 1);
    expect(safetyCheck(directory, changed, 10)).toEqual({ ok: true });
    expect(safetyCheck(directory, changed, 2)).toMatchObject({ ok: false, dropped: 10_001 });
  });
});
