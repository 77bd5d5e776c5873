/**
 * The exports read by the real peers. The sample directory (deploy/ldap) is
 * exported as Postfix maps, and Postfix 3.7's own tools and smtpd read them:
 * `postmap -q` answers agree with the resolver for every kind of address,
 * `postmap -s` dumps exactly the source lines, smtpd accepts listed
 * recipients and rejects the rest, and a re-export while smtpd runs is
 * picked up. The passwd-file is read by Dovecot 2.3.19: `doveadm auth test`
 * checks the sample's {SSHA} passwords, `doveadm user` returns uid, gid,
 * home, quota and a per-user mail location with ALT storage, inactive
 * users are unknown, and a user without a hash is known to the userdb but
 * cannot log in. The file keeps the group the administrator gave it
 * (dovecot), or Dovecot's auth process could not read it.
 */
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Directory, DomainSet } from "../../core/directory/model.js";
import { type Resolution, Resolver } from "../../core/directory/resolver.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping } from "../../core/ldap/mapping.js";
import { exportPasswdFile, exportPostfixMaps } from "../../sync-agent/export.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir, runChecked, waitFor } from "../harness/process.js";

const SAMPLE_DOMAINS: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};

function sampleDirectory(): Directory {
  const path = fileURLToPath(new URL("../../deploy/ldap/sample-directory.ldif", import.meta.url));
  const { directory, problems } = directoryFromLdif(
    readFileSync(path, "utf8"),
    defaultMapping("dc=cs,dc=example,dc=org"),
    SAMPLE_DOMAINS,
  );
  expect(problems).toEqual([]);
  return directory;
}

/** What the virtual alias table should say for an address, from the resolver: null when absent. */
function expectedTargets(resolution: Resolution): string[] | null {
  switch (resolution.kind) {
    case "mailbox":
      return resolution.user.primaryAddress === resolution.address ? null : [resolution.user.primaryAddress];
    case "forward":
      return [...(resolution.keepCopy ? [resolution.user.primaryAddress] : []), ...resolution.targets];
    case "group":
      return [
        ...resolution.expansion.users.map((u) => u.primaryAddress),
        ...resolution.expansion.externalAddresses,
      ];
    default:
      return null;
  }
}

const ADDRESSES = [
  "gpapadop@cs.example.org",
  "george.papadopoulos@cs.example.org",
  "papadopoulos.georgios@example.org",
  "georgios.papadopoulos@rise.example",
  "dvlachos@cs.example.org",
  "vlachos.dimitrios@example.org",
  "csd4713@cs.example.org",
  "pappas.konstantinos@cs.example.org",
  "csall@cs.example.org",
  "everyone@cs.example.org",
  "students@cs.example.org",
  "team@rise.example",
  "info@rise.example",
  "nobody@cs.example.org",
  "gpapadop@example.org",
  "jsmith@rise.example",
];

describe("Postfix maps exported from the sample directory", () => {
  const directory = sampleDirectory();
  const resolver = new Resolver(directory);
  let exportDir: string;
  let scratch: string;
  let postfix: Postfix;

  beforeAll(async () => {
    scratch = makeTempDir("sync-export");
    chmodSync(scratch, 0o755);
    exportDir = join(scratch, "maps");
    mkdirSync(exportDir, { mode: 0o755 });
    // The first export runs before Postfix exists; postmap only needs a main.cf to read.
    const bootstrapConfig = join(scratch, "bootstrap");
    mkdirSync(bootstrapConfig);
    writeFileSync(join(bootstrapConfig, "main.cf"), "");
    await exportPostfixMaps(directory, resolver, {
      directory: exportDir,
      mapType: "hash",
      postmapCommand: "/usr/sbin/postmap",
      postfixConfigDirectory: bootstrapConfig,
      snapshotVersion: 1,
    });
    postfix = await startPostfix({
      mainCf: {
        relay_domains: "cs.example.org, example.org, rise.example",
        relay_recipient_maps: `hash:${exportDir}/relay_recipients`,
        virtual_alias_maps: `hash:${exportDir}/virtual_aliases`,
      },
    });
  });

  afterAll(async () => {
    await postfix?.destroy();
    if (scratch !== undefined) removeTempDir(scratch);
  });

  const query = async (address: string, map: string, dir = exportDir): Promise<string | null> => {
    const result = await postfix.postmap(["-q", address, `${map}:${dir}`]);
    if (result.code === 1) return null;
    if (result.code !== 0) throw new Error(`postmap -q ${address}: ${result.stderr}`);
    return result.stdout.trim();
  };

  it.each(ADDRESSES)("postmap -q %s agrees with the resolver", async (address) => {
    const resolution = resolver.resolve(address);
    const deliverable = ["mailbox", "forward", "group"].includes(resolution.kind);
    expect(await query(address, "hash", `${exportDir}/relay_recipients`)).toBe(deliverable ? "OK" : null);
    const aliases = await query(address, "hash", `${exportDir}/virtual_aliases`);
    expect(aliases?.split(",") ?? null).toEqual(expectedTargets(resolution));
  });

  it("maps the group everyone@ to every active member, the inactive student left out", async () => {
    const targets = (await query("everyone@cs.example.org", "hash", `${exportDir}/virtual_aliases`))?.split(
      ",",
    );
    expect(targets).toContain("jsmith@cs.example.org");
    expect(targets).toContain("csd4716@cs.example.org");
    expect(targets).not.toContain("csd4713@cs.example.org");
  });

  it("lists the alias and hosted domains, not the primary", async () => {
    expect(await query("example.org", "hash", `${exportDir}/virtual_domains`)).toBe("OK");
    expect(await query("rise.example", "hash", `${exportDir}/virtual_domains`)).toBe("OK");
    expect(await query("cs.example.org", "hash", `${exportDir}/virtual_domains`)).toBeNull();
  });

  it("builds databases holding exactly the source lines, and leaves no temporary file", async () => {
    for (const name of ["relay_recipients", "virtual_aliases", "virtual_domains"]) {
      const source = readFileSync(join(exportDir, name), "utf8")
        .split("\n")
        .filter((line) => line !== "" && !line.startsWith("#"));
      const dump = await postfix.postmap(["-s", `hash:${join(exportDir, name)}`]);
      expect(dump.code).toBe(0);
      const dumped = dump.stdout
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => line.replace("\t", " "));
      expect(dumped.sort()).toEqual([...source].sort());
    }
    expect(readdirSync(exportDir).sort()).toEqual([
      "relay_recipients",
      "relay_recipients.db",
      "virtual_aliases",
      "virtual_aliases.db",
      "virtual_domains",
      "virtual_domains.db",
    ]);
  });

  it("btree maps answer the same", async () => {
    const btreeDir = join(scratch, "btree");
    mkdirSync(btreeDir);
    const result = await exportPostfixMaps(directory, resolver, {
      directory: btreeDir,
      mapType: "btree",
      postmapCommand: "/usr/sbin/postmap",
      postfixConfigDirectory: postfix.configDir,
    });
    expect(result.maps[0]?.databasePath).toBe(join(btreeDir, "relay_recipients.db"));
    expect(await query("smith.john@example.org", "btree", `${btreeDir}/virtual_aliases`)).toBe(
      "jsmith@cs.example.org",
    );
    expect(await query("nobody@cs.example.org", "btree", `${btreeDir}/relay_recipients`)).toBeNull();
  });

  /** smtpd's reply to RCPT TO, as swaks shows it. */
  const rcpt = async (address: string): Promise<string> => {
    const { transcript } = await postfix.swaks([
      "--to",
      address,
      "--from",
      "x@outside.example",
      "--quit-after",
      "RCPT",
    ]);
    const lines = transcript.split("\n");
    return lines[lines.findIndex((line) => line.includes("RCPT TO:")) + 1] ?? transcript;
  };

  it("smtpd accepts listed recipients and rejects unlisted ones, then picks up a re-export", async () => {
    expect(await rcpt("george.papadopoulos@cs.example.org")).toMatch(/250 2\.1\.5/);
    expect(await rcpt("everyone@cs.example.org")).toMatch(/250 2\.1\.5/);
    expect(await rcpt("csd4713@cs.example.org")).toMatch(
      /550 5\.1\.1 .*User unknown in relay recipient table/,
    );
    expect(await rcpt("newcomer@cs.example.org")).toMatch(/550 5\.1\.1/);

    const grown: Directory = {
      ...directory,
      users: [
        ...directory.users,
        {
          login: "newcomer",
          source: "test",
          primaryAddress: "newcomer@cs.example.org",
          alternateAddresses: [],
          forwardingAddresses: [],
          quotaBytes: null,
          status: "active",
        },
      ],
    };
    await exportPostfixMaps(grown, new Resolver(grown), {
      directory: exportDir,
      mapType: "hash",
      postmapCommand: "/usr/sbin/postmap",
      postfixConfigDirectory: postfix.configDir,
      snapshotVersion: 2,
    });
    expect(readFileSync(join(exportDir, "relay_recipients"), "utf8")).toContain("snapshot version 2");
    // smtpd notices the replaced database before its next connection and restarts.
    await waitFor(async () => /250 2\.1\.5/.test(await rcpt("newcomer@cs.example.org")), {
      timeoutMs: 20_000,
      what: "smtpd to accept the re-exported recipient",
      intervalMs: 500,
    });
  });
});

describe("Dovecot passwd-file exported from the sample directory", () => {
  const sample = sampleDirectory();
  // One user loses the hash: listed for the userdb, never able to log in.
  const directory: Directory = {
    ...sample,
    users: sample.users.map((user) => {
      if (user.login === "mnikolai")
        return { ...user, mailLocation: "mdbox:~/mdbox", alternateStorage: "/srv/alt/mn" };
      if (user.login !== "soikonom") return user;
      const { passwordHash, ...rest } = user;
      return rest;
    }),
  };
  let scratch: string;
  let passwdPath: string;
  let dovecot: Dovecot;

  beforeAll(async () => {
    scratch = makeTempDir("sync-passwd");
    chmodSync(scratch, 0o755);
    passwdPath = join(scratch, "users");
    // The administrator hands the file to Dovecot's group once; exports keep it.
    writeFileSync(passwdPath, "");
    const dovecotGid = Number((await runChecked("/usr/bin/id", ["-g", "dovecot"])).stdout.trim());
    chownSync(passwdPath, 0, dovecotGid);
    const result = exportPasswdFile(directory, passwdPath, { snapshotVersion: 3 });
    expect(result.problems).toEqual([]);
    dovecot = await startDovecot({
      auth: `passdb {
  driver = passwd-file
  args = ${passwdPath}
}
userdb {
  driver = passwd-file
  args = ${passwdPath}
}`,
    });
  });

  afterAll(async () => {
    await dovecot?.destroy();
    if (scratch !== undefined) removeTempDir(scratch);
  });

  const authTest = (user: string, password: string) =>
    dovecot.doveadm(["auth", "test", "-x", "no-penalty", user, password]);

  it.each([
    { name: "right password", user: "gpapadop", password: "pw-gpapadop", ok: true },
    { name: "right password, student", user: "csd4716", password: "pw-csd4716", ok: true },
    { name: "wrong password", user: "gpapadop", password: "pw-mnikolai", ok: false },
    { name: "inactive user", user: "csd4713", password: "pw-csd4713", ok: false },
    { name: "no hash, empty password", user: "soikonom", password: "", ok: false },
    { name: "no hash, the old password", user: "soikonom", password: "pw-soikonom", ok: false },
  ])("doveadm auth test: $name", async ({ user, password, ok }) => {
    const result = await authTest(user, password);
    expect(result.code === 0).toBe(ok);
    expect(result.stdout).toContain(ok ? "auth succeeded" : "auth failed");
  });

  /** `doveadm user` prints "field<TAB>value" lines after a header. */
  const userFields = async (
    user: string,
  ): Promise<{ code: number | null; fields: Record<string, string> }> => {
    const result = await dovecot.doveadm(["user", user]);
    const fields: Record<string, string> = {};
    for (const line of result.stdout.split("\n").slice(1)) {
      const tab = line.indexOf("\t");
      if (tab > 0) fields[line.slice(0, tab)] = line.slice(tab + 1);
    }
    return { code: result.code, fields };
  };

  it("doveadm user returns uid, gid, home and the quota rule", async () => {
    expect(await userFields("gpapadop")).toMatchObject({
      code: 0,
      fields: { uid: "5001", gid: "2001", home: "/home/gpapadop", quota_rule: "*:bytes=5368709120" },
    });
  });

  it("doveadm user returns the user's own mail location with its alternate storage", async () => {
    expect((await userFields("mnikolai")).fields["mail"]).toBe("mdbox:~/mdbox:ALT=/srv/alt/mn");
    expect((await userFields("gpapadop")).fields["mail"]).toBe("maildir:~/Maildir");
  });

  it("a user without a quota gets the site default (no quota_rule)", async () => {
    const { fields } = await userFields("csd4715");
    expect(fields["home"]).toBe("/home/csd4715");
    expect(fields["quota_rule"]).toBeUndefined();
  });

  it("the user without a hash is still in the userdb (LMTP can deliver)", async () => {
    expect((await userFields("soikonom")).fields["home"]).toBe("/home/soikonom");
  });

  it("inactive users are unknown", async () => {
    const result = await dovecot.doveadm(["user", "csd4713"]);
    expect(result.code).toBe(67);
  });
});
