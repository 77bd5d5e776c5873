import { describe, expect, it } from "vitest";
import { type Directory, defaultResolverOptions } from "../core/directory/model.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import { type Conflict, conflictsJson, findConflicts, findCycles, formatConflictsText } from "./conflicts.js";

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  users: [
    testUser("gpapadop", {
      alternateAddresses: [
        "papadopoulos.georgios@cs.example.org",
        "georgiosp@cs.example.org",
        "papageorge@cs.example.org",
        "gp@rise.example",
      ],
    }),
    testUser("oddone", { primaryAddress: "odd.one@cs.example.org" }),
    testUser("jsmith", { alternateAddresses: ["oddone@cs.example.org", "smith.john@cs.example.org"] }),
    testUser("homonym1", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
    testUser("homonym2", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
    // fwa → fwb → fwa (through an alternate address with an extension)
    testUser("fwa", {
      alternateAddresses: ["forward.alpha@cs.example.org"],
      forwardingAddresses: ["fwb@cs.example.org"],
    }),
    testUser("fwb", { forwardingAddresses: ["forward.alpha+list@cs.example.org"] }),
    // fwc → group loopers → fwc
    testUser("fwc", { forwardingAddresses: ["loopers@cs.example.org"] }),
    // keeps a copy: not a loop
    testUser("keeper", { forwardingAddresses: ["keeper@cs.example.org", "me@gmail.example"] }),
    // an inactive user forwards nothing, so fwe → fwd ends there
    testUser("fwd", { status: "inactive", forwardingAddresses: ["fwe@cs.example.org"] }),
    testUser("fwe", { forwardingAddresses: ["fwd@cs.example.org"] }),
  ],
  groups: [
    testGroup("csstaff", { memberLogins: ["jsmith", "ghost"], memberGroups: ["nogroup"] }),
    testGroup("legacy", {
      memberAddresses: ["nobody@cs.example.org", "friend@outside.example", "fwa@cs.example.org"],
    }),
    testGroup("ring-a", { memberGroups: ["ring-b"] }),
    testGroup("ring-b", { memberGroups: ["ring-c", "ring-a"] }),
    testGroup("ring-c", { memberGroups: ["ring-a"] }),
    testGroup("selfish", { memberGroups: ["selfish"], memberLogins: ["jsmith"] }),
    testGroup("loopers", { memberLogins: ["fwc", "jsmith"] }),
  ],
};

const conflicts = findConflicts(directory, defaultResolverOptions);
const ofKind = (kind: Conflict["kind"]) =>
  conflicts
    .filter((c) => c.kind === kind)
    .map(({ address, entries, message }) => ({ address, entries, message }));

describe("findConflicts", () => {
  it.each([
    {
      kind: "alias_is_login" as const,
      want: [
        {
          address: "oddone@cs.example.org",
          entries: ["uid=jsmith", "uid=oddone"],
          message: "oddone@cs.example.org belongs to user jsmith but oddone is the login of another user",
        },
      ],
    },
    {
      kind: "alias_too_short" as const,
      want: [
        {
          address: "georgiosp@cs.example.org",
          entries: ["uid=gpapadop"],
          message:
            "georgiosp@cs.example.org, the alias user gpapadop chose, has 9 characters; at least 10 are required",
        },
        {
          address: "oddone@cs.example.org",
          entries: ["uid=jsmith"],
          message:
            "oddone@cs.example.org, the alias user jsmith chose, has 6 characters; at least 10 are required",
        },
      ],
    },
    {
      kind: "missing_member" as const,
      want: [
        {
          address: undefined,
          entries: ["cn=csstaff"],
          message: "group csstaff: member group nogroup does not exist",
        },
        {
          address: undefined,
          entries: ["cn=csstaff"],
          message: "group csstaff: member login ghost is no user",
        },
        {
          address: "nobody@cs.example.org",
          entries: ["cn=legacy"],
          message: "group legacy: member nobody@cs.example.org is unknown",
        },
      ],
    },
    {
      kind: "group_cycle" as const,
      want: [
        {
          address: "ring-a@cs.example.org",
          entries: ["cn=ring-a", "cn=ring-b"],
          message: "groups nested in a cycle: ring-a → ring-b → ring-a",
        },
        {
          address: "ring-a@cs.example.org",
          entries: ["cn=ring-a", "cn=ring-b", "cn=ring-c"],
          message: "groups nested in a cycle: ring-a → ring-b → ring-c → ring-a",
        },
        {
          address: "selfish@cs.example.org",
          entries: ["cn=selfish"],
          message: "groups nested in a cycle: selfish → selfish",
        },
      ],
    },
    {
      kind: "forward_loop" as const,
      want: [
        {
          address: "fwa@cs.example.org",
          entries: ["uid=fwa", "uid=fwb"],
          message: "forwarding loop: fwa → fwb → fwa",
        },
        {
          address: "fwc@cs.example.org",
          entries: ["cn=loopers", "uid=fwc"],
          message: "forwarding loop: group loopers → fwc → group loopers",
        },
      ],
    },
    {
      kind: "address_claimed_twice" as const,
      want: [
        {
          address: "papadopoulou.maria@cs.example.org",
          entries: ["uid=homonym1", "uid=homonym2"],
          message:
            "papadopoulou.maria@cs.example.org is claimed by user homonym1 and user homonym2; it resolves to neither",
        },
      ],
    },
    { kind: "group_too_large" as const, want: [] },
  ])("$kind", ({ kind, want }) => {
    expect(ofKind(kind)).toEqual(want);
  });

  it("lists conflicts in kind order", () => {
    const kinds = conflicts.map((c) => c.kind);
    expect(kinds).toEqual([...kinds].sort((a, b) => order(a) - order(b)));
    expect(conflicts).toHaveLength(12);
  });

  it.each([
    // legacy: "OK " + nobody@cs.example.org,friend@outside.example,fwa@cs.example.org = 66 bytes
    { name: "a reply exactly at the limit", options: { maxReplyBytes: 66 }, want: [] },
    {
      name: "one byte over",
      options: { maxReplyBytes: 65 },
      want: ["group legacy: its 3 addresses make a 66-byte reply (limit 65)"],
    },
    {
      // loopers: "OK " + fwc@cs.example.org,jsmith@cs.example.org = 43 bytes
      name: "several groups",
      options: { maxReplyBytes: 42 },
      want: [
        "group legacy: its 3 addresses make a 66-byte reply (limit 42)",
        "group loopers: its 2 addresses make a 43-byte reply (limit 42)",
      ],
    },
    {
      name: "the expansion limit",
      options: { maxExpansion: 2 },
      want: ["group legacy: it expands to more than max_expansion (2) addresses and is cut there"],
    },
    {
      name: "the depth limit",
      options: { maxDepth: 0 },
      want: [
        "group ring-a: it nests deeper than max_depth (0) and is cut there",
        "group ring-b: it nests deeper than max_depth (0) and is cut there",
        "group ring-c: it nests deeper than max_depth (0) and is cut there",
      ],
    },
  ])("group_too_large: $name", ({ options, want }) => {
    const found = findConflicts(directory, { ...defaultResolverOptions, ...options });
    expect(found.filter((c) => c.kind === "group_too_large").map((c) => c.message)).toEqual(want);
  });

  it.each([
    {
      name: "through a group's member address in an alias domain",
      users: [
        testUser("u1", {
          alternateAddresses: ["one.user@cs.example.org"],
          forwardingAddresses: ["grp@cs.example.org"],
        }),
      ],
      groups: [testGroup("grp", { memberAddresses: ["one.user@example.org"] })],
      want: ["forwarding loop: group grp → u1 → group grp"],
    },
    {
      name: "groups pointing at each other by address are no forwarding loop",
      users: [testUser("u2", { forwardingAddresses: ["g1@cs.example.org"] })],
      groups: [
        testGroup("g1", { memberAddresses: ["g2@cs.example.org"] }),
        testGroup("g2", { memberAddresses: ["g1@cs.example.org"] }),
      ],
      want: [],
    },
    {
      name: "a forward to an outside address ends the chain",
      users: [testUser("u3", { forwardingAddresses: ["u3@gmail.example"] })],
      groups: [],
      want: [],
    },
    {
      name: "three users in a ring, reported once",
      users: [
        testUser("r1", { forwardingAddresses: ["r2@cs.example.org"] }),
        testUser("r2", { forwardingAddresses: ["r3@cs.example.org"] }),
        testUser("r3", { forwardingAddresses: ["r1@cs.example.org"] }),
      ],
      groups: [],
      want: ["forwarding loop: r1 → r2 → r3 → r1"],
    },
  ])("forward_loop: $name", ({ users, groups, want }) => {
    const found = findConflicts({ domains: directory.domains, users, groups }, defaultResolverOptions);
    expect(found.filter((c) => c.kind === "forward_loop").map((c) => c.message)).toEqual(want);
  });

  it("minAliasLength is configurable", () => {
    const found = findConflicts(directory, { ...defaultResolverOptions, minAliasLength: 11 });
    expect(found.filter((c) => c.kind === "alias_too_short").map((c) => c.address)).toEqual([
      "georgiosp@cs.example.org",
      "oddone@cs.example.org",
      "papageorge@cs.example.org",
    ]);
  });

  it("finds nothing in a clean directory", () => {
    const clean: Directory = {
      domains: directory.domains,
      users: [testUser("jsmith", { alternateAddresses: ["smith.john@cs.example.org"] })],
      groups: [testGroup("staff", { memberLogins: ["jsmith"] })],
    };
    expect(findConflicts(clean, defaultResolverOptions)).toEqual([]);
  });
});

function order(kind: Conflict["kind"]): number {
  return [
    "alias_is_login",
    "alias_too_short",
    "missing_member",
    "group_cycle",
    "forward_loop",
    "address_claimed_twice",
    "group_too_large",
  ].indexOf(kind);
}

describe("findCycles", () => {
  const graph = (edges: Partial<Record<string, string[]>>) => (node: string) => edges[node] ?? [];
  it.each([
    { name: "no edges", roots: ["a", "b"], edges: {}, want: [] },
    { name: "a chain", roots: ["a"], edges: { a: ["b"], b: ["c"] }, want: [] },
    { name: "a diamond is no cycle", roots: ["a"], edges: { a: ["b", "c"], b: ["d"], c: ["d"] }, want: [] },
    { name: "self loop", roots: ["a"], edges: { a: ["a"] }, want: [["a"]] },
    {
      name: "rotated to the smallest node",
      roots: ["c"],
      edges: { c: ["a"], a: ["b"], b: ["c"] },
      want: [["a", "b", "c"]],
    },
    {
      name: "found once from every root",
      roots: ["a", "b", "c"],
      edges: { a: ["b"], b: ["a"], c: ["a"] },
      want: [["a", "b"]],
    },
    {
      name: "two cycles through one node",
      roots: ["a"],
      edges: { a: ["b", "c"], b: ["a"], c: ["a"] },
      want: [
        ["a", "b"],
        ["a", "c"],
      ],
    },
  ])("$name", ({ roots, edges, want }) => {
    expect(findCycles(roots, graph(edges))).toEqual(want);
  });

  it("walks a 100,000-node chain closing on itself without overflowing the stack", () => {
    const size = 100_000;
    const name = (index: number) => `n${String(index).padStart(6, "0")}`;
    const cycles = findCycles([name(0)], (node) => [name((Number(node.slice(1)) + 1) % size)]);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(size);
    expect(cycles[0]?.[0]).toBe(name(0));
  });
});

describe("report formats", () => {
  const sample: Conflict[] = [
    { kind: "alias_too_short", address: "bob@cs.example.org", entries: ["uid=b"], message: "short one" },
    {
      kind: "alias_is_login",
      address: "x@cs.example.org",
      entries: ["uid=a", "uid=x"],
      message: "is a login",
    },
    { kind: "alias_too_short", address: "al@cs.example.org", entries: ["uid=a"], message: "short two" },
    { kind: "group_cycle", entries: ["cn=a"], message: "cycle" },
  ];

  it("text: one line each, grouped by kind with counts", () => {
    expect(formatConflictsText(sample)).toBe(
      [
        "4 conflicts",
        "",
        "alias_is_login (1)",
        "  is a login [uid=a | uid=x]",
        "",
        "alias_too_short (2)",
        "  short one [uid=b]",
        "  short two [uid=a]",
        "",
        "group_cycle (1)",
        "  cycle [cn=a]",
        "",
      ].join("\n"),
    );
    expect(formatConflictsText([])).toBe("no conflicts\n");
  });

  it("JSON: every kind counted, address always present", () => {
    expect(conflictsJson(sample)).toEqual({
      total: 4,
      byKind: {
        alias_is_login: 1,
        alias_too_short: 2,
        missing_member: 0,
        group_cycle: 1,
        forward_loop: 0,
        address_claimed_twice: 0,
        group_too_large: 0,
      },
      conflicts: [
        { kind: "alias_too_short", address: "bob@cs.example.org", entries: ["uid=b"], message: "short one" },
        {
          kind: "alias_is_login",
          address: "x@cs.example.org",
          entries: ["uid=a", "uid=x"],
          message: "is a login",
        },
        { kind: "alias_too_short", address: "al@cs.example.org", entries: ["uid=a"], message: "short two" },
        { kind: "group_cycle", address: null, entries: ["cn=a"], message: "cycle" },
      ],
    });
    expect(Object.keys(conflictsJson([]))).toEqual(["total", "byKind", "conflicts"]);
  });
});
