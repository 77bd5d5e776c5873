/**
 * What core/net needs from a protocol and from a program to serve it.
 *
 * A ProtocolDefinition ties a pure codec to the socket server: it makes the
 * per-connection decoder, encodes replies (the only path to the socket) and
 * names the fail-safe reply used when a handler throws or misses its deadline,
 * so that a failure can only ever produce a temporary answer.
 *
 * A program supplies a SessionFactory: one Session per connection, handling
 * frames strictly in arrival order (Postfix and Dovecot match replies to
 * requests by order).
 */
import type { Logger } from "pino";
import type { StreamDecoder } from "../protocols/stream.js";

export interface PeerInfo {
  /** "unix" or "tcp" */
  transport: "unix" | "tcp";
  /** remote address for TCP, socket path for UNIX */
  address: string;
  port?: number;
  /** connection number within this server, for logs */
  id: number;
}

export interface RequestContext {
  log: Logger;
  peer: PeerInfo;
  /** Aborted when the per-request deadline passes; handlers pass it on to backends. */
  signal: AbortSignal;
}

export interface ProtocolDefinition<Frame, Reply> {
  readonly name: string;
  createDecoder(): StreamDecoder<Frame>;
  /** Encodes a reply; the server writes nothing that did not come through here. */
  encodeReply(reply: Reply): Uint8Array;
  /** Temporary reply for a frame whose handling failed; undefined when the frame expects no reply. */
  failSafeReply(frame: Frame): Reply | undefined;
  /** Short label for metrics and logs ("OK", "NOTFOUND", "TEMP", "DUNNO" …). */
  outcomeLabel(reply: Reply): string;
}

export interface Session<Frame, Reply> {
  /** Handle one frame; undefined means the frame gets no reply (dict B/S/U/A). */
  handle(frame: Frame, context: RequestContext): Promise<Reply | undefined> | Reply | undefined;
  /** Called once when the connection ends, whatever the reason. */
  close?(): void;
}

export type SessionFactory<Frame, Reply> = (peer: PeerInfo, log: Logger) => Session<Frame, Reply>;

/** Hooks the metrics module implements; the server calls them and knows nothing of Prometheus. */
export interface ServerObserver {
  connectionOpened(listener: string): void;
  connectionClosed(listener: string): void;
  connectionRefused(listener: string, reason: "max_connections" | "not_allowed"): void;
  request(outcome: string, seconds: number): void;
  error(kind: "protocol" | "handler" | "deadline" | "socket"): void;
}
