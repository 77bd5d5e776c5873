/**
 * policyd through a real Postfix 3.7, end to end, with SASL logins checked
 * by a real Dovecot (smtpd_sasl_type = dovecot) and swaks as the client.
 * Postfix is hooked the way policyd/README.md tells administrators to:
 *
 *   smtpd_relay_restrictions      = permit_sasl_authenticated, reject_unauth_destination
 *   smtpd_recipient_restrictions  = check_policy_service { unix:SOCK, timeout=10s, default_action=DEFER_IF_PERMIT }
 *   smtpd_end_of_data_restrictions = check_policy_service { unix:SOCK, timeout=10s, default_action=DUNNO }
 *
 * with every accepted message relayed to an SMTP sink. The client address
 * (127.0.0.1) is outside mynetworks, like a user away from the department.
 *
 * - the (N+1)th message of a login within the window gets 450 while another
 *   login is unaffected, and the refused message is not charged;
 * - a 50-recipient message is charged 50 by a recipient rule and 1 by a
 *   message rule; the recipient past a recipient limit gets 550 (that rule
 *   rejects) and only the accepted recipients are charged;
 * - a message Postfix refuses after RCPT (over message_size_limit) is not
 *   charged;
 * - staff may post to csall (from outside, authenticated); a student gets
 *   550 5.7.1 naming the list, and so does an unauthenticated sender;
 * - greylisting defers an unknown triplet with 450 and accepts the retry
 *   after the delay, with the X-Greylist header in the delivered message;
 * - a burst puts the message on hold (visible in the Postfix queue) and
 *   raises one alert (the configured command runs once); the login's next
 *   message is held too until `policy release`.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { askPolicyd } from "../../policyd/admin-commands.js";
import { type Policyd, startPolicyd } from "../../policyd/program.js";
import { testUser } from "../harness/directory-builders.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir, sleep, waitFor } from "../harness/process.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";
import { configFrom, departmentDirectory, silentLog } from "../wire/policyd-fixtures.js";

const PASSWORD = "secret-pw";
const LOGINS = ["jsmith", "gpapadop", "csd4713", "csd4714", "mnikolai", "tvlachos"];

describe("policyd through a real Postfix with Dovecot SASL", () => {
  let dir: string;
  let dovecot: Dovecot;
  let postfix: Postfix;
  let sink: SmtpSink;
  let policyd: Policyd;
  let adminSocket: string;
  let alertLog: string;

  beforeAll(async () => {
    dir = makeTempDir("policyd-postfix");
    chmodSync(dir, 0o755);
    const snapshotPath = join(dir, "snapshot.sqlite");
    const directory = departmentDirectory();
    directory.users.push(testUser("tvlachos", { category: "staff" }));
    writeSnapshot(snapshotPath, directory, { version: 1, view: "relay", sources: [], now: new Date() });
    const socket = join(dir, "policyd.sock");
    adminSocket = join(dir, "admin.sock");
    alertLog = join(dir, "alerts.log");
    const alertScript = join(dir, "alert.sh");
    writeFileSync(alertScript, `#!/bin/sh\necho "$1 $EMAILNG_REASON" >> ${alertLog}\n`, { mode: 0o755 });

    const config = configFrom(`
[log]
level = "error"
[snapshot]
path = "${snapshotPath}"
[policyd]
admin_socket = "${adminSocket}"
[[policyd.listen]]
unix = "${socket}"
mode = "0660"
group = "postfix"
[policyd.store]
path = "${join(dir, "store.sqlite")}"

[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
metric = "messages"
action = "defer"
[[policyd.rules.windows]]
period = "1h"
limit = 3

[[policyd.rules]]
name = "login-recipients"
key = "sasl_login"
metric = "recipients"
action = "reject"
except_logins = ["tvlachos"]
[[policyd.rules.windows]]
period = "1h"
limit = 60

[policyd.greylist]
enabled = true
delay = "2s"

[policyd.protected_lists]
from_directory = true

[policyd.burst]
enabled = true
min_recipients = 80
min_distinct_recipients = 80
alert_command = ["${alertScript}"]
`);
    policyd = await startPolicyd(config, silentLog, { processMetrics: false });

    dovecot = await startDovecot({
      users: LOGINS.map((name) => ({ name, password: PASSWORD })),
      conf: `service auth {\n  unix_listener auth-postfix {\n    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n`,
    });
    sink = await startSmtpSink();
    const policy = (defaultAction: string) =>
      `check_policy_service { unix:${socket}, timeout=10s, default_action=${defaultAction} }`;
    postfix = await startPostfix({
      mainCf: {
        relay_domains: "cs.example.org",
        relayhost: `[127.0.0.1]:${sink.port}`,
        mynetworks: "192.0.2.1/32",
        smtpd_sasl_auth_enable: "yes",
        smtpd_sasl_type: "dovecot",
        smtpd_sasl_path: join(dovecot.baseDir, "auth-postfix"),
        smtpd_relay_restrictions: "permit_sasl_authenticated, reject_unauth_destination",
        smtpd_recipient_restrictions: policy("DEFER_IF_PERMIT"),
        smtpd_end_of_data_restrictions: policy("DUNNO"),
        message_size_limit: "20000",
      },
    });
  });

  afterAll(async () => {
    await postfix?.destroy();
    await dovecot?.destroy();
    await sink?.close();
    await policyd?.close();
    if (dir) removeTempDir(dir);
  });

  interface Sent {
    code: number | null;
    transcript: string;
    /** Reply lines to RCPT TO, in order ("250 …", "450 …"). */
    rcpt: string[];
    /** The reply to the end of DATA, if DATA was reached. */
    data: string | undefined;
  }

  async function send(options: {
    login?: string;
    from?: string;
    to: string[];
    body?: string;
  }): Promise<Sent> {
    const args = [
      "--from",
      options.from ?? `${options.login ?? "someone"}@cs.example.org`,
      "--to",
      options.to.join(","),
    ];
    if (options.login !== undefined) {
      args.push("--auth", "PLAIN", "--auth-user", options.login, "--auth-password", PASSWORD);
    }
    args.push("--body", options.body ?? "policyd integration test", "--timeout", "60");
    const { code, transcript } = await postfix.swaks(args);
    // swaks writes the client's lines and the server's to different streams, so
    // the replies are read in protocol order: greeting, EHLO, AUTH (with a
    // login), MAIL, one per RCPT, then 354 and the end-of-DATA reply.
    const finals = transcript
      .split("\n")
      .map((line) => /^(?:<-|<~|<\*\*)\s+(\d{3} .*)$/.exec(line)?.[1])
      .filter((line): line is string => line !== undefined);
    const first = 3 + (options.login === undefined ? 0 : 1);
    const rcpt = finals.slice(first, first + options.to.length);
    const after = finals.slice(first + options.to.length);
    const data = after[0]?.startsWith("354 ") ? after[1] : undefined;
    return { code, transcript, rcpt, data };
  }

  async function usedBy(key: string): Promise<Record<string, number>> {
    const reply = await askPolicyd(adminSocket, "explain", key);
    if (!reply.ok) throw new Error(reply.error);
    const counters = reply["counters"] as Array<{ rule: string; used: number }>;
    return Object.fromEntries(counters.map((counter) => [counter.rule, counter.used]));
  }

  it("defers the (N+1)th message of a login within the window; another login is unaffected; the refused one is not charged", async () => {
    for (let i = 0; i < 3; i++) {
      const sent = await send({ login: "csd4714", to: [`friend${i}@remote.example`] });
      expect(sent.rcpt, sent.transcript).toEqual([expect.stringMatching(/^250 /)]);
      expect(sent.data, sent.transcript).toMatch(/^250 /);
    }
    const fourth = await send({ login: "csd4714", to: ["friend9@remote.example"] });
    expect(fourth.rcpt, fourth.transcript).toEqual([
      "450 4.7.1 <friend9@remote.example>: Recipient address rejected: Rate limit exceeded (login-messages), please try again later",
    ]);
    const other = await send({ login: "mnikolai", to: ["friend9@remote.example"] });
    expect(other.data, other.transcript).toMatch(/^250 /);
    expect(await usedBy("csd4714")).toEqual({ "login-messages": 3, "login-recipients": 3 });
  });

  it("charges a 50-recipient message 50 for the recipient rule and 1 for the message rule", async () => {
    const recipients = Array.from({ length: 50 }, (_, i) => `member${i}@remote.example`);
    const sent = await send({ login: "gpapadop", to: recipients });
    expect(sent.rcpt.filter((line) => line.startsWith("250 ")).length, sent.transcript).toBe(50);
    expect(sent.data, sent.transcript).toMatch(/^250 /);
    expect(await usedBy("gpapadop")).toEqual({ "login-messages": 1, "login-recipients": 50 });

    const more = Array.from({ length: 12 }, (_, i) => `extra${i}@remote.example`);
    const second = await send({ login: "gpapadop", to: more });
    expect(
      second.rcpt.slice(0, 10).every((line) => line.startsWith("250 ")),
      second.transcript,
    ).toBe(true);
    expect(second.rcpt[10], second.transcript).toBe(
      "550 5.7.1 <extra10@remote.example>: Recipient address rejected: Rate limit exceeded (login-recipients)",
    );
    expect(second.data, second.transcript).toMatch(/^250 /);
    expect(await usedBy("gpapadop")).toEqual({ "login-messages": 2, "login-recipients": 60 });
  });

  it("does not charge a message Postfix refuses after RCPT (over message_size_limit)", async () => {
    const sent = await send({ login: "csd4713", to: ["friend@remote.example"], body: "x".repeat(40_000) });
    expect(sent.rcpt, sent.transcript).toEqual([expect.stringMatching(/^250 /)]);
    expect(sent.data, sent.transcript).toMatch(/^552 /);
    expect(await usedBy("csd4713")).toEqual({ "login-messages": 0, "login-recipients": 0 });
  });

  it("lets staff post to csall from outside and refuses students and unauthenticated senders with 5.7.1", async () => {
    const staff = await send({ login: "jsmith", to: ["csall@cs.example.org"] });
    expect(staff.rcpt, staff.transcript).toEqual([expect.stringMatching(/^250 /)]);
    expect(staff.data, staff.transcript).toMatch(/^250 /);
    const student = await send({ login: "csd4713", to: ["everyone@cs.example.org"] });
    expect(student.rcpt, student.transcript).toEqual([
      "550 5.7.1 <everyone@cs.example.org>: Recipient address rejected: csall is a protected list: only members of csstaff, csfaculty may post to it",
    ]);
    const outsider = await send({ from: "jsmith@cs.example.org", to: ["csall@cs.example.org"] });
    expect(outsider.rcpt[0], outsider.transcript).toMatch(/^550 5\.7\.1 .*csall is a protected list/);
  });

  it("greylists an unknown triplet and accepts the retry after the delay, with the X-Greylist header", async () => {
    const before = sink.messages.length;
    const first = await send({ from: "news@remote.example", to: ["gpapadop@cs.example.org"] });
    expect(first.rcpt, first.transcript).toEqual([
      "450 4.7.1 <gpapadop@cs.example.org>: Recipient address rejected: Greylisted, please try again later",
    ]);
    await sleep(2500);
    const retry = await send({ from: "news@remote.example", to: ["gpapadop@cs.example.org"] });
    expect(retry.data, retry.transcript).toMatch(/^250 /);
    const find = () =>
      sink.messages.slice(before).find((message) => message.mailFrom === "news@remote.example");
    await waitFor(() => find() !== undefined, {
      timeoutMs: 20_000,
      what: "the greylisted message at the sink",
    });
    expect(find()?.data).toMatch(/^X-Greylist: delayed [2-9] seconds by emailng-policyd at /m);
  });

  it("holds a burst in the Postfix queue, alerts once, and holds the login until released", async () => {
    const recipients = Array.from({ length: 90 }, (_, i) => `target${i}@remote.example`);
    const burst = await send({ login: "tvlachos", to: recipients });
    expect(burst.data, burst.transcript).toMatch(/^250 /);
    const held = async () =>
      (await postfix.listQueue()).filter(
        (entry) => entry.queue_name === "hold" && entry.sender === "tvlachos@cs.example.org",
      );
    await waitFor(async () => (await held()).length === 1, {
      timeoutMs: 20_000,
      what: "the burst in the hold queue",
    });

    const next = await send({ login: "tvlachos", to: ["one@remote.example"] });
    expect(next.data, next.transcript).toMatch(/^250 /);
    await waitFor(async () => (await held()).length === 2, {
      timeoutMs: 20_000,
      what: "the next message held too",
    });
    await waitFor(() => existsSync(alertLog), { timeoutMs: 10_000, what: "the alert command" });
    expect(readFileSync(alertLog, "utf8")).toBe("tvlachos 90 recipients this interval, above 80\n");

    expect(await askPolicyd(adminSocket, "release", "tvlachos")).toMatchObject({ ok: true, released: true });
    const before = sink.messages.length;
    const after = await send({ login: "tvlachos", to: ["two@remote.example"] });
    expect(after.data, after.transcript).toMatch(/^250 /);
    await waitFor(
      () => sink.messages.slice(before).some((message) => message.rcptTo.includes("two@remote.example")),
      {
        timeoutMs: 20_000,
        what: "the released login's mail delivered",
      },
    );
    expect((await held()).length).toBe(2);
    expect(readFileSync(alertLog, "utf8").split("\n").filter(Boolean)).toHaveLength(1);
  });
});
