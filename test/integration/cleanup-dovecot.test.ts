// Proves mailbox clean-up against a real Dovecot 2.3 (maildir): a received-
// date rule removes Junk messages whose IMAP INTERNALDATE is old although
// they were saved moments ago; a save-date rule of a few seconds removes
// Trash messages saved before the pause and keeps the ones saved after it;
// a faculty member (through a nested group) keeps the Trash the others lose;
// INBOX and an inactive user are untouched; a dry run removes nothing and
// reports the same counts as the real run; a user without Junk is fine; a
// login Dovecot does not know is reported while the users after it are
// still cleaned; a login doveadm would read as a user mask is refused.
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Directory, DirectoryUser } from "../../core/directory/model.js";
import { Resolver } from "../../core/directory/resolver.js";
import { createLogger } from "../../core/log/logger.js";
import { type CleanupReport, type CleanupRule, planCleanup, runCleanup } from "../../sync-agent/cleanup.js";
import { testGroup, testUser } from "../harness/directory-builders.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { runChecked, sleep } from "../harness/process.js";

const DOVEADM = "/usr/bin/doveadm";
const DAY = 86_400_000;
/** The Trash rule for everyone; the faculty one is an hour. */
const TRASH_WINDOW_MS = 3_000;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An IMAP date-time in UTC: "14-Nov-2023 22:13:20 +0000". */
function imapDate(date: Date): string {
  const two = (value: number): string => String(value).padStart(2, "0");
  return (
    `${two(date.getUTCDate())}-${MONTHS[date.getUTCMonth()]}-${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

/** Just enough IMAP to LOGIN and APPEND with a chosen INTERNALDATE (LITERAL+, no round trip per literal). */
class ImapAppender {
  private buffer = "";
  private wake: (() => void) | null = null;
  private tag = 0;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      this.wake?.();
    });
  }

  static async login(port: number, user: string, password: string): Promise<ImapAppender> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const opened = connect({ host: "127.0.0.1", port }, () => resolve(opened));
      opened.once("error", reject);
    });
    const client = new ImapAppender(socket);
    await client.waitFor(/^\* OK/);
    await client.command(`LOGIN ${user} ${password}`);
    return client;
  }

  private async waitFor(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const lines = this.buffer.split("\r\n");
      const index = lines.findIndex((line, at) => at < lines.length - 1 && pattern.test(line));
      if (index >= 0) {
        this.buffer = lines.slice(index + 1).join("\r\n");
        return lines[index] as string;
      }
      if (Date.now() > deadline) throw new Error(`IMAP: no ${pattern} in ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async command(text: string): Promise<void> {
    const tag = `t${++this.tag}`;
    this.socket.write(`${tag} ${text}\r\n`);
    const reply = await this.waitFor(new RegExp(`^${tag} `));
    if (!reply.startsWith(`${tag} OK`)) throw new Error(`IMAP ${text.slice(0, 60)}: ${reply}`);
  }

  append(mailbox: string, internalDate: Date, message: string): Promise<void> {
    return this.command(
      `APPEND ${mailbox} "${imapDate(internalDate)}" {${Buffer.byteLength(message)}+}\r\n${message}`,
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

function message(subject: string): string {
  return `From: sender@example.net\r\nTo: user@cs.example.org\r\nSubject: ${subject}\r\n\r\n${subject}\r\n`;
}

/** Users here live on the Dovecot back-end unless they say otherwise. */
function user(login: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return testUser(login, { mailHost: "backend.test", ...extra });
}

// ghost comes first: Dovecot does not know it, and the users after it must
// still be cleaned. "bo?" would match bob as a doveadm -u mask. erin lives on
// another mail host; dave is inactive.
const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    user("ghost"),
    user("alice"),
    user("bob"),
    user("bo?"),
    user("carol"),
    user("dave", { status: "inactive" }),
    user("erin", { mailHost: "other.test" }),
  ],
  groups: [
    testGroup("faculty", { memberGroups: ["professors"] }),
    testGroup("professors", { memberLogins: ["bob"] }),
  ],
};

const rules: CleanupRule[] = [
  { mailbox: "Junk", older_than: 15 * DAY, group: "", date: "received" },
  { mailbox: "Trash", older_than: TRASH_WINDOW_MS, group: "", date: "saved" },
  { mailbox: "Trash", older_than: 3_600_000, group: "faculty", date: "saved" },
];

describe("mailbox clean-up against a real Dovecot", () => {
  let dovecot: Dovecot;
  let now: Date;
  const logLines: Record<string, unknown>[] = [];

  const doveadm = async (args: string[], input?: string): Promise<string> =>
    (await runChecked(DOVEADM, ["-c", dovecot.configPath, ...args], input === undefined ? {} : { input }))
      .stdout;

  /** Subjects in a mailbox, sorted. */
  const subjects = async (login: string, mailbox: string): Promise<string[]> => {
    const out = await doveadm(["-f", "tab", "fetch", "-u", login, "hdr.subject", "mailbox", mailbox, "all"]);
    return out
      .split("\n")
      .slice(1)
      .filter((line) => line !== "")
      .sort();
  };

  const run = (dryRun: boolean): Promise<CleanupReport> =>
    runCleanup(planCleanup(directory, new Resolver(directory), rules, { mailHost: "backend.test" }), {
      doveadm: DOVEADM,
      doveadmConfig: dovecot.configPath,
      dryRun,
      now,
      log: createLogger({
        program: "sync-agent",
        level: "info",
        destination: { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) },
      }),
    });

  beforeAll(async () => {
    dovecot = await startDovecot({
      users: ["alice", "bob", "carol", "dave"].map((name) => ({ name, password: `pw-${name}` })),
    });
    for (const login of ["alice", "bob", "dave"])
      await doveadm(["mailbox", "create", "-u", login, "Junk", "Trash"]);
    await doveadm(["mailbox", "create", "-u", "carol", "Trash"]);

    // Saved before the pause: older than the 3 s Trash rule when we run.
    const save = (login: string, mailbox: string, subject: string) =>
      doveadm(["save", "-u", login, "-m", mailbox], message(subject));
    for (const login of ["alice", "bob", "carol", "dave"]) {
      await save(login, "Trash", `${login} trash old 1`);
      if (login !== "carol") await save(login, "Trash", `${login} trash old 2`);
      await save(login, "INBOX", `${login} inbox saved old`);
    }
    const oldSaved = Date.now();

    // Saved now, received long ago (or recently): only the received date decides.
    const received = (daysAgo: number) => new Date(oldSaved - daysAgo * DAY);
    for (const login of ["alice", "bob"]) {
      const imap = await ImapAppender.login(dovecot.ports.imap as number, login, `pw-${login}`);
      await imap.append("Junk", received(30), message(`${login} junk 30 days`));
      await imap.append("Junk", received(16), message(`${login} junk 16 days`));
      await imap.append("Junk", received(1), message(`${login} junk 1 day`));
      await imap.append("INBOX", received(400), message(`${login} inbox 400 days`));
      imap.close();
    }

    // Second-granular save dates: a message saved at s is matched when
    // floor(s) < floor(now - 3 s), so 4.2 s after the last old save every old
    // one matches, and a new one matches only if now came 2 s after it.
    await sleep(Math.max(0, oldSaved + 4_200 - Date.now()));
    for (const login of ["alice", "bob", "carol"]) await save(login, "Trash", `${login} trash new`);
    now = new Date();
  });

  afterAll(async () => {
    await dovecot?.destroy();
  });

  const wantCounts = {
    alice: { Junk: 2, Trash: 2 },
    bob: { Junk: 2, Trash: 0 },
    carol: { Junk: 0, Trash: 1 },
  };

  const countsOf = (report: CleanupReport) =>
    Object.fromEntries(
      report.users.map((outcome) => [
        outcome.login,
        Object.fromEntries(outcome.mailboxes.map((mailbox) => [mailbox.mailbox, mailbox.messages])),
      ]),
    );

  it("dry run: reports what would go, removes nothing", async () => {
    const before = await subjects("alice", "Trash");
    const report = await run(true);
    expect(countsOf(report)).toEqual(wantCounts);
    expect(report.totalMessages).toBe(7);
    expect(report.usersWithMessages).toBe(3);
    expect(report.missingMailboxes).toBe(1);
    expect(report.users.find((outcome) => outcome.login === "carol")?.mailboxes[0]).toMatchObject({
      mailbox: "Junk",
      missing: true,
      messages: 0,
    });
    expect(await subjects("alice", "Trash")).toEqual(before);
    expect(await subjects("alice", "Junk")).toHaveLength(3);
    expect(await doveadm(["mailbox", "status", "-u", "bob", "messages", "Junk"])).toBe("Junk messages=3\n");
  });

  it("real run: the same counts, old messages in Junk and Trash gone, the rest kept", async () => {
    logLines.length = 0;
    const report = await run(false);
    expect(countsOf(report)).toEqual(wantCounts);
    expect(report.totalMessages).toBe(7);

    expect(await subjects("alice", "Junk")).toEqual(["alice junk 1 day"]);
    expect(await subjects("alice", "Trash")).toEqual(["alice trash new"]);
    expect(await subjects("bob", "Junk")).toEqual(["bob junk 1 day"]);
    // faculty (through professors) keeps Trash for an hour
    expect(await subjects("bob", "Trash")).toEqual(["bob trash new", "bob trash old 1", "bob trash old 2"]);
    expect(await subjects("carol", "Trash")).toEqual(["carol trash new"]);
    // no rule for INBOX; dave is inactive
    for (const login of ["alice", "bob"])
      expect(await subjects(login, "INBOX")).toEqual([`${login} inbox 400 days`, `${login} inbox saved old`]);
    expect(await subjects("dave", "Trash")).toEqual(["dave trash old 1", "dave trash old 2"]);

    // one info line per user with messages
    const perUser = logLines.filter((line) => line["msg"] === "expunged");
    expect(perUser.map((line) => [line["login"], line["messages"], line["mailboxes"]])).toEqual([
      ["alice", 4, { Junk: 2, Trash: 2 }],
      ["bob", 2, { Junk: 2, Trash: 0 }],
      ["carol", 1, { Junk: 0, Trash: 1 }],
    ]);
  });

  it("an unknown login and a mask-like login are failures; erin on another host is not even tried", async () => {
    const report = await run(true);
    expect(report.failures).toEqual([
      {
        login: "ghost",
        mailbox: null,
        error: expect.stringMatching(/^doveadm exited with 67: .*User doesn't exist/),
      },
      { login: "bo?", mailbox: null, error: expect.stringMatching(/mask/) },
    ]);
    expect(report.users.map((outcome) => outcome.login)).toEqual(["alice", "bob", "carol"]);
    // a second run finds nothing left to do
    expect(report.totalMessages).toBe(0);
  });
});
