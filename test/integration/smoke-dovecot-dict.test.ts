// Real-peer smoke proof: `doveadm user` and `doveadm auth test` get their
// answers from a dict server built from emailng's own pieces
// (createProtocolServer + dictProtocol() + a table-backed Session, see
// dict-table-server.ts) on a UNIX socket, with Dovecot 2.3.19's passdb and
// userdb set to `driver = dict` as in docs/protocols/dovecot-dict-proxy.md
// "Usage 1" (vectors dict-06, dict-07, dict-08). It shows found, not found,
// default_value, the password check, iteration of direct children only, the
// protocol version Dovecot announces, and the fail-safe: a handler that
// throws or misses its deadline gives Dovecot a temporary failure, never
// "user unknown", and never our internal error text.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Dovecot,
  doveadmOutput as output,
  startDovecot,
  doveadmUserFields as userFields,
} from "../harness/dovecot.js";
import type { CommandResult } from "../harness/process.js";
import { type DictTableServer, startDictTableServer } from "./dict-table-server.js";

const THROW_USER = "broken@example.test";
const HANG_USER = "slow@example.test";
const REQUEST_TIMEOUT_MS = 500;

// Values exactly as a backend would store them; keys as the auth process sends them.
const TABLE = new Map<string, string>([
  ["shared/passdb/alice@example.test", '{"password": "alicepw"}'],
  ["shared/userdb/alice@example.test", '{"uid": 5001, "gid": 5002, "home": "/srv/mail/alice"}'],
  ["shared/userdb/alice@example.test/quota", "2G"],
  ["shared/passdb/bob@example.test", '{"password": "{PLAIN}bobpw", "userdb_mail": "maildir:~/mail"}'],
  ["shared/userdb/bob@example.test", '{"uid": 5003, "gid": 5002, "home": "/srv/mail/bob"}'],
]);

function dictAuthConf(socketPath: string): string {
  return `uri = proxy:${socketPath}:auth
default_pass_scheme = PLAIN
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
key quota {
  key = userdb/%u/quota
  default_value = 100M
}
passdb_objects = passdb
userdb_objects = userdb
userdb_fields {
  quota_rule = *:storage=%{dict:quota}
}
`;
}

/**
 * `doveadm auth test` with no-penalty: doveadm requests carry no remote IP,
 * so they all share one anvil penalty bucket and every failure would hold
 * back the next request (seen: 4 s, then 9 s) before it reaches the dict.
 */
function authTest(dovecot: Dovecot, user: string, password: string): Promise<CommandResult> {
  return dovecot.doveadm(["auth", "test", "-x", "no-penalty", user, password]);
}

describe("Dovecot 2.3 passdb/userdb driver = dict against our dict server", () => {
  let dictServer: DictTableServer;
  let dovecot: Dovecot;

  beforeAll(async () => {
    dictServer = await startDictTableServer({
      table: TABLE,
      throwUser: THROW_USER,
      hangUser: HANG_USER,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      // auth runs as dovecot, auth-worker as root: the group is enough for both.
      socketGroup: "dovecot",
    });
    const confPath = join(dictServer.dir, "dict-auth.conf.ext");
    writeFileSync(confPath, dictAuthConf(dictServer.socketPath), { mode: 0o644 });
    dovecot = await startDovecot({
      auth: `auth_cache_size = 0
passdb {
  driver = dict
  args = ${confPath}
}
userdb {
  driver = dict
  args = ${confPath}
}`,
    });
  });

  afterAll(async () => {
    await dovecot?.destroy();
    await dictServer?.stop();
  });

  it("doveadm user reads uid/gid/home from the userdb key and the quota from its own key", async () => {
    const result = await dovecot.doveadm(["user", "alice@example.test"]);
    expect(result.code, output(result)).toBe(0);
    expect(userFields(result)).toMatchObject({
      uid: "5001",
      gid: "5002",
      home: "/srv/mail/alice",
      quota_rule: "*:storage=2G",
    });
    expect(dictServer.commands).toContainEqual({
      kind: "lookup",
      key: "shared/userdb/alice@example.test/quota",
      user: "alice@example.test",
    });
  });

  it("doveadm user falls back to default_value when the quota key is not found", async () => {
    const result = await dovecot.doveadm(["user", "bob@example.test"]);
    expect(result.code, output(result)).toBe(0);
    expect(userFields(result)).toMatchObject({
      uid: "5003",
      home: "/srv/mail/bob",
      quota_rule: "*:storage=100M",
    });
    expect(dictServer.commands).toContainEqual({
      kind: "lookup",
      key: "shared/userdb/bob@example.test/quota",
      user: "bob@example.test",
    });
    expect(dictServer.outcomes).toContain("lookup_not-found");
  });

  it("doveadm user reports an unknown user (exit 67) when the server answers N", async () => {
    const result = await dovecot.doveadm(["user", "nobody@example.test"]);
    expect(result.code, output(result)).toBe(67);
    expect(output(result)).toContain("userdb lookup: user nobody@example.test doesn't exist");
  });

  it("doveadm auth test succeeds with the right password and fails with a wrong one", async () => {
    const right = await authTest(dovecot, "alice@example.test", "alicepw");
    expect(right.code, output(right)).toBe(0);
    expect(output(right)).toContain("passdb: alice@example.test auth succeeded");

    const schemed = await authTest(dovecot, "bob@example.test", "bobpw");
    expect(schemed.code, output(schemed)).toBe(0);
    expect(output(schemed)).toContain("passdb: bob@example.test auth succeeded");

    const wrong = await authTest(dovecot, "alice@example.test", "wrongpw");
    expect(wrong.code, output(wrong)).toBe(77);
    expect(output(wrong)).toContain("passdb: alice@example.test auth failed");
    expect(output(wrong)).not.toContain("temp_fail");
  });

  it("a handler that throws becomes a temporary failure, not an unknown user, and hides its error text", async () => {
    const user = await dovecot.doveadm(["user", THROW_USER]);
    expect(user.code, output(user)).toBe(75);
    expect(output(user)).toContain(`userdb lookup(${THROW_USER}): Auth USER lookup failed`);
    expect(output(user)).not.toContain("doesn't exist");

    const auth = await authTest(dovecot, THROW_USER, "pw");
    expect(auth.code, output(auth)).toBe(77);
    expect(output(auth)).toContain("code=temp_fail");

    expect(dictServer.errors).toContain("handler");
    const log = dovecot.readLog();
    expect(log).toContain(
      `Failed to lookup key shared/passdb/${THROW_USER}: dict-server returned failure: internal error`,
    );
    expect(log).not.toContain("secret-detail-42");
  });

  it("a handler that misses the request deadline becomes a temporary failure within the budget", async () => {
    const started = Date.now();
    const user = await dovecot.doveadm(["user", HANG_USER]);
    const elapsedMs = Date.now() - started;
    expect(user.code, output(user)).toBe(75);
    expect(output(user)).toContain(`userdb lookup(${HANG_USER}): Auth USER lookup failed`);
    expect(output(user)).not.toContain("doesn't exist");
    // Dovecot's own dict timeout is 30 s: a quick answer can only be our deadline's F.
    expect(elapsedMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
    expect(elapsedMs).toBeLessThan(5_000);

    const auth = await authTest(dovecot, HANG_USER, "late");
    expect(auth.code, output(auth)).toBe(77);
    expect(output(auth)).toContain("code=temp_fail");
    expect(output(auth)).not.toContain("auth succeeded");

    expect(dictServer.errors).toContain("deadline");
    // The handler did answer after the deadline; the server dropped that answer.
    expect(dictServer.lateAnswers).toContain(`shared/passdb/${HANG_USER}`);
  });

  it("doveadm user '*' lists the direct children our server returns for shared/userdb/", async () => {
    const all = await dovecot.doveadm(["user", "*"]);
    expect(all.code, output(all)).toBe(0);
    expect(all.stdout.trim().split("\n")).toEqual(["alice@example.test", "bob@example.test"]);

    const masked = await dovecot.doveadm(["user", "b*"]);
    expect(masked.code, output(masked)).toBe(0);
    expect(masked.stdout.trim().split("\n")).toEqual(["bob@example.test"]);

    const iterations = dictServer.commands.filter((command) => command.kind === "iterate");
    expect(iterations).toContainEqual({
      kind: "iterate",
      flags: 0,
      maxRows: 0,
      path: "shared/userdb/",
      user: "*",
    });
  });

  it("sees dict protocol 3.2 with dict name 'auth' on every connection from Dovecot 2.3", async () => {
    const result = await dovecot.doveadm(["user", "alice@example.test"]);
    expect(result.code, output(result)).toBe(0);
    expect(dictServer.hellos.length).toBeGreaterThan(0);
    for (const hello of dictServer.hellos) {
      expect(hello).toEqual({ version: { major: 3, minor: 2 }, valueType: 0, user: "", dictName: "auth" });
    }
  });
});
