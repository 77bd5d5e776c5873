// Proves the Postfix harness: a private instance answers EHLO through swaks,
// relays mail for a relay domain to the in-test SMTP sink and refuses other
// domains, postmap -c answers from a texthash table, the queue listing
// (postqueue -j) shows held mail, and stop leaves no Postfix process behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { isAlive, livePidsUsing } from "../harness/process.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";

describe("Postfix harness", () => {
  let sink: SmtpSink;
  let postfix: Postfix;

  beforeAll(async () => {
    sink = await startSmtpSink();
    const started = Date.now();
    postfix = await startPostfix({
      mainCf: {
        relay_domains: "relay.example",
        relayhost: `[127.0.0.1]:${sink.port}`,
        // A TEST-NET address: our own 127.0.0.1 client is not trusted, so
        // relaying is decided by relay_domains alone.
        mynetworks: "192.0.2.1/32",
        // Mail from held.example stays in the hold queue for the listing test.
        smtpd_sender_restrictions: "check_sender_access texthash:$config_directory/senders",
      },
      files: { senders: "held.example HOLD held for the queue test\nspam.example REJECT\n" },
    });
    console.log(`postfix started in ${Date.now() - started} ms, master pid ${postfix.pid}`);
  });

  afterAll(async () => {
    await postfix?.destroy();
    await sink?.close();
  });

  it("answers EHLO", async () => {
    const result = await postfix.swaks(["--quit-after", "EHLO", "--ehlo", "client.test"]);
    expect(result.code, result.transcript).toBe(0);
    expect(result.transcript).toContain("220 relay.test ESMTP");
    expect(result.transcript).toMatch(/250-relay\.test/);
  });

  it("relays a message for a relay domain to the SMTP sink", async () => {
    const result = await postfix.swaks([
      "--from",
      "sender@client.test",
      "--to",
      "someone@relay.example",
      "--header",
      "Subject: harness relay test",
      "--body",
      "hello through postfix",
    ]);
    expect(result.code, result.transcript).toBe(0);
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toBe("sender@client.test");
    expect(message?.rcptTo).toEqual(["someone@relay.example"]);
    expect(message?.data).toContain("Subject: harness relay test");
    expect(message?.data).toContain("hello through postfix");
    await postfix.waitForLog(/to=<someone@relay\.example>.*status=sent/);
  });

  it("refuses to relay for other domains", async () => {
    const result = await postfix.swaks(["--from", "sender@client.test", "--to", "someone@elsewhere.example"]);
    expect(result.code).not.toBe(0);
    expect(result.transcript).toMatch(/454 4\.7\.1 .*Relay access denied/);
  });

  it("answers postmap -q from a texthash table with -c", async () => {
    const table = `${postfix.configDir}/senders`;
    const hit = await postfix.postmap(["-q", "spam.example", `texthash:${table}`]);
    expect(hit.code, hit.stderr).toBe(0);
    expect(hit.stdout.trim()).toBe("REJECT");
    const miss = await postfix.postmap(["-q", "nobody.example", `texthash:${table}`]);
    expect(miss.code).toBe(1); // not found
  });

  it("lists the queue, including the hold queue", async () => {
    const result = await postfix.swaks(["--from", "user@held.example", "--to", "someone@relay.example"]);
    expect(result.code, result.transcript).toBe(0);
    const queue = await postfix.listQueue();
    const held = queue.filter((entry) => entry.queue_name === "hold");
    expect(held).toHaveLength(1);
    expect(held[0]?.sender).toBe("user@held.example");
    expect(held[0]?.recipients.map((r) => r.address)).toEqual(["someone@relay.example"]);
    const deleted = await postfix.postsuper(["-d", "ALL", "hold"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await postfix.listQueue()).toEqual([]);
  });

  it("stops: the master PID and every worker are gone", async () => {
    const pid = postfix.pid;
    await postfix.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(isAlive(pid)).toBe(false);
    expect(livePidsUsing(postfix.queueDir)).toEqual([]);
  });
});
