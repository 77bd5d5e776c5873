/**
 * quotad end to end, between a real Dovecot 2.3 back-end and a real Postfix
 * 3.7 relay.
 *
 * Dovecot runs the quota plugin (count backend, vsizes, 10% grace) with
 * quota_clone pointing at quotad's dict feed:
 *
 *     quota_clone_dict = proxy:<dir>/quotad-dict.sock:quotaclone
 *
 * Messages of about 1 KiB are delivered to alice (limit 4000 bytes) over
 * LMTP until Dovecot refuses one; the grace lets the last accepted one take
 * her over the limit. quotad must then hold exactly the usage Dovecot
 * reports. Postfix calls quotad as the README tells administrators to:
 *
 *     smtpd_recipient_restrictions = reject_unauth_destination,
 *         check_policy_service unix:<dir>/quotad.sock
 *     smtpd_end_of_data_restrictions = check_policy_service unix:<dir>/quotad.sock
 *
 * and swaks (or a few raw SMTP lines where SIZE= is needed) shows: alice,
 * her alternate address, a two-step forward chain to her and a group with
 * her in it (group_policy = any) refused at RCPT with 552 5.2.2; bob
 * accepted and relayed; a message bigger than carol's remaining space
 * refused at RCPT when MAIL FROM gave SIZE=, and at END-OF-MESSAGE when it
 * did not; after a restart quotad still refuses alice, and with
 * group_policy = all the group is accepted again. A forward-only address to
 * another domain is never checked.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { type Quotad, startQuotad } from "../../quotad/program.js";
import { testGroup, testUser } from "../harness/directory-builders.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir, runCommand, waitFor } from "../harness/process.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";

const ALICE_LIMIT = 4000;
const CAROL_LIMIT = 6000;
const BOB_LIMIT = 1_000_000;

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    testUser("alice", { quotaBytes: ALICE_LIMIT, alternateAddresses: ["alice.smith@cs.example.org"] }),
    testUser("bob", { quotaBytes: BOB_LIMIT }),
    testUser("carol", { quotaBytes: CAROL_LIMIT }),
    testUser("fwd1", { forwardingAddresses: ["alice@cs.example.org"] }),
    testUser("fwd2", { forwardingAddresses: ["fwd1@cs.example.org"] }),
    testUser("away", { quotaBytes: 1, forwardingAddresses: ["away@elsewhere.example"] }),
  ],
  groups: [testGroup("team", { memberLogins: ["alice", "bob"] })],
};

/** One message as swaks sends it with --data: about 1 KiB once Dovecot adds its headers. */
function message(subject: string, bodyBytes: number): string {
  const line = `${"x".repeat(70)}\r\n`;
  const body = line.repeat(Math.ceil(bodyBytes / line.length)).slice(0, bodyBytes);
  return `From: sender@client.test\r\nTo: someone@cs.example.org\r\nSubject: ${subject}\r\n\r\n${body}\r\n`;
}

/** A bare SMTP conversation, for MAIL FROM with SIZE= (swaks has no option for it). */
async function smtpReplies(port: number, commands: string[]): Promise<string[]> {
  const socket = connect({ host: "127.0.0.1", port });
  let buffer = "";
  const replies: string[] = [];
  const nextReply = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no SMTP reply; got ${JSON.stringify(buffer)}`)),
        20_000,
      );
      const check = () => {
        const match = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffer);
        if (match) {
          const end = (match.index ?? 0) + match[0].length;
          const reply = buffer.slice(match.index, end).trim();
          buffer = buffer.slice(end);
          clearTimeout(timer);
          socket.off("data", onData);
          resolve(reply);
        }
      };
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString("latin1");
        check();
      };
      socket.on("data", onData);
      check();
    });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    replies.push(await nextReply());
    for (const command of commands) {
      socket.write(`${command}\r\n`);
      replies.push(await nextReply());
    }
  } finally {
    socket.destroy();
  }
  return replies;
}

describe("quotad between a real Dovecot and a real Postfix", () => {
  let dir: string;
  let dovecot: Dovecot;
  let postfix: Postfix;
  let sink: SmtpSink;
  let quotad: Quotad;
  let policySocket: string;
  let configText: string;

  const startWith = async (groupPolicy: string) => {
    const parsed = parseConfigText(configText.replace("GROUP_POLICY", groupPolicy));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    quotad = await startQuotad(parsed.config, pino({ level: "silent" }), { processMetrics: false });
  };

  const lmtp = async (to: string, data: string) => {
    const file = join(dir, "lmtp-message.eml");
    writeFileSync(file, data);
    const result = await runCommand(
      "/usr/bin/swaks",
      [
        "--server",
        "127.0.0.1",
        "--port",
        String(dovecot.ports.lmtp),
        "--protocol",
        "LMTP",
        "--from",
        "sender@client.test",
        "--to",
        to,
        "--data",
        `@${file}`,
      ],
      { timeoutMs: 30_000 },
    );
    return result.stdout + result.stderr;
  };

  /** Storage in bytes as Dovecot's quota plugin counts it (doveadm prints KiB, rounded up). */
  const dovecotKib = async (user: string): Promise<number> => {
    const result = await dovecot.doveadm(["-f", "tab", "quota", "get", "-u", user]);
    const storage = result.stdout.split("\n").find((line) => line.split("\t")[1] === "STORAGE");
    if (storage === undefined) throw new Error(`no STORAGE line: ${result.stdout}${result.stderr}`);
    return Number(storage.split("\t")[2]);
  };

  const usageOf = async (user: string) => (await quotad.usage.store.read([user])).get(user);

  beforeAll(async () => {
    dir = makeTempDir("quotad-e2e");
    // Postfix (postfix), Dovecot's mail processes (nobody) and auth must reach the sockets.
    chmodSync(dir, 0o755);
    const snapshotPath = join(dir, "snapshot.sqlite");
    writeSnapshot(snapshotPath, directory, {
      version: 1,
      view: "relay",
      sources: [{ name: "test", users: directory.users.length, groups: 1, skipped: 0 }],
    });
    policySocket = join(dir, "quotad.sock");
    const feedSocket = join(dir, "quotad-dict.sock");
    configText = `
[snapshot]
path = "${snapshotPath}"
[quotad]
grace = "10%"
group_policy = "GROUP_POLICY"
[[quotad.listen]]
unix = "${policySocket}"
mode = "0660"
group = "postfix"
[quotad.usage]
path = "${join(dir, "usage.sqlite")}"
[[quotad.feed.listen]]
unix = "${feedSocket}"
mode = "0660"
group = "nogroup"
`;
    await startWith("any");

    dovecot = await startDovecot({
      protocols: ["lmtp"],
      users: [
        { name: "alice", password: "pw", fields: { quota_rule: `*:bytes=${ALICE_LIMIT}` } },
        { name: "bob", password: "pw", fields: { quota_rule: `*:bytes=${BOB_LIMIT}` } },
        { name: "carol", password: "pw", fields: { quota_rule: `*:bytes=${CAROL_LIMIT}` } },
      ],
      conf: `mail_plugins = $mail_plugins quota quota_clone
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_grace = 10%%
  quota_clone_dict = proxy:${feedSocket}:quotaclone
}
`,
    });

    sink = await startSmtpSink();
    postfix = await startPostfix({
      mainCf: {
        relay_domains: "cs.example.org",
        relayhost: `[127.0.0.1]:${sink.port}`,
        smtpd_recipient_restrictions: `reject_unauth_destination, check_policy_service unix:${policySocket}`,
        smtpd_end_of_data_restrictions: `check_policy_service unix:${policySocket}`,
        // The swaks client is an outside MTA, not a trusted network.
        mynetworks: "192.0.2.1/32",
      },
    });
  });

  afterAll(async () => {
    await postfix?.destroy();
    await sink?.close();
    await dovecot?.destroy();
    await quotad?.close();
    if (dir) removeTempDir(dir);
  });

  it("follows Dovecot's usage through quota_clone while alice's mailbox fills up", async () => {
    let accepted = 0;
    let refused = "";
    for (let i = 1; i <= 10 && refused === ""; i++) {
      const transcript = await lmtp("alice", message(`fill ${i}`, 700));
      if (/<-\s+250 2\.0\.0 <alice>/.test(transcript)) {
        accepted += 1;
        // quota_clone writes when the LMTP session ends.
        await waitFor(async () => (await usageOf("alice"))?.messages === accepted, {
          timeoutMs: 15_000,
          what: `quotad to see ${accepted} messages for alice`,
          logPaths: [dovecot.logPath],
        });
      } else refused = transcript;
    }
    expect(refused, "Dovecot never refused a message for alice").toMatch(/552 5\.2\.2 .*Quota exceeded/);
    const usage = await usageOf("alice");
    // The grace let the last accepted message take her over the limit.
    expect(usage?.storageBytes).toBeGreaterThan(ALICE_LIMIT);
    expect(Math.ceil((usage?.storageBytes ?? 0) / 1024)).toBe(await dovecotKib("alice"));
    expect(usage?.messages).toBe(accepted);
    // Read back through the feed, as an administrator would.
    const readBack = await dovecot.doveadm([
      "dict",
      "get",
      "-u",
      "alice",
      `proxy:${join(dir, "quotad-dict.sock")}:quotaclone`,
      "priv/quota/storage",
    ]);
    expect(readBack.stdout.trim()).toBe(String(usage?.storageBytes));

    expect(await lmtp("carol", message("carol 1", 700))).toMatch(/250 2\.0\.0 <carol>/);
    await waitFor(async () => (await usageOf("carol"))?.messages === 1, {
      timeoutMs: 15_000,
      what: "quotad to see carol's first message",
    });
  });

  describe("the relay", () => {
    const swaks = (to: string, subject: string) =>
      postfix.swaks([
        "--from",
        "sender@client.test",
        "--to",
        to,
        "--header",
        `Subject: ${subject}`,
        "--body",
        "quotad end-to-end",
      ]);

    it.each([
      "alice@cs.example.org",
      "alice.smith@cs.example.org",
      "ALICE+lists@cs.example.org",
      "fwd2@cs.example.org",
      "team@cs.example.org",
    ])("refuses %s at RCPT", async (to) => {
      const { transcript } = await swaks(to, `refused ${to}`);
      expect(transcript).toMatch(/<\*\* 552 5\.2\.2 <[^>]+>: Recipient address rejected: Mailbox is full/);
    });

    it("accepts bob and relays the message", async () => {
      const { transcript } = await swaks("bob@cs.example.org", "for bob");
      expect(transcript).toMatch(/<-\s+250 2\.0\.0 Ok: queued/);
      await waitFor(() => sink.messages.some((m) => m.data.includes("Subject: for bob\r\n")), {
        timeoutMs: 30_000,
        what: "the message for bob at the sink",
        logPaths: [postfix.logPath],
      });
    });

    it("does not check a forward-only address to another domain", async () => {
      const { transcript } = await swaks("away@cs.example.org", "for away");
      expect(transcript).toMatch(/<-\s+250 2\.0\.0 Ok: queued/);
    });

    it("refuses at RCPT a message announced with SIZE= bigger than the space left", async () => {
      const left = CAROL_LIMIT + CAROL_LIMIT / 10 - ((await usageOf("carol"))?.storageBytes ?? 0);
      const replies = await smtpReplies(postfix.port, [
        "EHLO client.test",
        `MAIL FROM:<sender@client.test> SIZE=${left + 1}`,
        "RCPT TO:<carol@cs.example.org>",
        "RSET",
        `MAIL FROM:<sender@client.test> SIZE=${CAROL_LIMIT + CAROL_LIMIT / 10 + 1}`,
        "RCPT TO:<carol@cs.example.org>",
        "RSET",
        `MAIL FROM:<sender@client.test> SIZE=${left - 100}`,
        "RCPT TO:<carol@cs.example.org>",
        "QUIT",
      ]);
      expect(replies[3]).toBe(
        "552 5.2.2 <carol@cs.example.org>: Recipient address rejected: Mailbox is full",
      );
      expect(replies[6]).toBe(
        "552 5.3.4 <carol@cs.example.org>: Recipient address rejected: Message is too big for this mailbox",
      );
      expect(replies[9]).toBe("250 2.1.5 Ok");
    });

    it("refuses at END-OF-MESSAGE a message without SIZE= that is too big for the space left", async () => {
      const file = join(dir, "big.eml");
      writeFileSync(file, message("too big for carol", CAROL_LIMIT + 1000));
      const { transcript } = await postfix.swaks([
        "--from",
        "sender@client.test",
        "--to",
        "carol@cs.example.org",
        "--data",
        `@${file}`,
      ]);
      // RCPT is accepted (no size known yet); the end of data is not.
      expect(transcript).toMatch(/<-\s+250 2\.1\.5 Ok/);
      expect(transcript).toMatch(/<\*\* 552 5\.3\.4 .*Message is too big for this mailbox/);
    });
  });

  it("keeps alice's usage across a restart, and follows a new group policy", async () => {
    const before = await usageOf("alice");
    await quotad.close();
    await startWith("all");
    expect(await usageOf("alice")).toEqual(before);
    const alice = await postfix.swaks([
      "--from",
      "sender@client.test",
      "--to",
      "alice@cs.example.org",
      "--body",
      "after restart",
    ]);
    expect(alice.transcript).toMatch(
      /<\*\* 552 5\.2\.2 <alice@cs\.example\.org>: Recipient address rejected: Mailbox is full/,
    );
    // bob still has room, so with "all" the group takes the message.
    const team = await postfix.swaks([
      "--from",
      "sender@client.test",
      "--to",
      "team@cs.example.org",
      "--body",
      "team after restart",
    ]);
    expect(team.transcript).toMatch(/<-\s+250 2\.0\.0 Ok: queued/);
  });
});
