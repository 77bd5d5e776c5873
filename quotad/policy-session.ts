/**
 * One Postfix policy connection of quotad: each request becomes a question
 * (question.ts), is resolved against the snapshot in use when it arrives,
 * the usage of the mailboxes it reaches is read from the store, and the
 * decision (decision.ts) becomes the configured reply (replies.ts). Many
 * requests per connection, strictly in order (core/net does the framing).
 *
 * A store that fails or is too slow gives the configured "unavailable"
 * reply (DUNNO or temporary), never a refusal; an exception anywhere else
 * reaches core/net, which answers DEFER_IF_PERMIT. With SQLite the whole
 * answer is synchronous (usage lives in memory).
 *
 * Logging: a refusal or an unavailable answer at info, everything else at
 * debug (Postfix asks once per recipient, thousands of times a minute); a
 * request in a protocol state quota does not answer is warned about once
 * per connection, as quota-status does, since it means main.cf calls
 * quotad from the wrong restriction list.
 */
import type { Logger } from "pino";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import { sanitizePeerString } from "../core/log/logger.js";
import type { SessionFactory } from "../core/net/protocol.js";
import type { PolicyRequest } from "../core/protocols/policy.js";
import type { PolicyAction } from "../core/protocols/policy-reply.js";
import {
  concludeQuestion,
  type MailboxCheck,
  type PreparedQuestion,
  prepareQuestion,
  type QuotaDecision,
  type QuotaSettings,
} from "./decision.js";
import { questionOf, TransactionRecipients } from "./question.js";
import { type QuotaReplies, replyFor } from "./replies.js";
import type { UsageReadings, UsageStore } from "./usage-store.js";

export interface PolicySessionDependencies {
  /** The snapshot in use now (LiveSnapshot.current). */
  snapshot: () => CurrentSnapshot | null;
  store: UsageStore;
  settings: QuotaSettings;
  replies: QuotaReplies;
  /** ms since the epoch. */
  now?: () => number;
  /** Called once per answered request (metrics). */
  decided?: (decision: QuotaDecision) => void;
}

const EMPTY_READINGS: UsageReadings = new Map();

export function quotaPolicySessions(
  dependencies: PolicySessionDependencies,
): SessionFactory<PolicyRequest, PolicyAction> {
  const now = dependencies.now ?? Date.now;
  return (_peer, log: Logger) => {
    const memory = new TransactionRecipients();
    const warned = new Set<string>();
    const warnOnce = (kind: string, details: Record<string, unknown>, message: string) => {
      if (warned.has(kind)) return;
      warned.add(kind);
      log.warn(details, message);
    };

    const finish = (request: PolicyRequest, decision: QuotaDecision): PolicyAction => {
      dependencies.decided?.(decision);
      if (decision.kind === "fits" && request.protocolState?.toUpperCase() !== "END-OF-MESSAGE") {
        for (const recipient of decision.recipients) memory.remember(request.instance, recipient.address);
      } else if (decision.kind === "not-ours" || decision.kind === "unavailable") {
        const recipient = request.recipient;
        if (recipient !== undefined && recipient !== "") memory.remember(request.instance, recipient);
      }
      logDecision(log, request, decision);
      return replyFor(decision, dependencies.replies);
    };

    const conclude = (request: PolicyRequest, prepared: PreparedQuestion, readings: UsageReadings) =>
      finish(request, concludeQuestion(prepared, readings, now(), dependencies.settings));

    const storeFailed = (request: PolicyRequest, error: unknown): PolicyAction => {
      const detail = error instanceof Error ? error.message : String(error);
      warnOnce("store", { err: error }, "usage store unavailable; answering the unavailable reply");
      return finish(request, { kind: "unavailable", reason: "usage-store", detail });
    };

    return {
      handle(request) {
        const question = questionOf(request, memory);
        if (question.kind === "not-checked") {
          if (question.unexpectedState !== undefined) {
            warnOnce(
              "state",
              { state: sanitizePeerString(question.unexpectedState, 40) },
              "policy request in a protocol state quotad does not check; use it in smtpd_recipient_restrictions or smtpd_end_of_data_restrictions",
            );
          }
          return finish(request, question.decision);
        }
        const prepared = prepareQuestion(question.question, dependencies.snapshot(), dependencies.settings);
        if (prepared.kind === "decided" || prepared.usernames.length === 0) {
          return conclude(request, prepared, EMPTY_READINGS);
        }
        let readings: ReturnType<UsageStore["read"]>;
        try {
          readings = dependencies.store.read(prepared.usernames);
        } catch (error) {
          return storeFailed(request, error);
        }
        if (!(readings instanceof Promise)) return conclude(request, prepared, readings);
        return readings.then(
          (fetched) => conclude(request, prepared, fetched),
          (error: unknown) => storeFailed(request, error),
        );
      },
    };
  };
}

function describeMailbox(check: MailboxCheck): Record<string, unknown> {
  return {
    login: check.login,
    username: check.username,
    limit: check.limitBytes,
    used: check.usage?.storageBytes ?? null,
    state: check.state,
  };
}

function logDecision(log: Logger, request: PolicyRequest, decision: QuotaDecision): void {
  // Cleaning the peer's string costs more than the decision; only for lines that are written.
  const recipient = () => sanitizePeerString(request.recipient ?? "", 120);
  switch (decision.kind) {
    case "over-quota":
    case "too-large":
      log.info(
        {
          recipient: recipient(),
          state: request.protocolState,
          size: request.size ?? 0,
          decision: decision.kind,
          mailbox: describeMailbox(decision.refused.mailbox),
        },
        "refused",
      );
      return;
    case "unavailable":
      log.info(
        { recipient: recipient(), decision: decision.kind, reason: decision.reason },
        "cannot check quota",
      );
      return;
    case "fits":
    case "not-ours":
    case "not-checked":
      if (log.isLevelEnabled("debug"))
        log.debug({ recipient: recipient(), decision: decision.kind }, "answered");
      return;
    default: {
      const unreachable: never = decision;
      log.error({ decision: unreachable }, "unknown decision");
    }
  }
}
