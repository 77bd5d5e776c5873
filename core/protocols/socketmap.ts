/**
 * Postfix socketmap lookups on top of netstrings (docs/protocols/postfix-socketmap.md,
 * vectors socketmap-01 … 08). A request payload is `NAME SP KEY`; a reply
 * payload is `STATUS SP DATA`. The encoder enforces what Postfix 3.7 needs
 * and does not say loudly: `OK` always with a space and non-empty data (an
 * empty OK is sent as `NOTFOUND `), reasons printable and at most 200 bytes,
 * and a reply payload of at most 100,000 bytes — an OK that would be larger
 * is an error value (checkSocketmapReply) the caller turns into TEMP, which
 * is what encodeSocketmapReplySafe does. The client half (request encoder,
 * reply parser that mirrors Postfix) serves tests and benchmarks.
 */
import { encodeNetstring } from "./netstring.js";
import { sanitizeAscii, toWellFormed, utf8DecodeStrict, utf8Encode } from "./text.js";

/** Postfix refuses replies with a larger payload ("input exceeds size limit"). */
export const MAX_SOCKETMAP_REPLY_PAYLOAD = 100_000;
/** Postfix logs at most 200 characters of a reason. */
export const MAX_SOCKETMAP_REASON_BYTES = 200;

export interface SocketmapRequest {
  name: string;
  /** Everything after the first space, verbatim (may contain spaces). */
  key: string;
}

export type SocketmapRequestError =
  | { kind: "no_space"; message: string }
  | { kind: "empty_name"; message: string }
  | { kind: "invalid_utf8"; message: string };

/** A request we cannot parse is answered with PERM by the server (it is a configuration problem). */
export type ParsedSocketmapRequest =
  | { ok: true; request: SocketmapRequest }
  | { ok: false; error: SocketmapRequestError };

export function parseSocketmapRequest(payload: Uint8Array): ParsedSocketmapRequest {
  const text = utf8DecodeStrict(payload);
  if (text === undefined) {
    return { ok: false, error: { kind: "invalid_utf8", message: "socketmap request is not valid UTF-8" } };
  }
  const space = text.indexOf(" ");
  if (space < 0)
    return { ok: false, error: { kind: "no_space", message: "socketmap request without a key" } };
  if (space === 0)
    return { ok: false, error: { kind: "empty_name", message: "socketmap request without a map name" } };
  return { ok: true, request: { name: text.slice(0, space), key: text.slice(space + 1) } };
}

export type SocketmapReply =
  | { status: "OK"; data: string }
  | { status: "NOTFOUND" }
  | { status: "TEMP"; reason: string }
  | { status: "TIMEOUT"; reason: string }
  | { status: "PERM"; reason: string };

export type SocketmapReplyCheck =
  | { ok: true; payload: Uint8Array }
  | { ok: false; error: { kind: "reply_too_large"; payloadBytes: number; limit: number } };

/** The reply payload as text (well-formed, so its UTF-8 length is Buffer.byteLength's). */
function replyText(reply: SocketmapReply): string {
  switch (reply.status) {
    case "OK":
      // Postfix warns on "OK " with nothing after it; "not found" is what an empty value means.
      return reply.data.length === 0 ? "NOTFOUND " : `OK ${toWellFormed(reply.data)}`;
    case "NOTFOUND":
      return "NOTFOUND ";
    case "TEMP":
    case "TIMEOUT":
    case "PERM":
      return `${reply.status} ${sanitizeAscii(reply.reason, MAX_SOCKETMAP_REASON_BYTES)}`;
    default: {
      const unreachable: never = reply;
      throw new TypeError(`unknown socketmap reply ${JSON.stringify(unreachable)}`);
    }
  }
}

function tooLarge(payloadBytes: number) {
  return {
    ok: false as const,
    error: { kind: "reply_too_large" as const, payloadBytes, limit: MAX_SOCKETMAP_REPLY_PAYLOAD },
  };
}

/** The payload that would go on the wire, or why it cannot. */
export function checkSocketmapReply(reply: SocketmapReply): SocketmapReplyCheck {
  const payload = utf8Encode(replyText(reply));
  if (payload.length > MAX_SOCKETMAP_REPLY_PAYLOAD) return tooLarge(payload.length);
  return { ok: true, payload };
}

/** A reply whose payload has at most this many UTF-16 units fits: UTF-8 needs at most 3 bytes per unit. */
const SURELY_FITTING_UNITS = Math.floor(MAX_SOCKETMAP_REPLY_PAYLOAD / 3);

/**
 * The payload size of a reply too large for Postfix, or undefined when it
 * fits: what checkSocketmapReply decides, without encoding anything for the
 * replies that cannot be too large (every one but a long OK; reasons are cut
 * to MAX_SOCKETMAP_REASON_BYTES).
 */
export function socketmapReplyOverLimit(reply: SocketmapReply): number | undefined {
  if (reply.status !== "OK" || reply.data.length + 3 <= SURELY_FITTING_UNITS) return undefined;
  const payloadBytes = Buffer.byteLength(replyText(reply), "utf8");
  return payloadBytes > MAX_SOCKETMAP_REPLY_PAYLOAD ? payloadBytes : undefined;
}

export type EncodedSocketmapReply =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; error: { kind: "reply_too_large"; payloadBytes: number; limit: number } };

export function encodeSocketmapReply(reply: SocketmapReply): EncodedSocketmapReply {
  const text = replyText(reply);
  // The length is needed for the netstring prefix anyway; the text is then encoded once, whole.
  const payloadBytes = Buffer.byteLength(text, "utf8");
  if (payloadBytes > MAX_SOCKETMAP_REPLY_PAYLOAD) return tooLarge(payloadBytes);
  return { ok: true, bytes: utf8Encode(`${payloadBytes}:${text},`) };
}

/** Always bytes: an oversized OK becomes TEMP (Postfix would fail the lookup temporarily anyway). */
export function encodeSocketmapReplySafe(reply: SocketmapReply): Uint8Array {
  const encoded = encodeSocketmapReply(reply);
  if (encoded.ok) return encoded.bytes;
  const fallback = encodeSocketmapReply({ status: "TEMP", reason: "lookup result too large" });
  if (!fallback.ok) throw new Error("unreachable: TEMP reply cannot be oversized");
  return fallback.bytes;
}

/** Client side: what Postfix sends for a lookup. */
export function encodeSocketmapRequest(name: string, key: string): Uint8Array {
  if (name.length === 0 || /[\s]/.test(name)) throw new RangeError(`invalid socketmap name ${name}`);
  return encodeNetstring(`${name} ${key}`);
}

/** How Postfix 3.7 reads a reply payload (socketmap-01): case-sensitive words, one space before data. */
export type ParsedSocketmapReply =
  | { ok: true; reply: SocketmapReply }
  | { ok: false; error: { kind: "empty_ok" | "unknown_status" | "invalid_utf8"; message: string } };

export function parseSocketmapReply(payload: Uint8Array): ParsedSocketmapReply {
  const text = utf8DecodeStrict(payload);
  if (text === undefined) {
    return { ok: false, error: { kind: "invalid_utf8", message: "socketmap reply is not valid UTF-8" } };
  }
  const space = text.indexOf(" ");
  const word = space < 0 ? text : text.slice(0, space);
  const rest = space < 0 ? "" : text.slice(space + 1);
  switch (word) {
    case "OK":
      // "OK" without a space is silently "not found" for Postfix; "OK " is an error it warns about.
      if (space < 0) return { ok: true, reply: { status: "NOTFOUND" } };
      if (rest.length === 0) {
        return { ok: false, error: { kind: "empty_ok", message: "empty string result is not allowed" } };
      }
      return { ok: true, reply: { status: "OK", data: rest } };
    case "NOTFOUND":
      return { ok: true, reply: { status: "NOTFOUND" } };
    case "TEMP":
    case "TIMEOUT":
    case "PERM":
      return { ok: true, reply: { status: word, reason: rest } };
    default:
      return { ok: false, error: { kind: "unknown_status", message: `unknown socketmap status ${word}` } };
  }
}
