/**
 * The one log format of every emailng program: pino JSON lines on standard
 * output (journald or the container runtime collects them), one root logger
 * per program and a child per connection, so every line of a conversation
 * carries the program, the connection number and the peer.
 *
 * Two defences apply to everything logged. Secret-looking fields (passwords,
 * tokens, authorization headers) are replaced by pino's redaction, so a
 * careless `log.debug({ config })` cannot leak the LDAP bind password. And
 * whatever a peer sent must pass through `sanitizePeerString` first, so a
 * hostile client cannot forge log lines, smuggle terminal escapes or bloat
 * the log with megabyte-long values.
 */
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import type { PeerInfo } from "../net/protocol.js";

export type { Logger } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export interface LoggerSettings {
  /** "verifyd", "policyd", … : present on every line. */
  program: string;
  level: LogLevel;
  /** Where lines go; standard output when absent. Tests pass a stream to capture them. */
  destination?: DestinationStream;
}

/**
 * Field names whose values are never logged, at the top level and up to two
 * levels down (pino's redaction has no "any depth" wildcard, and deeper
 * wildcards cost time on every line). Matching is exact and case-sensitive,
 * hence the header spellings.
 */
const SECRET_FIELDS = [
  "password",
  "bind_password",
  "bindPassword",
  "passwd",
  "secret",
  "client_secret",
  "token",
  "access_token",
  "api_key",
  "apiKey",
  "authorization",
  "Authorization",
  "cookie",
  "Cookie",
];

export const REDACTED_PATHS: readonly string[] = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
]);

export const REDACTION_CENSOR = "[redacted]";

/** The program's root logger. */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { program: settings.program, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names instead of numbers: administrators read and grep these.
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACTED_PATHS], censor: REDACTION_CENSOR },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}

/**
 * The logger for one connection. The peer address comes from the kernel (or
 * is our own socket path), but it is sanitised anyway: it ends up in every
 * line of the connection.
 */
export function connectionLogger(root: Logger, peer: PeerInfo): Logger {
  const address = peer.port === undefined ? peer.address : `${peer.address}:${peer.port}`;
  return root.child({ connection: peer.id, transport: peer.transport, peer: sanitizePeerString(address) });
}

/**
 * Characters that must not reach a log line verbatim: C0 and C1 controls and
 * DEL (line breaks, terminal escapes), Unicode line and paragraph separators,
 * invisible format characters (zero-width and bidirectional overrides, which
 * can make a line read differently from what it holds), lone surrogates and
 * private-use or unassigned code points.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}]/u;

/**
 * Makes a peer-supplied string safe and bounded for logging. Unsafe
 * characters become escapes (`\x1b`, `\u{202e}`) rather than "?" so the log
 * still shows exactly what was sent; a backslash is doubled so an escape in
 * the output is never ambiguous. The result holds at most `max` characters
 * of escaped text, followed by a marker counting what was cut. Only as much
 * input is read as fits, so a huge string costs no more than a short one.
 */
export function sanitizePeerString(text: string, max = 200): string {
  let output = "";
  let consumed = 0;
  for (const character of text) {
    const piece = escapeCharacter(character);
    if (output.length + piece.length > max) {
      return `${output}…[${text.length - consumed} more]`;
    }
    output += piece;
    consumed += character.length;
  }
  return output;
}

function escapeCharacter(character: string): string {
  if (character === "\\") return "\\\\";
  if (!UNSAFE.test(character)) return character;
  const code = character.codePointAt(0) ?? 0;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
}
