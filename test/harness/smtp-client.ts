// A small SMTP/LMTP client for tests that need more than swaks gives:
// STARTTLS and AUTH PLAIN without Perl's TLS modules, many concurrent
// sessions from one process, and every reply kept so a test can say which
// command got which answer. Every wait is bounded; a reply that never comes
// fails with the command it waited for.
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";

export interface SmtpReply {
  code: number;
  /** All lines of the reply, without the code and separator. */
  lines: string[];
  /** The whole reply as received, for assertion messages. */
  text: string;
}

export interface SmtpSessionOptions {
  host?: string;
  port: number;
  /** "EHLO" for SMTP (default), "LHLO" for LMTP. */
  greeting?: "EHLO" | "LHLO";
  heloName?: string;
  /** Bound on every single reply (default 30 s). */
  replyTimeoutMs?: number;
}

/** One SMTP session; commands are sent one at a time (no pipelining). */
export class SmtpSession {
  private socket: Socket | TLSSocket;
  private buffer = "";
  private waiting: (() => void) | undefined;
  private closedError: Error | undefined;

  private constructor(
    socket: Socket,
    private readonly options: SmtpSessionOptions,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  static async open(options: SmtpSessionOptions): Promise<SmtpSession> {
    const socket = connectTcp({ host: options.host ?? "127.0.0.1", port: options.port });
    const session = new SmtpSession(socket, options);
    const banner = await session.readReply("the greeting");
    if (banner.code !== 220) {
      session.close();
      throw new Error(`unexpected greeting: ${banner.text}`);
    }
    await session.expect(`${options.greeting ?? "EHLO"} ${options.heloName ?? "client.test"}`, 250);
    return session;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      this.waiting?.();
    });
    socket.on("error", (error) => {
      this.closedError = error;
      this.waiting?.();
    });
    socket.on("close", () => {
      this.closedError ??= new Error("connection closed");
      this.waiting?.();
    });
  }

  /** Takes one complete (possibly multi-line) reply off the buffer, if there is one. */
  private takeReply(): SmtpReply | undefined {
    let offset = 0;
    const lines: string[] = [];
    for (;;) {
      const end = this.buffer.indexOf("\r\n", offset);
      if (end < 0) return undefined;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line.slice(4));
      if (line.length < 4 || line[3] !== "-") {
        const text = this.buffer.slice(0, offset);
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines, text };
      }
    }
  }

  readReply(what: string): Promise<SmtpReply> {
    const timeoutMs = this.options.replyTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(
          new Error(`no SMTP reply to ${what} within ${timeoutMs} ms; buffer ${JSON.stringify(this.buffer)}`),
        );
      }, timeoutMs);
      const check = (): void => {
        const reply = this.takeReply();
        if (reply !== undefined) {
          clearTimeout(timer);
          this.waiting = undefined;
          resolve(reply);
        } else if (this.closedError !== undefined) {
          clearTimeout(timer);
          this.waiting = undefined;
          reject(new Error(`connection lost waiting for the reply to ${what}: ${this.closedError.message}`));
        }
      };
      this.waiting = check;
      check();
    });
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.readReply(JSON.stringify(line.startsWith("AUTH ") ? "AUTH ..." : line));
  }

  /** Sends a command and fails unless the reply has this code. */
  async expect(line: string, code: number): Promise<SmtpReply> {
    const reply = await this.command(line);
    if (reply.code !== code) throw new Error(`${line} → ${reply.text.trim()} (expected ${code})`);
    return reply;
  }

  /** STARTTLS, then EHLO again over TLS; the test CA is not checked (loopback, self-signed). */
  async startTls(): Promise<void> {
    await this.expect("STARTTLS", 220);
    const plain = this.socket as Socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("error");
    plain.removeAllListeners("close");
    const secure = connectTls({ socket: plain, rejectUnauthorized: false, servername: "relay.test" });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.socket = secure;
    this.closedError = undefined;
    this.attach(secure);
    await this.expect(`${this.options.greeting ?? "EHLO"} ${this.options.heloName ?? "client.test"}`, 250);
  }

  /** AUTH PLAIN with an initial response (RFC 4616); returns the reply (235 on success). */
  auth(user: string, password: string): Promise<SmtpReply> {
    const token = Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64");
    return this.command(`AUTH PLAIN ${token}`);
  }

  /**
   * MAIL, RCPT for each recipient, and DATA when at least one was accepted.
   * Returns each RCPT reply and the final reply (undefined when no RCPT was
   * accepted; the transaction is reset then).
   */
  async send(
    from: string,
    recipients: string[],
    data: string,
  ): Promise<{ mail: SmtpReply; rcpt: SmtpReply[]; data: SmtpReply | undefined }> {
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) {
      await this.command("RSET");
      return { mail, rcpt: [], data: undefined };
    }
    const rcpt: SmtpReply[] = [];
    for (const recipient of recipients) rcpt.push(await this.command(`RCPT TO:<${recipient}>`));
    if (!rcpt.some((reply) => reply.code === 250)) {
      await this.command("RSET");
      return { mail, rcpt, data: undefined };
    }
    const go = await this.command("DATA");
    if (go.code !== 354) {
      await this.command("RSET");
      return { mail, rcpt, data: go };
    }
    const body = data
      .replace(/\r?\n/g, "\r\n")
      .split("\r\n")
      .map((line) => (line.startsWith(".") ? `.${line}` : line))
      .join("\r\n");
    this.socket.write(`${body}${body.endsWith("\r\n") ? "" : "\r\n"}.\r\n`);
    return { mail, rcpt, data: await this.readReply("the end of DATA") };
  }

  async quit(): Promise<void> {
    try {
      await this.command("QUIT");
    } catch {
      // The server may close first; the session is over either way.
    }
    this.close();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A message with a unique token in its subject and body, so deliveries can be counted. */
export function testMessage(from: string, to: string, subject: string, body = "e2e test message"): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/[^A-Za-z0-9.-]/g, "-")}@client.test>\r\n\r\n${body}\r\n`;
}
