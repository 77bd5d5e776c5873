import { describe, expect, it } from "vitest";
import type { DirectoryGroup, DirectoryUser, DomainSet } from "../directory/model.js";
import { applyChanges, type DirectoryState } from "./incremental.js";
import { convertEntries, defaultMapping, type LdapMapping, type RawEntry } from "./mapping.js";

const domains: DomainSet = { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] };
const base = "dc=cs,dc=example,dc=org";
const people = `ou=people,${base}`;
const groupsOu = `ou=groups,${base}`;

/** Department schema: groups list their members (member DNs, memberUid logins). */
const department = defaultMapping(base);

/** Active-Directory style: sAMAccountName logins, groups named on the user by memberOf. */
const activeDirectory: LdapMapping = {
  users: {
    ...department.users,
    login: "sAMAccountName",
    status: "userAccountControl",
    inactiveBitmask: 2,
    passwordHash: "",
    memberOf: "memberOf",
  },
  groups: { ...department.groups, memberLogins: "", memberDns: "", allowedPosters: "" },
};

const departmentUsers: RawEntry[] = [
  { dn: `uid=alice,${people}`, uid: "alice", mail: "alice@cs.example.org" },
  { dn: `uid=bob,${people}`, uid: "bob", mail: "bob@cs.example.org" },
  { dn: `uid=carol,${people}`, uid: "carol", mail: "carol@cs.example.org" },
];
const departmentGroups: RawEntry[] = [
  { dn: `cn=staff,${groupsOu}`, cn: "staff", mail: "staff@cs.example.org", member: [`uid=alice,${people}`] },
  {
    dn: `cn=all,${groupsOu}`,
    cn: "all",
    mail: "all@cs.example.org",
    member: [`cn=staff,${groupsOu}`],
    memberUid: ["carol"],
  },
];

const adUsers: RawEntry[] = [
  { dn: `cn=Alice A,${people}`, sAMAccountName: "alice", memberOf: [`cn=staff,${groupsOu}`] },
  {
    dn: `cn=Bob B,${people}`,
    sAMAccountName: "bob",
    memberOf: [`cn=staff,${groupsOu}`, `cn=all,${groupsOu}`],
  },
  { dn: `cn=Carol C,${people}`, sAMAccountName: "carol", memberOf: [] },
];
const adGroups: RawEntry[] = [
  { dn: `cn=staff,${groupsOu}`, cn: "staff", mail: "staff@cs.example.org" },
  { dn: `cn=all,${groupsOu}`, cn: "all", mail: "all@cs.example.org" },
];

function full(users: RawEntry[], groups: RawEntry[], mapping: LdapMapping): DirectoryState {
  const converted = convertEntries(users, groups, mapping, domains);
  expect(converted.problems).toEqual([]);
  return { users: converted.users, groups: converted.groups };
}

/** Replaces entries by DN (or adds them) — what the directory looks like after the change. */
function edited(entries: RawEntry[], changes: RawEntry[]): RawEntry[] {
  const out = entries.filter((entry) => !changes.some((change) => change.dn === entry.dn));
  return [...out, ...changes];
}

function summary(state: DirectoryState) {
  const user = (u: DirectoryUser) =>
    `${u.login} ${u.status} ${[u.primaryAddress, ...u.alternateAddresses].join(",")}`;
  const group = (g: DirectoryGroup) =>
    `${g.name} ${g.addresses.join(",")}: ${[...g.memberLogins].sort().join(",")} | ${[...g.memberGroups].sort().join(",")}`;
  return { users: state.users.map(user).sort(), groups: state.groups.map(group).sort() };
}

interface Case {
  name: string;
  mapping: LdapMapping;
  users: RawEntry[];
  groups: RawEntry[];
  changedUsers: RawEntry[];
  changedGroups: RawEntry[];
}

const cases: Case[] = [
  {
    name: "deactivated user and a new alternate address replace the old entry",
    mapping: department,
    users: departmentUsers,
    groups: departmentGroups,
    changedUsers: [
      {
        dn: `uid=bob,${people}`,
        uid: "bob",
        mail: "bob@cs.example.org",
        mailAlternateAddress: "robert@cs.example.org",
        mailUserStatus: "inactive",
      },
    ],
    changedGroups: [],
  },
  {
    name: "changed group whose new members are unchanged users (by DN and by login)",
    mapping: department,
    users: departmentUsers,
    groups: departmentGroups,
    changedUsers: [],
    changedGroups: [
      {
        dn: `cn=staff,${groupsOu}`,
        cn: "staff",
        mail: "staff@cs.example.org",
        member: [`uid=alice,${people}`, `UID=Bob, ou=people,${base}`],
        memberUid: ["carol"],
      },
    ],
  },
  {
    name: "changed group naming an unchanged group resolves it to a member group",
    mapping: department,
    users: departmentUsers,
    groups: departmentGroups,
    changedUsers: [],
    changedGroups: [
      {
        dn: `cn=all,${groupsOu}`,
        cn: "all",
        mail: "all@cs.example.org",
        member: [`cn=staff,${groupsOu}`, `uid=bob,${people}`],
      },
    ],
  },
  {
    name: "new user and new group naming it and an existing user",
    mapping: department,
    users: departmentUsers,
    groups: departmentGroups,
    changedUsers: [{ dn: `uid=dave,${people}`, uid: "dave", mail: "dave@cs.example.org" }],
    changedGroups: [
      {
        dn: `cn=lab,${groupsOu}`,
        cn: "lab",
        mail: "lab@cs.example.org",
        member: [`uid=dave,${people}`, `uid=carol,${people}`],
      },
    ],
  },
  {
    name: "login renamed on the same DN replaces the old user (found by DN)",
    mapping: department,
    users: departmentUsers,
    groups: departmentGroups,
    changedUsers: [{ dn: `uid=carol,${people}`, uid: "caroline", mail: "caroline@cs.example.org" }],
    changedGroups: [],
    // The unchanged group "all" still names carol by memberUid, in a full read too.
  },
  {
    name: "AD memberOf: user added to a group and removed from another",
    mapping: activeDirectory,
    users: adUsers,
    groups: adGroups,
    changedUsers: [{ dn: `cn=Bob B,${people}`, sAMAccountName: "bob", memberOf: [`cn=all,${groupsOu}`] }],
    changedGroups: [],
  },
  {
    name: "AD memberOf: user joins a group that itself changed (its address)",
    mapping: activeDirectory,
    users: adUsers,
    groups: adGroups,
    changedUsers: [
      { dn: `cn=Carol C,${people}`, sAMAccountName: "carol", memberOf: [`CN=staff, ou=groups,${base}`] },
    ],
    changedGroups: [
      {
        dn: `cn=staff,${groupsOu}`,
        cn: "staff",
        mail: "staff@cs.example.org",
        mailAlternateAddress: "team@cs.example.org",
      },
    ],
  },
  {
    name: "AD memberOf: changed group keeps the memberships of unchanged users",
    mapping: activeDirectory,
    users: adUsers,
    groups: adGroups,
    changedUsers: [],
    changedGroups: [{ dn: `cn=all,${groupsOu}`, cn: "all", mail: "everyone@cs.example.org" }],
  },
  {
    name: "AD memberOf: disabled account and renamed sAMAccountName on the same DN",
    mapping: activeDirectory,
    users: adUsers,
    groups: adGroups,
    changedUsers: [
      {
        dn: `cn=Alice A,${people}`,
        sAMAccountName: "alice2",
        userAccountControl: "514",
        memberOf: [`cn=staff,${groupsOu}`, `cn=all,${groupsOu}`],
      },
    ],
    changedGroups: [],
  },
];

describe("applyChanges gives what a full read of the changed directory gives", () => {
  it.each(cases)("$name", ({ mapping, users, groups, changedUsers, changedGroups }) => {
    const previous = full(users, groups, mapping);
    const applied = applyChanges(previous, changedUsers, changedGroups, mapping, domains);
    expect(applied.problems).toEqual([]);
    const afterFullRead = full(edited(users, changedUsers), edited(groups, changedGroups), mapping);
    expect(summary(applied)).toEqual(summary(afterFullRead));
    // Each case changes something, so an empty merge would fail the comparison.
    expect(summary(applied)).not.toEqual(summary(previous));
  });
});

describe("applyChanges details", () => {
  it("keeps the previous order, replaces in place and appends new entries", () => {
    const previous = full(departmentUsers, departmentGroups, department);
    const applied = applyChanges(
      previous,
      [
        { dn: `uid=dave,${people}`, uid: "dave" },
        { dn: `uid=bob,${people}`, uid: "bob", mailUserStatus: "inactive" },
      ],
      [],
      department,
      domains,
    );
    expect(applied.users.map((user) => `${user.login}:${user.status}`)).toEqual([
      "alice:active",
      "bob:inactive",
      "carol:active",
      "dave:active",
    ]);
    // Unchanged entries are the same objects: nothing was rebuilt.
    expect(applied.users[0]).toBe(previous.users[0]);
    expect(applied.groups).toEqual(previous.groups);
  });

  it("reports problems of changed entries only: an unknown member DN", () => {
    const previous = full(departmentUsers, departmentGroups, department);
    const applied = applyChanges(
      previous,
      [],
      [{ dn: `cn=staff,${groupsOu}`, cn: "staff", member: [`uid=ghost,${people}`, `uid=bob,${people}`] }],
      department,
      domains,
    );
    expect(applied.problems).toEqual([
      { dn: `cn=staff,${groupsOu}`, message: `member uid=ghost,${people} does not exist`, skipped: false },
    ]);
    expect(applied.groups.find((group) => group.name === "staff")?.memberLogins).toEqual(["bob"]);
  });

  it("a changed entry that is now invalid is reported and the previous one stays", () => {
    const previous = full(departmentUsers, departmentGroups, department);
    const applied = applyChanges(
      previous,
      [{ dn: `uid=bob,${people}`, uid: "bob", mailQuota: "lots" }],
      [],
      department,
      domains,
    );
    expect(applied.problems.map((problem) => problem.skipped)).toEqual([true]);
    expect(applied.users).toEqual(previous.users);
  });

  it("does not see deletions: a user missing from the changes stays", () => {
    const previous = full(departmentUsers, departmentGroups, department);
    const applied = applyChanges(previous, [], [], department, domains);
    expect(applied.users).toEqual(previous.users);
    expect(applied.groups).toEqual(previous.groups);
  });

  it("applying the same changes twice gives the same result (inclusive watermark)", () => {
    const previous = full(adUsers, adGroups, activeDirectory);
    const change = [
      { dn: `cn=Carol C,${people}`, sAMAccountName: "carol", memberOf: [`cn=all,${groupsOu}`] },
    ];
    const once = applyChanges(previous, change, [], activeDirectory, domains);
    const twice = applyChanges(once, change, [], activeDirectory, domains);
    expect(summary(twice)).toEqual(summary(once));
  });
});
