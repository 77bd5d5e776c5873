/**
 * From a Postfix policy request to the question quota answers, the way
 * Dovecot's quota-status reads requests (vectors quota-status-01/02) plus
 * the END-OF-MESSAGE case it leaves out. Only protocol_state, recipient,
 * size and instance matter. RCPT (or no protocol_state at all, as from a
 * hand-written client) asks about the recipient with the size MAIL FROM
 * announced (0 when the client gave no SIZE=). END-OF-MESSAGE carries the
 * real size, and the recipient only when there was exactly one: with
 * several, Postfix sends it empty, so each connection remembers the
 * recipients of the current mail transaction (the `instance` attribute is
 * the same for every request of one transaction) that quotad did not
 * refuse at RCPT. Any other state, or no recipient, is not a question.
 *
 * A missing size counts as 0. quota-status keeps the previous request's
 * size on the same connection instead (quota-status-01 request 14); Postfix
 * always sends size, so only hand-written clients could tell.
 */
import type { PolicyRequest } from "../core/protocols/policy.js";
import type { QuotaDecision, QuotaQuestion } from "./decision.js";

/** Postfix's own default smtpd_recipient_limit; more is not remembered. */
export const MAX_REMEMBERED_RECIPIENTS = 1000;

/** Recipients of the mail transaction in progress on one policy connection. */
export class TransactionRecipients {
  private instance: string | undefined;
  private recipients: string[] = [];

  /** Notes a recipient quotad let through at RCPT. */
  remember(instance: string | undefined, recipient: string): void {
    if (instance === undefined || instance === "") return;
    if (instance !== this.instance) {
      this.instance = instance;
      this.recipients = [];
    }
    if (this.recipients.length < MAX_REMEMBERED_RECIPIENTS && !this.recipients.includes(recipient)) {
      this.recipients.push(recipient);
    }
  }

  /** The recipients remembered for this transaction (empty when it is not the one in progress). */
  of(instance: string | undefined): readonly string[] {
    return instance !== undefined && instance !== "" && instance === this.instance ? this.recipients : [];
  }
}

export type Question =
  | { kind: "question"; question: QuotaQuestion }
  | {
      kind: "not-checked";
      decision: Extract<QuotaDecision, { kind: "not-checked" }>;
      unexpectedState?: string;
    };

export function questionOf(request: PolicyRequest, memory: TransactionRecipients): Question {
  const state = request.protocolState?.toUpperCase();
  const recipient = request.recipient?.trim() ?? "";
  const size = request.size ?? 0;
  if (state === undefined || state === "RCPT") {
    if (recipient === "") return notChecked("no-recipient");
    return { kind: "question", question: { state: "RCPT", recipients: [recipient], size } };
  }
  if (state === "END-OF-MESSAGE") {
    const recipients = recipient !== "" ? [recipient] : memory.of(request.instance);
    if (recipients.length === 0) return notChecked("no-recipient");
    return { kind: "question", question: { state: "END-OF-MESSAGE", recipients, size } };
  }
  return {
    kind: "not-checked",
    decision: { kind: "not-checked", reason: "protocol-state" },
    unexpectedState: request.protocolState ?? "",
  };
}

function notChecked(reason: "no-recipient"): Question {
  return { kind: "not-checked", decision: { kind: "not-checked", reason } };
}
