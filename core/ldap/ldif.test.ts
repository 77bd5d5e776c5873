import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Resolver } from "../directory/resolver.js";
import { classifyEntries, parseLdif } from "./ldif.js";
import { convertEntries, defaultMapping } from "./mapping.js";

const base = "dc=cs,dc=example,dc=org";

describe("parseLdif", () => {
  it.each([
    {
      name: "plain, folded and base64 values",
      input: "version: 1\n\ndn: uid=a,ou=people,dc=x\nuid: a\ncn: Long\n  name\ndescription:: w4lsw6luYQ==\n",
      want: [{ dn: "uid=a,ou=people,dc=x", uid: ["a"], cn: ["Long name"], description: ["Éléna"] }],
    },
    {
      name: "several entries and comments",
      input: "# first\ndn: cn=a,dc=x\ncn: a\n\n\ndn: cn=b,dc=x\n# inside\ncn: b\ncn: bee\n",
      want: [
        { dn: "cn=a,dc=x", cn: ["a"] },
        { dn: "cn=b,dc=x", cn: ["b", "bee"] },
      ],
    },
  ])("$name", ({ input, want }) => {
    expect(parseLdif(input)).toEqual({ entries: want, problems: [] });
  });

  it("reports broken records with their line and keeps the others", () => {
    const parsed = parseLdif(
      "dn: cn=ok,dc=x\ncn: ok\n\ncn: no-dn\n\ndn: cn=url,dc=x\njpegPhoto:< file:///x\n\ndn: cn=ch,dc=x\nchangetype: add\n\ndn: cn=bad,dc=x\nnocolon\n",
    );
    expect(parsed.entries.map((e) => e.dn)).toEqual(["cn=ok,dc=x"]);
    expect(parsed.problems.map((p) => p.line)).toEqual([4, 7, 10, 13]);
  });
});

describe("the sample directory as the embedded default", () => {
  const text = readFileSync(join(import.meta.dirname, "../../deploy/ldap/sample-directory.ldif"), "utf8");
  const parsed = parseLdif(text);
  const mapping = defaultMapping(base);
  const { users, groups } = classifyEntries(parsed.entries, mapping);
  const converted = convertEntries(users, groups, mapping, {
    primary: "cs.example.org",
    aliasDomains: ["example.org"],
    virtualDomains: ["rise.example"],
  });
  const resolver = new Resolver({
    users: converted.users,
    groups: converted.groups,
    domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  });

  it("reads every person and group without problems", () => {
    expect(parsed.problems).toEqual([]);
    expect(converted.problems).toEqual([]);
    expect(converted.users).toHaveLength(12);
    expect(converted.groups).toHaveLength(6);
  });

  it.each([
    { address: "george.papadopoulos@cs.example.org", want: "mailbox" },
    { address: "papadopoulos.georgios@example.org", want: "mailbox" },
    { address: "csd4713@cs.example.org", want: "inactive" },
    { address: "dvlachos@cs.example.org", want: "forward" },
    { address: "everyone@cs.example.org", want: "group" },
    { address: "jsmith@rise.example", want: "unknown" },
  ])("$address → $want", ({ address, want }) => {
    expect(resolver.resolve(address).kind).toBe(want);
  });

  it("expands csall to every active person once, posting limited to staff and faculty", () => {
    const resolution = resolver.resolve("csall@cs.example.org");
    if (resolution.kind !== "group") throw new Error(`expected a group, got ${resolution.kind}`);
    const logins = resolution.expansion.users.map((u) => u.login).sort();
    expect(logins).toEqual(
      [
        "csd4711",
        "csd4712",
        "csd4714",
        "csd4715",
        "csd4716",
        "dvlachos",
        "ekaragia",
        "gpapadop",
        "jsmith",
        "mnikolai",
        "soikonom",
      ].sort(),
    );
    expect(resolution.group.posting).toEqual({ logins: [], groups: ["csstaff", "csfaculty"] });
    expect(resolver.isMember("ekaragia", "csstaff")).toBe(true);
    expect(resolver.isMember("csd4711", "csstaff")).toBe(false);
  });
});
