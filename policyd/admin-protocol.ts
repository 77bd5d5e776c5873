/**
 * The small control protocol between `emailng policy explain|reset|release`
 * and the running policyd, over a UNIX socket only root (or policyd's user)
 * can reach (`admin_socket`, mode 0600). One JSON object per line each way:
 *
 *   C: {"command":"explain","key":"gpapadop"}
 *   S: {"ok":true,"key":"gpapadop","counters":[…],"hold":null,…}
 *   C: {"command":"release","key":"gpapadop"}
 *   S: {"ok":true,"released":true}
 *
 * Requests are capped at 4 KiB; a line that is not a known request gets
 * {"ok":false,"error":…}; bytes that are not lines close the connection.
 * The daemon is the only writer of its store, so the commands go through
 * it rather than to the SQLite file or Redis directly.
 */
import { ProtocolError } from "../core/errors.js";
import type { ProtocolDefinition } from "../core/net/protocol.js";
import { LineSplitter } from "../core/protocols/line-splitter.js";
import type { DecodeEvent, StreamDecoder } from "../core/protocols/stream.js";
import { utf8DecodeLenient, utf8Encode } from "../core/protocols/text.js";

export const ADMIN_COMMANDS = ["explain", "reset", "release"] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export type AdminRequest = { ok: true; command: AdminCommand; key: string } | { ok: false; error: string };

export type AdminReply = { ok: true; [field: string]: unknown } | { ok: false; error: string };

const MAX_LINE_BYTES = 4096;

export function parseAdminRequest(line: string): AdminRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: "request is not JSON" };
  }
  if (typeof value !== "object" || value === null) return { ok: false, error: "request is not an object" };
  const { command, key } = value as { command?: unknown; key?: unknown };
  if (typeof command !== "string" || !(ADMIN_COMMANDS as readonly string[]).includes(command)) {
    return { ok: false, error: `command must be one of ${ADMIN_COMMANDS.join(", ")}` };
  }
  if (typeof key !== "string" || key.length === 0 || key.length > 300) {
    return { ok: false, error: "key must be a non-empty string of at most 300 characters" };
  }
  return { ok: true, command: command as AdminCommand, key };
}

class AdminDecoder implements StreamDecoder<AdminRequest> {
  private readonly lines = new LineSplitter(MAX_LINE_BYTES);
  private failure: ProtocolError | undefined;

  get buffered(): number {
    return this.lines.buffered;
  }

  push(chunk: Uint8Array): DecodeEvent<AdminRequest>[] {
    if (this.failure) return [{ kind: "error", error: this.failure }];
    const events: DecodeEvent<AdminRequest>[] = [];
    const error = this.lines.feed(chunk, (line) => {
      const text = utf8DecodeLenient(line).trim();
      if (text.length > 0) events.push({ kind: "frame", frame: parseAdminRequest(text) });
      return true;
    });
    if (error) {
      this.failure =
        error instanceof ProtocolError ? error : new ProtocolError("protocol.malformed", String(error));
      events.push({ kind: "error", error: this.failure });
    }
    return events;
  }
}

export function encodeAdminReply(reply: AdminReply): Uint8Array {
  return utf8Encode(`${JSON.stringify(reply)}\n`);
}

export const adminProtocol: ProtocolDefinition<AdminRequest, AdminReply> = {
  name: "policyd-admin",
  createDecoder: () => new AdminDecoder(),
  encodeReply: encodeAdminReply,
  failSafeReply: () => ({ ok: false, error: "internal error; see the policyd log" }),
  outcomeLabel: (reply) => (reply.ok ? "ok" : "error"),
};
