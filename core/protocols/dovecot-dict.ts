/**
 * Dovecot dict proxy protocol, server side: DictCommandDecoder frames the
 * client's LF lines (64 KiB per line, Dovecot's DICT_CLIENT_MAX_LINE_LENGTH;
 * longer is a ProtocolError), parses the hello and then every command, and
 * remembers the protocol version the peer announced; every command frame
 * carries it so that replies (DictServerReply, encodeDictServerReply) match
 * what that peer understands. Escaping is in dict-escape.ts, command layouts
 * in dict-commands.ts, reply lines in dict-replies.ts.
 *
 * Dovecot 2.3 versus 2.4, as far as the wire is concerned:
 * - 2.3.17 … 2.3.21 send `H3\t2\t0\t\t<dict name>` (major 3, minor 2; seen on
 *   the wire with 2.3.19.1, vectors dict-*); the user field of the hello is
 *   empty and every command carries the user itself (L, I, B).
 * - 2.4 sends major version 4. Dovecot's protocol description for 2.4
 *   (dovecot/documentation docs/core/design/dict_protocol.md: "Dict protocol
 *   version was updated to v4, but it's otherwise compatible with v3.2")
 *   keeps the same hello fields and the same L/I/B/S/U/A/C/R/T layouts and
 *   reply letters; it no longer lists D (async commit). The dict name in the
 *   hello comes from the `dict_proxy_name` setting instead of the URI. The
 *   Dovecot servers check only the major version (src/dict/dict-connection.c:
 *   major must match, minor is stored and gates M replies at ≥ 2 and timing
 *   fields / async framing at ≥ 1, src/dict/dict-commands.c), so a 2.4 peer
 *   talking to a 2.3 server, or the reverse, is refused — which is why we
 *   accept both and answer each in its own terms. The 2.4 source of
 *   dict-client.c was not available to us; nothing here depends on a 2.4
 *   field we have not seen documented.
 * - Major versions other than 3 and 4 (Dovecot ≤ 2.3.16 sent 2 with the
 *   user only in the hello) are refused: the hello frame is "invalid" and the
 *   server closes, as Dovecot's own server does.
 */
import type { ProtocolError } from "../errors.js";
import {
  type DictCommand,
  type DictHello,
  type DictProtocolVersion,
  parseDictCommand,
  parseDictHello,
} from "./dict-commands.js";
import {
  type DictCommitResult,
  type DictIterateRow,
  type DictLookupResult,
  encodeDictCommitReply,
  encodeDictIterateEnd,
  encodeDictIterateRow,
  encodeDictLookupReply,
} from "./dict-replies.js";
import { LineSplitter } from "./line-splitter.js";
import type { DecodeEvent, StreamDecoder } from "./stream.js";
import { concatBytes, utf8DecodeStrict } from "./text.js";

/** Dovecot's own limit for a client line. */
export const DEFAULT_MAX_DICT_LINE_BYTES = 64 * 1024;

export type DictClientFrame =
  | { kind: "hello"; hello: DictHello }
  | { kind: "command"; command: DictCommand; version: DictProtocolVersion }
  /**
   * A line that is not a valid hello or command. letter lets the server
   * still answer a broken L/I/C with F (the client waits for one reply);
   * anything else — above all a bad hello — should close the connection.
   */
  | { kind: "invalid"; letter: string; reason: string; version?: DictProtocolVersion };

export class DictCommandDecoder implements StreamDecoder<DictClientFrame> {
  private readonly lines: LineSplitter;
  private announced: DictProtocolVersion | undefined;
  private failure: ProtocolError | undefined;

  constructor(maxLineBytes = DEFAULT_MAX_DICT_LINE_BYTES) {
    this.lines = new LineSplitter(maxLineBytes);
  }

  /** The version from the peer's hello; undefined until a valid hello arrived. */
  get version(): DictProtocolVersion | undefined {
    return this.announced;
  }

  get buffered(): number {
    return this.lines.buffered;
  }

  push(chunk: Uint8Array): DecodeEvent<DictClientFrame>[] {
    if (this.failure) return [{ kind: "error", error: this.failure }];
    const events: DecodeEvent<DictClientFrame>[] = [];
    this.failure = this.lines.feed(chunk, (line) => {
      events.push({ kind: "frame", frame: this.parseLine(line) });
      return true;
    });
    if (this.failure) events.push({ kind: "error", error: this.failure });
    return events;
  }

  private parseLine(bytes: Uint8Array): DictClientFrame {
    const text = utf8DecodeStrict(bytes);
    const letter = bytes.length > 0 ? String.fromCharCode(bytes[0] as number) : "";
    const version = this.announced;
    if (text === undefined) {
      return version
        ? { kind: "invalid", letter, reason: "line is not valid UTF-8", version }
        : invalid(letter);
    }
    if (version === undefined) {
      const parsed = parseDictHello(text);
      if (parsed.ok && "hello" in parsed) {
        this.announced = parsed.hello.version;
        return { kind: "hello", hello: parsed.hello };
      }
      return { kind: "invalid", letter, reason: parsed.ok ? "not a hello" : parsed.reason };
    }
    const parsed = parseDictCommand(text);
    if (parsed.ok && "command" in parsed) return { kind: "command", command: parsed.command, version };
    return { kind: "invalid", letter, reason: parsed.ok ? "not a command" : parsed.reason, version };
  }
}

function invalid(letter: string): DictClientFrame {
  return { kind: "invalid", letter, reason: "line is not valid UTF-8" };
}

/** Everything a dict server can say, tagged with the version of the peer it answers. */
export type DictServerReply =
  | { kind: "lookup"; version: DictProtocolVersion; result: DictLookupResult }
  | {
      kind: "iterate";
      version: DictProtocolVersion;
      rows: readonly DictIterateRow[];
      end: { ok: true } | { ok: false; error: string };
    }
  | { kind: "commit"; version: DictProtocolVersion; id: number; result: DictCommitResult };

/** The one dict reply path: plain in-order replies, accepted by every Dovecot client. */
export function encodeDictServerReply(reply: DictServerReply): Uint8Array {
  const options = { version: reply.version };
  switch (reply.kind) {
    case "lookup":
      return encodeDictLookupReply(reply.result, options);
    case "iterate":
      return concatBytes([
        ...reply.rows.map((row) => encodeDictIterateRow(row, options)),
        encodeDictIterateEnd(reply.end, options),
      ]);
    case "commit":
      return encodeDictCommitReply(reply.id, reply.result, options);
    default: {
      const unreachable: never = reply;
      return unreachable;
    }
  }
}

const FAILSAFE_ERROR = "internal error";
/** Used before a hello or when the hello was refused; only matters for the reply shape. */
const FALLBACK_VERSION: DictProtocolVersion = { major: 3, minor: 0 };

/**
 * The temporary answer for a frame whose handling failed: a dict failure for
 * L, I and C (Dovecot turns it into a temporary error), nothing for frames
 * that expect no reply. Never a "not found".
 */
export function dictFailSafeReply(frame: DictClientFrame): DictServerReply | undefined {
  const version = frame.kind === "hello" ? frame.hello.version : (frame.version ?? FALLBACK_VERSION);
  const letter =
    frame.kind === "command" ? commandLetter(frame.command) : frame.kind === "invalid" ? frame.letter : "";
  switch (letter) {
    case "L":
      return { kind: "lookup", version, result: { kind: "failed", error: FAILSAFE_ERROR } };
    case "I":
      return { kind: "iterate", version, rows: [], end: { ok: false, error: FAILSAFE_ERROR } };
    case "C":
    case "D": {
      const id = frame.kind === "command" && frame.command.kind === "commit" ? frame.command.id : 0;
      return { kind: "commit", version, id, result: { kind: "failed", error: FAILSAFE_ERROR } };
    }
    default:
      return undefined;
  }
}

function commandLetter(command: DictCommand): string {
  switch (command.kind) {
    case "lookup":
      return "L";
    case "iterate":
      return "I";
    case "begin":
      return "B";
    case "commit":
      return command.async ? "D" : "C";
    case "rollback":
      return "R";
    case "set":
      return "S";
    case "unset":
      return "U";
    case "atomic-inc":
      return "A";
    case "timestamp":
      return "T";
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}
