import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type { Directory, DirectoryUser } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import {
  type CleanupPlan,
  type CleanupReport,
  type CleanupRule,
  formatCleanupReport,
  planCleanup,
  runCleanup,
  unsafeDoveadmArgument,
} from "./cleanup.js";

/** Users here live on the mail host "hermes" unless they say otherwise. */
function user(login: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return testUser(login, { mailHost: "hermes", ...extra });
}

const DAY = 86_400_000;

// faculty contains professors (nested); lecturer is in both faculty and
// visiting, whose Trash rules differ.
const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    user("student"),
    user("prof"),
    user("lecturer"),
    user("gone", { status: "inactive" }),
    user("elsewhere", { mailHost: "proteas" }),
    user("nohost", { mailHost: undefined }),
  ],
  groups: [
    testGroup("faculty", { memberLogins: ["lecturer"], memberGroups: ["professors"] }),
    testGroup("professors", { memberLogins: ["prof"] }),
    testGroup("visiting", { memberLogins: ["lecturer"] }),
  ],
};
const resolver = new Resolver(directory);

const rule = (
  mailbox: string,
  days: number,
  group = "",
  date: CleanupRule["date"] = "saved",
): CleanupRule => ({
  mailbox,
  older_than: days * DAY,
  group,
  date,
});

const siteRules: CleanupRule[] = [
  rule("Junk", 15, "", "received"),
  rule("Virus", 7),
  rule("Trash", 20),
  rule("Trash", 60, "faculty"),
  rule("Trash", 90, "visiting"),
];

/** login → "Mailbox:days:date" list, to compare plans compactly. */
function summary(plan: CleanupPlan): Record<string, string[]> {
  return Object.fromEntries(
    plan.users.map((planned) => [
      planned.login,
      planned.mailboxes.map((entry) => `${entry.mailbox}:${entry.olderThanMs / DAY}:${entry.date}`),
    ]),
  );
}

describe("planCleanup", () => {
  it.each([
    {
      name: "group-less rules for everyone, nested group rule overrides, longest of several group rules wins",
      rules: siteRules,
      mailHost: "",
      want: {
        student: ["Junk:15:received", "Virus:7:saved", "Trash:20:saved"],
        prof: ["Junk:15:received", "Virus:7:saved", "Trash:60:saved"],
        lecturer: ["Junk:15:received", "Virus:7:saved", "Trash:90:saved"],
        elsewhere: ["Junk:15:received", "Virus:7:saved", "Trash:20:saved"],
        nohost: ["Junk:15:received", "Virus:7:saved", "Trash:20:saved"],
      },
    },
    {
      name: "only users on this mail host (case-insensitive); users without one are left out",
      rules: siteRules,
      mailHost: "HERMES",
      want: {
        student: ["Junk:15:received", "Virus:7:saved", "Trash:20:saved"],
        prof: ["Junk:15:received", "Virus:7:saved", "Trash:60:saved"],
        lecturer: ["Junk:15:received", "Virus:7:saved", "Trash:90:saved"],
      },
    },
    {
      name: "a mailbox with only a group rule applies to members only",
      rules: [rule("Archive/Old", 365, "professors")],
      mailHost: "",
      want: { prof: ["Archive/Old:365:saved"] },
    },
    {
      name: "a group rule may be shorter than the default; its own date type applies",
      rules: [rule("Junk", 30), rule("Junk", 5, "visiting", "received")],
      mailHost: "hermes",
      want: { student: ["Junk:30:saved"], prof: ["Junk:30:saved"], lecturer: ["Junk:5:received"] },
    },
    {
      name: "two group-less rules for one mailbox: the longest",
      rules: [rule("Trash", 10), rule("Trash", 30)],
      mailHost: "hermes",
      want: { student: ["Trash:30:saved"], prof: ["Trash:30:saved"], lecturer: ["Trash:30:saved"] },
    },
    {
      name: "inbox in any case is one mailbox, INBOX",
      rules: [rule("inbox", 400), rule("INBOX", 700, "faculty")],
      mailHost: "hermes",
      want: { student: ["INBOX:400:saved"], prof: ["INBOX:700:saved"], lecturer: ["INBOX:700:saved"] },
    },
    {
      name: "no rules, no users",
      rules: [],
      mailHost: "",
      want: {},
    },
  ])("$name", ({ rules, mailHost, want }) => {
    const plan = planCleanup(directory, resolver, rules, { mailHost });
    expect(summary(plan)).toEqual(want);
    expect(plan.warnings).toEqual([]);
  });

  it("leaves a mailbox out for everyone when one of its rules names an unknown group", () => {
    const plan = planCleanup(
      directory,
      resolver,
      [rule("Junk", 15), rule("Trash", 20), rule("Trash", 60, "facutly")],
      {
        mailHost: "hermes",
      },
    );
    expect(summary(plan)).toEqual({
      student: ["Junk:15:saved"],
      prof: ["Junk:15:saved"],
      lecturer: ["Junk:15:saved"],
    });
    expect(plan.warnings).toEqual([
      "mailbox Trash left out for everyone: its rules name unknown group(s) facutly",
    ]);
  });

  it("leaves out rules whose mailbox doveadm would misread", () => {
    const plan = planCleanup(
      directory,
      resolver,
      [rule("-d", 1), rule("Tr*", 1), rule("Spam%", 1), rule("Junk", 2)],
      {
        mailHost: "hermes",
      },
    );
    expect(summary(plan)).toEqual({
      student: ["Junk:2:saved"],
      prof: ["Junk:2:saved"],
      lecturer: ["Junk:2:saved"],
    });
    expect(plan.warnings).toHaveLength(3);
    expect(plan.warnings[0]).toMatch(/^rule for mailbox "-d" left out: mailbox starts with "-"/);
  });
});

describe("unsafeDoveadmArgument", () => {
  it.each([
    { kind: "login", value: "gpapadop", want: null },
    { kind: "login", value: "john.smith@cs.example.org", want: null },
    { kind: "login", value: "csd-4711", want: null },
    { kind: "login", value: "", want: /empty/ },
    { kind: "login", value: "-A", want: /option/ },
    { kind: "login", value: "gp*", want: /mask/ },
    { kind: "login", value: "gp?", want: /mask/ },
    { kind: "login", value: "a\nb", want: /control/ },
    { kind: "mailbox", value: "Deleted Messages", want: null },
    { kind: "mailbox", value: "INBOX.Spam", want: null },
    { kind: "mailbox", value: "Trash?", want: null },
    { kind: "mailbox", value: "-d", want: /option/ },
    { kind: "mailbox", value: "*", want: /pattern/ },
    { kind: "mailbox", value: "Spam%", want: /pattern/ },
    { kind: "mailbox", value: "Trash\u0000", want: /control/ },
  ] as const)("$kind $value", ({ kind, value, want }) => {
    const reason = unsafeDoveadmArgument(kind, value);
    if (want === null) expect(reason).toBeNull();
    else expect(reason).toMatch(want);
  });
});

describe("runCleanup without a real Dovecot", () => {
  const silent = pino({ level: "silent" });
  const dir = mkdtempSync(join(tmpdir(), "emailng-cleanup-unit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes the exact argv: -c, -u, --, mailbox, and a UNIX-second cutoff rounded down", async () => {
    // A stand-in doveadm that records its arguments and finds nothing.
    const argsLog = join(dir, "args");
    const fake = join(dir, "doveadm");
    writeFileSync(fake, `#!/bin/sh\nprintf '%s|' "$@" >> ${argsLog}\necho >> ${argsLog}\n`);
    chmodSync(fake, 0o755);
    const plan: CleanupPlan = {
      users: [
        {
          login: "prof",
          mailboxes: [
            { mailbox: "Deleted Messages", olderThanMs: 1_500, date: "saved" },
            { mailbox: "Junk", olderThanMs: 15 * DAY, date: "received" },
          ],
        },
      ],
      warnings: [],
    };
    const report = await runCleanup(plan, {
      doveadm: fake,
      doveadmConfig: "/etc/dovecot/test.conf",
      dryRun: false,
      now: new Date(1_700_000_000_999),
      log: silent,
    });
    expect(readFileSync(argsLog, "utf8").split("\n").filter(Boolean)).toEqual([
      "-c|/etc/dovecot/test.conf|search|-u|prof|--|mailbox|Deleted Messages|savedbefore|1699999999|",
      "-c|/etc/dovecot/test.conf|search|-u|prof|--|mailbox|Junk|before|1698704000|",
    ]);
    expect(report.users).toEqual([
      {
        login: "prof",
        messages: 0,
        mailboxes: [
          { mailbox: "Deleted Messages", date: "saved", cutoff: 1_699_999_999, messages: 0, missing: false },
          { mailbox: "Junk", date: "received", cutoff: 1_698_704_000, messages: 0, missing: false },
        ],
      },
    ]);
    expect(report.failures).toEqual([]);
  });

  it("refuses unsafe logins and mailboxes without running doveadm, and goes on", async () => {
    const plan: CleanupPlan = {
      users: [
        { login: "gp*", mailboxes: [{ mailbox: "Trash", olderThanMs: DAY, date: "saved" }] },
        { login: "prof", mailboxes: [{ mailbox: "-d", olderThanMs: DAY, date: "saved" }] },
        { login: "lecturer", mailboxes: [{ mailbox: "Trash", olderThanMs: Number.NaN, date: "saved" }] },
      ],
      warnings: [],
    };
    const report = await runCleanup(plan, {
      doveadm: join(dir, "never-run"),
      doveadmConfig: "",
      dryRun: false,
      log: silent,
    });
    expect(report.failures).toEqual([
      { login: "gp*", mailbox: null, error: expect.stringMatching(/mask/) },
      { login: "prof", mailbox: "-d", error: expect.stringMatching(/option/) },
      { login: "lecturer", mailbox: "Trash", error: "older than is not a duration" },
    ]);
    expect(report.totalMessages).toBe(0);
  });

  it("records a doveadm that cannot be started for each mailbox and finishes", async () => {
    const plan: CleanupPlan = {
      users: [
        { login: "student", mailboxes: [{ mailbox: "Trash", olderThanMs: DAY, date: "saved" }] },
        { login: "prof", mailboxes: [{ mailbox: "Junk", olderThanMs: DAY, date: "received" }] },
      ],
      warnings: [],
    };
    const report = await runCleanup(plan, {
      doveadm: join(dir, "missing-doveadm"),
      doveadmConfig: "",
      dryRun: true,
      log: silent,
    });
    expect(report.failures.map((failure) => [failure.login, failure.mailbox])).toEqual([
      ["student", "Trash"],
      ["prof", "Junk"],
    ]);
    expect(report.failures[0]?.error).toMatch(/^doveadm search: .*ENOENT/);
  });
});

describe("formatCleanupReport", () => {
  const report: CleanupReport = {
    dryRun: true,
    now: "2026-01-01T03:30:00.000Z",
    users: [
      {
        login: "student",
        messages: 5,
        mailboxes: [
          { mailbox: "Junk", date: "received", cutoff: 1, messages: 3, missing: false },
          { mailbox: "Virus", date: "saved", cutoff: 1, messages: 0, missing: true },
          { mailbox: "Trash", date: "saved", cutoff: 1, messages: 2, missing: false },
        ],
      },
      { login: "prof", messages: 0, mailboxes: [] },
      {
        login: "lecturer",
        messages: 1,
        mailboxes: [{ mailbox: "Trash", date: "saved", cutoff: 1, messages: 1, missing: false }],
      },
    ],
    totalMessages: 6,
    usersWithMessages: 2,
    missingMailboxes: 1,
    failures: [
      { login: "ghost", mailbox: null, error: "doveadm exited with 67: User doesn't exist" },
      { login: "prof", mailbox: "Junk", error: "doveadm exited with 75: locked" },
    ],
  };

  it("dry run: what would go, per user with messages, then failures", () => {
    expect(formatCleanupReport(report, true)).toBe(
      [
        "clean-up (dry run): 6 messages would be expunged for 2 of 3 users; 1 missing mailbox; 2 failures",
        "  student   Junk 3, Trash 2",
        "  lecturer  Trash 1",
        "failures:",
        "  ghost: doveadm exited with 67: User doesn't exist",
        "  prof Junk: doveadm exited with 75: locked",
        "",
      ].join("\n"),
    );
  });

  it("a real run with nothing to do", () => {
    const empty: CleanupReport = {
      ...report,
      dryRun: false,
      users: [],
      totalMessages: 0,
      usersWithMessages: 0,
    };
    expect(formatCleanupReport({ ...empty, missingMailboxes: 0, failures: [] }, false)).toBe(
      "clean-up: 0 messages expunged for 0 of 0 users; 0 missing mailboxes; 0 failures\n",
    );
  });
});
