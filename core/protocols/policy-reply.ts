/**
 * Postfix SMTPD policy delegation, reply side (docs/protocols/postfix-policy.md,
 * vectors policy-02 … policy-06). PolicyAction is the closed set of actions
 * smtpd understands; encodePolicyReply writes exactly `action=…\n\n` — LF
 * only, one blank line, nothing after it — because a CR, a stray byte or an
 * unknown word each break Postfix in non-obvious ways (timeouts, silent
 * reconnects, "451 4.3.5 Server configuration error"). Texts are cleaned
 * (no control characters, well-formed UTF-8, bounded) and numeric replies
 * checked; an action that cannot be made valid is replaced by the fail-safe
 * DEFER_IF_PERMIT, never by something permanent. parsePolicyAction and
 * PolicyReplyDecoder read replies the way Postfix does, for tests and the
 * load generator.
 */
import { ProtocolError } from "../errors.js";
import { LineSplitter } from "./line-splitter.js";
import type { DecodeEvent, StreamDecoder } from "./stream.js";
import { sanitizeLineText, utf8DecodeStrict, utf8Encode } from "./text.js";

type Texted<Name extends string> = { action: Name; text?: string };

export type PolicyAction =
  | { action: "DUNNO" }
  | { action: "OK" }
  | Texted<"REJECT">
  | Texted<"DEFER">
  | Texted<"DEFER_IF_PERMIT">
  | Texted<"DEFER_IF_REJECT">
  /** `4xx|5xx [x.y.z] text`: Postfix uses our code as the SMTP reply. */
  | { action: "REPLY"; code: number; enhancedCode?: string; text?: string }
  | Texted<"HOLD">
  | Texted<"DISCARD">
  /** header is a whole header line, `Name: value`. */
  | { action: "PREPEND"; header: string }
  | { action: "REDIRECT"; address: string }
  | { action: "BCC"; address: string }
  /** `transport:destination`; the destination may be empty (`discard:`). */
  | { action: "FILTER"; transport: string; destination: string }
  | Texted<"WARN">
  | Texted<"INFO">;

export type PolicyActionName = PolicyAction["action"];

/** Longest free text we put after an action word; the SMTP reply line around it must stay under 512. */
export const MAX_POLICY_TEXT_BYTES = 400;

/** What to answer when nothing valid can be said: temporary, so mail is never lost. */
export const POLICY_FAILSAFE_ACTION: PolicyAction = Object.freeze({
  action: "DEFER_IF_PERMIT",
  text: "Service temporarily unavailable",
});

export type PolicyActionCheck = { ok: true; line: string } | { ok: false; reason: string };

const HEADER_LINE = /^[!-9;-~]+:/;
const NO_SPACE_TOKEN = /^[!-~\u0080-\uffff]+$/u;
const TRANSPORT = /^[A-Za-z0-9._-]+$/;

function withText(word: string, text: string | undefined): string {
  const clean = text === undefined ? "" : sanitizeLineText(text, MAX_POLICY_TEXT_BYTES).trim();
  return clean.length > 0 ? `${word} ${clean}` : word;
}

function checkEnhanced(code: number, enhanced: string | undefined): string | undefined {
  if (enhanced === undefined) return undefined;
  const match = /^([245])\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(enhanced);
  if (!match) return `enhanced status code ${enhanced} is not x.y.z`;
  if (match[1] !== String(code)[0])
    return `enhanced status code ${enhanced} does not match reply code ${code}`;
  return undefined;
}

/** Validates an action and returns the text after `action=` that encodePolicyReply would send. */
export function checkPolicyAction(action: PolicyAction): PolicyActionCheck {
  switch (action.action) {
    case "DUNNO":
    case "OK":
      return { ok: true, line: action.action };
    case "REJECT":
    case "DEFER":
    case "DEFER_IF_PERMIT":
    case "DEFER_IF_REJECT":
    case "HOLD":
    case "DISCARD":
    case "WARN":
    case "INFO":
      return { ok: true, line: withText(action.action, action.text) };
    case "REPLY": {
      const { code } = action;
      // RFC 5321 reply codes: 4yz/5yz with y in 0..5; anything else is not a refusal Postfix can relay.
      const secondDigit = Math.floor(code / 10) % 10;
      if (!Number.isInteger(code) || code < 400 || code >= 600 || secondDigit > 5) {
        return { ok: false, reason: `reply code ${code} is not a 4xx/5xx SMTP code` };
      }
      const enhancedProblem = checkEnhanced(code, action.enhancedCode);
      if (enhancedProblem) return { ok: false, reason: enhancedProblem };
      const prefix = action.enhancedCode ? `${code} ${action.enhancedCode}` : String(code);
      return { ok: true, line: withText(prefix, action.text) };
    }
    case "PREPEND": {
      const header = sanitizeLineText(action.header, MAX_POLICY_TEXT_BYTES).trim();
      if (!HEADER_LINE.test(header))
        return { ok: false, reason: "PREPEND needs a 'Name: value' header line" };
      return { ok: true, line: `PREPEND ${header}` };
    }
    case "REDIRECT":
    case "BCC": {
      const address = action.address;
      if (address.length === 0 || address.length > MAX_POLICY_TEXT_BYTES || !NO_SPACE_TOKEN.test(address)) {
        return { ok: false, reason: `${action.action} needs one address without spaces or controls` };
      }
      return { ok: true, line: `${action.action} ${address}` };
    }
    case "FILTER": {
      const { transport, destination } = action;
      if (!TRANSPORT.test(transport)) return { ok: false, reason: `invalid FILTER transport ${transport}` };
      if (destination.length > 0 && !NO_SPACE_TOKEN.test(destination)) {
        return { ok: false, reason: "FILTER destination must not contain spaces or controls" };
      }
      return { ok: true, line: `FILTER ${transport}:${destination}` };
    }
    default: {
      const unreachable: never = action;
      return { ok: false, reason: `unknown action ${JSON.stringify(unreachable)}` };
    }
  }
}

/**
 * The only way a policy reply reaches the wire. Never throws; an invalid
 * action becomes POLICY_FAILSAFE_ACTION (callers that care use
 * checkPolicyAction first and log the reason).
 */
export function encodePolicyReply(action: PolicyAction): Uint8Array {
  const checked = checkPolicyAction(action);
  const line = checked.ok
    ? checked.line
    : (checkPolicyAction(POLICY_FAILSAFE_ACTION) as { line: string }).line;
  return utf8Encode(`action=${line}\n\n`);
}

export type ParsedPolicyAction = { ok: true; action: PolicyAction } | { ok: false; reason: string };

/** Reads an action value the way smtpd does: the word is case-insensitive, unknown words are errors. */
export function parsePolicyAction(value: string): ParsedPolicyAction {
  const space = value.search(/[ \t]/);
  const word = (space < 0 ? value : value.slice(0, space)).toUpperCase();
  const rest = space < 0 ? "" : value.slice(space + 1).replace(/^[ \t]+/, "");
  const text = rest.length > 0 ? rest : undefined;
  switch (word) {
    case "DUNNO":
      return { ok: true, action: { action: "DUNNO" } };
    case "OK":
      // smtpd ignores any text after OK.
      return { ok: true, action: { action: "OK" } };
    case "REJECT":
    case "DEFER":
    case "DEFER_IF_PERMIT":
    case "DEFER_IF_REJECT":
    case "HOLD":
    case "DISCARD":
    case "WARN":
    case "INFO":
      return { ok: true, action: text === undefined ? { action: word } : { action: word, text } };
    case "PREPEND":
      return text ? { ok: true, action: { action: "PREPEND", header: text } } : missing(word);
    case "REDIRECT":
    case "BCC":
      return text ? { ok: true, action: { action: word, address: text } } : missing(word);
    case "FILTER": {
      const colon = rest.indexOf(":");
      if (colon <= 0) return { ok: false, reason: "FILTER needs transport:destination" };
      return {
        ok: true,
        action: { action: "FILTER", transport: rest.slice(0, colon), destination: rest.slice(colon + 1) },
      };
    }
    default:
      break;
  }
  if (/^[45][0-9][0-9]$/.test(word)) {
    const enhanced = /^([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:[ \t]+(.*))?$/.exec(rest);
    const code = Number(word);
    const replyText = enhanced ? enhanced[2] : text;
    const base = enhanced
      ? { action: "REPLY" as const, code, enhancedCode: enhanced[1] as string }
      : { action: "REPLY" as const, code };
    return { ok: true, action: replyText ? { ...base, text: replyText } : base };
  }
  return { ok: false, reason: `unknown action ${word}` };
}

function missing(word: string): ParsedPolicyAction {
  return { ok: false, reason: `${word} needs an argument` };
}

/** A reply as Postfix would read it: all attributes, and the action if there was one. */
export interface PolicyReply {
  attributes: ReadonlyMap<string, string>;
  /** Raw value of the action attribute; undefined when missing (Postfix: "missing attribute action"). */
  action: string | undefined;
  /** False when the action is not valid UTF-8 (Postfix then treats the query as failed). */
  validUtf8: boolean;
}

/**
 * Client-side reader of policy replies, strict like Postfix: LF only (a CR
 * stays part of the line, so a CRLF reply never ends), and a blank line
 * with no attributes before it is an (empty) reply of its own.
 */
export class PolicyReplyDecoder implements StreamDecoder<PolicyReply> {
  private readonly lines: LineSplitter;
  private attributes = new Map<string, string>();
  private valid = true;
  private held = 0;
  private failure: ProtocolError | undefined;

  constructor(private readonly maxReplyBytes = 32 * 1024) {
    this.lines = new LineSplitter(4096);
  }

  get buffered(): number {
    return this.held + this.lines.buffered;
  }

  push(chunk: Uint8Array): DecodeEvent<PolicyReply>[] {
    if (this.failure) return [{ kind: "error", error: this.failure }];
    const events: DecodeEvent<PolicyReply>[] = [];
    const lineError = this.lines.feed(chunk, (line) => {
      if (line.length === 0) {
        const action = this.attributes.get("action");
        events.push({ kind: "frame", frame: { attributes: this.attributes, action, validUtf8: this.valid } });
        this.attributes = new Map();
        this.valid = true;
        this.held = 0;
        return true;
      }
      this.held += line.length + 1;
      const equals = line.indexOf(0x3d);
      if (equals <= 0 || this.held > this.maxReplyBytes) {
        this.failure = new ProtocolError("protocol.malformed", "policy reply line is not name=value");
        return false;
      }
      const name = utf8DecodeStrict(line.subarray(0, equals));
      const value = utf8DecodeStrict(line.subarray(equals + 1));
      if (name === undefined || value === undefined) this.valid = false;
      this.attributes.set(name ?? "", value ?? new TextDecoder().decode(line.subarray(equals + 1)));
      return true;
    });
    this.failure ??= lineError;
    if (this.failure) events.push({ kind: "error", error: this.failure });
    return events;
  }
}
