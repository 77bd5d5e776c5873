/**
 * Postfix SMTPD policy delegation, request side (docs/protocols/postfix-policy.md).
 * Postfix smtpd sends `name=value` lines ending in LF and a blank line after
 * the last attribute; PolicyRequestDecoder turns that byte stream into
 * PolicyRequest frames with typed accessors for the fields emailng uses.
 * Limits are enforced while bytes arrive: a line, an attribute count or a
 * request that grows past its limit, or a line without "=", is a
 * ProtocolError and the server closes the connection (Postfix then retries
 * once and applies its default action). encodePolicyRequest lets tests and
 * the load generator speak as Postfix. The reply side is in policy-reply.ts.
 */
import { ProtocolError } from "../errors.js";
import { LineSplitter } from "./line-splitter.js";
import type { DecodeEvent, StreamDecoder } from "./stream.js";
import { utf8ByteLength, utf8DecodeLenient, utf8Encode } from "./text.js";

export interface PolicyDecoderLimits {
  /** Longest attribute line, LF and a tolerated trailing CR not counted. */
  maxLineBytes: number;
  /** Attribute lines per request (duplicates count). */
  maxAttributes: number;
  /** Bytes of one request, every LF included. */
  maxRequestBytes: number;
}

export const DEFAULT_POLICY_LIMITS: Readonly<PolicyDecoderLimits> = Object.freeze({
  maxLineBytes: 2048,
  maxAttributes: 128,
  maxRequestBytes: 32 * 1024,
});

const LF = 0x0a;
const CR = 0x0d;

/** One policy request; unknown attributes are kept, the last of duplicates wins. */
export class PolicyRequest {
  readonly attributes: ReadonlyMap<string, string>;

  constructor(attributes: ReadonlyMap<string, string> | Iterable<readonly [string, string]>) {
    this.attributes = attributes instanceof Map ? attributes : new Map(attributes);
  }

  /** Raw value; undefined when the attribute was not sent at all (hand-written clients omit many). */
  get(name: string): string | undefined {
    return this.attributes.get(name);
  }

  get request(): string | undefined {
    return this.get("request");
  }
  /** CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN (as sent). */
  get protocolState(): string | undefined {
    return this.get("protocol_state");
  }
  get protocolName(): string | undefined {
    return this.get("protocol_name");
  }
  get clientAddress(): string | undefined {
    return this.get("client_address");
  }
  get clientName(): string | undefined {
    return this.get("client_name");
  }
  get clientPort(): number | undefined {
    return decimal(this.get("client_port"));
  }
  get reverseClientName(): string | undefined {
    return this.get("reverse_client_name");
  }
  get serverAddress(): string | undefined {
    return this.get("server_address");
  }
  get serverPort(): number | undefined {
    return decimal(this.get("server_port"));
  }
  get heloName(): string | undefined {
    return this.get("helo_name");
  }
  /** Envelope sender without <>; empty for the null sender. */
  get sender(): string | undefined {
    return this.get("sender");
  }
  /** Empty at DATA/END-OF-MESSAGE when there were several recipients. */
  get recipient(): string | undefined {
    return this.get("recipient");
  }
  get recipientCount(): number | undefined {
    return decimal(this.get("recipient_count"));
  }
  get queueId(): string | undefined {
    return this.get("queue_id");
  }
  /** Same for every request of one mail transaction: the key to correlate RCPT, DATA and EOM. */
  get instance(): string | undefined {
    return this.get("instance");
  }
  /** Undefined when absent or not a number (quota-status then reuses the previous size; we do not). */
  get size(): number | undefined {
    return decimal(this.get("size"));
  }
  get etrnDomain(): string | undefined {
    return this.get("etrn_domain");
  }
  get stress(): boolean {
    return this.get("stress") === "yes";
  }
  get saslMethod(): string | undefined {
    return this.get("sasl_method");
  }
  get saslUsername(): string | undefined {
    return this.get("sasl_username");
  }
  /** Raw AUTH= parameter of MAIL FROM, brackets included. */
  get saslSender(): string | undefined {
    return this.get("sasl_sender");
  }
  /** Client certificate CommonName, xtext-decoded. */
  get ccertSubject(): string | undefined {
    const value = this.get("ccert_subject");
    return value === undefined ? undefined : decodeXtext(value);
  }
  get ccertIssuer(): string | undefined {
    const value = this.get("ccert_issuer");
    return value === undefined ? undefined : decodeXtext(value);
  }
  get ccertFingerprint(): string | undefined {
    return this.get("ccert_fingerprint");
  }
  get ccertPubkeyFingerprint(): string | undefined {
    return this.get("ccert_pubkey_fingerprint");
  }
  get encryptionProtocol(): string | undefined {
    return this.get("encryption_protocol");
  }
  get encryptionCipher(): string | undefined {
    return this.get("encryption_cipher");
  }
  get encryptionKeysize(): number | undefined {
    return decimal(this.get("encryption_keysize"));
  }
  get policyContext(): string | undefined {
    return this.get("policy_context");
  }
  /** Sent by Postfix 3.8 and later only. */
  get compatibilityLevel(): string | undefined {
    return this.get("compatibility_level");
  }
  get mailVersion(): string | undefined {
    return this.get("mail_version");
  }
}

function decimal(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** RFC 3461 xtext: "+XX" is the byte 0xXX; anything malformed is kept as it is. */
export function decodeXtext(value: string): string {
  if (!value.includes("+")) return value;
  const bytes: number[] = [];
  const raw = utf8Encode(value);
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i] ?? 0;
    if (byte === 0x2b && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      bytes.push(Number.parseInt(String.fromCharCode(raw[i + 1] ?? 0, raw[i + 2] ?? 0), 16));
      i += 2;
    } else {
      bytes.push(byte);
    }
  }
  return utf8DecodeLenient(Uint8Array.from(bytes));
}

function isHex(byte: number | undefined): boolean {
  return (
    byte !== undefined &&
    ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66))
  );
}

export class PolicyRequestDecoder implements StreamDecoder<PolicyRequest> {
  private readonly limits: PolicyDecoderLimits;
  private readonly lines: LineSplitter;
  private attributes = new Map<string, string>();
  private attributeLines = 0;
  private requestBytes = 0;
  private failure: ProtocolError | undefined;

  constructor(limits: Partial<PolicyDecoderLimits> = {}) {
    this.limits = { ...DEFAULT_POLICY_LIMITS, ...limits };
    // One extra byte so that a line at the limit may still carry the tolerated CR.
    this.lines = new LineSplitter(this.limits.maxLineBytes + 1);
  }

  get buffered(): number {
    return this.requestBytes + this.lines.buffered;
  }

  push(chunk: Uint8Array): DecodeEvent<PolicyRequest>[] {
    if (this.failure) return [{ kind: "error", error: this.failure }];
    const events: DecodeEvent<PolicyRequest>[] = [];
    const take = (outcome: PolicyRequest | ProtocolError | undefined): boolean => {
      if (outcome instanceof ProtocolError) {
        this.failure = outcome;
        return false;
      }
      if (outcome) events.push({ kind: "frame", frame: outcome });
      return true;
    };
    if (this.lines.buffered === 0 && chunk.length > 0 && chunk[chunk.length - 1] === LF) {
      // The usual case: Postfix wrote whole lines (often one whole request)
      // in one go. One UTF-8 decode for the chunk instead of two per line;
      // LF and '=' are ASCII, so cutting the text gives what cutting the
      // bytes would (lenient decoding never spans them).
      const text = utf8DecodeLenient(chunk);
      // As many UTF-16 units as bytes: every unit came from one byte (ASCII, or
      // one replaced invalid byte), so a line's length is its byte count.
      this.feedText(text, text.length === chunk.length, take);
    } else {
      const lineError = this.lines.feed(chunk, (line) =>
        take(this.acceptText(utf8DecodeLenient(line), line.length)),
      );
      this.failure ??= lineError;
    }
    if (!this.failure && this.buffered > this.limits.maxRequestBytes) {
      this.failure = this.oversizedRequest();
    }
    if (this.failure) {
      this.reset();
      events.push({ kind: "error", error: this.failure });
    }
    return events;
  }

  /** Lines of a text that ends with LF. */
  private feedText(
    text: string,
    oneBytePerUnit: boolean,
    take: (outcome: PolicyRequest | ProtocolError | undefined) => boolean,
  ): void {
    let start = 0;
    while (start < text.length) {
      const newline = text.indexOf("\n", start);
      const line = text.slice(start, newline);
      start = newline + 1;
      // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only near the limit.
      const bytes = oneBytePerUnit
        ? line.length
        : line.length * 3 <= this.limits.maxLineBytes
          ? -1
          : utf8ByteLength(line);
      if (bytes > this.limits.maxLineBytes + 1) {
        take(
          new ProtocolError(
            "protocol.oversized",
            `line of at least ${bytes} bytes exceeds the limit of ${this.limits.maxLineBytes + 1}`,
          ),
        );
        return;
      }
      if (!take(this.acceptText(line, bytes))) return;
    }
  }

  /**
   * One line without its LF; `rawBytes` is its length in bytes, or -1 when
   * it is known to be far below every limit (then counted only for the
   * request total).
   */
  private acceptText(raw: string, rawBytes: number): PolicyRequest | ProtocolError | undefined {
    const line = raw.length > 0 && raw.charCodeAt(raw.length - 1) === CR ? raw.slice(0, -1) : raw;
    const bytes = rawBytes >= 0 ? rawBytes : utf8ByteLength(raw);
    const lineBytes = line.length === raw.length ? bytes : bytes - 1;
    if (lineBytes > this.limits.maxLineBytes) {
      return new ProtocolError("protocol.oversized", `policy line of ${lineBytes} bytes is over the limit`);
    }
    if (line.length === 0) {
      // Blank lines before the first attribute are tolerated: nothing to answer yet.
      if (this.attributeLines === 0) return undefined;
      const request = new PolicyRequest(this.attributes);
      this.reset();
      return request;
    }
    this.attributeLines++;
    this.requestBytes += bytes + 1;
    if (this.attributeLines > this.limits.maxAttributes) {
      return new ProtocolError(
        "protocol.oversized",
        `more than ${this.limits.maxAttributes} policy attributes`,
      );
    }
    if (this.requestBytes > this.limits.maxRequestBytes) return this.oversizedRequest();
    const equals = line.indexOf("=");
    if (equals <= 0) {
      return new ProtocolError(
        "protocol.malformed",
        equals < 0 ? "policy attribute line without '='" : "policy attribute with an empty name",
      );
    }
    this.attributes.set(line.slice(0, equals), line.slice(equals + 1));
    return undefined;
  }

  private oversizedRequest(): ProtocolError {
    return new ProtocolError(
      "protocol.oversized",
      `policy request exceeds the limit of ${this.limits.maxRequestBytes} bytes`,
    );
  }

  private reset(): void {
    this.attributes = new Map();
    this.attributeLines = 0;
    this.requestBytes = 0;
  }
}

/**
 * Encodes a request as Postfix sends it (for tests and the load generator).
 * Throws RangeError on a name or value Postfix could never send, since that
 * is a bug in the calling test, not input from a peer.
 */
export function encodePolicyRequest(
  attributes: Iterable<readonly [string, string]> | Readonly<Record<string, string>>,
): Uint8Array {
  const entries = Symbol.iterator in attributes ? attributes : Object.entries(attributes);
  let text = "";
  let count = 0;
  for (const [name, value] of entries as Iterable<readonly [string, string]>) {
    if (name.length === 0 || /[=\r\n]/.test(name))
      throw new RangeError(`invalid policy attribute name ${name}`);
    if (/[\r\n]/.test(value)) throw new RangeError(`policy attribute ${name} contains CR or LF`);
    text += `${name}=${value}\n`;
    count++;
  }
  if (count === 0) throw new RangeError("a policy request needs at least one attribute");
  return utf8Encode(text + "\n");
}
