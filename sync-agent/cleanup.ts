/**
 * Mailbox clean-up: expunges old messages from the folders users rarely look
 * at (Junk, Trash, Virus), so those folders never push a mailbox over quota.
 * It replaces the cleanup-Mail cron scripts, which ran `find -mtime` over
 * every maildir: here the rules come from the [cleanup] configuration, the
 * users from the directory, and Dovecot's own `doveadm` does the work, so
 * indexes stay consistent and any mailbox format works.
 *
 * planCleanup is pure: which rule applies to which active user. A rule with a
 * group applies to the group's nested members and replaces the group-less
 * rule for that mailbox; when several group rules match a user, the longest
 * retention wins (the mistake of keeping mail too long can be undone, the
 * other one cannot). For the same reason a mailbox whose rules name a group
 * the directory does not have is left out for everyone, with a warning: a
 * typo must not give faculty the students' retention.
 *
 * runCleanup runs doveadm per user and mailbox, first `search` to count the
 * matching messages, then (unless dry run) `expunge` with the same query.
 * Dates are an absolute UNIX timestamp, floor((now - older_than) / 1 s):
 * doveadm compares such a timestamp exactly, to the second, in UTC ("before
 * 1700000000" is `date < 1700000000`), whereas YYYY-MM-DD dates are local
 * whole days and intervals ("15d") are measured from each doveadm process's
 * own start, so a count and its expunge could disagree. Rounding down means a
 * message younger than its rule is never matched.
 *
 * "received" uses BEFORE, the IMAP internal date (for maildir the file's
 * mtime: what the old scripts tested). "saved" uses SAVEDBEFORE, when the
 * message came into this mailbox: moving a message to Trash sets it, so it is
 * the right date for Trash. Dovecot 2.3 takes the save date from the index
 * cache, else for maildir from the file's ctime (which a flag change renames,
 * moving it later until it is cached: such messages are kept longer, never
 * shorter); dbox formats store it with the message.
 *
 * Logins and mailbox names reach doveadm as argv elements, never through a
 * shell, and ones doveadm would read as something else are refused: a leading
 * "-" (an option), "*" or "?" in a login (a user mask: doveadm -u would act
 * on other users), "*" or "%" in a mailbox name (a mailbox pattern).
 */
import { spawn } from "node:child_process";
import type { Directory } from "../core/directory/model.js";
import type { Resolver } from "../core/directory/resolver.js";
import type { Logger } from "../core/log/logger.js";

export type CleanupDate = "saved" | "received";

/** One [[cleanup.rules]] entry as the configuration loader returns it (older_than in ms). */
export interface CleanupRule {
  readonly mailbox: string;
  readonly older_than: number;
  /** "" applies to everyone; otherwise to the group's (nested) members. */
  readonly group: string;
  readonly date: CleanupDate;
}

export interface PlannedMailbox {
  mailbox: string;
  olderThanMs: number;
  date: CleanupDate;
}

export interface PlannedUser {
  login: string;
  mailboxes: PlannedMailbox[];
}

export interface CleanupPlan {
  /** Active users with at least one rule, in directory order. */
  users: PlannedUser[];
  /** Rules left out and why (unsafe mailbox name, unknown group). */
  warnings: string[];
}

export interface MailboxOutcome {
  mailbox: string;
  date: CleanupDate;
  /** The UNIX timestamp passed to doveadm: messages dated before it matched. */
  cutoff: number;
  /** Expunged, or would be expunged in a dry run. */
  messages: number;
  /** The user has no such mailbox (counted as 0, not a failure). */
  missing: boolean;
}

export interface UserOutcome {
  login: string;
  messages: number;
  /** Mailboxes handled without failure (users that failed as a whole are only in failures). */
  mailboxes: MailboxOutcome[];
}

export interface CleanupFailure {
  login: string;
  /** null when the whole user failed (unknown to Dovecot, unsafe login). */
  mailbox: string | null;
  error: string;
}

export interface CleanupReport {
  dryRun: boolean;
  /** The "now" every cutoff was computed from, ISO 8601. */
  now: string;
  users: UserOutcome[];
  totalMessages: number;
  /** Users with at least one message expunged (or to expunge). */
  usersWithMessages: number;
  missingMailboxes: number;
  failures: CleanupFailure[];
}

export interface RunCleanupOptions {
  doveadm: string;
  /** doveadm -c FILE; "" uses doveadm's default configuration. */
  doveadmConfig: string;
  dryRun: boolean;
  now?: Date;
  log: Logger;
  /** Bound on each doveadm call; default 10 minutes (a large Junk folder takes a while). */
  commandTimeoutMs?: number;
}

/** Why a login or mailbox name must not be handed to doveadm, or null when it is safe. */
export function unsafeDoveadmArgument(kind: "login" | "mailbox", value: string): string | null {
  if (value === "") return `empty ${kind}`;
  if (value.startsWith("-")) return `${kind} starts with "-" (doveadm would read it as an option)`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${kind} contains a control character`;
  if (kind === "login" && /[*?]/.test(value))
    return 'login contains "*" or "?" (doveadm -u would take it as a mask matching other users)';
  if (kind === "mailbox" && /[*%]/.test(value))
    return 'mailbox name contains "*" or "%" (doveadm would take it as a pattern matching other mailboxes)';
  return null;
}

/** Dovecot treats INBOX case-insensitively; every other name is exact. */
function canonicalMailbox(name: string): string {
  return name.toUpperCase() === "INBOX" ? "INBOX" : name;
}

/** The rule with the longest retention; the first one on a tie. */
function longest(rules: readonly CleanupRule[]): CleanupRule | undefined {
  let best: CleanupRule | undefined;
  for (const rule of rules) if (best === undefined || rule.older_than > best.older_than) best = rule;
  return best;
}

export function planCleanup(
  directory: Directory,
  resolver: Resolver,
  rules: readonly CleanupRule[],
  options: { mailHost: string },
): CleanupPlan {
  const warnings: string[] = [];
  const byMailbox = new Map<string, CleanupRule[]>();
  for (const rule of rules) {
    const unsafe = unsafeDoveadmArgument("mailbox", rule.mailbox);
    if (unsafe !== null) {
      warnings.push(`rule for mailbox ${JSON.stringify(rule.mailbox)} left out: ${unsafe}`);
      continue;
    }
    const mailbox = canonicalMailbox(rule.mailbox);
    const list = byMailbox.get(mailbox);
    if (list === undefined) byMailbox.set(mailbox, [rule]);
    else list.push(rule);
  }
  for (const [mailbox, list] of byMailbox) {
    const unknown = list.filter((rule) => rule.group !== "" && resolver.group(rule.group) === undefined);
    if (unknown.length === 0) continue;
    const names = [...new Set(unknown.map((rule) => rule.group))].join(", ");
    warnings.push(`mailbox ${mailbox} left out for everyone: its rules name unknown group(s) ${names}`);
    byMailbox.delete(mailbox);
  }

  const host = options.mailHost.toLowerCase();
  const users: PlannedUser[] = [];
  for (const user of directory.users) {
    if (user.status !== "active") continue;
    if (host !== "" && (user.mailHost ?? "").toLowerCase() !== host) continue;
    const mailboxes: PlannedMailbox[] = [];
    for (const [mailbox, list] of byMailbox) {
      const forGroups = list.filter((rule) => rule.group !== "" && resolver.isMember(user.login, rule.group));
      const rule = longest(forGroups) ?? longest(list.filter((candidate) => candidate.group === ""));
      if (rule !== undefined) mailboxes.push({ mailbox, olderThanMs: rule.older_than, date: rule.date });
    }
    if (mailboxes.length > 0) users.push({ login: user.login, mailboxes });
  }
  return { users, warnings };
}

/** sysexits codes doveadm uses for an unknown user and a missing mailbox. */
const EXIT_NO_USER = 67;
const EXIT_NOT_FOUND = 68;
const STDOUT_LIMIT = 256 * 1024 * 1024;
const STDERR_LIMIT = 16 * 1024;

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDoveadm(file: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let failure: Error | null = null;
    const stop = (error: Error): void => {
      failure ??= error;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => stop(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > STDOUT_LIMIT) stop(new Error(`more than ${STDOUT_LIMIT} bytes of output`));
      else stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < STDERR_LIMIT) stderr += chunk.toString("utf8");
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (failure !== null) reject(failure);
      else resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr });
    });
  });
}

/** doveadm's complaint, on one line and short enough for a report. */
function describeFailure(result: CommandResult): string {
  const text = result.stderr.replace(/\s+/g, " ").trim().slice(0, 500);
  return `doveadm exited with ${result.code ?? "a signal"}${text === "" ? "" : `: ${text}`}`;
}

/** `doveadm search` prints "<mailbox guid> <uid>" per match; anything else means we misread it. */
function countMatches(stdout: string): number | string {
  let count = 0;
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    if (!/^[0-9a-f]{32} \d+$/.test(line.trim()))
      return `unexpected doveadm search output: ${line.slice(0, 100)}`;
    count++;
  }
  return count;
}

type MailboxStep =
  | { kind: "done"; outcome: MailboxOutcome }
  | { kind: "failed"; userFailed: boolean; error: string };

async function cleanMailbox(
  login: string,
  planned: PlannedMailbox,
  nowMs: number,
  options: RunCleanupOptions,
): Promise<MailboxStep> {
  const global = options.doveadmConfig === "" ? [] : ["-c", options.doveadmConfig];
  const timeoutMs = options.commandTimeoutMs ?? 600_000;
  const cutoff = Math.floor((nowMs - planned.olderThanMs) / 1000);
  const outcome: MailboxOutcome = {
    mailbox: planned.mailbox,
    date: planned.date,
    cutoff,
    messages: 0,
    missing: false,
  };
  // Nothing can be dated before 1970; a negative number would also read as an option.
  if (cutoff <= 0) return { kind: "done", outcome };
  const query = [
    "--",
    "mailbox",
    planned.mailbox,
    planned.date === "saved" ? "savedbefore" : "before",
    String(cutoff),
  ];
  const run = async (command: "search" | "expunge"): Promise<CommandResult | string> => {
    try {
      return await runDoveadm(options.doveadm, [...global, command, "-u", login, ...query], timeoutMs);
    } catch (error) {
      return `doveadm ${command}: ${(error as Error).message}`;
    }
  };

  const search = await run("search");
  if (typeof search === "string") return { kind: "failed", userFailed: false, error: search };
  if (search.code === EXIT_NOT_FOUND) return { kind: "done", outcome: { ...outcome, missing: true } };
  if (search.code !== 0)
    return { kind: "failed", userFailed: search.code === EXIT_NO_USER, error: describeFailure(search) };
  const found = countMatches(search.stdout);
  if (typeof found === "string") return { kind: "failed", userFailed: false, error: found };
  if (found === 0 || options.dryRun) return { kind: "done", outcome: { ...outcome, messages: found } };

  const expunge = await run("expunge");
  if (typeof expunge === "string") return { kind: "failed", userFailed: false, error: expunge };
  if (expunge.code !== 0)
    return {
      kind: "failed",
      userFailed: false,
      error: `${found} found, expunge failed: ${describeFailure(expunge)}`,
    };
  return { kind: "done", outcome: { ...outcome, messages: found } };
}

/**
 * Runs the plan user by user. A failing user (or mailbox) is recorded and
 * the run goes on; an unknown user or unsafe login stops only that user.
 */
export async function runCleanup(plan: CleanupPlan, options: RunCleanupOptions): Promise<CleanupReport> {
  const now = options.now ?? new Date();
  const report: CleanupReport = {
    dryRun: options.dryRun,
    now: now.toISOString(),
    users: [],
    totalMessages: 0,
    usersWithMessages: 0,
    missingMailboxes: 0,
    failures: [],
  };
  const fail = (failure: CleanupFailure): void => {
    report.failures.push(failure);
    options.log.warn(failure, "clean-up failed");
  };

  for (const planned of plan.users) {
    const unsafeLogin = unsafeDoveadmArgument("login", planned.login);
    if (unsafeLogin !== null) {
      fail({ login: planned.login, mailbox: null, error: unsafeLogin });
      continue;
    }
    const user: UserOutcome = { login: planned.login, messages: 0, mailboxes: [] };
    let userFailed = false;
    for (const mailbox of planned.mailboxes) {
      const unsafe = unsafeDoveadmArgument("mailbox", mailbox.mailbox);
      const badAge = !Number.isFinite(mailbox.olderThanMs) || mailbox.olderThanMs < 0;
      if (unsafe !== null || badAge) {
        fail({
          login: planned.login,
          mailbox: mailbox.mailbox,
          error: unsafe ?? "older than is not a duration",
        });
        continue;
      }
      const step = await cleanMailbox(planned.login, mailbox, now.getTime(), options);
      if (step.kind === "failed") {
        fail({ login: planned.login, mailbox: step.userFailed ? null : mailbox.mailbox, error: step.error });
        userFailed = step.userFailed;
        if (userFailed) break;
        continue;
      }
      user.mailboxes.push(step.outcome);
      user.messages += step.outcome.messages;
      if (step.outcome.missing) report.missingMailboxes++;
    }
    // A user Dovecot does not know is a failure only, not also a user with 0 messages.
    if (userFailed) continue;
    report.users.push(user);
    report.totalMessages += user.messages;
    if (user.messages > 0) {
      report.usersWithMessages++;
      const counts = Object.fromEntries(user.mailboxes.map((outcome) => [outcome.mailbox, outcome.messages]));
      options.log.info(
        { login: user.login, messages: user.messages, mailboxes: counts, dryRun: options.dryRun },
        options.dryRun ? "would expunge" : "expunged",
      );
    }
  }
  options.log.info(
    {
      dryRun: options.dryRun,
      users: report.users.length,
      messages: report.totalMessages,
      failures: report.failures.length,
    },
    "clean-up finished",
  );
  return report;
}

/** The report as the CLI prints it: a summary line, users with messages, then failures. */
export function formatCleanupReport(report: CleanupReport, dryRun: boolean): string {
  const verb = dryRun ? "would be expunged" : "expunged";
  const plural = (count: number, word: string, words = `${word}s`): string =>
    `${count} ${count === 1 ? word : words}`;
  const lines = [
    `${dryRun ? "clean-up (dry run)" : "clean-up"}: ${plural(report.totalMessages, "message")} ${verb} ` +
      `for ${report.usersWithMessages} of ${plural(report.users.length, "user")}; ` +
      `${plural(report.missingMailboxes, "missing mailbox", "missing mailboxes")}; ` +
      `${plural(report.failures.length, "failure")}`,
  ];
  const width = Math.max(
    0,
    ...report.users.filter((user) => user.messages > 0).map((user) => user.login.length),
  );
  for (const user of report.users) {
    if (user.messages === 0) continue;
    const parts = user.mailboxes
      .filter((outcome) => outcome.messages > 0)
      .map((outcome) => `${outcome.mailbox} ${outcome.messages}`);
    lines.push(`  ${user.login.padEnd(width)}  ${parts.join(", ")}`);
  }
  if (report.failures.length > 0) {
    lines.push("failures:");
    for (const failure of report.failures) {
      const where = failure.mailbox === null ? failure.login : `${failure.login} ${failure.mailbox}`;
      lines.push(`  ${where}: ${failure.error}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
