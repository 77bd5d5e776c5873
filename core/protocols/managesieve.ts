/**
 * ManageSieve (RFC 5804) codec, client side: server bytes to response lines
 * (data lines and the final OK/NO/BYE with its response code), and commands
 * to bytes. Pure, synchronous and bounded: lines, literals and item counts
 * have limits, and anything malformed is a returned error after which the
 * decoder accepts nothing more (the caller closes the connection). Wire
 * details follow Dovecot's managesieved as captured in
 * shared/protocols/managesieve.md: CRLF lines, quoted strings with only \\
 * and \" escapes, literals {N} (server) and {N+} (client), a command line
 * that continues after a literal.
 */

export const MANAGESIEVE_LIMITS = {
  /** Longest line outside literals (Dovecot's own lines are far shorter). */
  maxLineBytes: 64 * 1024,
  /** Largest literal: a script (Dovecot's default limit is 1 MiB) with room to spare. */
  maxLiteralBytes: 16 * 1024 * 1024,
  /** Items on one line (capabilities, codes). */
  maxItems: 1024,
} as const;

/** An atom, or a string (quoted or literal) with its raw bytes. */
export type Item =
  | { kind: "atom"; text: string }
  | { kind: "string"; text: string; bytes: Uint8Array; literal: boolean };

export interface ResponseCode {
  /** Upper-cased, e.g. "NONEXISTENT", "QUOTA/MAXSIZE", "TAG". */
  name: string;
  args: Item[];
}

export type Status = "OK" | "NO" | "BYE";

export type ResponseLine =
  | { kind: "data"; items: Item[] }
  | { kind: "done"; status: Status; code: ResponseCode | null; text: string | null };

export type DecodeResult = ResponseLine | { kind: "error"; message: string };

type Token = Item | { kind: "(" } | { kind: ")" };

const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();

function isAtomByte(byte: number): boolean {
  // SP ( ) " { } CR LF and controls end an atom.
  return byte > 0x20 && byte !== 0x7f && byte !== 0x28 && byte !== 0x29 && byte !== 0x22 && byte !== 0x7b;
}

/** Incremental decoder of server output. */
export class ManageSieveDecoder {
  private buffer: Uint8Array = new Uint8Array(0);
  private tokens: Token[] = [];
  private literalBytes: number | null = null;
  private failed: string | null = null;

  constructor(private readonly limits: typeof MANAGESIEVE_LIMITS = MANAGESIEVE_LIMITS) {}

  /** True after an error; the connection should be closed. */
  get broken(): boolean {
    return this.failed !== null;
  }

  /** Bytes still waiting for the rest of their line or literal. */
  get pendingBytes(): number {
    return this.buffer.length;
  }

  push(chunk: Uint8Array): DecodeResult[] {
    if (this.failed !== null) return [];
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer, 0);
    joined.set(chunk, this.buffer.length);
    this.buffer = joined;
    const results: DecodeResult[] = [];
    for (;;) {
      const result = this.step();
      if (result === null) break;
      results.push(result);
      if (result.kind === "error") break;
    }
    return results;
  }

  private fail(message: string): DecodeResult {
    this.failed = message;
    this.buffer = new Uint8Array(0);
    return { kind: "error", message };
  }

  /** One complete line, an error, or null when more bytes are needed. */
  private step(): DecodeResult | null {
    for (;;) {
      if (this.literalBytes !== null) {
        if (this.buffer.length < this.literalBytes) return null;
        const bytes = this.buffer.slice(0, this.literalBytes);
        this.buffer = this.buffer.subarray(this.literalBytes);
        this.literalBytes = null;
        this.tokens.push({ kind: "string", text: utf8.decode(bytes), bytes, literal: true });
        if (this.tokens.length > this.limits.maxItems) return this.fail("too many items on one line");
      }
      const newline = this.buffer.indexOf(0x0a);
      if (newline < 0) {
        if (this.buffer.length > this.limits.maxLineBytes) {
          return this.fail(`line longer than ${this.limits.maxLineBytes} bytes`);
        }
        return null;
      }
      if (newline > this.limits.maxLineBytes)
        return this.fail(`line longer than ${this.limits.maxLineBytes} bytes`);
      const end = newline > 0 && this.buffer[newline - 1] === 0x0d ? newline - 1 : newline;
      const segment = this.buffer.subarray(0, end);
      this.buffer = this.buffer.subarray(newline + 1);
      const literal = this.tokenize(segment);
      if (typeof literal === "string") return this.fail(literal);
      if (literal !== null) {
        if (literal > this.limits.maxLiteralBytes) {
          return this.fail(`literal of ${literal} bytes is larger than ${this.limits.maxLiteralBytes}`);
        }
        this.literalBytes = literal;
        continue;
      }
      const tokens = this.tokens;
      this.tokens = [];
      return toResponseLine(tokens);
    }
  }

  /** Adds the segment's tokens; returns a literal length that ends it, an error text, or null. */
  private tokenize(segment: Uint8Array): number | string | null {
    let index = 0;
    while (index < segment.length) {
      const byte = segment[index]!;
      if (byte === 0x20) {
        index += 1;
        continue;
      }
      if (this.tokens.length >= this.limits.maxItems) return "too many items on one line";
      if (byte === 0x28 || byte === 0x29) {
        this.tokens.push({ kind: byte === 0x28 ? "(" : ")" });
        index += 1;
        continue;
      }
      if (byte === 0x22) {
        const bytes: number[] = [];
        index += 1;
        for (;;) {
          if (index >= segment.length) return "unterminated quoted string";
          const c = segment[index]!;
          if (c === 0x22) break;
          if (c === 0x5c) {
            const next = segment[index + 1];
            if (next === undefined) return "unterminated quoted string";
            if (next !== 0x5c && next !== 0x22) return "invalid escape in quoted string";
            bytes.push(next);
            index += 2;
            continue;
          }
          bytes.push(c);
          index += 1;
        }
        index += 1;
        const raw = Uint8Array.from(bytes);
        this.tokens.push({ kind: "string", text: utf8.decode(raw), bytes: raw, literal: false });
        continue;
      }
      if (byte === 0x7b) {
        const close = segment.indexOf(0x7d, index);
        if (close < 0 || close !== segment.length - 1) return "literal marker not at the end of the line";
        const spec = new TextDecoder("latin1").decode(segment.subarray(index + 1, close));
        const match = /^(\d{1,10})\+?$/.exec(spec);
        if (match === null) return `invalid literal marker {${spec.slice(0, 20)}}`;
        return Number(match[1]);
      }
      if (!isAtomByte(byte)) return `unexpected byte 0x${byte.toString(16).padStart(2, "0")}`;
      const start = index;
      while (index < segment.length && isAtomByte(segment[index]!) && segment[index] !== 0x7d) index += 1;
      if (index === start) return `unexpected byte 0x${byte.toString(16).padStart(2, "0")}`;
      this.tokens.push({
        kind: "atom",
        text: new TextDecoder("latin1").decode(segment.subarray(start, index)),
      });
    }
    return null;
  }
}

function toResponseLine(tokens: Token[]): DecodeResult {
  const first = tokens[0];
  const status = first?.kind === "atom" ? first.text.toUpperCase() : "";
  if (status !== "OK" && status !== "NO" && status !== "BYE") {
    const items: Item[] = [];
    for (const token of tokens) {
      if (token.kind === "(" || token.kind === ")")
        return { kind: "error", message: "parenthesis in a data line" };
      items.push(token);
    }
    return { kind: "data", items };
  }
  let index = 1;
  let code: ResponseCode | null = null;
  if (tokens[index]?.kind === "(") {
    const name = tokens[index + 1];
    if (name?.kind !== "atom") return { kind: "error", message: "response code without a name" };
    const args: Item[] = [];
    index += 2;
    for (;;) {
      const token = tokens[index];
      if (token === undefined) return { kind: "error", message: "unterminated response code" };
      index += 1;
      if (token.kind === ")") break;
      if (token.kind === "(") return { kind: "error", message: "nested parenthesis in a response code" };
      args.push(token);
    }
    code = { name: name.text.toUpperCase(), args };
  }
  let text: string | null = null;
  const rest = tokens[index];
  if (rest !== undefined) {
    if (rest.kind !== "string" || tokens.length > index + 1) {
      return { kind: "error", message: `unexpected content after ${status}` };
    }
    text = rest.text;
  }
  return { kind: "done", status, code, text };
}

/** A command argument: text (sent quoted when it can be), a number, or bytes sent as a literal. */
export type Argument = string | number | { literal: Uint8Array };

const QUOTABLE_MAX = 1024;

function encodeArgument(argument: Argument, parts: Uint8Array[]): void {
  if (typeof argument === "number") {
    if (!Number.isSafeInteger(argument) || argument < 0)
      throw new RangeError(`not a ManageSieve number: ${argument}`);
    parts.push(encoder.encode(String(argument)));
    return;
  }
  const bytes = typeof argument === "string" ? encoder.encode(argument) : argument.literal;
  const quotable =
    typeof argument === "string" &&
    bytes.length <= QUOTABLE_MAX &&
    !bytes.some((byte) => byte === 0 || byte === 0x0a || byte === 0x0d);
  if (quotable) {
    parts.push(encoder.encode(`"${argument.replace(/[\\"]/g, (c) => `\\${c}`)}"`));
    return;
  }
  // Non-synchronizing literal (RFC 5804 4): the data follows at once.
  parts.push(encoder.encode(`{${bytes.length}+}\r\n`), bytes);
}

/** `NAME arg arg…` CRLF, with literals where needed. */
export function encodeCommand(name: string, args: readonly Argument[] = []): Uint8Array {
  if (!/^[A-Za-z]+$/.test(name)) throw new RangeError(`not a ManageSieve command name: ${name}`);
  const parts: Uint8Array[] = [encoder.encode(name)];
  for (const argument of args) {
    parts.push(encoder.encode(" "));
    encodeArgument(argument, parts);
  }
  parts.push(encoder.encode("\r\n"));
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A SASL continuation answer: one string on its own line. */
export function encodeContinuation(text: string): Uint8Array {
  const parts: Uint8Array[] = [];
  encodeArgument(text, parts);
  parts.push(encoder.encode("\r\n"));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Capabilities from the greeting or CAPABILITY data lines: upper-cased name → value ("" when none). */
export function parseCapabilities(lines: readonly ResponseLine[]): Map<string, string> {
  const capabilities = new Map<string, string>();
  for (const line of lines) {
    if (line.kind !== "data") continue;
    const [name, value] = line.items;
    if (name === undefined) continue;
    capabilities.set(name.text.toUpperCase(), value?.text ?? "");
  }
  return capabilities;
}

/** `NO (NONEXISTENT) "text"` for messages, with the text cut and stripped of controls. */
export function describeResponse(line: Extract<ResponseLine, { kind: "done" }>): string {
  const code =
    line.code === null
      ? ""
      : ` (${[line.code.name, ...line.code.args.map((arg) => (arg.kind === "string" ? JSON.stringify(arg.text) : arg.text))].join(" ")})`;
  const text =
    line.text === null
      ? ""
      : ` ${JSON.stringify(line.text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?").slice(0, 2000))}`;
  return `${line.status}${code}${text}`;
}
