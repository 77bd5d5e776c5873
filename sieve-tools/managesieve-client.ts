/**
 * ManageSieve client (RFC 5804) over TCP with STARTTLS: the only module of
 * sieve-tools that touches a socket. Framing is core/protocols/managesieve;
 * this file sends one command at a time, waits for its final OK/NO/BYE
 * within a deadline, and turns every failure into a ManageSieveError that
 * says what happened — a NO with its response code (NONEXISTENT, ACTIVE,
 * QUOTA/…), a BYE, a dropped connection, a timeout, or garbage from the
 * server (then the connection is closed, since nothing after it can be
 * trusted).
 */
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import {
  type Argument,
  describeResponse,
  encodeCommand,
  type Item,
  ManageSieveDecoder,
  parseCapabilities,
  type ResponseCode,
  type ResponseLine,
} from "../core/protocols/managesieve.js";
import { plainInitialResponse } from "../core/protocols/managesieve-saslprep.js";

export type Done = Extract<ResponseLine, { kind: "done" }>;

export type ManageSieveFailure =
  | "no"
  | "bye"
  | "closed"
  | "timeout"
  | "protocol"
  | "connect"
  | "tls"
  | "unsupported";

/** Like describeResponse, but a multi-line text (compiler messages) is shown line by line. */
export function describeMultiline(done: Done): string {
  if (done.text === null || !/[\r\n]/.test(done.text)) return describeResponse(done);
  const head = describeResponse({ ...done, text: null });
  const lines = done.text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .slice(0, 50)
    .map((line) => `    ${line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?")}`);
  return `${head}:\n${lines.join("\n")}`;
}

export class ManageSieveError extends Error {
  constructor(
    readonly failure: ManageSieveFailure,
    message: string,
    readonly response: Done | null = null,
  ) {
    super(message);
    this.name = "ManageSieveError";
  }

  /** The response code of a NO/BYE, e.g. "NONEXISTENT" or "QUOTA/MAXSIZE". */
  get code(): ResponseCode | null {
    return this.response?.code ?? null;
  }
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** "required": fail when the server does not offer STARTTLS; false: stay in plain text. */
  starttls: "required" | false;
  ca?: string | Buffer;
  servername?: string;
  /** Only for tests against a throw-away certificate. */
  rejectUnauthorized?: boolean;
  timeoutMs: number;
}

export interface ScriptListing {
  name: string;
  active: boolean;
}

interface Waiter {
  resolve(): void;
  reject(error: ManageSieveError): void;
}

function itemText(item: Item | undefined): string {
  return item?.text ?? "";
}

export class ManageSieveClient {
  private decoder = new ManageSieveDecoder();
  private readonly queue: ResponseLine[] = [];
  private waiter: Waiter | null = null;
  private ended: ManageSieveError | null = null;
  capabilities = new Map<string, string>();
  tls = false;

  private constructor(
    private socket: Socket | TLSSocket,
    private readonly options: ConnectOptions,
  ) {
    this.attach(socket);
  }

  /** Connects, reads the greeting, and upgrades with STARTTLS when asked. */
  static async connect(options: ConnectOptions): Promise<ManageSieveClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const candidate = connectTcp({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        candidate.destroy();
        reject(
          new ManageSieveError(
            "timeout",
            `no connection to ${options.host}:${options.port} within ${options.timeoutMs} ms`,
          ),
        );
      }, options.timeoutMs);
      candidate.once("connect", () => {
        clearTimeout(timer);
        resolve(candidate);
      });
      candidate.once("error", (error) => {
        clearTimeout(timer);
        reject(
          new ManageSieveError(
            "connect",
            `cannot connect to ${options.host}:${options.port}: ${error.message}`,
          ),
        );
      });
    });
    const client = new ManageSieveClient(socket, options);
    try {
      const greeting = await client.response("the greeting");
      client.capabilities = parseCapabilities(greeting.data);
      if (options.starttls === "required") await client.startTls();
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on("data", (chunk: Buffer) => {
      for (const result of this.decoder.push(chunk)) {
        if (result.kind === "error") {
          this.end(new ManageSieveError("protocol", `malformed response from the server: ${result.message}`));
          socket.destroy();
          return;
        }
        this.queue.push(result);
      }
      this.wake();
    });
    socket.on("error", (error) =>
      this.end(new ManageSieveError("closed", `connection error: ${error.message}`)),
    );
    socket.on("close", () => this.end(new ManageSieveError("closed", "the server closed the connection")));
  }

  private end(error: ManageSieveError): void {
    if (this.ended === null) this.ended = error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve();
  }

  /** Reads lines up to the final OK/NO/BYE, within the deadline. */
  private async response(what: string): Promise<{ data: ResponseLine[]; done: Done }> {
    const data: ResponseLine[] = [];
    const deadline = Date.now() + this.options.timeoutMs;
    for (;;) {
      const line = this.queue.shift();
      if (line !== undefined) {
        if (line.kind === "done") {
          if (line.status === "BYE") {
            this.socket.destroy();
            throw new ManageSieveError(
              "bye",
              `the server ended the session during ${what}: ${describeResponse(line)}`,
              line,
            );
          }
          return { data, done: line };
        }
        data.push(line);
        continue;
      }
      if (this.ended !== null) {
        throw new ManageSieveError(this.ended.failure, `${this.ended.message} while waiting for ${what}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.socket.destroy();
        throw new ManageSieveError("timeout", `no answer to ${what} within ${this.options.timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: () => resolve(),
        };
      });
    }
  }

  /** Sends one command and waits for its reply; NO becomes a ManageSieveError. */
  async command(name: string, args: readonly Argument[] = []): Promise<{ data: ResponseLine[]; done: Done }> {
    if (this.ended !== null)
      throw new ManageSieveError(this.ended.failure, `${this.ended.message} (before ${name})`);
    this.socket.write(encodeCommand(name, args));
    const reply = await this.response(name);
    if (reply.done.status === "NO") {
      throw new ManageSieveError("no", `${name} failed: ${describeMultiline(reply.done)}`, reply.done);
    }
    return reply;
  }

  private async startTls(): Promise<void> {
    if (!this.capabilities.has("STARTTLS")) {
      throw new ManageSieveError(
        "unsupported",
        "the server does not offer STARTTLS (set starttls = false only on a trusted network)",
      );
    }
    await this.command("STARTTLS");
    const plain = this.socket as Socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    plain.removeAllListeners("error");
    this.decoder = new ManageSieveDecoder();
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const candidate = connectTls({
        socket: plain,
        servername: this.options.servername ?? this.options.host,
        ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
        rejectUnauthorized: this.options.rejectUnauthorized ?? true,
      });
      const timer = setTimeout(() => {
        candidate.destroy();
        reject(new ManageSieveError("timeout", `TLS handshake not done within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      candidate.once("secureConnect", () => {
        clearTimeout(timer);
        resolve(candidate);
      });
      candidate.once("error", (error) => {
        clearTimeout(timer);
        reject(new ManageSieveError("tls", `TLS failed: ${error.message}`));
      });
    });
    this.socket = secure;
    this.tls = true;
    this.attach(secure);
    // RFC 5804 2.2: the server re-sends its capabilities after the handshake.
    const again = await this.response("the capabilities after STARTTLS");
    this.capabilities = parseCapabilities(again.data);
  }

  async authenticatePlain(user: string, password: string, authzid = ""): Promise<void> {
    const mechanisms = (this.capabilities.get("SASL") ?? "").toUpperCase().split(/\s+/);
    if (!mechanisms.includes("PLAIN")) {
      throw new ManageSieveError(
        "unsupported",
        `the server does not offer SASL PLAIN (it offers: ${mechanisms.join(" ") || "none"})`,
      );
    }
    // The initial response is always sent: Dovecot 2.3.19 mishandles an empty challenge after a failure.
    await this.command("AUTHENTICATE", ["PLAIN", plainInitialResponse(user, password, authzid)]);
  }

  async capability(): Promise<Map<string, string>> {
    const reply = await this.command("CAPABILITY");
    this.capabilities = parseCapabilities(reply.data);
    return this.capabilities;
  }

  async listScripts(): Promise<ScriptListing[]> {
    const reply = await this.command("LISTSCRIPTS");
    return reply.data.flatMap((line) =>
      line.kind === "data" && line.items[0]?.kind === "string"
        ? [{ name: line.items[0].text, active: itemText(line.items[1]).toUpperCase() === "ACTIVE" }]
        : [],
    );
  }

  async getScript(name: string): Promise<Uint8Array> {
    const reply = await this.command("GETSCRIPT", [name]);
    const line = reply.data.find(
      (candidate) => candidate.kind === "data" && candidate.items[0]?.kind === "string",
    );
    const item = line?.kind === "data" ? line.items[0] : undefined;
    if (item?.kind !== "string")
      throw new ManageSieveError("protocol", "GETSCRIPT answered OK without the script");
    return item.bytes;
  }

  /** Returns the OK text (it may carry compiler warnings). */
  async putScript(name: string, script: Uint8Array): Promise<Done> {
    return (await this.command("PUTSCRIPT", [name, { literal: script }])).done;
  }

  async checkScript(script: Uint8Array): Promise<Done> {
    return (await this.command("CHECKSCRIPT", [{ literal: script }])).done;
  }

  async haveSpace(name: string, size: number): Promise<Done> {
    return (await this.command("HAVESPACE", [name, size])).done;
  }

  async setActive(name: string): Promise<Done> {
    return (await this.command("SETACTIVE", [name])).done;
  }

  async deleteScript(name: string): Promise<Done> {
    return (await this.command("DELETESCRIPT", [name])).done;
  }

  async renameScript(from: string, to: string): Promise<Done> {
    return (await this.command("RENAMESCRIPT", [from, to])).done;
  }

  /** LOGOUT, then close; errors on the way out are ignored (the work is done). */
  async logout(): Promise<void> {
    try {
      if (this.ended === null) await this.command("LOGOUT");
    } catch {
      // The server may close before or after its OK.
    } finally {
      this.close();
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
