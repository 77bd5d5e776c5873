/**
 * verifyd through a real Postfix 3.7, end to end.
 *
 * The snapshot is built from deploy/ldap/sample-directory.ldif exactly as
 * `emailng demo` builds it, plus one user (kkaragianni) who also claims
 * karagianni.eleni@cs.example.org, the homonym clash the sample lacks.
 * verifyd serves it on a UNIX socket (group postfix, mode 0660, as in
 * production) and one Postfix instance uses it the way README.md tells
 * administrators to:
 *
 *   relay_domains        = socketmap:unix:SOCK:domain
 *   relay_recipient_maps = socketmap:unix:SOCK:recipient
 *   virtual_alias_maps   = socketmap:unix:SOCK:alias
 *   virtual_alias_domains =
 *   smtpd_recipient_restrictions = reject_unauth_destination,
 *                                  check_recipient_access socketmap:unix:SOCK:recipient
 *
 * with every relay (and forward) going to an SMTP sink as relayhost, so what
 * Postfix expanded an address to is what the sink was asked to deliver.
 *
 * - `postmap -q` through each map gives what maps.ts answers from the same
 *   resolver, for users, alternates, alias domain, +ext, forwards, groups,
 *   inactive, unknown, foreign, virtual-domain members and non-members;
 * - smtpd driven by swaks: unknown, inactive, virtual-domain non-member →
 *   550 at RCPT; an ambiguous address → 550 naming the conflict; groups,
 *   alternates, +ext and forwards accepted and delivered to the right
 *   mailboxes; a stale snapshot → 4xx at RCPT, never 5xx.
 */
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { CurrentSnapshot } from "../../core/directory/live-snapshot.js";
import type { Directory, DomainSet } from "../../core/directory/model.js";
import { Resolver } from "../../core/directory/resolver.js";
import { readSnapshot, writeSnapshot } from "../../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping } from "../../core/ldap/mapping.js";
import { lookup, RECIPIENT_AMBIGUOUS } from "../../verifyd/maps.js";
import { startVerifyd, type Verifyd } from "../../verifyd/program.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir, waitFor } from "../harness/process.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";

const SAMPLE_BASE_DN = "dc=cs,dc=example,dc=org";
const SAMPLE_DOMAINS: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};
const HOUR = 3_600_000;

function sampleDirectory(): Directory {
  const ldif = readFileSync(new URL("../../deploy/ldap/sample-directory.ldif", import.meta.url), "utf8");
  const { directory } = directoryFromLdif(ldif, defaultMapping(SAMPLE_BASE_DN), SAMPLE_DOMAINS);
  directory.users.push({
    login: "kkaragianni",
    source: "test: homonym of ekaragia",
    primaryAddress: "kkaragianni@cs.example.org",
    alternateAddresses: ["karagianni.eleni@cs.example.org"],
    forwardingAddresses: [],
    quotaBytes: null,
    status: "active",
  });
  return directory;
}

describe("verifyd through a real Postfix", () => {
  let dir: string;
  let snapshotPath: string;
  let socketPath: string;
  let verifyd: Verifyd;
  let sink: SmtpSink;
  let postfix: Postfix;
  let expected: CurrentSnapshot;
  let version = 1;

  const writeDirectory = (createdAt: Date) =>
    writeSnapshot(snapshotPath, sampleDirectory(), {
      version: version++,
      view: "relay",
      sources: [{ name: "sample LDIF", users: 0, groups: 0, skipped: 0 }],
      now: createdAt,
    });

  beforeAll(async () => {
    dir = makeTempDir("verifyd-postfix");
    // Postfix's daemons run as "postfix" and must reach the socket.
    chmodSync(dir, 0o755);
    snapshotPath = join(dir, "snapshot.sqlite");
    socketPath = join(dir, "verifyd.sock");
    writeDirectory(new Date());
    const loaded = readSnapshot(snapshotPath);
    expected = { resolver: new Resolver(loaded.directory), meta: loaded.meta, fresh: true };

    const config = parseConfigText(`
[snapshot]
path = "${snapshotPath}"
max_age = "1h"
[verifyd]
snapshot_check_interval = "5m"
[[verifyd.listen]]
unix = "${socketPath}"
mode = "0660"
group = "postfix"
[[verifyd.listen]]
tcp = "127.0.0.1:0"
allow = ["127.0.0.1/32"]
`);
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    verifyd = await startVerifyd(config.config, pino({ level: "silent" }), { processMetrics: false });

    sink = await startSmtpSink();
    const table = (name: string) => `socketmap:unix:${socketPath}:${name}`;
    postfix = await startPostfix({
      mainCf: {
        relay_domains: table("domain"),
        relay_recipient_maps: table("recipient"),
        virtual_alias_maps: table("alias"),
        // Its default, $virtual_alias_maps, would send bare domains to the alias map.
        virtual_alias_domains: "",
        smtpd_recipient_restrictions: `reject_unauth_destination, check_recipient_access ${table("recipient")}`,
        recipient_delimiter: "+",
        relayhost: `[127.0.0.1]:${sink.port}`,
        // The swaks client is an outside MTA, not a trusted network.
        mynetworks: "192.0.2.1/32",
      },
    });
  });

  afterAll(async () => {
    await postfix?.destroy();
    await sink?.close();
    await verifyd?.close();
    if (dir) removeTempDir(dir);
  });

  describe("postmap -q through every map", () => {
    const cases: Array<{ map: string; key: string; want: string | null }> = [
      { map: "recipient", key: "gpapadop@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "george.papadopoulos@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "papadopoulos.georgios@example.org", want: "DUNNO" },
      { map: "recipient", key: "gpapadop+lists@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "dvlachos@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "csall@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "everyone@cs.example.org", want: "DUNNO" },
      { map: "recipient", key: "georgios.papadopoulos@rise.example", want: "DUNNO" },
      { map: "recipient", key: "team@rise.example", want: "DUNNO" },
      { map: "recipient", key: "jsmith@rise.example", want: null },
      { map: "recipient", key: "csd4713@cs.example.org", want: null },
      { map: "recipient", key: "nobody@cs.example.org", want: null },
      { map: "recipient", key: "someone@gmail.example", want: null },
      { map: "recipient", key: "karagianni.eleni@cs.example.org", want: RECIPIENT_AMBIGUOUS },
      { map: "alias", key: "gpapadop@cs.example.org", want: null },
      { map: "alias", key: "gpapadop+lists@cs.example.org", want: null },
      { map: "alias", key: "george.papadopoulos@cs.example.org", want: "gpapadop@cs.example.org" },
      { map: "alias", key: "papadopoulos.georgios+x@example.org", want: "gpapadop+x@cs.example.org" },
      { map: "alias", key: "georgios.papadopoulos@rise.example", want: "gpapadop@cs.example.org" },
      { map: "alias", key: "dvlachos@cs.example.org", want: "dimitris.vlachos@gmail.example" },
      {
        map: "alias",
        key: "csstaff@cs.example.org",
        want: "jsmith@cs.example.org,ekaragia@cs.example.org",
      },
      {
        map: "alias",
        key: "team@rise.example",
        want: "gpapadop@cs.example.org,mnikolai@cs.example.org,soikonom@cs.example.org",
      },
      { map: "alias", key: "csd4713@cs.example.org", want: null },
      { map: "alias", key: "nobody@cs.example.org", want: null },
      { map: "alias", key: "jsmith@rise.example", want: null },
      { map: "login", key: "george.papadopoulos@cs.example.org", want: "gpapadop" },
      { map: "login", key: "csd4713@cs.example.org", want: "csd4713" },
      { map: "login", key: "csall@cs.example.org", want: "jsmith,ekaragia,gpapadop,mnikolai" },
      { map: "login", key: "team@rise.example", want: null },
      { map: "login", key: "nobody@cs.example.org", want: null },
      { map: "domain", key: "cs.example.org", want: "cs.example.org" },
      { map: "domain", key: "example.org", want: "example.org" },
      { map: "domain", key: "rise.example", want: "rise.example" },
      { map: "domain", key: "gmail.example", want: null },
    ];

    it.each(cases)("$map $key", async ({ map, key, want }) => {
      // What the resolver says, through maps.ts, is what the test expects...
      const reply = lookup(map, key, expected);
      expect(reply.status === "OK" ? reply.data : reply.status === "NOTFOUND" ? null : reply).toEqual(want);
      // ...and what Postfix gets over the socket is exactly that.
      const result = await postfix.postmap(["-q", key, `socketmap:unix:${socketPath}:${map}`]);
      expect(result.stderr).not.toMatch(/warning|fatal/);
      if (want === null) {
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
      } else {
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toBe(`${want}\n`);
      }
    });

    it("a full group expansion matches the resolver's nested, de-duplicated membership", async () => {
      const result = await postfix.postmap([
        "-q",
        "everyone@cs.example.org",
        `socketmap:unix:${socketPath}:alias`,
      ]);
      const members = result.stdout.trim().split(",");
      const resolution = expected.resolver.resolve("csall@cs.example.org");
      if (resolution.kind !== "group") throw new Error(`csall resolved to ${resolution.kind}`);
      expect(members).toEqual(resolution.expansion.users.map((user) => user.primaryAddress));
      expect(members).toHaveLength(11);
      expect(members).not.toContain("csd4713@cs.example.org");
    });

    it("an ambiguous address is a temporary alias error, never an expansion to both claimants", async () => {
      const result = await postfix.postmap([
        "-q",
        "karagianni.eleni@cs.example.org",
        `socketmap:unix:${socketPath}:alias`,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(/temporary error: address claimed by more than one directory entry/);
    });

    it("answers the same over TCP (socketmap:inet:, for Postfix on another host)", async () => {
      const tcp = verifyd.addresses().find((address) => address.kind === "tcp");
      if (tcp === undefined || tcp.kind !== "tcp") throw new Error("no TCP listener bound");
      const table = (map: string) => `socketmap:inet:127.0.0.1:${tcp.port}:${map}`;
      const found = await postfix.postmap(["-q", "smith.john@cs.example.org", table("alias")]);
      expect(found.code, found.stderr).toBe(0);
      expect(found.stdout).toBe("jsmith@cs.example.org\n");
      const unknown = await postfix.postmap(["-q", "nobody@cs.example.org", table("recipient")]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).not.toMatch(/warning|fatal/);
    });

    it("an unknown map name is a permanent error", async () => {
      const result = await postfix.postmap([
        "-q",
        "gpapadop@cs.example.org",
        `socketmap:unix:${socketPath}:users`,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/permanent error: unknown map name/);
    });
  });

  describe("smtpd with the maps, driven by swaks", () => {
    let serial = 0;
    const send = async (to: string) => {
      const subject = `verifyd ${++serial} ${to}`;
      const result = await postfix.swaks([
        "--from",
        "sender@client.test",
        "--to",
        to,
        "--header",
        `Subject: ${subject}`,
        "--body",
        "verifyd end-to-end test",
      ]);
      return { ...result, subject };
    };

    /** Every recipient the sink was asked to deliver the message with this subject to. */
    const deliveredTo = async (subject: string, expectedRecipients: readonly string[]) => {
      const recipients = () =>
        sink.messages
          .filter((message) => message.data.includes(`Subject: ${subject}\r\n`))
          .flatMap((m) => m.rcptTo);
      await waitFor(() => expectedRecipients.every((address) => recipients().includes(address)), {
        timeoutMs: 30_000,
        what: `delivery of "${subject}" to ${expectedRecipients.join(", ")}`,
        logPaths: [postfix.logPath],
      });
      return [...recipients()].sort();
    };

    it.each([
      { name: "unknown", to: "nobody@cs.example.org" },
      { name: "inactive", to: "csd4713@cs.example.org" },
      { name: "inactive, by alternate address", to: "pappas.konstantinos@cs.example.org" },
      { name: "virtual-domain non-member", to: "jsmith@rise.example" },
      { name: "unknown in the alias domain", to: "nobody.at.all@example.org" },
    ])("$name → 550 at RCPT", async ({ to }) => {
      const result = await send(to);
      const escaped = to.replace(/[.+]/g, "\\$&");
      expect(result.transcript).toMatch(
        new RegExp(
          `<\\*\\* 550 5\\.1\\.1 <${escaped}>: Recipient address rejected: User unknown in relay recipient table`,
        ),
      );
    });

    it("an address two entries claim → 550 naming the conflict, at RCPT", async () => {
      const result = await send("karagianni.eleni@cs.example.org");
      expect(result.transcript).toMatch(
        /<\*\* 550 5\.1\.0 <karagianni\.eleni@cs\.example\.org>: Recipient address rejected: Address claimed by more than one directory entry/,
      );
    });

    it.each([
      { name: "user", to: "jsmith@cs.example.org", want: ["jsmith@cs.example.org"] },
      { name: "alternate address", to: "smith.john@cs.example.org", want: ["jsmith@cs.example.org"] },
      {
        name: "alias-domain address",
        to: "papadopoulos.georgios@example.org",
        want: ["gpapadop@cs.example.org"],
      },
      { name: "+ext", to: "gpapadop+lists@cs.example.org", want: ["gpapadop+lists@cs.example.org"] },
      {
        name: "+ext on an alternate",
        to: "smith.john+ops@cs.example.org",
        want: ["jsmith+ops@cs.example.org"],
      },
      { name: "forward", to: "dvlachos@cs.example.org", want: ["dimitris.vlachos@gmail.example"] },
      {
        name: "virtual-domain member",
        to: "maria.nikolaidou@rise.example",
        want: ["mnikolai@cs.example.org"],
      },
      {
        name: "virtual-domain group",
        to: "team@rise.example",
        want: ["gpapadop@cs.example.org", "mnikolai@cs.example.org", "soikonom@cs.example.org"],
      },
      {
        name: "group",
        to: "csstaff@cs.example.org",
        want: ["ekaragia@cs.example.org", "jsmith@cs.example.org"],
      },
      {
        name: "nested group with a forwarding member and an inactive one",
        to: "everyone@cs.example.org",
        want: [
          "csd4711@cs.example.org",
          "csd4712@cs.example.org",
          "csd4714@cs.example.org",
          "csd4715@cs.example.org",
          "csd4716@cs.example.org",
          "dimitris.vlachos@gmail.example",
          "ekaragia@cs.example.org",
          "gpapadop@cs.example.org",
          "jsmith@cs.example.org",
          "mnikolai@cs.example.org",
          "soikonom@cs.example.org",
        ],
      },
    ])("$name ($to) → accepted and delivered to the right mailboxes", async ({ to, want }) => {
      const result = await send(to);
      expect(result.code, result.transcript).toBe(0);
      expect(result.transcript).toMatch(/<- {2}250 2\.1\.5 Ok/);
      expect(await deliveredTo(result.subject, want)).toEqual([...want].sort());
    });

    it("a stale snapshot → 4xx at RCPT for known and unknown alike, never 5xx; fresh again → served", async () => {
      writeDirectory(new Date(Date.now() - 2 * HOUR));
      await verifyd.reload();
      expect(verifyd.snapshot.current()?.fresh).toBe(false);
      try {
        for (const to of ["jsmith@cs.example.org", "nobody@cs.example.org", "csall@cs.example.org"]) {
          const result = await send(to);
          expect(result.transcript, to).toMatch(/<\*\* 4\d\d /);
          expect(result.transcript, to).not.toMatch(/<\*\* 5\d\d /);
        }
      } finally {
        writeDirectory(new Date());
        await verifyd.reload();
      }
      expect(verifyd.snapshot.current()?.fresh).toBe(true);
      // smtpd caches each address's resolution, a failed one too, for the life
      // of the process (README: Postfix caches): ask for one not tried while stale.
      const again = await send("mnikolai@cs.example.org");
      expect(again.code, again.transcript).toBe(0);
    });
  });
});
