/**
 * verifyd as Dovecot 2.3's userdb and passdb (driver = dict), end to end.
 *
 * verifyd serves an internal snapshot on a UNIX socket (group dovecot, mode
 * 0660) and a real Dovecot uses it exactly as verifyd/README.md tells
 * administrators to (the dict-auth.conf.ext written here is the README's),
 * with the quota plugin on so that the quota_rule verifyd sends is read by
 * Dovecot itself. Then:
 * - `doveadm user` for a login, an alternate address and an +ext address:
 *   uid, gid, home, ALT storage, quota (`doveadm quota get` shows the limit);
 *   inactive and unknown users do not exist (exit 67);
 * - `doveadm user '*'` lists the active users (iteration);
 * - `doveadm auth test`: a SHA512-CRYPT and a PLAIN hash succeed, a wrong
 *   password fails as a plain failure, an inactive user is refused, a user
 *   whose hash the snapshot lacks gets code=temp_fail (never a wrong
 *   password);
 * - an IMAP LOGIN and SELECT INBOX (the mailbox created under the home);
 * - the front-end proxy dict through `doveadm dict get`: proxy=y host=…;
 * - a stale snapshot: userdb lookups fail temporarily (exit 75), passdb
 *   answers code=temp_fail, for known and unknown users alike.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { startVerifyd, type Verifyd } from "../../verifyd/program.js";
import { testUser } from "../harness/directory-builders.js";
import {
  type Dovecot,
  doveadmOutput as output,
  startDovecot,
  doveadmUserFields as userFields,
} from "../harness/dovecot.js";
import { LineClient } from "../harness/line-client.js";
import { makeTempDir, removeTempDir, runChecked } from "../harness/process.js";

const HOUR = 3_600_000;

function sha512Crypt(password: string): string {
  return `{SHA512-CRYPT}${execFileSync("/usr/bin/openssl", ["passwd", "-6", password], { encoding: "utf8" }).trim()}`;
}

/** The dict-auth.conf.ext of verifyd/README.md. */
function dictAuthConf(socketPath: string, dictName: "auth" | "proxy"): string {
  return `uri = proxy:${socketPath}:${dictName}
iterate_prefix = userdb/
iterate_disable = no
key passdb {
  key = passdb/%u
  format = json
}
key userdb {
  key = userdb/%u
  format = json
}
passdb_objects = passdb
userdb_objects = userdb
`;
}

describe("verifyd as Dovecot's userdb and passdb", () => {
  let dir: string;
  let snapshotPath: string;
  let socketPath: string;
  let mailDir: string;
  let verifyd: Verifyd;
  let dovecot: Dovecot;
  let mailUid: number;
  let mailGid: number;
  let version = 1;

  const directory = (): Directory => ({
    domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] },
    users: [
      testUser("alice", {
        alternateAddresses: ["liddell.alice@cs.example.org"],
        passwordHash: sha512Crypt("alice-secret"),
        quotaBytes: 1024 * 1024,
      }),
      testUser("bob", { passwordHash: "{PLAIN}bob-secret", alternateStorage: join(dir, "alt", "bob") }),
      testUser("carol"),
      testUser("dave", { status: "inactive", passwordHash: "{PLAIN}dave-secret" }),
      testUser("frank"),
      testUser("erin", { passwordHash: "{PLAIN}erin-secret", mailHost: "imap2.cs.example.org" }),
    ],
    groups: [],
  });

  const publish = async (createdAt: Date) => {
    writeSnapshot(snapshotPath, directory(), {
      version: version++,
      view: "internal",
      sources: [{ name: "test", users: 6, groups: 0, skipped: 0 }],
      now: createdAt,
    });
    await verifyd.reload();
  };

  const authTest = (user: string, password: string) =>
    dovecot.doveadm(["auth", "test", "-x", "no-penalty", user, password]);

  beforeAll(async () => {
    dir = makeTempDir("verifyd-dovecot");
    // Dovecot's auth processes (dovecot and root) must reach the socket.
    chmodSync(dir, 0o755);
    snapshotPath = join(dir, "snapshot.sqlite");
    socketPath = join(dir, "verifyd-dict.sock");
    mailDir = join(dir, "mail");
    execFileSync("/usr/bin/install", ["-d", "-o", "nobody", "-g", "nogroup", mailDir, join(dir, "alt")]);
    mailUid = Number((await runChecked("/usr/bin/id", ["-u", "nobody"])).stdout.trim());
    mailGid = Number((await runChecked("/usr/bin/id", ["-g", "nobody"])).stdout.trim());
    writeSnapshot(snapshotPath, directory(), {
      version: version++,
      view: "internal",
      sources: [{ name: "test", users: 6, groups: 0, skipped: 0 }],
    });

    const config = parseConfigText(`
[snapshot]
path = "${snapshotPath}"
max_age = "1h"
[verifyd]
snapshot_check_interval = "5m"
[[verifyd.listen]]
unix = "${join(dir, "verifyd.sock")}"
[verifyd.dovecot]
uid = ${mailUid}
gid = ${mailGid}
home = "${mailDir}/%u"
mail_location = "mdbox:~/mdbox"
proxy_backends = ["imap1.cs.example.org"]
[[verifyd.dovecot.listen]]
unix = "${socketPath}"
mode = "0660"
group = "dovecot"
`);
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    verifyd = await startVerifyd(config.config, pino({ level: "silent" }), { processMetrics: false });

    const secondPassdb = join(dir, "second-passdb");
    writeFileSync(secondPassdb, "frank:{PLAIN}frank-secret\n");
    const authConf = join(dir, "dict-auth.conf.ext");
    writeFileSync(authConf, dictAuthConf(socketPath, "auth"));
    dovecot = await startDovecot({
      protocols: ["imap"],
      // verifyd first, then a second passdb for the users whose hash the
      // snapshot lacks (README: pairing with Dovecot's LDAP auth_bind passdb;
      // a passwd-file stands in for it here).
      auth: `auth_cache_size = 0
passdb {
  driver = dict
  args = ${authConf}
  result_internalfail = continue
}
passdb {
  driver = passwd-file
  args = ${secondPassdb}
}
userdb {
  driver = dict
  args = ${authConf}
}`,
      conf: `mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
}
`,
    });
  });

  afterAll(async () => {
    await dovecot?.destroy();
    await verifyd?.close();
    if (dir) removeTempDir(dir);
  });

  it("answers doveadm user with uid, gid, home and the quota Dovecot then enforces", async () => {
    const result = await dovecot.doveadm(["user", "alice"]);
    expect(result.code, output(result)).toBe(0);
    expect(userFields(result)).toMatchObject({
      uid: String(mailUid),
      gid: String(mailGid),
      home: `${mailDir}/alice`,
      quota_rule: "*:storage=1048576B",
    });
    const quota = await dovecot.doveadm(["-f", "tab", "quota", "get", "-u", "alice"]);
    expect(quota.code, output(quota)).toBe(0);
    // Quota name, type, value, limit (KiB for STORAGE), percent.
    expect(quota.stdout).toMatch(/^User quota\tSTORAGE\t0\t1024\t/m);
  });

  it("finds the user by an alternate or primary address, and adds the ALT storage", async () => {
    const byAlternate = await dovecot.doveadm(["user", "liddell.alice@cs.example.org"]);
    expect(byAlternate.code, output(byAlternate)).toBe(0);
    expect(userFields(byAlternate)["home"]).toBe(`${mailDir}/alice`);
    // Dovecot itself refuses "+" in user names (auth_username_chars); LMTP strips the
    // extension with its recipient_delimiter before asking.
    const bob = await dovecot.doveadm(["user", "bob@cs.example.org"]);
    expect(bob.code, output(bob)).toBe(0);
    expect(userFields(bob)).toMatchObject({
      home: `${mailDir}/bob`,
      mail: `mdbox:~/mdbox:ALT=${join(dir, "alt", "bob")}`,
    });
  });

  it("knows no inactive and no unknown user (exit 67)", async () => {
    for (const user of ["dave", "nobody", "nobody@cs.example.org", "alice@elsewhere.example"]) {
      const result = await dovecot.doveadm(["user", user]);
      expect(result.code, `${user}: ${output(result)}`).toBe(67);
    }
  });

  it("lists the active users for doveadm user '*' (iteration)", async () => {
    const result = await dovecot.doveadm(["user", "*"]);
    expect(result.code, output(result)).toBe(0);
    expect(result.stdout.trim().split("\n").sort()).toEqual(["alice", "bob", "carol", "erin", "frank"]);
  });

  it("checks passwords against the hashes in the snapshot", async () => {
    const good = await authTest("alice", "alice-secret");
    expect(good.code, output(good)).toBe(0);
    const byAddress = await authTest("alice@cs.example.org", "alice-secret");
    expect(byAddress.code, output(byAddress)).toBe(0);
    expect(output(byAddress)).toMatch(/user=alice\b/);
    const plain = await authTest("bob", "bob-secret");
    expect(plain.code, output(plain)).toBe(0);
    const wrong = await authTest("alice", "wrong");
    expect(wrong.code).toBe(77);
    expect(output(wrong)).not.toMatch(/temp_fail/);
  });

  it("refuses an inactive user, and fails temporarily where the snapshot holds no hash", async () => {
    const inactive = await authTest("dave", "dave-secret");
    expect(inactive.code, output(inactive)).toBe(77);
    expect(output(inactive)).not.toMatch(/temp_fail/);
    const noHash = await authTest("carol", "anything");
    expect(noHash.code).toBe(77);
    expect(output(noHash)).toMatch(/code=temp_fail/);
  });

  it("lets the next passdb decide for a user without a hash (result_internalfail = continue)", async () => {
    const good = await authTest("frank", "frank-secret");
    expect(good.code, output(good)).toBe(0);
    const wrong = await authTest("frank", "wrong");
    expect(wrong.code).toBe(77);
    expect(output(wrong)).toMatch(/code=temp_fail/);
  });

  it("lets a user log in over IMAP and open the INBOX in the home it gave", async () => {
    const client = await LineClient.open(dovecot.ports.imap as number);
    try {
      await client.readUntil(/^\* OK/);
      client.send("a1 LOGIN bob bob-secret\r\n");
      expect(await client.readUntil(/^a1 /)).toMatch(/^a1 OK/m);
      client.send("a2 SELECT INBOX\r\n");
      expect(await client.readUntil(/^a2 /)).toMatch(/^a2 OK/m);
      client.send("a3 LOGOUT\r\n");
      await client.readUntil(/^a3 /);
    } finally {
      client.close();
    }
    expect(existsSync(join(mailDir, "bob", "mdbox"))).toBe(true);
  });

  it("answers the front-end proxy dict with proxy=y and the user's back-end", async () => {
    const uri = `proxy:${socketPath}:proxy`;
    const hosted = await dovecot.doveadm(["dict", "get", uri, "shared/passdb/erin"]);
    expect(hosted.code, output(hosted)).toBe(0);
    expect(JSON.parse(hosted.stdout.trim())).toEqual({
      user: "erin",
      proxy: "y",
      host: "imap2.cs.example.org",
      password: "{PLAIN}erin-secret",
    });
    const hashed = await dovecot.doveadm(["dict", "get", uri, "shared/passdb/carol"]);
    expect(JSON.parse(hashed.stdout.trim())).toEqual({
      user: "carol",
      proxy: "y",
      host: "imap1.cs.example.org",
      nopassword: "y",
    });
  });

  it("fails temporarily, never 'unknown', while the snapshot is stale", async () => {
    await publish(new Date(Date.now() - 2 * HOUR));
    try {
      for (const user of ["alice", "nobody"]) {
        const result = await dovecot.doveadm(["user", user]);
        expect(result.code, `${user}: ${output(result)}`).toBe(75);
      }
      const auth = await authTest("alice", "alice-secret");
      expect(auth.code).toBe(77);
      expect(output(auth)).toMatch(/code=temp_fail/);
      const iteration = await dovecot.doveadm(["user", "*"]);
      expect(iteration.code).not.toBe(0);
    } finally {
      await publish(new Date());
    }
    const back = await dovecot.doveadm(["user", "alice"]);
    expect(back.code, output(back)).toBe(0);
  });
});
