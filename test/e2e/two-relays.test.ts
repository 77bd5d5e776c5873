/**
 * The whole system end to end (issue 8): two relays and one back-end built
 * from deploy/ (see topology.ts), driven over SMTP the way the Internet and
 * the department's users drive them. Each scenario checks what arrived in
 * the mailboxes and at "the Internet", not only what the relays answered.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep, waitFor } from "../harness/process.js";
import { SmtpSession, testMessage } from "../harness/smtp-client.js";
import { LOGIN_MESSAGE_LIMIT, PASSWORDS, type Relay, startTopology, type Topology } from "./topology.js";

let topology: Topology;
let run = 0;
/** A token no earlier scenario used, for counting deliveries. */
const token = (what: string): string => `e2e-${what}-${process.pid}-${++run}`;

/** One message through one relay's port 25 (an Internet client) or submission (with login). */
async function send(
  relay: Relay,
  from: string,
  recipients: string[],
  subject: string,
  login?: string,
): Promise<Awaited<ReturnType<SmtpSession["send"]>>> {
  const session = await SmtpSession.open({
    port: login === undefined ? relay.postfix.port : relay.submissionPort,
  });
  try {
    if (login !== undefined) {
      await session.startTls();
      const auth = await session.auth(login, PASSWORDS[login] as string);
      if (auth.code !== 235) throw new Error(`AUTH as ${login} at ${relay.name}: ${auth.text}`);
    }
    return await session.send(from, recipients, testMessage(from, recipients[0] ?? "", subject));
  } finally {
    await session.quit();
  }
}

/** Waits until Postfix's queues on every host are empty (everything delivered or bounced). */
async function queuesDrained(timeoutMs = 60_000): Promise<void> {
  const hosts = [topology.backend, ...topology.relays];
  await waitFor(
    async () => {
      for (const host of hosts) if ((await host.postfix.listQueue()).length > 0) return false;
      return true;
    },
    { timeoutMs, what: "every Postfix queue to drain", intervalMs: 250 },
  );
}

function sinkCount(recipient: string, subject: string): number {
  return topology.sink.messages.filter(
    (message) => message.rcptTo.includes(recipient) && message.data.includes(subject),
  ).length;
}

beforeAll(async () => {
  topology = await startTopology();
}, 240_000);

afterAll(async () => {
  await topology?.stop();
}, 120_000);

describe("the two-relay topology built from deploy/", () => {
  it("emailng doctor finds nothing to fix on any host, against that host's own postconf and doveconf", async () => {
    const { backend, relays } = topology;
    const hosts = [
      { host: backend, extra: ["--dovecot-config", backend.dovecot.configPath] },
      ...relays.map((relay) => ({ host: relay, extra: [] as string[] })),
    ];
    for (const { host, extra } of hosts) {
      const result = await host.emailng(["doctor", "--postfix-config", host.postfix.configDir, ...extra]);
      expect(result.code, `${host.name}:\n${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stdout, host.name).not.toMatch(/\b(WARN|FAIL)\b/);
    }
  }, 60_000);

  it("refuses unknown, inactive and foreign recipients at RCPT on either relay, and queues nothing", async () => {
    const refusedAsUnknown = [
      "nobody-here@cs.example.org",
      "csd4713@cs.example.org", // inactive, by login
      "pappas.konstantinos@cs.example.org", // inactive, by alternate address
      "nobody-here@example.org", // alias domain
      "nobody-here@rise.example", // hosted domain
    ];
    for (const relay of topology.relays) {
      const session = await SmtpSession.open({ port: relay.postfix.port });
      try {
        expect((await session.command("MAIL FROM:<someone@outside.example>")).code).toBe(250);
        for (const address of refusedAsUnknown) {
          const reply = await session.command(`RCPT TO:<${address}>`);
          expect(reply.text, `${relay.name} ${address}`).toMatch(/^550 5\.1\.1 /);
        }
        const foreign = await session.command("RCPT TO:<victim@elsewhere.example>");
        expect(foreign.text, `${relay.name}: not an open relay`).toMatch(/^554 5\.7\.1 /);
        expect((await session.command("RCPT TO:<jsmith@cs.example.org>")).code).toBe(250);
        await session.command("RSET");
      } finally {
        await session.quit();
      }
      expect(await relay.postfix.listQueue()).toEqual([]);
    }
  }, 60_000);

  it("expands alternates, the alias domain, overlapping groups, a hosted domain and forwards: each mailbox gets one copy", async () => {
    const subject = token("expansion");
    const result = await send(
      topology.relays[0],
      "someone@outside.example",
      [
        "smith.john@cs.example.org", // jsmith by alternate address
        "karagianni.eleni@example.org", // ekaragia's alternate address in the alias domain
        "csstaff@cs.example.org", // jsmith, ekaragia
        "cspg@cs.example.org", // dvlachos (forwards away), soikonom, ekaragia again
        "jsmith@cs.example.org", // a member named directly too
        "info@rise.example", // gpapadop, mnikolai (keeps a copy and forwards), soikonom again
      ],
      subject,
    );
    expect(result.rcpt.map((reply) => reply.code)).toEqual([250, 250, 250, 250, 250, 250]);
    expect(result.data?.code).toBe(250);
    await queuesDrained();
    const { backend } = topology;
    const counts = Object.fromEntries(
      ["jsmith", "ekaragia", "soikonom", "gpapadop", "mnikolai", "dvlachos", "csd4711"].map((login) => [
        login,
        backend.countMessages(login, subject),
      ]),
    );
    expect(counts).toEqual({
      jsmith: 1,
      ekaragia: 1,
      soikonom: 1,
      gpapadop: 1,
      mnikolai: 1,
      dvlachos: 0,
      csd4711: 0,
    });
    expect(sinkCount("dimitris.vlachos@gmail.example", subject)).toBe(1);
    expect(sinkCount("maria@outside.example", subject)).toBe(1);
  }, 90_000);

  it("csall: a student's login is refused with 5.7.1, a staff login reaches every active member once (nested groups)", async () => {
    const relay = topology.relays[1];
    const refused = await send(
      relay,
      "csd4711@cs.example.org",
      ["csall@cs.example.org"],
      token("csall-student"),
      "csd4711",
    );
    expect(refused.rcpt[0]?.text).toMatch(/^550 5\.7\.1 .*csall/);
    expect(refused.data).toBeUndefined();

    const subject = token("csall-staff");
    const accepted = await send(
      relay,
      "jsmith@cs.example.org",
      ["everyone@cs.example.org"],
      subject,
      "jsmith",
    );
    expect(accepted.rcpt[0]?.code).toBe(250);
    expect(accepted.data?.code).toBe(250);
    await queuesDrained();
    const active = [
      "jsmith",
      "ekaragia",
      "gpapadop",
      "mnikolai",
      "soikonom",
      "csd4711",
      "csd4712",
      "csd4714",
      "csd4715",
      "csd4716",
    ];
    for (const login of active) expect(topology.backend.countMessages(login, subject), login).toBe(1);
    expect(topology.backend.countMessages("csd4713", subject), "inactive member").toBe(0);
    expect(sinkCount("dimitris.vlachos@gmail.example", subject)).toBe(1);
  }, 90_000);

  it("one login's rate limit holds across both relays together (shared Redis)", async () => {
    const subject = token("rate");
    const replies: string[] = [];
    for (let i = 0; i < LOGIN_MESSAGE_LIMIT; i++) {
      const relay = topology.relays[i % 2] as Relay;
      const result = await send(
        relay,
        "soikonom@cs.example.org",
        ["gpapadop@cs.example.org"],
        `${subject}-${i}`,
        "soikonom",
      );
      replies.push(`${relay.name}: ${result.data?.text ?? result.rcpt[0]?.text}`);
      expect(result.data?.code, replies.join("\n")).toBe(250);
    }
    for (const relay of topology.relays) {
      const over = await send(
        relay,
        "soikonom@cs.example.org",
        ["gpapadop@cs.example.org"],
        `${subject}-over`,
        "soikonom",
      );
      expect(over.rcpt[0]?.text, relay.name).toMatch(/^450 4\.7\.1 .*login-messages/);
    }
    // Another login is not affected.
    const other = await send(
      topology.relays[0],
      "ekaragia@cs.example.org",
      ["gpapadop@cs.example.org"],
      `${subject}-other`,
      "ekaragia",
    );
    expect(other.data?.code).toBe(250);
    await queuesDrained();
    let delivered = 0;
    for (let i = 0; i < LOGIN_MESSAGE_LIMIT; i++)
      delivered += topology.backend.countMessages("gpapadop", `${subject}-${i}`);
    expect(delivered).toBe(LOGIN_MESSAGE_LIMIT);
    expect(topology.backend.countMessages("gpapadop", `${subject}-over`)).toBe(0);
  }, 90_000);

  it("a Sieve script uploaded over ManageSieve files the next matching message", async () => {
    const { backend } = topology;
    const script = `${backend.dir}/projects.sieve`;
    const { writeFileSync } = await import("node:fs");
    writeFileSync(
      script,
      'require ["fileinto", "mailbox"];\nif header :contains "subject" "[proj]" {\n  fileinto :create "Projects";\n}\n',
    );
    const put = await backend.emailng(["sieve", "put", "--activate", script]);
    expect(put.code, `${put.stdout}${put.stderr}`).toBe(0);
    const subject = `[proj] ${token("sieve")}`;
    const plain = token("sieve-plain");
    for (const [relay, text] of [
      [topology.relays[0], subject],
      [topology.relays[1], plain],
    ] as const) {
      const result = await send(relay, "someone@outside.example", ["oikonomou.sofia@cs.example.org"], text);
      expect(result.data?.code).toBe(250);
    }
    await queuesDrained();
    expect(backend.countMessages("soikonom", subject, "Projects")).toBe(1);
    expect(backend.countMessages("soikonom", subject)).toBe(0);
    expect(backend.countMessages("soikonom", plain)).toBe(1);
  }, 90_000);

  it("over quota: refused at either relay for the user and her alternate address, once Dovecot's usage reaches quotad", async () => {
    const { backend } = topology;
    // csd4714 has a 1 MiB quota: fill it over LMTP as Postfix would, until Dovecot refuses.
    const lmtp = await SmtpSession.open({ port: backend.dovecot.ports.lmtp as number, greeting: "LHLO" });
    let refusedByDovecot = false;
    try {
      // About 64 KB each: the last one Dovecot accepts (quota_grace 10%)
      // takes her over the limit, as real deliveries do.
      const chunk = `${"q".repeat(76)}\r\n`.repeat(820);
      for (let i = 0; i < 40 && !refusedByDovecot; i++) {
        const result = await lmtp.send(
          "someone@outside.example",
          ["csd4714@cs.example.org"],
          testMessage("someone@outside.example", "csd4714@cs.example.org", token("fill"), chunk),
        );
        refusedByDovecot = result.rcpt[0]?.code !== 250 || result.data?.code !== 250;
      }
    } finally {
      await lmtp.quit();
    }
    expect(refusedByDovecot).toBe(true);
    // quota_clone → back-end quotad → Redis → both relays' quotad.
    for (const relay of topology.relays) {
      for (const address of ["csd4714@cs.example.org", "makri.eirini@cs.example.org"]) {
        await waitFor(
          async () => {
            const session = await SmtpSession.open({ port: relay.postfix.port });
            try {
              await session.command("MAIL FROM:<someone@outside.example>");
              return /^552 5\.2\.2 /.test((await session.command(`RCPT TO:<${address}>`)).text);
            } finally {
              await session.quit();
            }
          },
          { timeoutMs: 20_000, what: `${relay.name} to refuse ${address} as over quota`, intervalMs: 500 },
        );
      }
    }
    // Someone with room is still accepted.
    const ok = await send(
      topology.relays[0],
      "someone@outside.example",
      ["csd4716@cs.example.org"],
      token("room"),
    );
    expect(ok.data?.code).toBe(250);
  }, 90_000);

  it("a burst of 500 messages from 20 concurrent clients over both relays: every one delivered once or refused at RCPT", async () => {
    const subject = token("burst");
    const recipients = [
      "jsmith",
      "ekaragia",
      "gpapadop",
      "soikonom",
      "csd4711",
      "csd4712",
      "csd4715",
      "csd4716",
      "mnikolai",
    ];
    const outcomes: { index: number; delivered: string | null; reply: string }[] = [];
    let next = 0;
    const client = async (worker: number): Promise<void> => {
      const relay = topology.relays[worker % 2] as Relay;
      const session = await SmtpSession.open({ port: relay.postfix.port, heloName: `client${worker}.test` });
      try {
        for (;;) {
          const index = next++;
          if (index >= 500) return;
          // Every tenth message goes to an unknown name and must be refused at RCPT.
          const login =
            index % 10 === 9 ? `unknown${index}` : (recipients[index % recipients.length] as string);
          const address = `${login}@cs.example.org`;
          const result = await session.send(
            "bulk@outside.example",
            [address],
            testMessage("bulk@outside.example", address, `${subject}-${index}-end`),
          );
          const reply = result.data?.text ?? result.rcpt[0]?.text ?? result.mail.text;
          outcomes.push({ index, delivered: result.data?.code === 250 ? login : null, reply });
        }
      } finally {
        await session.quit();
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, worker) => client(worker)));
    expect(outcomes).toHaveLength(500);
    const accepted = outcomes.filter((outcome) => outcome.delivered !== null);
    const refused = outcomes.filter((outcome) => outcome.delivered === null);
    expect(
      refused.every((outcome) => /^550 5\.1\.1 /.test(outcome.reply)),
      JSON.stringify(refused.slice(0, 3)),
    ).toBe(true);
    expect(refused.map((outcome) => outcome.index % 10)).toEqual(refused.map(() => 9));
    expect(accepted).toHaveLength(450);
    await queuesDrained(120_000);
    const missing = accepted.filter(
      (outcome) =>
        topology.backend.countMessages(outcome.delivered as string, `${subject}-${outcome.index}-end`) !== 1,
    );
    expect(missing.map((outcome) => outcome.index)).toEqual([]);
  }, 240_000);

  it("LDAP down: only 4xx answers once the snapshot is stale, and every message retried after LDAP returns is delivered once", async () => {
    const { slapd, relays, backend } = topology;
    await slapd.stop();
    try {
      // The snapshot stays valid for [snapshot] max_age (1 minute) after the
      // last successful sync; then every relay answers temporarily.
      for (const relay of relays) {
        await waitFor(
          async () => {
            const session = await SmtpSession.open({ port: relay.postfix.port });
            try {
              await session.command("MAIL FROM:<someone@outside.example>");
              return /^4\d\d /.test((await session.command("RCPT TO:<jsmith@cs.example.org>")).text);
            } finally {
              await session.quit();
            }
          },
          { timeoutMs: 100_000, what: `${relay.name} to answer 4xx with LDAP down`, intervalMs: 2_000 },
        );
      }
      for (const relay of relays) {
        const session = await SmtpSession.open({ port: relay.postfix.port });
        try {
          await session.command("MAIL FROM:<someone@outside.example>");
          for (const address of [
            "jsmith@cs.example.org",
            "csall@cs.example.org",
            "nobody-here@cs.example.org",
            "csd4713@cs.example.org",
          ]) {
            const reply = await session.command(`RCPT TO:<${address}>`);
            expect(reply.text, `${relay.name} ${address} with LDAP down`).toMatch(/^4\d\d /);
          }
        } finally {
          await session.quit();
        }
      }
    } finally {
      await slapd.restart();
    }
    // The client retries (as any MTA would) until the relays accept again.
    const subject = token("after-outage");
    const deliveredTo: string[] = [];
    const permanent: string[] = [];
    for (const [index, relay] of relays.entries()) {
      const login = index === 0 ? "jsmith" : "ekaragia";
      await waitFor(
        async () => {
          const result = await send(
            relay,
            "someone@outside.example",
            [`${login}@cs.example.org`],
            `${subject}-${login}`,
          );
          const rcpt = result.rcpt[0]?.text ?? result.mail.text;
          if (/^5/.test(rcpt)) permanent.push(`${relay.name} ${login}: ${rcpt}`);
          return result.data?.code === 250 || /^5/.test(rcpt);
        },
        { timeoutMs: 60_000, what: `${relay.name} to accept mail again`, intervalMs: 2_000 },
      );
      deliveredTo.push(login);
    }
    expect(permanent, "no permanent refusal of a valid user around the outage").toEqual([]);
    await queuesDrained();
    await sleep(500);
    for (const login of deliveredTo)
      expect(backend.countMessages(login, `${subject}-${login}`), login).toBe(1);
  }, 240_000);
});
