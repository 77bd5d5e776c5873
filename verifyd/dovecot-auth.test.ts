import { describe, expect, it } from "vitest";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { Directory } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import type { SnapshotMeta } from "../core/directory/snapshot-store.js";
import type { DictLookupResult } from "../core/protocols/dict-replies.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import {
  answerAuthLookup,
  answerFromLiveUser,
  chooseBackend,
  type DovecotAuthSettings,
  expandTemplate,
  iterateAuthKeys,
  lookupName,
} from "./dovecot-auth.js";

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] },
  users: [
    testUser("gpapadop", {
      alternateAddresses: ["papadopoulos.georgios@cs.example.org"],
      passwordHash: "{SSHA}abcdefgh",
      quotaBytes: 2 * 1024 ** 3,
      uidNumber: 2001,
      gidNumber: 100,
      home: "/home/staff/gpapadop",
    }),
    testUser("jsmith", { passwordHash: "{PLAIN}pw", alternateStorage: "/alt/jsmith" }),
    testUser("lonely", { alternateStorage: "/alt/lonely", mailLocation: "mdbox:~/mdbox" }),
    testUser("nohash"),
    testUser("hosted", { mailHost: "imap2.cs.example.org", passwordHash: "{PLAIN}x" }),
    testUser("csd4713", { status: "inactive", passwordHash: "{PLAIN}old" }),
    testUser("twin1", { alternateAddresses: ["twin@cs.example.org"] }),
    testUser("twin2", { alternateAddresses: ["twin@cs.example.org"] }),
  ],
  groups: [testGroup("csstaff", { memberLogins: ["jsmith"] })],
};

const meta: SnapshotMeta = {
  format: 1,
  version: 7,
  contentHash: "sha256:test",
  createdAt: "2026-11-21T12:00:00.000Z",
  view: "internal",
  sources: [],
};
const fresh: CurrentSnapshot = { resolver: new Resolver(directory), meta, fresh: true };
const stale: CurrentSnapshot = { ...fresh, fresh: false };

const settings: DovecotAuthSettings = {
  username: "login",
  uid: 5000,
  gid: 5000,
  home: "/var/vmail/%d/%n",
  mailLocation: "mdbox:~/mdbox",
  proxyBackends: ["imap1.cs.example.org", "imap2.cs.example.org"],
};

function json(result: DictLookupResult): unknown {
  if (result.kind !== "found") throw new Error(`expected found, got ${result.kind}`);
  return JSON.parse(result.values[0] as string);
}

describe("userdb (dict name auth)", () => {
  it.each([
    {
      name: "directory uid, gid, home and quota in bytes",
      user: "gpapadop",
      want: {
        user: "gpapadop",
        uid: "2001",
        gid: "100",
        home: "/home/staff/gpapadop",
        quota_rule: "*:storage=2147483648B",
      },
    },
    {
      name: "an alternate address finds the same user",
      user: "papadopoulos.georgios@cs.example.org",
      want: {
        user: "gpapadop",
        uid: "2001",
        gid: "100",
        home: "/home/staff/gpapadop",
        quota_rule: "*:storage=2147483648B",
      },
    },
    {
      name: "configured uid/gid/home, ALT storage on the site mail location, no quota rule",
      user: "jsmith@cs.example.org",
      want: {
        user: "jsmith",
        uid: "5000",
        gid: "5000",
        home: "/var/vmail/cs.example.org/jsmith",
        mail: "mdbox:~/mdbox:ALT=/alt/jsmith",
      },
    },
    {
      name: "ALT storage on the user's own mail location",
      user: "lonely",
      want: {
        user: "lonely",
        uid: "5000",
        gid: "5000",
        home: "/var/vmail/cs.example.org/lonely",
        mail: "mdbox:~/mdbox:ALT=/alt/lonely",
      },
    },
    {
      name: "an extension is ignored",
      user: "jsmith+lists@cs.example.org",
      want: {
        user: "jsmith",
        uid: "5000",
        gid: "5000",
        home: "/var/vmail/cs.example.org/jsmith",
        mail: "mdbox:~/mdbox:ALT=/alt/jsmith",
      },
    },
  ])("$name", ({ user, want }) => {
    const answer = answerAuthLookup(`shared/userdb/${user}`, "auth", fresh, settings);
    expect(answer.kind).toBe("userdb");
    expect(json(answer.result)).toEqual(want);
  });

  it.each([
    { name: "unknown login", user: "nobody", detail: "not_found" },
    { name: "unknown address", user: "nobody@cs.example.org", detail: "not_found" },
    { name: "a domain we do not serve", user: "gpapadop@elsewhere.example", detail: "not_found" },
    { name: "a group address is no user", user: "csstaff@cs.example.org", detail: "not_found" },
    { name: "inactive user", user: "csd4713", detail: "inactive" },
    { name: "a sub-key", user: "gpapadop/quota", detail: "bad_name" },
  ])("not found: $name", ({ user, detail }) => {
    const answer = answerAuthLookup(`shared/userdb/${user}`, "auth", fresh, settings);
    expect(answer.result).toEqual({ kind: "not-found" });
    expect(answer.detail).toBe(detail);
  });

  it("the primary address as user name when username = address", () => {
    const answer = answerAuthLookup("shared/userdb/gpapadop", "auth", fresh, {
      ...settings,
      username: "address",
    });
    expect(json(answer.result)).toMatchObject({ user: "gpapadop@cs.example.org" });
  });

  it("leaves uid, gid, home and mail to Dovecot when neither the directory nor the config has them", () => {
    const bare = { ...settings, uid: 0, gid: 0, home: "", mailLocation: "" };
    expect(json(answerAuthLookup("shared/userdb/nohash", "auth", fresh, bare).result)).toEqual({
      user: "nohash",
    });
  });

  it("ALT storage on a maildir location is left out and reported (Dovecot would refuse the login)", () => {
    const maildir = { ...settings, mailLocation: "maildir:~/Maildir" };
    const answer = answerAuthLookup("shared/userdb/jsmith", "auth", fresh, maildir);
    expect(json(answer.result)).not.toHaveProperty("mail");
    expect(answer.problem).toMatch(/sdbox or mdbox/);
  });

  it("ALT storage without any mail location is left out and reported", () => {
    const answer = answerAuthLookup("shared/userdb/jsmith", "auth", fresh, { ...settings, mailLocation: "" });
    expect(json(answer.result)).not.toHaveProperty("mail");
    expect(answer.problem).toMatch(/alternate storage/);
  });
});

describe("passdb", () => {
  it("gives the hash and the canonical user name for a login or an address", () => {
    for (const name of ["gpapadop", "GPapadop", "papadopoulos.georgios@cs.example.org"]) {
      const answer = answerAuthLookup(`shared/passdb/${name}`, "auth", fresh, settings);
      expect(json(answer.result)).toEqual({ user: "gpapadop", password: "{SSHA}abcdefgh" });
    }
  });

  it("refuses an inactive user with nologin and a reason, not as unknown", () => {
    const answer = answerAuthLookup("shared/passdb/csd4713", "auth", fresh, settings);
    expect(json(answer.result)).toEqual({ user: "csd4713", nologin: "y", reason: "Account disabled." });
  });

  it("fails (temporary) for a user whose hash the snapshot does not hold: never a wrong password", () => {
    const answer = answerAuthLookup("shared/passdb/nohash", "auth", fresh, settings);
    expect(answer.result.kind).toBe("failed");
    expect(answer.detail).toBe("no_password");
  });

  it("answers not found for an unknown user from a fresh snapshot", () => {
    expect(answerAuthLookup("shared/passdb/nobody", "auth", fresh, settings).result).toEqual({
      kind: "not-found",
    });
  });
});

describe("proxy passdb (dict name proxy)", () => {
  it("sends a user to the mail host the directory names", () => {
    const answer = answerAuthLookup("shared/passdb/hosted", "proxy", fresh, settings);
    expect(json(answer.result)).toEqual({
      user: "hosted",
      proxy: "y",
      host: "imap2.cs.example.org",
      password: "{PLAIN}x",
    });
  });

  it("chooses a back-end by a stable hash, and lets the back-end check a password it does not hold", () => {
    const first = json(answerAuthLookup("shared/passdb/nohash", "proxy", fresh, settings).result);
    const again = json(answerAuthLookup("shared/passdb/NoHash", "proxy", fresh, settings).result);
    expect(first).toEqual(again);
    expect(first).toMatchObject({ proxy: "y", nopassword: "y" });
    expect(settings.proxyBackends).toContain((first as { host: string }).host);
  });

  it("spreads logins over the back-ends", () => {
    const hosts = new Set(Array.from({ length: 200 }, (_, i) => chooseBackend(`user${i}`, ["a", "b"])));
    expect(hosts).toEqual(new Set(["a", "b"]));
  });

  it("fails when no back-end is known", () => {
    const answer = answerAuthLookup("shared/passdb/nohash", "proxy", fresh, {
      ...settings,
      proxyBackends: [],
    });
    expect(answer.result.kind).toBe("failed");
    expect(answer.problem).toMatch(/proxy_backends/);
  });
});

describe("failure semantics", () => {
  it.each([
    { name: "no snapshot", snapshot: null, detail: "no_snapshot" },
    { name: "stale snapshot", snapshot: stale, detail: "stale" },
  ])("$name: failure for known and unknown users alike", ({ snapshot, detail }) => {
    for (const key of ["shared/passdb/gpapadop", "shared/userdb/gpapadop", "shared/userdb/nobody"]) {
      const answer = answerAuthLookup(key, "auth", snapshot, settings);
      expect(answer.result.kind).toBe("failed");
      expect(answer.detail).toBe(detail);
    }
    expect(iterateAuthKeys("shared/userdb/", 0, snapshot, settings).ok).toBe(false);
  });

  it("an address two entries claim is a failure, not a guess", () => {
    const answer = answerAuthLookup("shared/passdb/twin@cs.example.org", "auth", fresh, settings);
    expect(answer.result.kind).toBe("failed");
    expect(answer.detail).toBe("ambiguous");
  });

  it("a key outside passdb/ and userdb/ is a failure with a hint for the operator", () => {
    const answer = answerAuthLookup("shared/quota/gpapadop", "auth", fresh, settings);
    expect(answer.result.kind).toBe("failed");
    expect(answer.problem).toMatch(/dict-auth.conf.ext/);
  });
});

describe("iteration (doveadm -A, doveadm user '*')", () => {
  it("lists the active users below shared/userdb/ only", () => {
    const iteration = iterateAuthKeys("shared/userdb/", 0, fresh, settings);
    expect(iteration).toEqual({
      ok: true,
      keys: ["gpapadop", "jsmith", "lonely", "nohash", "hosted", "twin1", "twin2"].map(
        (u) => `shared/userdb/${u}`,
      ),
    });
  });

  it("honours max_rows and answers nothing for other paths", () => {
    expect(iterateAuthKeys("shared/userdb/", 2, fresh, settings)).toEqual({
      ok: true,
      keys: ["shared/userdb/gpapadop", "shared/userdb/jsmith"],
    });
    expect(iterateAuthKeys("shared/passdb/", 0, fresh, settings)).toEqual({ ok: true, keys: [] });
  });
});

describe("helpers", () => {
  it.each([
    { key: "shared/userdb/a@b.c", want: "a@b.c" },
    { key: "shared/passdb/login", want: "login" },
    { key: "shared/userdb/", want: null },
    { key: "shared/userdb/a/quota", want: null },
    { key: "priv/quota/storage", want: null },
  ])("lookupName($key)", ({ key, want }) => {
    expect(lookupName(key)).toBe(want);
  });

  it("expands %u %n %d and %%", () => {
    expect(expandTemplate("/v/%d/%n/%u/100%%", testUser("jsmith"), "JS")).toBe(
      "/v/cs.example.org/jsmith/JS/100%",
    );
  });

  it("answers a user found live like a snapshot user, marked live", () => {
    const answer = answerFromLiveUser("userdb", testUser("newbie", { quotaBytes: 1024 }), "auth", settings);
    expect(answer.detail).toBe("live_found");
    expect(json(answer.result)).toMatchObject({ user: "newbie", quota_rule: "*:storage=1024B" });
    const inactive = answerFromLiveUser("passdb", testUser("gone", { status: "inactive" }), "auth", settings);
    expect(json(inactive.result)).toMatchObject({ nologin: "y" });
  });
});
