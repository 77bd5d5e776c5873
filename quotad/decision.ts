/**
 * The quota decision: given what a recipient resolves to (plan.ts), the
 * usage readings of its mailboxes, the message size and the time, does the
 * mail fit? Pure and synchronous; the clock, the snapshot and the usage are
 * passed in, so tests use a fake clock and a table of readings.
 *
 * A mailbox refuses the way Dovecot's quota plugin would at delivery, so
 * the relay refuses exactly what the back-end would bounce: the message
 * fits when usage + size stays within the limit, or, while usage is still
 * under the limit, within limit + grace (the grace lets the last message go
 * over, like Dovecot's quota_grace). A message bigger than limit + grace on
 * its own is "too large", anything else that does not fit "over quota" (the
 * two replies of quota-status). A size of 0 (no SIZE= from the client) is
 * checked as one byte, so only mailboxes already full are refused at RCPT.
 *
 * Nothing uncertain refuses: no limit, no usage record, usage older than
 * usage_max_age or of unknown age, a cut cycle, an outside address — all
 * count as room. Forwards refuse when any mailbox they deliver to is full
 * (that copy would bounce); groups follow group_policy (any / all; accept
 * is never expanded); "all" with an expansion cut short never refuses.
 */
import type { QuotaGrace } from "../core/config/quotad-schema.js";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import { type PlanSettings, planRecipient, type RecipientPlan, type Target, usernamesOf } from "./plan.js";
import type { UsageReadings, UsageRecord } from "./usage-store.js";

export type { QuotaGrace } from "../core/config/quotad-schema.js";

export interface QuotaSettings extends PlanSettings {
  grace: QuotaGrace;
  /** Usage written longer ago than this is stale: shown, never used to refuse. */
  usageMaxAgeMs: number;
  /** END-OF-MESSAGE with several recipients: refuse the message when one lacks room, or not. */
  severalRecipients: "accept" | "refuse";
}

export type MailboxState =
  | "fits"
  /** Over the limit with this message, but usage was under it: Dovecot's grace lets it in. */
  | "within-grace"
  | "over-quota"
  | "too-large"
  | "unlimited"
  | "no-usage"
  | "stale";

export interface MailboxCheck {
  /** The address the mailbox was reached by (a member's primary address, a forward's own address…). */
  address: string;
  login: string;
  username: string | null;
  limitBytes: number | null;
  graceBytes: number;
  usage: UsageRecord | null;
  /** ms since the usage was written; null when unknown. */
  ageMs: number | null;
  state: MailboxState;
}

export type RecipientDecision =
  | { kind: "not-ours"; address: string; resolution: string }
  | { kind: "fits"; address: string; checked: MailboxCheck[] }
  | { kind: "over-quota" | "too-large"; address: string; mailbox: MailboxCheck; checked: MailboxCheck[] };

export type QuotaDecision =
  /** The request is not one quotad answers (another protocol state, no recipient): DUNNO. */
  | { kind: "not-checked"; reason: "protocol-state" | "no-recipient" | "several-recipients" }
  | { kind: "not-ours"; address: string; resolution: string }
  /** state: at END-OF-MESSAGE the answer is DUNNO whatever success says, as quota-status gives there. */
  | { kind: "fits"; state: QuotaQuestion["state"]; recipients: RecipientDecision[] }
  | {
      kind: "over-quota" | "too-large";
      refused: Extract<RecipientDecision, { mailbox: MailboxCheck }>;
      recipients: RecipientDecision[];
    }
  /** quotad cannot decide: the configured DUNNO or temporary reply, never a refusal. */
  | { kind: "unavailable"; reason: "no-snapshot" | "stale-snapshot" | "usage-store"; detail: string };

export type QuotaDecisionKind = QuotaDecision["kind"];

/** One policy request reduced to what quota needs; built by the session (question.ts). */
export interface QuotaQuestion {
  state: "RCPT" | "END-OF-MESSAGE";
  /** One at RCPT; at END-OF-MESSAGE the recipient, or every recipient accepted at RCPT. */
  recipients: readonly string[];
  /** Bytes; 0 when unknown. */
  size: number;
}

/** First half: resolve every recipient (needs the snapshot, not the usage). */
export type PreparedQuestion =
  | { kind: "decided"; decision: QuotaDecision }
  | { kind: "plans"; question: QuotaQuestion; plans: RecipientPlan[]; usernames: string[] };

export function prepareQuestion(
  question: QuotaQuestion,
  snapshot: CurrentSnapshot | null,
  settings: QuotaSettings,
): PreparedQuestion {
  if (question.recipients.length === 0) {
    return { kind: "decided", decision: { kind: "not-checked", reason: "no-recipient" } };
  }
  if (snapshot === null) {
    return {
      kind: "decided",
      decision: { kind: "unavailable", reason: "no-snapshot", detail: "no directory snapshot loaded" },
    };
  }
  if (!snapshot.fresh) {
    return {
      kind: "decided",
      decision: {
        kind: "unavailable",
        reason: "stale-snapshot",
        detail: `directory snapshot version ${snapshot.meta.version} from ${snapshot.meta.createdAt} is stale`,
      },
    };
  }
  const plans = question.recipients.map((recipient) => planRecipient(recipient, snapshot.resolver, settings));
  const usernames = new Set<string>();
  for (const plan of plans) if (plan.kind === "targets") usernamesOf(plan.root, usernames);
  return { kind: "plans", question, plans, usernames: [...usernames] };
}

/** Second half: evaluate the plans against the readings the store returned. */
export function concludeQuestion(
  prepared: PreparedQuestion,
  readings: UsageReadings,
  now: number,
  settings: QuotaSettings,
): QuotaDecision {
  if (prepared.kind === "decided") return prepared.decision;
  const { question, plans } = prepared;
  const recipients = plans.map((plan) => decideRecipient(plan, readings, question.size, now, settings));
  if (recipients.length === 1) {
    const only = recipients[0] as RecipientDecision;
    switch (only.kind) {
      case "not-ours":
        return { kind: "not-ours", address: only.address, resolution: only.resolution };
      case "fits":
        return { kind: "fits", state: question.state, recipients };
      case "over-quota":
      case "too-large":
        return { kind: only.kind, refused: only, recipients };
      default: {
        const unreachable: never = only;
        return unreachable;
      }
    }
  }
  // Several recipients at END-OF-MESSAGE: the message is taken or refused for all of them.
  if (settings.severalRecipients === "accept") {
    return { kind: "not-checked", reason: "several-recipients" };
  }
  const refused = recipients.find(
    (recipient): recipient is Extract<RecipientDecision, { mailbox: MailboxCheck }> =>
      recipient.kind === "over-quota" || recipient.kind === "too-large",
  );
  return refused === undefined
    ? { kind: "fits", state: question.state, recipients }
    : { kind: refused.kind, refused, recipients };
}

/** Both halves with a synchronous usage lookup (unit tests, `quota explain`). */
export function decideQuestion(
  question: QuotaQuestion,
  dependencies: {
    snapshot: CurrentSnapshot | null;
    usage: (username: string) => UsageRecord | undefined;
    now: number;
    settings: QuotaSettings;
  },
): QuotaDecision {
  const prepared = prepareQuestion(question, dependencies.snapshot, dependencies.settings);
  const readings = new Map<string, UsageRecord>();
  if (prepared.kind === "plans") {
    for (const username of prepared.usernames) {
      const record = dependencies.usage(username);
      if (record !== undefined) readings.set(username, record);
    }
  }
  return concludeQuestion(prepared, readings, dependencies.now, dependencies.settings);
}

export function decideRecipient(
  plan: RecipientPlan,
  readings: UsageReadings,
  size: number,
  now: number,
  settings: QuotaSettings,
): RecipientDecision {
  if (plan.kind === "not-ours")
    return { kind: "not-ours", address: plan.address, resolution: plan.resolution };
  const checked: MailboxCheck[] = [];
  const verdict = evaluate(plan.root, { readings, size, now, settings, checked });
  if (verdict === null) return { kind: "fits", address: plan.address, checked };
  return {
    kind: verdict.state === "too-large" ? "too-large" : "over-quota",
    address: plan.address,
    mailbox: verdict,
    checked,
  };
}

interface Evaluation {
  readings: UsageReadings;
  size: number;
  now: number;
  settings: QuotaSettings;
  /** Every mailbox looked at, in tree order (logs, explain). */
  checked: MailboxCheck[];
}

/** The mailbox that refuses the mail for this target, or null when it has room. */
function evaluate(target: Target, context: Evaluation): MailboxCheck | null {
  switch (target.kind) {
    case "mailbox": {
      const check = checkMailbox(target, context);
      context.checked.push(check);
      return check.state === "over-quota" || check.state === "too-large" ? check : null;
    }
    case "external":
    case "cut":
      return null;
    case "forward": {
      let refusing: MailboxCheck | null = null;
      for (const part of target.parts) refusing = evaluate(part, context) ?? refusing;
      return refusing;
    }
    case "group": {
      const policy = context.settings.groupPolicy;
      if (policy === "accept" || target.members.length === 0) return null;
      let first: MailboxCheck | null = null;
      let refusingMembers = 0;
      for (const member of target.members) {
        const refusing = evaluate(member, context);
        if (refusing !== null) {
          refusingMembers += 1;
          first ??= refusing;
        }
      }
      if (policy === "any") return first;
      return refusingMembers === target.members.length && !target.incomplete ? first : null;
    }
    default: {
      const unreachable: never = target;
      return unreachable;
    }
  }
}

export function graceBytesFor(limitBytes: number, grace: QuotaGrace): number {
  return grace.kind === "bytes" ? grace.bytes : Math.floor((limitBytes * grace.percent) / 100);
}

/** One mailbox on its own (`quota explain` prints each mailbox of a tree). */
export function checkMailboxTarget(
  target: Extract<Target, { kind: "mailbox" }>,
  readings: UsageReadings,
  size: number,
  now: number,
  settings: QuotaSettings,
): MailboxCheck {
  return checkMailbox(target, { readings, size, now, settings, checked: [] });
}

function checkMailbox(target: Extract<Target, { kind: "mailbox" }>, context: Evaluation): MailboxCheck {
  const { settings, now } = context;
  const usage = target.username === null ? null : (context.readings.get(target.username) ?? null);
  const limit = target.limitBytes;
  const graceBytes = limit === null ? 0 : graceBytesFor(limit, settings.grace);
  const ageMs = usage?.updatedAt == null ? null : Math.max(0, now - usage.updatedAt);
  let state: MailboxState;
  if (limit === null) state = "unlimited";
  else if (usage === null || usage.storageBytes === null) state = "no-usage";
  else if (ageMs === null || ageMs > settings.usageMaxAgeMs) state = "stale";
  else {
    const used = usage.storageBytes;
    const needed = Math.max(context.size, 1);
    if (used + needed <= limit) state = "fits";
    else if (used < limit && used + needed <= limit + graceBytes) state = "within-grace";
    else state = needed > limit + graceBytes ? "too-large" : "over-quota";
  }
  return {
    address: target.address,
    login: target.login,
    username: target.username,
    limitBytes: limit,
    graceBytes,
    usage,
    ageMs,
    state,
  };
}
