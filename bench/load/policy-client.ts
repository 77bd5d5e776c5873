/**
 * Postfix policy delegation, client side for the load driver: a request is
 * `name=value` lines ending with an empty line, in the attribute order
 * Postfix 3.7 uses (test/vectors/policy-01); a reply is `action=…` lines
 * ending with an empty line. Any action is an answer (DUNNO, DEFER_IF_PERMIT,
 * a 4xx/5xx code …); a reply without `action=` is an error, as for Postfix.
 */
import { ChunkBuffer, type ReplyReader, type ReplyStatus, type WireClient } from "./wire-client.js";

/** Attributes as name → value; names absent here are sent empty, like Postfix does. */
export type PolicyItem = Record<string, string>;

/** The 29 attributes Postfix 3.7 sends, in its order. */
export const POSTFIX_POLICY_ATTRIBUTES = [
  "request",
  "protocol_state",
  "protocol_name",
  "client_address",
  "client_name",
  "client_port",
  "reverse_client_name",
  "server_address",
  "server_port",
  "helo_name",
  "sender",
  "recipient",
  "recipient_count",
  "queue_id",
  "instance",
  "size",
  "etrn_domain",
  "stress",
  "sasl_method",
  "sasl_username",
  "sasl_sender",
  "ccert_subject",
  "ccert_issuer",
  "ccert_fingerprint",
  "ccert_pubkey_fingerprint",
  "encryption_protocol",
  "encryption_cipher",
  "encryption_keysize",
  "policy_context",
] as const;

const NUMERIC = new Set(["recipient_count", "size", "encryption_keysize"]);

export function encodePolicyRequest(item: PolicyItem): Buffer {
  let text = "";
  for (const name of POSTFIX_POLICY_ATTRIBUTES) {
    const value = item[name] ?? (NUMERIC.has(name) ? "0" : "");
    if (/[\n\r]/.test(value)) throw new Error(`policy attribute ${name} holds a line break`);
    text += `${name}=${value}\n`;
  }
  return Buffer.from(`${text}\n`, "utf8");
}

const NEWLINE = 0x0a;

export class PolicyReplyReader implements ReplyReader {
  private readonly buffer = new ChunkBuffer();

  constructor(private readonly maxReplyBytes = 8_192) {}

  push(chunk: Buffer): ReplyStatus[] {
    const data = this.buffer.take(chunk);
    const replies: ReplyStatus[] = [];
    let offset = 0;
    for (;;) {
      // The reply ends at the first empty line: "\n\n", or "\n" at the very start.
      let end = -1;
      if (data[offset] === NEWLINE) end = offset;
      else {
        const double = data.indexOf("\n\n", offset, "latin1");
        if (double >= 0) end = double + 1;
      }
      if (end < 0) {
        if (data.length - offset > this.maxReplyBytes)
          throw new Error("policy reply: no empty line in 8 KiB");
        break;
      }
      const text = data.toString("utf8", offset, end);
      replies.push(policyStatus(text));
      offset = end + 1;
    }
    this.buffer.keep(data.subarray(offset));
    return replies;
  }
}

function policyStatus(reply: string): ReplyStatus {
  for (const line of reply.split("\n")) {
    if (!line.toLowerCase().startsWith("action=")) continue;
    const action = line.slice("action=".length).trim();
    const word = action.split(/\s+/, 1)[0] ?? "";
    return { status: word.toUpperCase() || "EMPTY", ok: word !== "" };
  }
  return { status: "NO_ACTION", ok: false };
}

export const policyWireClient: WireClient<PolicyItem> = {
  protocol: "policy",
  greeting: () => null,
  encode: encodePolicyRequest,
  newReplyReader: () => new PolicyReplyReader(),
};
