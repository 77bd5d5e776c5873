import { describe, expect, it } from "vitest";
import { testGroup, testUser } from "../../test/harness/directory-builders.js";
import type { Directory } from "./model.js";
import { type Resolution, Resolver } from "./resolver.js";

// A cut-down copy of the sample directory plus the awkward cases it lacks
// (a homonym clash, a cycle, an inactive group).
const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  users: [
    testUser("gpapadop", {
      alternateAddresses: [
        "papadopoulos.georgios@cs.example.org",
        "george.papadopoulos@cs.example.org",
        "georgios.papadopoulos@rise.example",
      ],
    }),
    testUser("jsmith", { alternateAddresses: ["smith.john@cs.example.org"] }),
    testUser("ekaragia", { alternateAddresses: ["karagianni.eleni@cs.example.org"] }),
    testUser("dvlachos", { forwardingAddresses: ["dimitris.vlachos@gmail.example"] }),
    testUser("keeper", { forwardingAddresses: ["keeper@cs.example.org", "elsewhere@gmail.example"] }),
    testUser("csd4713", { status: "inactive", alternateAddresses: ["pappas.konstantinos@cs.example.org"] }),
    testUser("csd4711"),
    testUser("homonym1", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
    testUser("homonym2", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
  ],
  groups: [
    testGroup("csstaff", { memberLogins: ["jsmith", "ekaragia"] }),
    testGroup("cspg", { memberLogins: ["dvlachos", "ekaragia"] }),
    testGroup("students", { memberLogins: ["csd4711", "csd4713", "ghost"] }),
    testGroup("csall", {
      addresses: ["csall@cs.example.org", "everyone@cs.example.org"],
      memberGroups: ["csstaff", "cspg", "students"],
    }),
    testGroup("rise", { addresses: ["info@rise.example", "team@rise.example"], memberLogins: ["gpapadop"] }),
    testGroup("loop-a", { memberGroups: ["loop-b"], memberLogins: ["jsmith"] }),
    testGroup("loop-b", { memberGroups: ["loop-a"], memberLogins: ["csd4711"] }),
    testGroup("old", { status: "inactive", memberLogins: ["jsmith"] }),
    testGroup("legacy", { memberAddresses: ["someone@outside.example"], memberLogins: ["jsmith"] }),
  ],
};

const resolver = new Resolver(directory);

function summary(resolution: Resolution): string {
  switch (resolution.kind) {
    case "invalid":
      return "invalid";
    case "not_ours":
    case "unknown":
      return resolution.kind;
    case "inactive":
      return `inactive:${resolution.claim.kind}`;
    case "ambiguous":
      return `ambiguous:${resolution.claims.map((c) => (c.kind === "user" ? c.user.login : c.group.name)).join("+")}`;
    case "mailbox":
      return `mailbox:${resolution.user.login}`;
    case "forward":
      return `forward:${resolution.targets.join(",")}${resolution.keepCopy ? "+copy" : ""}`;
    case "group": {
      const { users, externalAddresses, limitExceeded } = resolution.expansion;
      const members = [...users.map((u) => u.login), ...externalAddresses].join(",");
      return `group:${resolution.group.name}[${members}]${limitExceeded ? `!${limitExceeded}` : ""}`;
    }
  }
}

describe("Resolver.resolve", () => {
  it.each([
    { name: "login address", input: "gpapadop@cs.example.org", want: "mailbox:gpapadop" },
    { name: "alternate address", input: "papadopoulos.georgios@cs.example.org", want: "mailbox:gpapadop" },
    { name: "upper case, brackets", input: "<GPapadop@CS.Example.ORG>", want: "mailbox:gpapadop" },
    { name: "extension", input: "gpapadop+lists@cs.example.org", want: "mailbox:gpapadop" },
    { name: "alias domain, lastname.firstname", input: "smith.john@example.org", want: "mailbox:jsmith" },
    { name: "alias domain does not carry logins", input: "jsmith@example.org", want: "unknown" },
    { name: "alias domain does not carry groups", input: "csall@example.org", want: "unknown" },
    { name: "virtual domain member", input: "georgios.papadopoulos@rise.example", want: "mailbox:gpapadop" },
    { name: "virtual domain non-member", input: "jsmith@rise.example", want: "unknown" },
    { name: "virtual domain group", input: "team@rise.example", want: "group:rise[gpapadop]" },
    { name: "not our domain", input: "someone@gmail.example", want: "not_ours" },
    { name: "unknown in our domain", input: "nobody@cs.example.org", want: "unknown" },
    { name: "unknown with extension", input: "nobody+x@cs.example.org", want: "unknown" },
    { name: "inactive user", input: "csd4713@cs.example.org", want: "inactive:user" },
    { name: "inactive user by alias", input: "pappas.konstantinos@cs.example.org", want: "inactive:user" },
    { name: "inactive group", input: "old@cs.example.org", want: "inactive:group" },
    {
      name: "forward only",
      input: "dvlachos@cs.example.org",
      want: "forward:dimitris.vlachos@gmail.example",
    },
    {
      name: "forward keeping a copy",
      input: "keeper@cs.example.org",
      want: "forward:elsewhere@gmail.example+copy",
    },
    {
      name: "homonym claimed twice",
      input: "papadopoulou.maria@cs.example.org",
      want: "ambiguous:homonym1+homonym2",
    },
    {
      name: "nested group flattened, duplicates collapsed, inactive and missing members left out",
      input: "everyone@cs.example.org",
      want: "group:csall[jsmith,ekaragia,dvlachos,csd4711]",
    },
    { name: "cycle cut", input: "loop-a@cs.example.org", want: "group:loop-a[jsmith,csd4711]" },
    {
      name: "external member addresses",
      input: "legacy@cs.example.org",
      want: "group:legacy[jsmith,someone@outside.example]",
    },
    { name: "not an address", input: "no-at-sign", want: "invalid" },
    { name: "comma in address", input: "a,b@cs.example.org", want: "invalid" },
    { name: "empty", input: "", want: "invalid" },
    { name: "two at signs", input: "a@b@cs.example.org", want: "invalid" },
  ])("$name", ({ input, want }) => {
    expect(summary(resolver.resolve(input))).toBe(want);
  });

  it("reports the key that matched", () => {
    const resolution = resolver.resolve("Smith.John+x@example.org");
    expect(resolution).toMatchObject({
      address: "smith.john+x@example.org",
      key: "smith.john@cs.example.org",
    });
  });
});

describe("limits", () => {
  it("stops a group expansion at the limit and says so", () => {
    const small = new Resolver(directory, { maxExpansion: 2 });
    expect(summary(small.resolve("csall@cs.example.org"))).toBe("group:csall[jsmith,ekaragia]!expansion");
  });

  it("stops at the nesting depth", () => {
    const shallow = new Resolver(directory, { maxDepth: 0 });
    expect(summary(shallow.resolve("csall@cs.example.org"))).toBe("group:csall[]!depth");
  });

  it("handles extensions with several delimiter characters", () => {
    const r = new Resolver(directory, { recipientDelimiters: "+-" });
    expect(summary(r.resolve("jsmith-list+x@cs.example.org"))).toBe("mailbox:jsmith");
    const none = new Resolver(directory, { recipientDelimiters: "" });
    expect(summary(none.resolve("jsmith+x@cs.example.org"))).toBe("unknown");
  });
});

describe("membership", () => {
  it.each([
    { login: "jsmith", group: "csall", want: true },
    { login: "csd4711", group: "csall", want: true },
    { login: "csd4711", group: "csstaff", want: false },
    { login: "JSMITH", group: "CSStaff", want: true },
    { login: "jsmith", group: "loop-b", want: true },
    { login: "nobody", group: "csall", want: false },
    { login: "jsmith", group: "no-such-group", want: false },
  ])("$login in $group → $want", ({ login, group: name, want }) => {
    expect(resolver.isMember(login, name)).toBe(want);
  });
});
