/**
 * Dovecot dict proxy protocol (2.3), client side for the load driver, acting
 * like Dovecot's auth process with `passdb/userdb { driver = dict }`: the
 * hello `H3 TAB 2 TAB 0 TAB TAB <dict name>` on each connection (as captured
 * in test/vectors/dict-06), then `L<key> TAB <user>` lookups. Lines are
 * encoded by core/protocols/dict-commands.ts, the codec the daemons use.
 * Replies: `O<value>` found, `N` not found, `M…` several values — answers;
 * `F<error>` is the server failing and counts as an error. The async framing
 * a real dict server may add (`*<id>`, then `+<id> TAB <reply>`) is accepted.
 */
import { encodeDictCommand, encodeDictHello } from "../../core/protocols/dict-commands.js";
import { ChunkBuffer, type ReplyReader, type ReplyStatus, type WireClient } from "./wire-client.js";

export interface DictItem {
  key: string;
  user: string;
}

const NEWLINE = 0x0a;

export class DictReplyReader implements ReplyReader {
  private readonly buffer = new ChunkBuffer();

  constructor(private readonly maxLineBytes = 65_536) {}

  push(chunk: Buffer): ReplyStatus[] {
    const data = this.buffer.take(chunk);
    const replies: ReplyStatus[] = [];
    let offset = 0;
    for (;;) {
      const end = data.indexOf(NEWLINE, offset);
      if (end < 0) {
        if (data.length - offset > this.maxLineBytes) throw new Error("dict reply: line over 64 KiB");
        break;
      }
      let letter = data[offset];
      let start = offset;
      offset = end + 1;
      if (letter === 0x2a) continue; // "*<id>": async id assigned, the reply comes later
      if (letter === 0x2b) {
        // "+<id>\t<reply>"
        const tab = data.indexOf(0x09, start);
        if (tab < 0 || tab > end) throw new Error("dict reply: async reply without a tab");
        start = tab + 1;
        letter = data[start];
      }
      switch (letter) {
        case 0x4f: // O
          replies.push({ status: "O", ok: true });
          break;
        case 0x4e: // N
          replies.push({ status: "N", ok: true });
          break;
        case 0x4d: // M
          replies.push({ status: "M", ok: true });
          break;
        case 0x46: // F
          replies.push({ status: "F", ok: false });
          break;
        default:
          throw new Error(
            `dict reply: unexpected line ${JSON.stringify(data.toString("latin1", start, end))}`,
          );
      }
    }
    this.buffer.keep(data.subarray(offset));
    return replies;
  }
}

export function dictWireClient(dictName: string): WireClient<DictItem> {
  const hello = Buffer.from(
    encodeDictHello({ version: { major: 3, minor: 2 }, valueType: 0, user: "", dictName }),
    "utf8",
  );
  return {
    protocol: "dict",
    greeting: () => hello,
    encode: (item) =>
      Buffer.from(encodeDictCommand({ kind: "lookup", key: item.key, user: item.user }), "utf8"),
    newReplyReader: () => new DictReplyReader(),
  };
}
