/**
 * The Sieve lexer (RFC 5228 section 2 and 8.1): script bytes to tokens with
 * line:column positions. It is bounded the way Pigeonhole is: scripts over
 * the size limit are refused before any work, and every loop advances, so
 * no input can make it hang. Invalid UTF-8, unterminated quoted strings,
 * multi-line literals and bracket comments are errors with the position
 * where the trouble starts. Whitespace is SP, HTAB, CR and LF (Pigeonhole
 * also takes a bare CR or LF as a line end); anything else outside tokens
 * is an error.
 */
import type { DiagnosticSink, Position } from "./diagnostics.js";

/** Pigeonhole's default sieve_max_script_size. */
export const DEFAULT_MAX_SCRIPT_BYTES = 1024 * 1024;
/** Numbers are unsigned 64-bit in Pigeonhole. */
export const MAX_NUMBER = (1n << 64n) - 1n;

export type TokenKind =
  | "identifier"
  | "tag"
  | "number"
  | "string"
  | "["
  | "]"
  | "("
  | ")"
  | "{"
  | "}"
  | ","
  | ";"
  | "eof";

export interface Token extends Position {
  kind: TokenKind;
  /** Identifier or tag name (without ':'), or the decoded string value. */
  text: string;
  /** Only for numbers, quantifier applied. */
  number?: bigint;
  /** True for `text:` strings. */
  multiline?: boolean;
}

const QUANTIFIER: Record<string, bigint> = { k: 1n << 10n, m: 1n << 20n, g: 1n << 30n };

function isAlpha(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

/**
 * Reports each invalid UTF-8 sequence (up to a few) with its position and
 * returns the text decoded with U+FFFD in their place, so lexing can go on
 * and report the script's other problems too.
 */
export function decodeScript(bytes: Uint8Array, sink: DiagnosticSink): string {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  const strict = new TextDecoder("utf-8", { fatal: true });
  let line = 1;
  let column = 1;
  let reported = 0;
  let index = 0;
  while (index < bytes.length && reported < 5) {
    const byte = bytes[index]!;
    const length = byte < 0x80 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 0;
    let valid = length > 0 && index + length <= bytes.length;
    if (valid && length > 1) {
      try {
        strict.decode(bytes.subarray(index, index + length));
      } catch {
        valid = false;
      }
    }
    if (!valid) {
      sink.error(
        { line, column },
        `invalid UTF-8: byte 0x${byte.toString(16).padStart(2, "0")} does not start a valid character (scripts must be UTF-8)`,
      );
      reported += 1;
      index += 1;
      column += 1;
      continue;
    }
    if (byte === 0x0a) {
      line += 1;
      column = 1;
    } else {
      column += 1;
    }
    index += length;
  }
  return text;
}

/** Splits decoded script text into tokens; stops at the first error it cannot step over. */
export class Lexer {
  private index = 0;
  private line = 1;
  private column = 1;
  failed = false;

  constructor(
    private readonly source: string,
    private readonly sink: DiagnosticSink,
  ) {}

  private position(): Position {
    return { line: this.line, column: this.column };
  }

  private peek(offset = 0): string {
    return this.source[this.index + offset] ?? "";
  }

  /** Advances one UTF-16 unit, keeping line:column in characters. */
  private advance(): string {
    const c = this.source[this.index] ?? "";
    this.index += 1;
    if (c === "\n") {
      this.line += 1;
      this.column = 1;
    } else if (c === "\r") {
      // CRLF counts once (at the LF); a bare CR is a line end of its own.
      if (this.source[this.index] !== "\n") {
        this.line += 1;
        this.column = 1;
      }
    } else if (!(c >= "\uDC00" && c <= "\uDFFF")) {
      this.column += 1;
    }
    return c;
  }

  private fail(at: Position, message: string): Token {
    this.sink.error(at, message);
    this.failed = true;
    return { kind: "eof", text: "", line: this.line, column: this.column };
  }

  /** The next token; `eof` at the end or after an error (then `failed` is set). */
  next(): Token {
    if (this.failed) return { kind: "eof", text: "", line: this.line, column: this.column };
    for (;;) {
      this.skipWhitespace();
      const c = this.peek();
      if (c === "#") {
        this.skipHashComment();
        continue;
      }
      if (c === "/" && this.peek(1) === "*") {
        const start = this.position();
        if (!this.skipBracketComment()) {
          return this.fail(start, "end of script inside a bracket comment ('/* ... */') started here");
        }
        continue;
      }
      break;
    }
    const start = this.position();
    const c = this.peek();
    if (c === "") return { kind: "eof", text: "", line: start.line, column: start.column };
    if ("[](){},;".includes(c)) {
      this.advance();
      return { kind: c as TokenKind, text: c, line: start.line, column: start.column };
    }
    if (c === '"') return this.quotedString(start);
    if (isDigit(c)) return this.numberToken(start);
    if (c === ":") {
      this.advance();
      if (!isAlpha(this.peek())) return this.fail(start, "a tag needs a name right after ':' (e.g. :is)");
      return { kind: "tag", text: this.identifierText(), line: start.line, column: start.column };
    }
    if (isAlpha(c)) {
      const name = this.identifierText();
      if (name.toLowerCase() === "text" && this.peek() === ":") {
        this.advance();
        return this.multilineString(start);
      }
      return { kind: "identifier", text: name, line: start.line, column: start.column };
    }
    const shown = c.charCodeAt(0) < 0x20 ? `0x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : `'${c}'`;
    return this.fail(start, `unexpected character ${shown}`);
  }

  /** SP, HTAB, CR, LF; a tight loop because most of a script is indentation. */
  private skipWhitespace(): void {
    const source = this.source;
    let index = this.index;
    for (;;) {
      const code = source.charCodeAt(index);
      if (code === 0x20 || code === 0x09) {
        this.column += 1;
      } else if (code === 0x0a) {
        this.line += 1;
        this.column = 1;
      } else if (code === 0x0d) {
        if (source.charCodeAt(index + 1) !== 0x0a) {
          this.line += 1;
          this.column = 1;
        }
      } else {
        break;
      }
      index += 1;
    }
    this.index = index;
  }

  private identifierText(): string {
    const source = this.source;
    const begin = this.index;
    let index = begin;
    for (;;) {
      const code = source.charCodeAt(index);
      const wordChar =
        (code >= 0x61 && code <= 0x7a) ||
        (code >= 0x41 && code <= 0x5a) ||
        (code >= 0x30 && code <= 0x39) ||
        code === 0x5f;
      if (!wordChar) break;
      index += 1;
    }
    // Identifiers are ASCII: one column per unit.
    this.column += index - begin;
    this.index = index;
    return source.slice(begin, index);
  }

  /** Moves to `target`, counting lines and columns on the way. */
  private moveTo(target: number): void {
    while (this.index < target) this.advance();
  }

  private skipHashComment(): void {
    while (this.peek() !== "" && this.peek() !== "\n" && this.peek() !== "\r") this.advance();
    if (this.peek() === "") {
      this.sink.warning(this.position(), "no line end after the hash comment at the end of the script");
    }
  }

  private skipBracketComment(): boolean {
    this.advance();
    this.advance();
    for (;;) {
      const c = this.peek();
      if (c === "") return false;
      if (c === "*" && this.peek(1) === "/") {
        this.advance();
        this.advance();
        return true;
      }
      this.advance();
    }
  }

  private quotedString(start: Position): Token {
    // Fast path: no escapes before the closing quote.
    const close = this.source.indexOf('"', this.index + 1);
    const text = close < 0 ? "" : this.source.slice(this.index + 1, close);
    if (close >= 0 && !text.includes("\\")) {
      this.moveTo(close + 1);
      return { kind: "string", text, line: start.line, column: start.column };
    }
    this.advance();
    const parts: string[] = [];
    let begin = this.index;
    for (;;) {
      const c = this.peek();
      if (c === "") {
        return this.fail(start, "end of script inside a quoted string started here (missing '\"')");
      }
      if (c === '"') break;
      if (c === "\\") {
        parts.push(this.source.slice(begin, this.index));
        this.advance();
        if (this.peek() === "") {
          return this.fail(start, "end of script inside a quoted string started here (missing '\"')");
        }
        // RFC 5228 2.4.2: "\x" is x for any x (only \\ and \" are meaningful).
        begin = this.index;
        this.advance();
        continue;
      }
      this.advance();
    }
    parts.push(this.source.slice(begin, this.index));
    this.advance();
    return { kind: "string", text: parts.join(""), line: start.line, column: start.column };
  }

  private multilineString(start: Position): Token {
    while (this.peek() === " " || this.peek() === "\t") this.advance();
    if (this.peek() === "#") {
      while (this.peek() !== "" && this.peek() !== "\n" && this.peek() !== "\r") this.advance();
    }
    if (!this.consumeLineEnd()) {
      const c = this.peek();
      return this.fail(
        this.position(),
        c === ""
          ? "end of script after 'text:' (a multi-line string starts on the next line)"
          : `unexpected '${c}' after 'text:' (only spaces or a # comment may follow it on the line)`,
      );
    }
    const lines: string[] = [];
    for (;;) {
      if (this.peek() === "") {
        return this.fail(start, "end of script inside a multi-line string started here (missing '.' line)");
      }
      const begin = this.index;
      while (this.peek() !== "" && this.peek() !== "\n" && this.peek() !== "\r") this.advance();
      const lineText = this.source.slice(begin, this.index);
      const ended = this.consumeLineEnd();
      if (lineText === "." && ended) break;
      if (!ended) {
        return this.fail(start, "end of script inside a multi-line string started here (missing '.' line)");
      }
      lines.push(lineText.startsWith("..") ? lineText.slice(1) : lineText);
    }
    return {
      kind: "string",
      text: lines.map((line) => `${line}\r\n`).join(""),
      multiline: true,
      ...start,
    };
  }

  private consumeLineEnd(): boolean {
    if (this.peek() === "\r") {
      this.advance();
      if (this.peek() === "\n") this.advance();
      return true;
    }
    if (this.peek() === "\n") {
      this.advance();
      return true;
    }
    return false;
  }

  private numberToken(start: Position): Token {
    const begin = this.index;
    while (isDigit(this.peek())) this.advance();
    const digits = this.source.slice(begin, this.index);
    // 2^64 has 20 digits; longer runs are refused before any big arithmetic.
    if (digits.replace(/^0+/, "").length > 21) {
      return this.fail(start, `number is too large (the maximum is ${MAX_NUMBER})`);
    }
    let value = BigInt(digits);
    const quantifier = QUANTIFIER[this.peek().toLowerCase()];
    if (quantifier !== undefined) {
      this.advance();
      value *= quantifier;
    }
    if (value > MAX_NUMBER) {
      return this.fail(start, `number is too large (the maximum is ${MAX_NUMBER})`);
    }
    return { kind: "number", text: digits, number: value, line: start.line, column: start.column };
  }
}
