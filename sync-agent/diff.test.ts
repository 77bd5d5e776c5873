import { describe, expect, it } from "vitest";
import type { Directory } from "../core/directory/model.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import { type DirectoryDiff, diffDirectories, formatDiffText, formatQuota, safetyCheck } from "./diff.js";

const domains = { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] };

const previous: Directory = {
  domains,
  users: [
    testUser("jsmith", { alternateAddresses: ["smith.john@cs.example.org"], quotaBytes: 1024 ** 3 }),
    testUser("ekaragia", { quotaBytes: null }),
    testUser("leaver"),
  ],
  groups: [
    testGroup("csstaff", {
      memberLogins: ["jsmith", "leaver"],
      memberGroups: ["old"],
      memberAddresses: ["a@x.example"],
    }),
    testGroup("old"),
  ],
};

const next: Directory = {
  domains,
  users: [
    testUser("ekaragia", {
      quotaBytes: 2 * 1024 ** 3,
      alternateAddresses: ["karagianni.eleni@cs.example.org"],
    }),
    testUser("jsmith", { quotaBytes: 1024 ** 3, status: "inactive" }),
    testUser("newcomer"),
  ],
  groups: [
    testGroup("csstaff", {
      memberLogins: ["ekaragia", "jsmith"],
      memberGroups: ["fresh"],
      memberAddresses: ["a@x.example", "b@x.example"],
      status: "inactive",
    }),
    testGroup("fresh"),
  ],
};

describe("diffDirectories", () => {
  const diff = diffDirectories(previous, next);

  it.each([
    { part: "users", got: diff.users, want: { added: ["newcomer"], removed: ["leaver"] } },
    { part: "groups", got: diff.groups, want: { added: ["fresh"], removed: ["old"] } },
    {
      part: "addresses",
      got: diff.addresses,
      want: {
        added: ["fresh@cs.example.org", "karagianni.eleni@cs.example.org", "newcomer@cs.example.org"],
        removed: ["leaver@cs.example.org", "old@cs.example.org", "smith.john@cs.example.org"],
      },
    },
    { part: "quota", got: diff.quotaChanges, want: [{ login: "ekaragia", from: null, to: 2 * 1024 ** 3 }] },
    {
      part: "status",
      got: diff.statusChanges,
      want: [
        { entry: "group", name: "csstaff", from: "active", to: "inactive" },
        { entry: "user", name: "jsmith", from: "active", to: "inactive" },
      ],
    },
    {
      part: "membership",
      got: diff.membershipChanges,
      want: [
        {
          group: "csstaff",
          added: { logins: ["ekaragia"], groups: ["fresh"], addresses: ["b@x.example"] },
          removed: { logins: ["leaver"], groups: ["old"], addresses: [] },
        },
      ],
    },
    { part: "first snapshot flag", got: diff.firstSnapshot, want: false },
  ])("$part", ({ got, want }) => {
    expect(got).toEqual(want);
  });

  it("without a previous snapshot everything is added", () => {
    const first = diffDirectories(null, next);
    expect(first.firstSnapshot).toBe(true);
    expect(first.users).toEqual({ added: ["ekaragia", "jsmith", "newcomer"], removed: [] });
    expect(first.addresses.added).toHaveLength(6);
    expect([first.quotaChanges, first.statusChanges, first.membershipChanges]).toEqual([[], [], []]);
  });

  it("an identical directory has no changes", () => {
    const same = diffDirectories(next, structuredClone(next));
    expect(formatDiffText(same)).toBe(
      "users +0 -0, groups +0 -0, addresses +0 -0, quota changes 0, status changes 0, membership changes 0\n",
    );
  });
});

describe("formatDiffText", () => {
  it("counts, then each non-empty list", () => {
    expect(formatDiffText(diffDirectories(previous, next))).toBe(
      [
        "users +1 -1, groups +1 -1, addresses +3 -3, quota changes 1, status changes 2, membership changes 1",
        "users added (1):",
        "  newcomer",
        "users removed (1):",
        "  leaver",
        "groups added (1):",
        "  fresh",
        "groups removed (1):",
        "  old",
        "addresses added (3):",
        "  fresh@cs.example.org",
        "  karagianni.eleni@cs.example.org",
        "  newcomer@cs.example.org",
        "addresses removed (3):",
        "  leaver@cs.example.org",
        "  old@cs.example.org",
        "  smith.john@cs.example.org",
        "quota changes (1):",
        "  ekaragia: default → 2 GiB",
        "status changes (2):",
        "  group csstaff: active → inactive",
        "  user jsmith: active → inactive",
        "membership changes (1):",
        "  csstaff: +ekaragia +group fresh +b@x.example -leaver -group old",
        "",
      ].join("\n"),
    );
  });

  it("shows the first 50 items of a long list, then how many more", () => {
    const logins = Array.from({ length: 120 }, (_, index) => `u${String(index).padStart(3, "0")}`);
    const diff: DirectoryDiff = {
      firstSnapshot: true,
      users: { added: logins, removed: [] },
      groups: { added: [], removed: [] },
      addresses: { added: [], removed: [] },
      quotaChanges: [],
      statusChanges: [],
      membershipChanges: [
        {
          group: "big",
          added: { logins, groups: [], addresses: [] },
          removed: { logins: [], groups: [], addresses: [] },
        },
      ],
    };
    const lines = formatDiffText(diff).trimEnd().split("\n");
    expect(lines[0]).toBe("no published snapshot yet: everything below is new");
    expect(lines[2]).toBe("users added (120):");
    expect(lines.slice(3, 54)).toEqual([
      ...logins.slice(0, 50).map((login) => `  ${login}`),
      "  … and 70 more",
    ]);
    expect(lines[55]).toBe(
      `  big: ${logins
        .slice(0, 50)
        .map((login) => `+${login}`)
        .join(" ")} … and 70 more`,
    );
  });
});

describe("formatQuota", () => {
  it.each([
    { bytes: null, want: "default" },
    { bytes: 0, want: "0 bytes" },
    { bytes: 1023, want: "1023 bytes" },
    { bytes: 1024, want: "1 KiB" },
    { bytes: 1.5 * 1024 ** 2, want: "1.5 MiB" },
    { bytes: 2 * 1024 ** 3, want: "2 GiB" },
    { bytes: 3 * 1024 ** 4, want: "3 TiB" },
    { bytes: 1_000_000_000, want: "953.67 MiB" },
  ])("$bytes → $want", ({ bytes, want }) => {
    expect(formatQuota(bytes)).toBe(want);
  });
});

describe("safetyCheck", () => {
  const withUsers = (count: number): Directory => ({
    domains,
    users: Array.from({ length: count }, (_, index) => testUser(`user${index}`)),
    groups: [],
  });
  const hundred = withUsers(100);

  it.each([
    { name: "no previous snapshot", previous: null, next: withUsers(0), max: 10, want: { ok: true } },
    {
      name: "empty previous snapshot",
      previous: withUsers(0),
      next: withUsers(0),
      max: 0,
      want: { ok: true },
    },
    { name: "nothing dropped", previous: hundred, next: withUsers(150), max: 0, want: { ok: true } },
    { name: "exactly the limit", previous: hundred, next: withUsers(90), max: 10, want: { ok: true } },
    {
      name: "one more than the limit",
      previous: hundred,
      next: withUsers(89),
      max: 10,
      want: { ok: false, dropped: 11, previousCount: 100, percent: 11 },
    },
    {
      name: "zero tolerance",
      previous: hundred,
      next: withUsers(99),
      max: 0,
      want: { ok: false, dropped: 1, previousCount: 100, percent: 1 },
    },
    {
      name: "a wholly failed source",
      previous: hundred,
      next: withUsers(0),
      max: 99,
      want: { ok: false, dropped: 100, previousCount: 100, percent: 100 },
    },
    { name: "100 % allows anything", previous: hundred, next: withUsers(0), max: 100, want: { ok: true } },
  ])("$name", ({ previous: before, next: after, max, want }) => {
    expect(safetyCheck(before, after, max)).toMatchObject(want);
  });

  it("tells the admin what happened and how to override", () => {
    const result = safetyCheck(withUsers(3), withUsers(2), 10);
    expect(result).toEqual({
      ok: false,
      dropped: 1,
      previousCount: 3,
      percent: 100 / 3,
      message:
        "the new snapshot would drop 1 of the 3 addresses in the published one (33.33%), more than " +
        "sync.max_drop_percent (10%); nothing was published. Check the sources (a failed or cut-short LDAP " +
        "search, a missing legacy file); if the drop is intended, publish anyway with: emailng sync run --force",
    });
  });
});
