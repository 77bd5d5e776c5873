/**
 * `emailng quota explain ADDRESS`: how an address resolves (mailbox,
 * alternate, forward chain, group members), the usage, limit, grace and
 * state of every mailbox it reaches, and the exact answer quotad would give
 * — computed by the same plan and decision code the daemon runs, from the
 * same snapshot and store. Pure once the usage readings are fetched.
 */
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import { encodePolicyReply } from "../core/protocols/policy-reply.js";
import {
  checkMailboxTarget,
  concludeQuestion,
  type MailboxCheck,
  prepareQuestion,
  type QuotaDecision,
  type QuotaQuestion,
  type QuotaSettings,
} from "./decision.js";
import { formatAge, formatBytes } from "./format.js";
import { planRecipient, type Target } from "./plan.js";
import { type QuotaReplies, replyFor } from "./replies.js";
import type { UsageReadings } from "./usage-store.js";

export type ExplainNode =
  | { kind: "mailbox"; address: string; check: MailboxCheck }
  | { kind: "external"; address: string }
  | { kind: "cut"; address: string; reason: "cycle" | "depth" }
  | { kind: "forward"; address: string; login: string; children: ExplainNode[] }
  | {
      kind: "group";
      address: string;
      name: string;
      expanded: boolean;
      incomplete: boolean;
      children: ExplainNode[];
    };

export interface Explanation {
  address: string;
  state: QuotaQuestion["state"];
  size: number;
  snapshot: { version: number; createdAt: string; fresh: boolean } | null;
  /** "mailbox", "forward", "group", or why it is not ours ("unknown", "not_ours", …). */
  resolution: string;
  tree: ExplainNode | null;
  decision: QuotaDecision;
  /** The reply line exactly as Postfix would get it, without the final empty line. */
  reply: string;
}

export interface ExplainInput {
  address: string;
  state: QuotaQuestion["state"];
  size: number;
  snapshot: CurrentSnapshot | null;
  readings: UsageReadings;
  now: number;
  settings: QuotaSettings;
  replies: QuotaReplies;
}

/** The usernames to read before explaining (empty when the address reaches no mailbox). */
export function usernamesToExplain(input: Omit<ExplainInput, "readings" | "now" | "replies">): string[] {
  const prepared = prepareQuestion(
    { state: input.state, recipients: [input.address], size: input.size },
    input.snapshot,
    input.settings,
  );
  return prepared.kind === "plans" ? prepared.usernames : [];
}

export function explainAddress(input: ExplainInput): Explanation {
  const question: QuotaQuestion = { state: input.state, recipients: [input.address], size: input.size };
  const prepared = prepareQuestion(question, input.snapshot, input.settings);
  const decision = concludeQuestion(prepared, input.readings, input.now, input.settings);
  const reply = Buffer.from(encodePolicyReply(replyFor(decision, input.replies)))
    .toString("utf8")
    .trimEnd();
  const snapshot =
    input.snapshot === null
      ? null
      : {
          version: input.snapshot.meta.version,
          createdAt: input.snapshot.meta.createdAt,
          fresh: input.snapshot.fresh,
        };
  let resolution = decision.kind === "unavailable" ? "unavailable" : "invalid";
  let tree: ExplainNode | null = null;
  if (input.snapshot !== null) {
    const plan = planRecipient(input.address, input.snapshot.resolver, input.settings);
    if (plan.kind === "not-ours") resolution = plan.resolution;
    else {
      resolution = plan.root.kind;
      tree = node(plan.root, input);
    }
  }
  return {
    address: input.address,
    state: input.state,
    size: input.size,
    snapshot,
    resolution,
    tree,
    decision,
    reply,
  };
}

function node(target: Target, input: ExplainInput): ExplainNode {
  switch (target.kind) {
    case "mailbox":
      return {
        kind: "mailbox",
        address: target.address,
        check: checkMailboxTarget(target, input.readings, input.size, input.now, input.settings),
      };
    case "external":
      return { kind: "external", address: target.address };
    case "cut":
      return { kind: "cut", address: target.address, reason: target.reason };
    case "forward":
      return {
        kind: "forward",
        address: target.address,
        login: target.login,
        children: target.parts.map((part) => node(part, input)),
      };
    case "group":
      return {
        kind: "group",
        address: target.address,
        name: target.name,
        expanded: input.settings.groupPolicy !== "accept",
        incomplete: target.incomplete,
        children: target.members.map((member) => node(member, input)),
      };
    default: {
      const unreachable: never = target;
      return unreachable;
    }
  }
}

const STATE_TEXT: Record<MailboxCheck["state"], string> = {
  fits: "fits",
  "within-grace": "fits within the grace",
  "over-quota": "no room: over quota",
  "too-large": "no room: message larger than limit + grace",
  unlimited: "no limit, not checked",
  "no-usage": "no usage recorded, not checked",
  stale: "usage too old, not used to refuse",
};

function mailboxLine(check: MailboxCheck): string {
  const user = check.username === null ? "no valid Dovecot user name" : `Dovecot user "${check.username}"`;
  const limit =
    check.limitBytes === null
      ? "no limit"
      : `${formatBytes(check.limitBytes)} limit + ${formatBytes(check.graceBytes)} grace`;
  const usage =
    check.usage === null || check.usage.storageBytes === null
      ? "no usage recorded"
      : `${formatBytes(check.usage.storageBytes)} used` +
        (check.usage.messages === null ? "" : `, ${check.usage.messages} messages`) +
        `, updated ${formatAge(check.ageMs)}`;
  return `mailbox of ${check.login} (${user}): ${usage}; ${limit} → ${STATE_TEXT[check.state]}`;
}

function treeLines(tree: ExplainNode, depth: number): string[] {
  const indent = "  ".repeat(depth);
  switch (tree.kind) {
    case "mailbox":
      return [`${indent}${tree.address}: ${mailboxLine(tree.check)}`];
    case "external":
      return [`${indent}${tree.address}: delivered elsewhere, not checked`];
    case "cut":
      return [
        `${indent}${tree.address}: ${tree.reason === "cycle" ? "forward or group cycle" : "chain too deep"}, not followed`,
      ];
    case "forward":
      return [
        `${indent}${tree.address}: forward of ${tree.login}`,
        ...tree.children.flatMap((child) => treeLines(child, depth + 1)),
      ];
    case "group": {
      const note = !tree.expanded
        ? " (group_policy = accept: members not checked)"
        : tree.incomplete
          ? " (expansion cut by a directory limit)"
          : `, ${tree.children.length} members`;
      return [
        `${indent}${tree.address}: group ${tree.name}${note}`,
        ...tree.children.flatMap((child) => treeLines(child, depth + 1)),
      ];
    }
    default: {
      const unreachable: never = tree;
      return unreachable;
    }
  }
}

function decisionText(decision: QuotaDecision): string {
  switch (decision.kind) {
    case "fits":
      return "fits";
    case "over-quota":
    case "too-large":
      return `${decision.kind} (mailbox of ${decision.refused.mailbox.login})`;
    case "not-ours":
      return `not ours (${decision.resolution})`;
    case "not-checked":
      return `not checked (${decision.reason})`;
    case "unavailable":
      return `cannot decide: ${decision.detail}`;
    default: {
      const unreachable: never = decision;
      return unreachable;
    }
  }
}

export function formatExplanationText(explanation: Explanation): string {
  const snapshot =
    explanation.snapshot === null
      ? "no snapshot"
      : `snapshot version ${explanation.snapshot.version} of ${explanation.snapshot.createdAt}${explanation.snapshot.fresh ? "" : " (STALE)"}`;
  const lines = [
    `${explanation.address} at ${explanation.state}, size ${explanation.size} (${snapshot})`,
    explanation.tree === null ? `  resolves to: ${explanation.resolution}` : "  resolves to:",
    ...(explanation.tree === null ? [] : treeLines(explanation.tree, 2)),
    `  decision: ${decisionText(explanation.decision)}`,
    `  reply: ${explanation.reply}`,
  ];
  return `${lines.join("\n")}\n`;
}
