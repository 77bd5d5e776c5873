// Proves the Dovecot harness: one private instance with IMAP, LMTP and
// ManageSieve on loopback (ssl=yes with a throw-away certificate, plaintext
// still allowed) answers doveadm user for the passwd-file user, accepts an
// IMAP LOGIN, delivers over LMTP into the user's INBOX, offers STARTTLS on
// ManageSieve, and leaves no process behind when stopped.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { LineClient } from "../harness/line-client.js";
import { isAlive, livePidsUsing, makeTempDir, removeTempDir } from "../harness/process.js";
import { generateSelfSignedCertificate } from "../harness/tls.js";

describe("Dovecot harness", () => {
  let dovecot: Dovecot;
  let certDir: string;

  beforeAll(async () => {
    certDir = makeTempDir("cert");
    const certificate = await generateSelfSignedCertificate(certDir, "backend.test");
    const started = Date.now();
    dovecot = await startDovecot({
      protocols: ["imap", "lmtp", "sieve"],
      tls: certificate,
      users: [{ name: "gpapadop", password: "pw-gpapadop", fields: { quota_rule: "*:storage=5G" } }],
      conf: "protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n",
    });
    console.log(`dovecot (imap, lmtp, sieve) started in ${Date.now() - started} ms, pid ${dovecot.pid}`);
  });

  afterAll(async () => {
    await dovecot?.destroy();
    if (certDir !== undefined) removeTempDir(certDir);
  });

  it("answers doveadm user for the passwd-file user, with -c", async () => {
    const result = await dovecot.doveadm(["user", "gpapadop"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/home\s+.*\/mail\/gpapadop/);
    expect(result.stdout).toMatch(/quota_rule\s+\*:storage=5G/);
    const missing = await dovecot.doveadm(["user", "nobody-here"]);
    expect(missing.code).toBe(67); // EX_NOUSER
  });

  it("accepts an IMAP LOGIN and refuses a wrong password", async () => {
    const client = await LineClient.open(dovecot.ports.imap as number);
    try {
      await client.readUntil(/^\* OK/);
      client.send("a1 LOGIN gpapadop pw-gpapadop\r\n");
      expect(await client.readUntil(/^a1 /)).toMatch(/a1 OK/);
      client.send("a2 LOGOUT\r\n");
      await client.readUntil(/^a2 OK/);
    } finally {
      client.close();
    }
    // The failure comes last: Dovecot's anvil then delays further logins
    // from this IP for a few seconds (auth penalty), which would slow the
    // rest of the file.
    const wrong = await LineClient.open(dovecot.ports.imap as number);
    try {
      await wrong.readUntil(/^\* OK/);
      wrong.send("b1 LOGIN gpapadop wrong\r\n");
      expect(await wrong.readUntil(/^b1 /)).toMatch(/b1 NO/);
    } finally {
      wrong.close();
    }
  });

  it("delivers over LMTP into the INBOX", async () => {
    const lmtp = await LineClient.open(dovecot.ports.lmtp as number);
    try {
      await lmtp.readUntil(/^220 /);
      lmtp.send("LHLO client.test\r\n");
      await lmtp.readUntil(/^250 /);
      lmtp.send("MAIL FROM:<sender@client.test>\r\n");
      await lmtp.readUntil(/^250 /);
      lmtp.send("RCPT TO:<gpapadop>\r\n");
      await lmtp.readUntil(/^250 /);
      lmtp.send("DATA\r\n");
      await lmtp.readUntil(/^354 /);
      lmtp.send("Subject: harness lmtp\r\n\r\nhello\r\n.\r\n");
      expect(await lmtp.readUntil(/^\d{3} /)).toMatch(/^250 /m);
      lmtp.send("QUIT\r\n");
    } finally {
      lmtp.close();
    }
    const status = await dovecot.doveadm(["mailbox", "status", "-u", "gpapadop", "messages", "INBOX"]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/\bmessages=1\b/);
  });

  it("offers STARTTLS on ManageSieve", async () => {
    const client = await LineClient.open(dovecot.ports.sieve as number);
    try {
      const greeting = await client.readUntil(/^OK/);
      expect(greeting).toContain('"STARTTLS"');
      expect(greeting).toContain('"SIEVE"');
    } finally {
      client.close();
    }
  });

  it("stops: the master PID and every child are gone", async () => {
    const pid = dovecot.pid;
    await dovecot.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(isAlive(pid)).toBe(false);
    expect(livePidsUsing(dovecot.dir)).toEqual([]);
  });
});
