/**
 * A minimal socketmap client (what Postfix's socketmap table does): one
 * connection, lookups sent one at a time, each reply parsed as Postfix 3.7
 * parses it. For `emailng demo`, benchmarks and tests; the daemons are
 * servers only.
 */
import { connect, type Socket } from "node:net";
import { NetstringDecoder } from "../protocols/netstring.js";
import { encodeSocketmapRequest, parseSocketmapReply, type SocketmapReply } from "../protocols/socketmap.js";

export type SocketmapTarget = { path: string } | { host: string; port: number };

export interface SocketmapClient {
  lookup(map: string, key: string): Promise<SocketmapReply>;
  close(): void;
}

export async function openSocketmapClient(
  target: SocketmapTarget,
  timeoutMs = 10_000,
): Promise<SocketmapClient> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const opened = "path" in target ? connect(target.path) : connect(target.port, target.host);
    opened.once("connect", () => resolve(opened));
    opened.once("error", reject);
  });
  socket.setTimeout(timeoutMs);
  const decoder = new NetstringDecoder(100_000);
  let waiting: { resolve: (reply: SocketmapReply) => void; reject: (error: Error) => void } | null = null;
  const failWaiting = (error: Error) => {
    const current = waiting;
    waiting = null;
    current?.reject(error);
  };
  socket.on("data", (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.kind === "error") {
        failWaiting(event.error);
        socket.destroy();
        return;
      }
      const parsed = parseSocketmapReply(event.frame);
      const current = waiting;
      waiting = null;
      if (parsed.ok) current?.resolve(parsed.reply);
      else current?.reject(new Error(parsed.error.message));
    }
  });
  socket.on("timeout", () => {
    failWaiting(new Error(`no socketmap reply within ${timeoutMs} ms`));
    socket.destroy();
  });
  socket.on("error", failWaiting);
  socket.on("close", () => failWaiting(new Error("socketmap server closed the connection")));

  return {
    lookup(map, key) {
      if (waiting !== null) return Promise.reject(new Error("one lookup at a time"));
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.write(encodeSocketmapRequest(map, key));
      });
    },
    close() {
      socket.end();
    },
  };
}
