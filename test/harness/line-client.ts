// A line-oriented TCP client for short scripted dialogues with real peers
// (IMAP, LMTP, ManageSieve greetings and replies), with a bounded wait per
// reply so that a silent peer fails the test instead of hanging it.
import { connect, type Socket } from "node:net";

/** A line-oriented client for short scripted dialogues with a bounded wait per reply. */
export class LineClient {
  private buffer = "";
  private waiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static open(port: number): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port }, () => resolve(new LineClient(socket)));
      socket.once("error", reject);
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Resolves with everything received up to and including the first line matching `pattern`. */
  async readUntil(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buffer.split("\r\n");
      const index = lines.findIndex((line) => pattern.test(line));
      if (index >= 0 && index < lines.length - 1) {
        const taken = lines.slice(0, index + 1).join("\r\n");
        this.buffer = lines.slice(index + 1).join("\r\n");
        return taken;
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; got: ${this.buffer}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
