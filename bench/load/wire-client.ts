/**
 * What the load driver needs from a protocol: the bytes of each request
 * (encoded once, before the clock starts), an optional greeting sent after
 * connecting, and a reader that turns reply bytes into one status per
 * request. The readers are written for speed, not for hostile input — they
 * read our own servers' replies — but a reply they cannot parse is still a
 * counted error, never a silent success.
 */

export interface ReplyStatus {
  /** Protocol status or action word: OK, NOTFOUND, DUNNO, DEFER_IF_PERMIT, O, N … */
  status: string;
  /** False for an answer that means the server failed (TEMP, PERM, dict F, a missing action). */
  ok: boolean;
}

export interface ReplyReader {
  /** Complete replies found so far; a framing error throws. */
  push(chunk: Buffer): ReplyStatus[];
}

export interface WireClient<Item> {
  readonly protocol: string;
  /** Sent once on each new connection before the first request (the dict handshake), or null. */
  greeting(): Buffer | null;
  encode(item: Item): Buffer;
  newReplyReader(): ReplyReader;
}

/** Concatenates the unread tail of the last chunk with the next one; keeps the common case copy-free. */
export class ChunkBuffer {
  private pending: Buffer | null = null;

  take(chunk: Buffer): Buffer {
    if (this.pending === null) return chunk;
    const joined = Buffer.concat([this.pending, chunk]);
    this.pending = null;
    return joined;
  }

  keep(rest: Buffer): void {
    this.pending = rest.length === 0 ? null : Buffer.from(rest);
  }
}
