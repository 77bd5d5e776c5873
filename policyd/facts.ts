/**
 * The few facts policyd decides on, read once from a policy request and
 * normalised: which stage (RCPT decides, END-OF-MESSAGE charges, any other
 * stage does not apply), the transaction (`instance`), the SASL login, the
 * sender, the recipient, the client address and verified name, and the
 * message's recipient count and size. Missing or malformed attributes become
 * null or 0 — never an exception — so each check can say "does not apply".
 */
import type ipaddr from "ipaddr.js";
import type { PolicyRequest } from "../core/protocols/policy.js";
import { normaliseLogin, normaliseRecipient, normaliseSender, parseClientAddress } from "./keys.js";

export type Stage = "RCPT" | "END-OF-MESSAGE" | "other";

export interface RequestFacts {
  stage: Stage;
  /** protocol_state as sent, cut for logs. */
  protocolState: string;
  /** Correlates RCPT and END-OF-MESSAGE of one transaction; null when absent. */
  instance: string | null;
  login: string | null;
  /** Normalised envelope sender; null for the null sender or a malformed one. */
  sender: string | null;
  /** Normalised recipient; null at END-OF-MESSAGE with several recipients. */
  recipient: string | null;
  /** The recipient as Postfix sent it (for reply texts), cut. */
  recipientText: string;
  client: ipaddr.IPv4 | ipaddr.IPv6 | null;
  /** Verified client host name, lower case; null when Postfix says "unknown". */
  clientName: string | null;
  recipientCount: number;
  size: number;
}

const MAX_INSTANCE = 128;

export function readFacts(request: PolicyRequest, recipientDelimiters: string): RequestFacts {
  const state = (request.protocolState ?? "").toUpperCase();
  const stage: Stage = state === "RCPT" ? "RCPT" : state === "END-OF-MESSAGE" ? "END-OF-MESSAGE" : "other";
  const instance = request.instance;
  const clientName = request.clientName?.toLowerCase();
  return {
    stage,
    protocolState: state.slice(0, 32),
    instance: instance === undefined || instance === "" || instance.length > MAX_INSTANCE ? null : instance,
    login: normaliseLogin(request.saslUsername),
    sender: normaliseSender(request.sender, recipientDelimiters),
    recipient: normaliseRecipient(request.recipient, recipientDelimiters),
    recipientText: (request.recipient ?? "").slice(0, 254),
    client: parseClientAddress(request.clientAddress),
    clientName:
      clientName === undefined || clientName === "" || clientName === "unknown" || clientName.length > 255
        ? null
        : clientName,
    recipientCount: request.recipientCount ?? 0,
    size: request.size ?? 0,
  };
}
