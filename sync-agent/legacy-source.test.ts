import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readLegacySources } from "./legacy-source.js";

const files: Record<string, string> = {
  "/etc/aliases": [
    "helpdesk: support",
    "representatives: :include:/etc/mailaliases/representatives",
    "broken line",
    "helpdesk: someone-else",
  ].join("\n"),
  "/etc/mailaliases/representatives": "gpapadop\nOutside@Example.NET\n",
  "/etc/postfix/cs-virtual": [
    "Rise.Example anything",
    "team@rise.example gpapadop@cs.example.org, mnikolai",
    "helpdesk@cs.example.org elsewhere@cs.example.org",
  ].join("\n"),
  "/etc/postfix/rise-users": "ank\nandrim@rise.example andrim01\n",
};

function readFile(path: string): string {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return text;
}

describe("readLegacySources", () => {
  const source = readLegacySources({
    aliasFiles: ["/etc/aliases", "/etc/missing-aliases"],
    virtualMaps: ["/etc/postfix/cs-virtual"],
    domainLists: [
      { domain: "rise.example", path: "/etc/postfix/rise-users" },
      { domain: "Conference.Example", path: "/etc/postfix/no-such-list" },
    ],
    primaryDomain: "CS.Example.org",
    readFile,
  });

  it.each([
    {
      name: "alias with a bare local name",
      group: "helpdesk@cs.example.org",
      want: {
        source: "/etc/aliases:1",
        addresses: ["helpdesk@cs.example.org"],
        members: ["support@cs.example.org"],
      },
    },
    {
      name: "alias reading an :include: file",
      group: "representatives@cs.example.org",
      want: {
        source: "/etc/aliases:2",
        addresses: ["representatives@cs.example.org"],
        members: ["gpapadop@cs.example.org", "outside@example.net"],
      },
    },
    {
      name: "virtual map alias keeps its full address",
      group: "team@rise.example",
      want: {
        source: "/etc/postfix/cs-virtual:2",
        addresses: ["team@rise.example"],
        members: ["gpapadop@cs.example.org", "mnikolai@cs.example.org"],
      },
    },
  ])("$name", ({ group, want }) => {
    const found = source.groups.find((g) => g.name === group);
    expect(found).toEqual({
      name: group,
      source: want.source,
      addresses: want.addresses,
      memberLogins: [],
      memberGroups: [],
      memberAddresses: want.members,
      posting: null,
      status: "active",
    });
  });

  it("keeps the first definition of an address, in file order", () => {
    expect(source.groups.map((g) => g.name)).toEqual([
      "helpdesk@cs.example.org",
      "representatives@cs.example.org",
      "team@rise.example",
    ]);
  });

  it("reads domain members and declared domains", () => {
    expect(source.domainMembers).toEqual([
      { address: "ank@rise.example", login: "ank", file: "/etc/postfix/rise-users", line: 1 },
      { address: "andrim@rise.example", login: "andrim01", file: "/etc/postfix/rise-users", line: 2 },
    ]);
    expect(source.virtualDomains).toEqual(["rise.example", "conference.example"]);
  });

  it("reports unreadable files at line 0 and every other problem with file:line", () => {
    expect(source.problems.map((p) => `${p.file}:${p.line}`)).toEqual([
      "/etc/aliases:3",
      "/etc/aliases:4",
      "/etc/missing-aliases:0",
      "/etc/postfix/cs-virtual:3",
      "/etc/postfix/no-such-list:0",
    ]);
    expect(source.problems[1]?.message).toBe(
      "helpdesk@cs.example.org is already defined at /etc/aliases:1; this definition is ignored",
    );
    expect(source.problems[2]?.message).toMatch(/^cannot read file: ENOENT/);
    expect(source.problems[3]?.message).toMatch(/already defined at \/etc\/aliases:1/);
  });

  it("returns an empty source when nothing is configured", () => {
    expect(
      readLegacySources({
        aliasFiles: [],
        virtualMaps: [],
        domainLists: [],
        primaryDomain: "cs.example.org",
        readFile,
      }),
    ).toEqual({ groups: [], domainMembers: [], virtualDomains: [], problems: [] });
  });

  it("reads the file system when no reader is given", () => {
    const dir = mkdtempSync(join(tmpdir(), "emailng-legacy-"));
    try {
      const aliases = join(dir, "aliases");
      writeFileSync(aliases, "staff: jsmith, ekaragia\n");
      const read = readLegacySources({
        aliasFiles: [aliases, join(dir, "absent")],
        virtualMaps: [],
        domainLists: [],
        primaryDomain: "cs.example.org",
      });
      expect(read.groups.map((g) => [g.name, g.source, g.memberAddresses])).toEqual([
        ["staff@cs.example.org", `${aliases}:1`, ["jsmith@cs.example.org", "ekaragia@cs.example.org"]],
      ]);
      expect(read.problems).toEqual([
        { file: join(dir, "absent"), line: 0, message: expect.stringMatching(/^cannot read file: ENOENT/) },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
