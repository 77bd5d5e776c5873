/**
 * Postfix socketmap client side for the load driver: requests are netstrings
 * `NAME SP KEY` exactly as Postfix's dict_sockmap sends them, replies are
 * netstrings `STATUS SP DATA`. OK and NOTFOUND are answers; TEMP, TIMEOUT and
 * PERM mean the server could not answer and count as errors.
 */
import { ChunkBuffer, type ReplyReader, type ReplyStatus, type WireClient } from "./wire-client.js";

export interface SocketmapItem {
  map: string;
  key: string;
}

const COLON = 0x3a;
const COMMA = 0x2c;
const SPACE = 0x20;

export function encodeSocketmapQuery(item: SocketmapItem): Buffer {
  const payload = Buffer.from(`${item.map} ${item.key}`, "utf8");
  return Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(",")]);
}

export class SocketmapReplyReader implements ReplyReader {
  private readonly buffer = new ChunkBuffer();

  constructor(private readonly maxPayload = 100_000) {}

  push(chunk: Buffer): ReplyStatus[] {
    const data = this.buffer.take(chunk);
    const replies: ReplyStatus[] = [];
    let offset = 0;
    for (;;) {
      const colon = data.indexOf(COLON, offset);
      if (colon < 0) {
        if (data.length - offset > 10) throw new Error("socketmap reply: length prefix too long");
        break;
      }
      let length = 0;
      for (let index = offset; index < colon; index++) {
        const digit = data[index]! - 0x30;
        if (digit < 0 || digit > 9) throw new Error("socketmap reply: bad length prefix");
        length = length * 10 + digit;
      }
      if (colon === offset || length > this.maxPayload) throw new Error("socketmap reply: bad length");
      const end = colon + 1 + length;
      if (data.length <= end) break;
      if (data[end] !== COMMA) throw new Error("socketmap reply: netstring without its comma");
      const space = data.indexOf(SPACE, colon + 1);
      const statusEnd = space < 0 || space > end ? end : space;
      const status = data.toString("latin1", colon + 1, statusEnd);
      replies.push({ status, ok: status === "OK" || status === "NOTFOUND" });
      offset = end + 1;
    }
    this.buffer.keep(data.subarray(offset));
    return replies;
  }
}

export const socketmapWireClient: WireClient<SocketmapItem> = {
  protocol: "socketmap",
  greeting: () => null,
  encode: encodeSocketmapQuery,
  newReplyReader: () => new SocketmapReplyReader(),
};
