/**
 * `emailng quota import|report|explain` against a real Dovecot 2.3.
 *
 * Dovecot runs the quota plugin (count backend) without quota_clone, so
 * all quotad knows comes from the import: mail is delivered over LMTP,
 * `doveadm -f tab quota get -A` prints every user's usage, and that output
 * is imported through the emailng command line (in-process, as `emailng`
 * would run it). A quotad already running on the same usage file sees the
 * import without a restart. report and explain then tell the same story
 * the daemon answers; a malformed file is refused and changes nothing.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CommanderError } from "commander";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { encodePolicyRequest } from "../../core/protocols/policy.js";
import { QUOTAD_PROGRAMS, type Quotad, startQuotad } from "../../quotad/program.js";
import { testUser } from "../harness/directory-builders.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { makeTempDir, removeTempDir, runCommand, waitFor } from "../harness/process.js";
import { connectLineClient } from "../wire/net-fixtures.js";

const ALICE_LIMIT = 3000;

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    testUser("alice", { quotaBytes: ALICE_LIMIT, alternateAddresses: ["alice.smith@cs.example.org"] }),
    testUser("bob", { quotaBytes: 1_000_000 }),
  ],
  groups: [],
};

async function emailng(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const cli = buildCli({
    io: { out: (text) => (out += text), err: (text) => (err += text) },
    programs: QUOTAD_PROGRAMS,
  });
  try {
    await cli.parseAsync(["node", "emailng", ...args]);
    return { code: 0, out, err };
  } catch (error) {
    if (error instanceof CommanderError) return { code: error.exitCode, out, err };
    throw error;
  }
}

describe("quota commands with a real Dovecot", () => {
  let dir: string;
  let configPath: string;
  let dovecot: Dovecot;
  let quotad: Quotad;
  let doveadmOutput: string;

  beforeAll(async () => {
    dir = makeTempDir("quotad-cli");
    chmodSync(dir, 0o755);
    const snapshotPath = join(dir, "snapshot.sqlite");
    writeSnapshot(snapshotPath, directory, { version: 3, view: "relay", sources: [] });
    configPath = join(dir, "emailng.toml");
    const toml = `
[snapshot]
path = "${snapshotPath}"
[quotad]
grace = "0"
[[quotad.listen]]
tcp = "127.0.0.1:0"
[quotad.usage]
path = "${join(dir, "usage.sqlite")}"
check_interval = "200ms"
`;
    writeFileSync(configPath, toml);
    const parsed = parseConfigText(toml);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    quotad = await startQuotad(parsed.config, pino({ level: "silent" }), { processMetrics: false });

    dovecot = await startDovecot({
      protocols: ["lmtp"],
      users: [
        { name: "alice", password: "pw", fields: { quota_rule: `*:bytes=${ALICE_LIMIT}` } },
        { name: "bob", password: "pw", fields: { quota_rule: "*:bytes=1000000" } },
      ],
      conf: `mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_grace = 0%%
}
`,
    });
    const deliver = (to: string, body: string) =>
      runCommand(
        "/usr/bin/swaks",
        [
          "--server",
          "127.0.0.1",
          "--port",
          String(dovecot.ports.lmtp),
          "--protocol",
          "LMTP",
          "--from",
          "s@client.test",
          "--to",
          to,
          "--body",
          body,
        ],
        { timeoutMs: 30_000 },
      );
    const line = `${"y".repeat(76)}\n`;
    for (let i = 0; i < 3; i++) await deliver("alice", line.repeat(12));
    await deliver("bob", "hello bob");
    const result = await dovecot.doveadm(["-f", "tab", "quota", "get", "-A"]);
    if (result.code !== 0) throw new Error(`doveadm quota get -A failed: ${result.stderr}`);
    doveadmOutput = result.stdout;
  });

  afterAll(async () => {
    await dovecot?.destroy();
    await quotad?.close();
    if (dir) removeTempDir(dir);
  });

  /** A value doveadm printed for a user: STORAGE in KiB, MESSAGE a count. */
  const doveadmValue = (user: string, type: "STORAGE" | "MESSAGE") => {
    const row = doveadmOutput
      .split("\n")
      .find((text) => text.startsWith(`${user}\t`) && text.includes(`\t${type}\t`));
    if (row === undefined) throw new Error(`no ${type} row for ${user} in:\n${doveadmOutput}`);
    return Number(row.split("\t")[3]);
  };
  const doveadmBytes = (user: string) => doveadmValue(user, "STORAGE") * 1024;

  it("refuses a malformed file and imports nothing", async () => {
    const file = join(dir, "broken.tsv");
    writeFileSync(file, `${doveadmOutput}alice\tUser quota\tSTORAGE\tlots\t3\t0\n`);
    const result = await emailng(["quota", "import", "--config", configPath, file]);
    expect(result.code).toBe(3);
    expect(result.err).toMatch(/broken\.tsv: line \d+: value "lots" is not a whole number/);
    expect(quotad.usage.store.read(["alice"])).toEqual(new Map());
  });

  it("imports doveadm's output, and the running quotad takes it up", async () => {
    const file = join(dir, "quota.tsv");
    writeFileSync(file, doveadmOutput);
    expect(await emailng(["quota", "import", "--config", configPath, "--dry-run", file])).toEqual({
      code: 0,
      out: "would import usage of 2 users\n",
      err: "",
    });
    expect(await emailng(["quota", "import", "--config", configPath, file])).toEqual({
      code: 0,
      out: "imported usage of 2 users into sqlite\n",
      err: "",
    });
    const alice = doveadmBytes("alice");
    expect(alice).toBeGreaterThanOrEqual(ALICE_LIMIT);
    await waitFor(
      async () => (await quotad.usage.store.read(["alice"])).get("alice")?.storageBytes === alice,
      {
        timeoutMs: 10_000,
        what: "quotad to reload the imported usage",
      },
    );
    expect((await quotad.usage.store.read(["bob"])).get("bob")).toMatchObject({
      storageBytes: doveadmBytes("bob"),
      messages: 1,
    });
    // And answers from it.
    const bound = quotad.addresses()[0];
    if (bound?.kind !== "tcp") throw new Error("expected TCP");
    const client = await connectLineClient({ host: "127.0.0.1", port: bound.port });
    client.send(
      Buffer.from(
        encodePolicyRequest({
          request: "smtpd_access_policy",
          protocol_state: "RCPT",
          recipient: "alice.smith@cs.example.org",
          size: "0",
        }),
      ).toString(),
    );
    expect(await client.nextLine()).toBe("action=552 5.2.2 Mailbox is full");
    client.socket.destroy();
  });

  it("reports alice over her limit, in text and JSON", async () => {
    const text = await emailng(["quota", "report", "--config", configPath]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(
      /Over their limit \(refused\) \(1\):\n {2}alice: [0-9.]+ KiB of 2\.9 KiB \d+%, (\d+) messages, updated \d+s ago\n/,
    );
    expect(text.out).toContain(`%, ${doveadmValue("alice", "MESSAGE")} messages, updated`);
    const json = await emailng(["quota", "report", "--config", configPath, "--json", "--top", "1"]);
    const report = JSON.parse(json.out) as {
      over: { username: string }[];
      top: { username: string }[];
      records: number;
    };
    expect(report.records).toBe(2);
    expect(report.over.map((row) => row.username)).toEqual(["alice"]);
    expect(report.top.map((row) => row.username)).toEqual(["alice"]);
  });

  it("explains an address: resolution, mailbox, usage, limit and the reply", async () => {
    const text = await emailng(["quota", "explain", "--config", configPath, "alice.smith@cs.example.org"]);
    expect(text.code).toBe(0);
    expect(text.out).toContain("alice.smith@cs.example.org at RCPT, size 0 (snapshot version 3 of ");
    expect(text.out).toMatch(
      /alice\.smith@cs\.example\.org: mailbox of alice \(Dovecot user "alice"\): [0-9.]+ KiB used, (\d+) messages, updated \d+s ago; 2\.9 KiB limit \+ 0 B grace → no room: over quota/,
    );
    expect(text.out).toContain(`KiB used, ${doveadmValue("alice", "MESSAGE")} messages, updated`);
    expect(text.out).toContain("  reply: action=552 5.2.2 Mailbox is full\n");

    const bob = await emailng([
      "quota",
      "explain",
      "--config",
      configPath,
      "--json",
      "--size",
      "2000000",
      "bob@cs.example.org",
    ]);
    const explanation = JSON.parse(bob.out) as {
      decision: { kind: string };
      reply: string;
      resolution: string;
    };
    expect(explanation).toMatchObject({
      resolution: "mailbox",
      decision: { kind: "too-large" },
      reply: "action=552 5.3.4 Message is too big for this mailbox",
    });

    const unknown = await emailng(["quota", "explain", "--config", configPath, "nobody@cs.example.org"]);
    expect(unknown.out).toContain("  resolves to: unknown\n");
    expect(unknown.out).toContain("  reply: action=DUNNO\n");
  });

  it("wants exactly one address", async () => {
    expect((await emailng(["quota", "explain", "--config", configPath])).code).toBe(1);
    expect(
      (await emailng(["quota", "explain", "--config", configPath, "a@b.example", "c@d.example"])).code,
    ).toBe(1);
  });
});
