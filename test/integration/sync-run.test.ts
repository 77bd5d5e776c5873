// `emailng sync run` end to end, through the CLI in-process, against a real
// slapd with the sample directory: publish, nothing changed, dry run after an
// LDAP change, incremental publish, a legacy alias file merged in, the safety
// rail (refused, then --force), exports, the conflict report, the lock, and
// slapd stopped mid-way leaving the published snapshot untouched; then a
// relay pulling the result through `sync pull` from a snapshot server.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { Resolver } from "../../core/directory/resolver.js";
import { readSnapshot, readSnapshotMeta } from "../../core/directory/snapshot-store.js";
import { createLogger } from "../../core/log/logger.js";
import { startSnapshotServer } from "../../sync-agent/replicate.js";
import { makeTempDir, removeTempDir, runChecked, sleep } from "../harness/process.js";
import { type Slapd, startSlapd } from "../harness/slapd.js";

let slapd: Slapd;
let work: string;
let snapshotPath: string;

async function emailng(args: string[]) {
  let out = "";
  let err = "";
  const cli = buildCli({ io: { out: (text) => (out += text), err: (text) => (err += text) } });
  let code = 0;
  try {
    await cli.parseAsync(args, { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode;
  }
  return { code, out, err };
}

/** Writes a config file; `extra` is appended (more tables, or keys overriding nothing already set). */
function writeConfig(
  name: string,
  options: { usersFilter?: string; aliasFile?: string; extra?: string } = {},
): string {
  const path = join(work, name);
  writeFileSync(
    path,
    [
      "[log]",
      'level = "fatal"',
      "[ldap]",
      `urls = ["${slapd.url}"]`,
      `bind_dn = "${slapd.readerDn}"`,
      `bind_password_file = "${join(work, "bind-password")}"`,
      `base_dn = "${slapd.baseDn}"`,
      'timeout = "2s"',
      'connect_timeout = "1s"',
      "page_size = 5",
      "[ldap.users]",
      `filter = "${options.usersFilter ?? "(objectClass=inetMailUser)"}"`,
      "[snapshot]",
      `path = "${snapshotPath}"`,
      "[directory]",
      'primary_domain = "cs.example.org"',
      'alias_domains = ["example.org"]',
      'virtual_domains = ["rise.example"]',
      "[sync]",
      `lock_file = "${join(work, "sync.lock")}"`,
      "max_drop_percent = 20",
      "[sync.legacy]",
      `alias_files = ["${options.aliasFile ?? join(work, "aliases")}"]`,
      "[sync.export]",
      `directory = "${join(work, "maps")}"`,
      options.extra ?? "",
      "",
    ].join("\n"),
  );
  return path;
}

async function ldapModify(ldif: string): Promise<void> {
  await runChecked(
    "/usr/bin/ldapmodify",
    ["-x", "-H", slapd.url, "-D", slapd.adminDn, "-w", slapd.adminPassword],
    {
      input: ldif,
    },
  );
}

beforeAll(async () => {
  slapd = await startSlapd();
  work = makeTempDir("emailng-sync-run-");
  snapshotPath = join(work, "snapshot.sqlite");
  writeFileSync(join(work, "bind-password"), `${slapd.readerPassword}\n`, { mode: 0o600 });
  writeFileSync(
    join(work, "aliases"),
    "# legacy aliases still kept on the old host\nwebmaster: gpapadop, outside@partner.example\nbroken line without colon\n",
  );
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(work, "maps"));
});

afterAll(async () => {
  await slapd?.destroy();
  if (work) removeTempDir(work);
});

describe("emailng sync run", () => {
  it("publishes a snapshot from LDAP and the legacy alias file, with exports and problems reported", async () => {
    const config = writeConfig("main.toml");
    const run = await emailng(["sync", "run", "--config", config]);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^sync \(full, LDAP full\): published snapshot version 1 sha256:[0-9a-f]{64}$/m);
    expect(run.out).toContain("aliases:3"); // the malformed legacy line, by file:line
    const snapshot = readSnapshot(snapshotPath);
    expect(snapshot.meta.version).toBe(1);
    expect(snapshot.meta.watermark).toMatch(/^\d{14}/);
    const resolver = new Resolver(snapshot.directory);
    expect(resolver.resolve("gpapadop@cs.example.org").kind).toBe("mailbox");
    expect(resolver.resolve("csd4713@cs.example.org").kind).toBe("inactive");
    const webmaster = resolver.resolve("webmaster@cs.example.org");
    expect(webmaster.kind).toBe("group");
    if (webmaster.kind === "group") {
      expect(webmaster.expansion.users.map((user) => user.login)).toEqual(["gpapadop"]);
      expect(webmaster.expansion.externalAddresses).toEqual(["outside@partner.example"]);
    }
    const recipients = readFileSync(join(work, "maps/relay_recipients"), "utf8");
    expect(recipients).toMatch(/^gpapadop@cs\.example\.org\s+OK$/m);
    expect(recipients).toMatch(/^webmaster@cs\.example\.org\s+OK$/m);
    expect(recipients).not.toMatch(/^csd4713@/m);
    expect(readFileSync(join(work, "maps/virtual_aliases"), "utf8")).toMatch(
      /^webmaster@cs\.example\.org\s+\S*gpapadop@cs\.example\.org/m,
    );
  });

  it("publishes nothing when nothing changed, but records that the sources confirmed it (freshness)", async () => {
    const before = readSnapshotMeta(snapshotPath);
    const config = writeConfig("main.toml");
    // LDAP timestamps have whole seconds: the last change must be > 2 s old
    // when this run records it, for the incremental fast path below.
    await sleep(2_100);
    const run = await emailng(["sync", "run", "--config", config]);
    expect(run.code).toBe(0);
    expect(run.out).toContain("no change; snapshot version 1 stays");
    const after = readSnapshotMeta(snapshotPath);
    expect(after).toMatchObject({
      version: 1,
      contentHash: before?.contentHash,
      watermark: before?.watermark,
    });
    expect(Date.parse(after?.createdAt ?? "")).toBeGreaterThan(Date.parse(before?.createdAt ?? ""));
    expect(readSnapshot(snapshotPath).meta).toEqual(after); // the content hash still verifies

    // Incremental with no LDAP change and the same legacy files: the fast path, no rebuild.
    const incremental = await emailng(["sync", "run", "--incremental", "--json", "--config", config]);
    expect(incremental.code).toBe(0);
    expect(JSON.parse(incremental.out)).toMatchObject({
      status: "unchanged",
      ldap: "incremental",
      conflicts: null,
    });
    expect(Date.parse(readSnapshotMeta(snapshotPath)?.createdAt ?? "")).toBeGreaterThan(
      Date.parse(after?.createdAt ?? ""),
    );

    // A changed legacy file is an input change: the incremental run rebuilds and publishes.
    writeFileSync(
      join(work, "aliases"),
      `${readFileSync(join(work, "aliases"), "utf8")}postmaster: gpapadop\n`,
    );
    const changed = await emailng(["sync", "run", "--incremental", "--json", "--config", config]);
    expect(JSON.parse(changed.out)).toMatchObject({ status: "published", version: 2 });
    expect(new Resolver(readSnapshot(snapshotPath).directory).resolve("postmaster@cs.example.org").kind).toBe(
      "group",
    );
  });

  it("--dry-run shows an LDAP change and publishes nothing; --incremental then publishes it", async () => {
    await ldapModify(
      [
        "dn: uid=jsmith,ou=people,dc=cs,dc=example,dc=org",
        "changetype: modify",
        "replace: mailUserStatus",
        "mailUserStatus: inactive",
        "-",
        "",
        "dn: uid=ekaragia,ou=people,dc=cs,dc=example,dc=org",
        "changetype: modify",
        "add: mailAlternateAddress",
        "mailAlternateAddress: eleni.karagianni.new@cs.example.org",
        "-",
        "",
      ].join("\n"),
    );
    const config = writeConfig("main.toml");
    const dry = await emailng(["sync", "run", "--dry-run", "--config", config]);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain("dry run, nothing published");
    expect(dry.out).toContain("jsmith");
    expect(dry.out).toContain("eleni.karagianni.new@cs.example.org");
    expect(readSnapshotMeta(snapshotPath)?.version).toBe(2);

    const incremental = await emailng(["sync", "run", "--incremental", "--json", "--config", config]);
    expect(incremental.code).toBe(0);
    const report = JSON.parse(incremental.out) as { status: string; ldap: string; version: number };
    expect(report).toMatchObject({ status: "published", ldap: "incremental", version: 3 });
    const resolver = new Resolver(readSnapshot(snapshotPath).directory);
    expect(resolver.resolve("jsmith@cs.example.org").kind).toBe("inactive");
    expect(resolver.resolve("eleni.karagianni.new@cs.example.org").kind).toBe("mailbox");
    expect(readFileSync(join(work, "maps/relay_recipients"), "utf8")).toContain("eleni.karagianni.new@");
  });

  it("refuses a snapshot that drops too many addresses unless forced", async () => {
    const before = readSnapshotMeta(snapshotPath);
    const narrow = writeConfig("narrow.toml", { usersFilter: "(&(objectClass=inetMailUser)(uid=gpapadop))" });
    const refused = await emailng(["sync", "run", "--config", narrow]);
    expect(refused.code).toBe(4);
    expect(refused.err).toContain("--force");
    expect(readSnapshotMeta(snapshotPath)).toEqual(before);

    const forced = await emailng(["sync", "run", "--force", "--config", narrow]);
    expect(forced.code).toBe(0);
    expect(readSnapshotMeta(snapshotPath)?.version).toBe((before?.version ?? 0) + 1);
    // Back to the whole directory (a growth is never refused).
    expect((await emailng(["sync", "run", "--config", writeConfig("main.toml")])).code).toBe(0);
  });

  it("reports conflicts as text and JSON", async () => {
    const config = writeConfig("main.toml");
    const json = await emailng(["sync", "conflicts", "--json", "--config", config]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.out) as { total: number; byKind: Record<string, number> };
    expect(report.total).toBe(Object.values(report.byKind).reduce((sum, count) => sum + count, 0));
    const text = await emailng(["sync", "conflicts", "--config", config]);
    expect(text.code).toBe(0);
    expect(text.out.length).toBeGreaterThan(0);
  });

  it("does not run while another job holds the lock", async () => {
    writeFileSync(join(work, "sync.lock"), "1\n");
    try {
      const run = await emailng(["sync", "run", "--config", writeConfig("main.toml")]);
      expect(run.code).toBe(3);
      expect(run.err).toContain("another sync-agent job is running");
    } finally {
      const { rmSync } = await import("node:fs");
      rmSync(join(work, "sync.lock"), { force: true });
    }
  });

  it("keeps the published snapshot and exits 3 when a legacy file cannot be read", async () => {
    const before = readSnapshotMeta(snapshotPath);
    const missing = join(work, "aliases-on-a-lost-nfs-mount");
    const run = await emailng(["sync", "run", "--config", writeConfig("lost.toml", { aliasFile: missing })]);
    expect(run.code).toBe(3);
    expect(run.err).toContain(`cannot read legacy file ${missing} (ENOENT); nothing was published`);
    expect(readSnapshotMeta(snapshotPath)).toEqual(before);
  });

  it("repairs a damaged snapshot with the same content; refuses other content over it without --force", async () => {
    const damage = () => {
      const damaged = new Database(snapshotPath);
      damaged.prepare("UPDATE users SET quota_bytes = 1 WHERE login = 'gpapadop'").run();
      damaged.close();
      expect(() => readSnapshot(snapshotPath)).toThrow(/content hash/);
    };
    damage();
    const before = readSnapshotMeta(snapshotPath);
    const repaired = await emailng(["sync", "run", "--config", writeConfig("main.toml")]);
    expect(repaired.code).toBe(0);
    expect(readSnapshot(snapshotPath).meta).toMatchObject({
      version: (before?.version ?? 0) + 1,
      contentHash: before?.contentHash,
    });

    damage();
    const damagedMeta = readSnapshotMeta(snapshotPath);
    const narrow = writeConfig("narrow-damaged.toml", {
      usersFilter: "(&(objectClass=inetMailUser)(uid=gpapadop))",
    });
    const refused = await emailng(["sync", "run", "--config", narrow]);
    expect(refused.code).toBe(4);
    expect(refused.err).toContain("cannot be read, so the safety rail cannot compare");
    expect(readSnapshotMeta(snapshotPath)).toEqual(damagedMeta);
    expect((await emailng(["sync", "run", "--config", writeConfig("main.toml")])).code).toBe(0);
    expect(readSnapshot(snapshotPath).meta.contentHash).toBe(before?.contentHash);
  });

  it("keeps the published snapshot and exits 3 when slapd is down", async () => {
    const before = readSnapshotMeta(snapshotPath);
    const mapsBefore = readFileSync(join(work, "maps/relay_recipients"), "utf8");
    await slapd.stop();
    try {
      for (const mode of [[], ["--incremental"]]) {
        const run = await emailng(["sync", "run", ...mode, "--config", writeConfig("main.toml")]);
        expect(run.code).toBe(3);
        expect(run.err).toMatch(/^sync run failed: .*LDAP/m);
        expect(readSnapshotMeta(snapshotPath)).toEqual(before);
        expect(readFileSync(join(work, "maps/relay_recipients"), "utf8")).toBe(mapsBefore);
      }
    } finally {
      await slapd.restart();
    }
  });

  it("a relay pulls the published snapshot through sync pull (relay view: no password hashes)", async () => {
    const token = "pull-token-for-tests";
    writeFileSync(join(work, "token"), `${token}\n`, { mode: 0o600 });
    const server = await startSnapshotServer({
      snapshotPath,
      listen: { host: "127.0.0.1", port: 0 },
      token,
      log: createLogger({ program: "test", level: "error" }),
    });
    try {
      const relaySnapshot = join(work, "relay.sqlite");
      const relayConfig = join(work, "relay.toml");
      writeFileSync(
        relayConfig,
        [
          "[log]",
          'level = "fatal"',
          "[snapshot]",
          `path = "${relaySnapshot}"`,
          "[sync]",
          `lock_file = "${join(work, "relay.lock")}"`,
          "[sync.pull]",
          `from = "${server.url}"`,
          `token_file = "${join(work, "token")}"`,
          "",
        ].join("\n"),
      );
      const first = await emailng(["sync", "pull", "--config", relayConfig]);
      expect(first.code).toBe(0);
      expect(first.out).toMatch(/^updated: snapshot version \d+ sha256:/);
      const relay = readSnapshot(relaySnapshot);
      expect(relay.meta.view).toBe("relay");
      expect(relay.directory.users.some((user) => user.passwordHash !== undefined)).toBe(false);
      expect(new Resolver(relay.directory).resolve("webmaster@cs.example.org").kind).toBe("group");
      // The internal host confirms its snapshot again: the relay's copy takes over the new time on a 304.
      const relayBefore = readSnapshotMeta(relaySnapshot);
      expect((await emailng(["sync", "run", "--config", writeConfig("main.toml")])).out).toContain(
        "no change",
      );
      expect((await emailng(["sync", "pull", "--config", relayConfig])).out).toMatch(/^unchanged:/);
      const relayAfter = readSnapshotMeta(relaySnapshot);
      expect(relayAfter?.contentHash).toBe(relayBefore?.contentHash);
      expect(relayAfter?.createdAt).toBe(readSnapshotMeta(snapshotPath)?.createdAt);
      expect(Date.parse(relayAfter?.createdAt ?? "")).toBeGreaterThan(
        Date.parse(relayBefore?.createdAt ?? ""),
      );
    } finally {
      await server.close();
    }
    expect(existsSync(join(work, "relay.lock"))).toBe(false);
  });
});
