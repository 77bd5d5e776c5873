import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { Directory } from "./model.js";
import {
  canonicalDirectory,
  contentHash,
  readSnapshot,
  readSnapshotMeta,
  relayView,
  writeSnapshot,
} from "./snapshot-store.js";

const dir = mkdtempSync(join(tmpdir(), "emailng-snapshot-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  users: [
    {
      login: "gpapadop",
      source: "uid=gpapadop,ou=people,dc=cs,dc=example,dc=org",
      primaryAddress: "gpapadop@cs.example.org",
      alternateAddresses: ["papadopoulos.georgios@cs.example.org"],
      forwardingAddresses: [],
      quotaBytes: 5368709120,
      status: "active",
      home: "/home/gpapadop",
      uidNumber: 5001,
      gidNumber: 2001,
      mailHost: "back1.cs.example.org",
      passwordHash: "{SSHA}secret",
    },
    {
      login: "csd4713",
      source: "uid=csd4713,ou=people,dc=cs,dc=example,dc=org",
      primaryAddress: "csd4713@cs.example.org",
      alternateAddresses: [],
      forwardingAddresses: ["elsewhere@gmail.example"],
      quotaBytes: null,
      status: "inactive",
    },
  ],
  groups: [
    {
      name: "csall",
      source: "cn=csall,ou=groups,dc=cs,dc=example,dc=org",
      addresses: ["csall@cs.example.org", "everyone@cs.example.org"],
      memberLogins: [],
      memberGroups: ["csstaff"],
      memberAddresses: [],
      posting: { logins: [], groups: ["csstaff"] },
      status: "active",
    },
  ],
};

describe("snapshot store", () => {
  it("round-trips a directory with its metadata", () => {
    const path = join(dir, "roundtrip.sqlite");
    const meta = writeSnapshot(path, directory, {
      version: 7,
      view: "internal",
      sources: [{ name: "ldap", users: 2, groups: 1, skipped: 0 }],
      now: new Date("2026-11-21T10:00:00Z"),
    });
    const loaded = readSnapshot(path);
    expect(loaded.meta).toEqual(meta);
    expect(loaded.meta).toMatchObject({
      version: 7,
      createdAt: "2026-11-21T10:00:00.000Z",
      view: "internal",
    });
    expect(loaded.directory).toEqual(directory);
    expect(readSnapshotMeta(path)).toEqual(meta);
  });

  it("hashes piece by piece exactly the bytes of the canonical JSON (hashes of existing snapshots still match)", () => {
    const whole = `sha256:${createHash("sha256").update(canonicalDirectory(directory)).digest("hex")}`;
    expect(contentHash(directory)).toBe(whole);
    const empty = { ...directory, users: [], groups: [] };
    expect(contentHash(empty)).toBe(
      `sha256:${createHash("sha256").update(canonicalDirectory(empty)).digest("hex")}`,
    );
  });

  it("hashes content, not source order", () => {
    const reordered: Directory = { ...directory, users: [...directory.users].reverse() };
    expect(contentHash(reordered)).toBe(contentHash(directory));
    const changed: Directory = {
      ...directory,
      users: directory.users.map((u) => ({ ...u, quotaBytes: 1 })),
    };
    expect(contentHash(changed)).not.toBe(contentHash(directory));
  });

  it("writes a relay view without password hashes, homes or ids", () => {
    const path = join(dir, "relay.sqlite");
    writeSnapshot(path, directory, { version: 1, view: "relay", sources: [] });
    const loaded = readSnapshot(path);
    expect(loaded.meta.view).toBe("relay");
    const user = loaded.directory.users.find((u) => u.login === "gpapadop")!;
    expect(user.passwordHash).toBeUndefined();
    expect(user.home).toBeUndefined();
    expect(user.uidNumber).toBeUndefined();
    expect(user.mailHost).toBe("back1.cs.example.org");
    expect(loaded.directory).toEqual(relayView(directory));
    const raw = new Database(path, { readonly: true });
    const hashes = raw.prepare("SELECT count(*) AS n FROM users WHERE password_hash IS NOT NULL").get();
    raw.close();
    expect(hashes).toEqual({ n: 0 });
  });

  it("keeps the internal view (password hashes) from other users: mode 0640; the relay view 0644", () => {
    const internal = join(dir, "internal-mode.sqlite");
    const relay = join(dir, "relay-mode.sqlite");
    writeSnapshot(internal, directory, { version: 1, view: "internal", sources: [] });
    writeSnapshot(relay, directory, { version: 1, view: "relay", sources: [] });
    expect(statSync(internal).mode & 0o777).toBe(0o640);
    expect(statSync(relay).mode & 0o777).toBe(0o644);
  });

  it("replaces the old file atomically: an open reader keeps the old version", () => {
    const path = join(dir, "swap.sqlite");
    writeSnapshot(path, directory, { version: 1, view: "internal", sources: [] });
    const oldReader = new Database(path, { readonly: true });
    writeSnapshot(path, { ...directory, groups: [] }, { version: 2, view: "internal", sources: [] });
    expect(oldReader.prepare("SELECT count(*) AS n FROM groups").get()).toEqual({ n: 1 });
    oldReader.close();
    expect(readSnapshot(path).meta.version).toBe(2);
    expect(readSnapshot(path).directory.groups).toEqual([]);
  });

  it("refuses a file whose content does not match its hash", () => {
    const path = join(dir, "tampered.sqlite");
    writeSnapshot(path, directory, { version: 1, view: "internal", sources: [] });
    const db = new Database(path);
    db.prepare("UPDATE users SET status = 'active' WHERE login = 'csd4713'").run();
    db.close();
    expect(() => readSnapshot(path)).toThrow(/content hash/);
  });

  it("refuses a file that is not a snapshot", () => {
    const path = join(dir, "garbage.sqlite");
    writeFileSync(path, "not sqlite at all");
    expect(() => readSnapshot(path)).toThrow();
    expect(readSnapshotMeta(join(dir, "missing.sqlite"))).toBeNull();
  });
});
