import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Directory } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import { buildPostfixMaps, exportPasswdFile, exportPostfixMaps, passwdLine } from "./export.js";

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  users: [
    testUser("alice", {
      alternateAddresses: ["smith.alice@cs.example.org", "alice@rise.example"],
      home: "/home/alice",
      uidNumber: 5001,
      gidNumber: 2000,
      passwordHash: "{SSHA}abc",
      quotaBytes: 1048576,
    }),
    testUser("bob", {
      forwardingAddresses: ["bob@gmail.example"],
      alternateAddresses: ["jones.bob@cs.example.org"],
    }),
    testUser("carol", { forwardingAddresses: ["carol@cs.example.org", "carol@work.example"] }),
    testUser("dave", { status: "inactive", alternateAddresses: ["dave.old@cs.example.org"] }),
    testUser("erin", { alternateAddresses: ["shared@cs.example.org"] }),
    testUser("frank", { alternateAddresses: ["shared@cs.example.org"] }),
  ],
  groups: [
    testGroup("staff", {
      addresses: ["staff@cs.example.org", "team@rise.example"],
      memberLogins: ["alice", "dave", "bob"],
      memberAddresses: ["outside@partner.example", "helpdesk"],
    }),
    testGroup("ghosts", { memberLogins: ["dave"] }),
    testGroup("all", { memberGroups: ["staff"], memberLogins: ["carol"] }),
  ],
};

describe("buildPostfixMaps", () => {
  const maps = buildPostfixMaps(directory, new Resolver(directory));
  const relay = new Map(maps.relayRecipients.map((entry) => [entry.key, entry.value]));
  const aliases = new Map(maps.virtualAliases.map((entry) => [entry.key, entry.value]));

  it.each([
    { name: "primary mailbox", address: "alice@cs.example.org", relay: "OK", alias: undefined },
    { name: "alternate", address: "smith.alice@cs.example.org", relay: "OK", alias: "alice@cs.example.org" },
    {
      name: "alias-domain form",
      address: "smith.alice@example.org",
      relay: "OK",
      alias: "alice@cs.example.org",
    },
    {
      name: "not an alternate at the alias domain",
      address: "alice@example.org",
      relay: undefined,
      alias: undefined,
    },
    { name: "hosted domain", address: "alice@rise.example", relay: "OK", alias: "alice@cs.example.org" },
    { name: "forward", address: "bob@cs.example.org", relay: "OK", alias: "bob@gmail.example" },
    {
      name: "forward via alternate",
      address: "jones.bob@cs.example.org",
      relay: "OK",
      alias: "bob@gmail.example",
    },
    {
      name: "forward keeping a copy",
      address: "carol@cs.example.org",
      relay: "OK",
      alias: "carol@cs.example.org,carol@work.example",
    },
    { name: "inactive user", address: "dave@cs.example.org", relay: undefined, alias: undefined },
    {
      name: "inactive user's alternate",
      address: "dave.old@cs.example.org",
      relay: undefined,
      alias: undefined,
    },
    { name: "ambiguous", address: "shared@cs.example.org", relay: undefined, alias: undefined },
    {
      name: "group: active members, outside and bare legacy names qualified",
      address: "staff@cs.example.org",
      relay: "OK",
      alias: "alice@cs.example.org,bob@cs.example.org,outside@partner.example,helpdesk@cs.example.org",
    },
    {
      name: "group address in the hosted domain",
      address: "team@rise.example",
      relay: "OK",
      alias: "alice@cs.example.org,bob@cs.example.org,outside@partner.example,helpdesk@cs.example.org",
    },
    {
      name: "nested group flattened",
      address: "all@cs.example.org",
      relay: "OK",
      alias:
        "carol@cs.example.org,alice@cs.example.org,bob@cs.example.org,outside@partner.example,helpdesk@cs.example.org",
    },
    {
      name: "group without active members",
      address: "ghosts@cs.example.org",
      relay: undefined,
      alias: undefined,
    },
  ])("$name: $address", ({ address, relay: wantRelay, alias }) => {
    expect(relay.get(address)).toBe(wantRelay);
    expect(aliases.get(address)).toBe(alias);
  });

  it("lists the served domains other than the primary", () => {
    expect(maps.virtualDomains).toEqual([
      { key: "example.org", value: "OK" },
      { key: "rise.example", value: "OK" },
    ]);
  });

  it("sorts every table by key", () => {
    for (const table of [maps.relayRecipients, maps.virtualAliases, maps.virtualDomains]) {
      const keys = table.map((entry) => entry.key);
      expect(keys).toEqual([...keys].sort());
    }
  });

  it("reports ambiguous addresses and empty groups, not inactive ones", () => {
    expect(maps.problems).toEqual([
      { subject: "shared@cs.example.org", message: "claimed by 2 entries; left out" },
      { subject: "ghosts@cs.example.org", message: "group ghosts has no active members; left out" },
    ]);
  });

  it("leaves out a group whose expansion hits the limit", () => {
    const limited = buildPostfixMaps(directory, new Resolver(directory, { maxExpansion: 2 }));
    expect(limited.relayRecipients.map((entry) => entry.key)).not.toContain("staff@cs.example.org");
    expect(limited.problems).toContainEqual({
      subject: "staff@cs.example.org",
      message: "group staff exceeds the expansion limit; left out",
    });
  });
});

describe("passwdLine", () => {
  it.each([
    {
      name: "full entry",
      input: testUser("alice", {
        passwordHash: "{SSHA}abc",
        uidNumber: 5001,
        gidNumber: 2000,
        home: "/home/alice",
        quotaBytes: 1048576,
        mailLocation: "maildir:~/Maildir",
      }),
      options: {},
      want: {
        line: "alice:{SSHA}abc:5001:2000::/home/alice::userdb_mail=maildir:~/Maildir userdb_quota_rule=*:bytes=1048576",
      },
    },
    {
      name: "no hash: empty password field and nologin",
      input: testUser("bob"),
      options: {},
      want: { line: "bob:::::::nologin" },
    },
    {
      name: "alternate storage on the default location",
      input: testUser("carol", { passwordHash: "x", alternateStorage: "/alt/carol" }),
      options: { defaultMailLocation: "mdbox:~/mdbox" },
      want: { line: "carol:x::::::userdb_mail=mdbox:~/mdbox:ALT=/alt/carol" },
    },
    {
      name: "alternate storage on the user's own location",
      input: testUser("carol", {
        passwordHash: "x",
        mailLocation: "sdbox:~/sdbox",
        alternateStorage: "/alt/c",
      }),
      options: { defaultMailLocation: "mdbox:~/mdbox" },
      want: { line: "carol:x::::::userdb_mail=sdbox:~/sdbox:ALT=/alt/c" },
    },
    {
      name: "by primary address",
      input: testUser("dan", { passwordHash: "x" }),
      options: { username: "primaryAddress" as const },
      want: { line: "dan@cs.example.org:x::::::" },
    },
    {
      name: "colon in the home",
      input: testUser("eve", { home: "/home/e:ve" }),
      options: {},
      want: { problem: "home \"/home/e:ve\" contains ':' or a control character" },
    },
    {
      name: "newline in the hash",
      input: testUser("eve", { passwordHash: "{SSHA}a\nroot::0:0::/::" }),
      options: {},
      want: { problem: "password hash contains ':', white space or a control character" },
    },
    {
      name: "space in the mail location",
      input: testUser("eve", { mailLocation: "maildir:/m x" }),
      options: {},
      want: { problem: 'mail location "maildir:/m x" contains white space or controls' },
    },
    {
      name: "alternate storage without any location",
      input: testUser("eve", { alternateStorage: "/alt" }),
      options: {},
      want: { problem: "has alternate storage but no mail location, and no default mail location is set" },
    },
    {
      name: "comment-like login",
      input: testUser("#eve"),
      options: {},
      want: { problem: 'user name "#eve" cannot be written to a passwd-file' },
    },
  ])("$name", ({ input, options, want }) => {
    expect(passwdLine(input, options)).toEqual(want);
  });
});

describe("writing files", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "emailng-export-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes text maps with a header naming the snapshot, and no temporary files", async () => {
    const result = await exportPostfixMaps(directory, new Resolver(directory), {
      directory: dir,
      mapType: "",
      postmapCommand: "/nonexistent/postmap",
      snapshotVersion: 42,
    });
    expect(readdirSync(dir).sort()).toEqual(["relay_recipients", "virtual_aliases", "virtual_domains"]);
    const domains = readFileSync(join(dir, "virtual_domains"), "utf8");
    expect(domains).toMatch(/^# virtual_domains: generated by emailng sync-agent; do not edit/);
    expect(domains).toContain(`snapshot version 42, directory content ${result.contentHash}`);
    expect(domains.endsWith("example.org OK\nrise.example OK\n")).toBe(true);
    expect(result.maps.map((map) => [map.name, map.entries, map.databasePath])).toEqual([
      ["relay_recipients", 13, null],
      ["virtual_aliases", 10, null],
      ["virtual_domains", 2, null],
    ]);
  });

  it("keeps every old map when postmap fails, and removes its temporary files", async () => {
    for (const name of ["relay_recipients", "virtual_aliases", "virtual_domains"]) {
      writeFileSync(join(dir, name), "old\n");
    }
    await expect(
      exportPostfixMaps(directory, new Resolver(directory), {
        directory: dir,
        mapType: "hash",
        postmapCommand: "/bin/false",
      }),
    ).rejects.toThrow(/\/bin\/false hash:.*relay_recipients.* failed/);
    expect(readdirSync(dir).sort()).toEqual(["relay_recipients", "virtual_aliases", "virtual_domains"]);
    expect(readFileSync(join(dir, "relay_recipients"), "utf8")).toBe("old\n");
  });

  it("writes the passwd-file with mode 0640, active users only, keeping the file's group", () => {
    const path = join(dir, "users");
    writeFileSync(path, "old\n");
    chmodSync(path, 0o600);
    const canChown = process.getuid?.() === 0;
    if (canChown) chownSync(path, 0, 4242);
    const result = exportPasswdFile(directory, path, { snapshotVersion: 7 });
    const info = statSync(path);
    expect(info.mode & 0o777).toBe(0o640);
    if (canChown) expect(info.gid).toBe(4242);
    const lines = readFileSync(path, "utf8").split("\n");
    expect(lines[0]).toMatch(/^# Dovecot passwd-file: generated by emailng sync-agent/);
    expect(
      lines.filter((line) => line !== "" && !line.startsWith("#")).map((line) => line.split(":")[0]),
    ).toEqual(["alice", "bob", "carol", "erin", "frank"]);
    expect(result).toEqual({ path, users: 5, problems: [] });
    expect(readdirSync(dir)).toEqual(["users"]);
  });

  it("reports and skips users it cannot write", () => {
    const bad: Directory = { ...directory, users: [testUser("ok"), testUser("broken", { home: "/a:b" })] };
    const result = exportPasswdFile(bad, join(dir, "users"));
    expect(result.users).toBe(1);
    expect(result.problems).toEqual([
      { subject: "broken", message: "home \"/a:b\" contains ':' or a control character; left out" },
    ]);
  });
});
