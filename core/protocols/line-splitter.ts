/**
 * LF line framing shared by the line-based codecs (Postfix policy, Dovecot
 * dict). It cuts a byte stream into lines and holds at most one incomplete
 * line, refusing it as soon as it grows past the limit, so that a peer that
 * never sends LF cannot make us buffer without bound. The caller parses each
 * line at once: the bytes handed out may be a view into the caller's chunk.
 */
import { ProtocolError } from "../errors.js";

const LF = 0x0a;

export class LineSplitter {
  private partial: Uint8Array[] = [];
  private partialBytes = 0;

  /** maxLineBytes: the longest accepted line, LF not counted. */
  constructor(private readonly maxLineBytes: number) {}

  /** Bytes of the incomplete line held so far. */
  get buffered(): number {
    return this.partialBytes;
  }

  /**
   * Calls onLine for every complete line in the chunk (LF removed), in order,
   * until it returns false. Returns an error when a line exceeds the limit;
   * the splitter must not be used after that.
   */
  feed(chunk: Uint8Array, onLine: (line: Uint8Array) => boolean): ProtocolError | undefined {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(LF, start);
      if (newline < 0) {
        const rest = chunk.length - start;
        if (this.partialBytes + rest > this.maxLineBytes) return this.tooLong(this.partialBytes + rest);
        // Copy: the caller may reuse its buffer, and a view would pin a large chunk in memory.
        this.partial.push(chunk.slice(start));
        this.partialBytes += rest;
        return undefined;
      }
      const pieceBytes = newline - start;
      if (this.partialBytes + pieceBytes > this.maxLineBytes)
        return this.tooLong(this.partialBytes + pieceBytes);
      const line = this.takeLine(chunk.subarray(start, newline));
      start = newline + 1;
      if (!onLine(line)) return undefined;
    }
    return undefined;
  }

  private takeLine(piece: Uint8Array): Uint8Array {
    if (this.partial.length === 0) return piece;
    const line = new Uint8Array(this.partialBytes + piece.length);
    let offset = 0;
    for (const part of this.partial) {
      line.set(part, offset);
      offset += part.length;
    }
    line.set(piece, offset);
    this.partial = [];
    this.partialBytes = 0;
    return line;
  }

  private tooLong(size: number): ProtocolError {
    this.partial = [];
    this.partialBytes = 0;
    return new ProtocolError(
      "protocol.oversized",
      `line of at least ${size} bytes exceeds the limit of ${this.maxLineBytes}`,
    );
  }
}
