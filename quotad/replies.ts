/**
 * The configured replies ([quotad.replies]) and the one mapping from a
 * decision to the action Postfix gets. Defaults match Dovecot's
 * quota-status with the settings most sites use (vector quota-status-02):
 * DUNNO when the mail fits or the address is not ours, `552 5.2.2 Mailbox
 * is full`, `552 5.3.4 Message is too big for this mailbox`. Requests
 * quotad does not answer (another protocol state, no recipient) always get
 * DUNNO, as quota-status gives them, and so does a message that fits at
 * END-OF-MESSAGE (quota-status answers DUNNO there, so a site with
 * success = OK keeps its end-of-data restrictions running).
 */
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import type { PolicyAction } from "../core/protocols/policy-reply.js";
import type { QuotaDecision } from "./decision.js";

export interface QuotaReplies {
  success: PolicyAction;
  overQuota: PolicyAction;
  tooLarge: PolicyAction;
  notOurs: PolicyAction;
  unavailable: PolicyAction;
}

const DUNNO: PolicyAction = Object.freeze({ action: "DUNNO" });

export function repliesFromConfig(replies: DeepReadonly<Config["quotad"]["replies"]>): QuotaReplies {
  return {
    success: replies.success,
    overQuota: replies.over_quota,
    tooLarge: replies.too_large,
    notOurs: replies.not_ours,
    unavailable: replies.unavailable,
  };
}

export function replyFor(decision: QuotaDecision, replies: QuotaReplies): PolicyAction {
  switch (decision.kind) {
    case "not-checked":
      return DUNNO;
    case "not-ours":
      return replies.notOurs;
    case "fits":
      // quota-status answers DUNNO at END-OF-MESSAGE; an OK there would skip the other end-of-data checks.
      return decision.state === "RCPT" ? replies.success : DUNNO;
    case "over-quota":
      return replies.overQuota;
    case "too-large":
      return replies.tooLarge;
    case "unavailable":
      return replies.unavailable;
    default: {
      const unreachable: never = decision;
      return unreachable;
    }
  }
}
