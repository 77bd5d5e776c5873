import { describe, expect, it } from "vitest";
import { parseAliasFile, parseDomainUserList, parseVirtualMap } from "./legacy-files.js";

const includes: Record<string, string> = {
  "/etc/mailaliases/representatives": "gpapadop\n# a comment\nmnikolai, Outside@Example.NET\n",
};
const readInclude = (path: string): string => {
  const text = includes[path];
  if (text === undefined) throw new Error("ENOENT: no such file");
  return text;
};

describe("parseAliasFile", () => {
  const text = [
    "# legacy aliases",
    "helpdesk: support",
    "representatives: :include:/etc/mailaliases/representatives",
    "multi: jsmith,",
    "   ekaragia",
    "",
    "broken line without colon",
    "pipe: |/usr/bin/procmail",
    "missing: :include:/nope",
    "Bad Name: x",
    "dup: a, a, b@cs.example.org",
  ].join("\n");
  const parsed = parseAliasFile(text, "aliases", readInclude);

  it.each([
    { name: "helpdesk", want: ["support"] },
    { name: "representatives", want: ["gpapadop", "mnikolai", "outside@example.net"] },
    { name: "multi", want: ["jsmith", "ekaragia"] },
    { name: "dup", want: ["a", "b@cs.example.org"] },
  ])("$name → $want", ({ name, want }) => {
    expect(parsed.entries.find((e) => e.name === name)?.targets).toEqual(want);
  });

  it("reports every bad line with file:line and imports the rest", () => {
    expect(parsed.entries.map((e) => e.name)).toEqual(["helpdesk", "representatives", "multi", "dup"]);
    expect(parsed.problems).toEqual([
      { file: "aliases", line: 7, message: "expected 'name: target, …'" },
      { file: "aliases", line: 8, message: 'command target "|/usr/bin/procmail" is not supported' },
      { file: "aliases", line: 8, message: 'alias "pipe" has no usable target' },
      { file: "aliases", line: 9, message: "cannot read include file /nope: ENOENT: no such file" },
      { file: "aliases", line: 9, message: 'alias "missing" has no usable target' },
      { file: "aliases", line: 10, message: '"bad name" is not a valid alias name' },
    ]);
  });
});

describe("parseVirtualMap", () => {
  const text = [
    "rise.example   anything",
    "george.andreou@cs.example.org  gandre01@cs.example.org",
    "team@rise.example gpapadop@cs.example.org, mnikolai@cs.example.org",
    "   soikonom@cs.example.org",
    "@catchall.example  postmaster",
    "lonely@cs.example.org",
    "bad@@x y",
  ].join("\n");
  const { map, problems } = parseVirtualMap(text, "virtual");

  it("reads aliases and declared domains", () => {
    expect(map.domains).toEqual(["rise.example"]);
    expect(map.aliases.map((a) => [a.name, a.targets, a.line])).toEqual([
      ["george.andreou@cs.example.org", ["gandre01@cs.example.org"], 2],
      [
        "team@rise.example",
        ["gpapadop@cs.example.org", "mnikolai@cs.example.org", "soikonom@cs.example.org"],
        3,
      ],
    ]);
  });

  it("reports catch-alls, missing targets and bad addresses", () => {
    expect(problems.map((p) => `${p.file}:${p.line}`)).toEqual(["virtual:5", "virtual:6", "virtual:7"]);
    expect(problems[0]?.message).toMatch(/catch-all/);
  });
});

describe("parseDomainUserList", () => {
  it("maps hosted addresses to logins and reports the rest", () => {
    const text =
      "georgios.papadopoulos gpapadop\nmaria.nikolaidou@rise.example mnikolai\nsoikonom\nx@other.example y\na b c\n";
    const parsed = parseDomainUserList(text, "rise-users", "rise.example");
    expect(parsed.entries.map((e) => [e.address, e.login])).toEqual([
      ["georgios.papadopoulos@rise.example", "gpapadop"],
      ["maria.nikolaidou@rise.example", "mnikolai"],
      ["soikonom@rise.example", "soikonom"],
    ]);
    expect(parsed.problems.map((p) => p.line)).toEqual([4, 5]);
  });
});
