/**
 * Shared pieces for the core/net wire tests: a tiny line protocol with
 * commands that exercise every server path (echo, slow, throw, noreply,
 * garbage), a recording observer, a pino logger that keeps its lines, and a
 * line client with bounded waits. The real codecs live in core/protocols;
 * this one only exists so core/net can be tested on its own.
 */
import net from "node:net";
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import { ProtocolError } from "../../core/errors.js";
import type { ProtocolDefinition, ServerObserver, Session } from "../../core/net/protocol.js";
import type { DecodeEvent, StreamDecoder } from "../../core/protocols/stream.js";

export const MAX_LINE = 1024;

/** LF-terminated lines up to MAX_LINE bytes; a NUL byte is "garbage". */
function createLineDecoder(): StreamDecoder<string> {
  let pending = Buffer.alloc(0);
  let dead = false;
  return {
    get buffered() {
      return pending.length;
    },
    push(chunk) {
      if (dead) return [];
      pending = Buffer.concat([pending, chunk]);
      const events: DecodeEvent<string>[] = [];
      for (;;) {
        const newline = pending.indexOf(0x0a);
        const lineLength = newline === -1 ? pending.length : newline;
        if (lineLength > MAX_LINE) {
          dead = true;
          events.push({
            kind: "error",
            error: new ProtocolError("protocol.oversized", "line too long\u001b[31m"),
          });
          return events;
        }
        if (newline === -1) return events;
        const line = pending.subarray(0, newline);
        pending = pending.subarray(newline + 1);
        if (line.includes(0)) {
          dead = true;
          events.push({ kind: "error", error: new ProtocolError("protocol.malformed", "NUL byte in line") });
          return events;
        }
        events.push({ kind: "frame", frame: line.toString("utf8") });
      }
    },
  };
}

export const lineProtocol: ProtocolDefinition<string, string> = {
  name: "line-echo",
  createDecoder: createLineDecoder,
  encodeReply: (reply) => Buffer.from(`${reply}\n`),
  failSafeReply: (frame) => (frame.startsWith("noreply") ? undefined : "TEMP"),
  outcomeLabel: (reply) => reply.split(" ")[0] ?? "",
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Commands: `echo X` → `OK X`; `slow MS` → `OK slow MS` after MS (ignores the abort signal on purpose); `throw`; `noreply`. */
export function lineSession(): Session<string, string> {
  return {
    async handle(frame) {
      const [command, ...rest] = frame.split(" ");
      const argument = rest.join(" ");
      switch (command) {
        case "echo":
          return `OK ${argument}`;
        case "slow":
          await sleep(Number(argument));
          return `OK slow ${argument}`;
        case "throw":
          throw new Error("secret internal detail");
        case "noreply":
          return undefined;
        default:
          return `ERR unknown`;
      }
    },
  };
}

export interface RecordingObserver extends ServerObserver {
  events: string[];
}

export function recordingObserver(): RecordingObserver {
  const events: string[] = [];
  return {
    events,
    connectionOpened: (listener) => events.push(`opened ${listener}`),
    connectionClosed: (listener) => events.push(`closed ${listener}`),
    connectionRefused: (listener, reason) => events.push(`refused ${listener} ${reason}`),
    request: (outcome) => events.push(`request ${outcome}`),
    error: (kind) => events.push(`error ${kind}`),
  };
}

/** A debug-level logger whose lines the test can read. */
export function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const text of String(chunk).split("\n")) if (text) lines.push(JSON.parse(text));
      callback();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

export interface LineClient {
  socket: net.Socket;
  send(text: string): void;
  /** Next reply line; rejects after timeoutMs or when the connection closes first. */
  nextLine(timeoutMs?: number): Promise<string>;
  /** Resolves when the server closed the connection (within timeoutMs) with the time it took. */
  closed(timeoutMs?: number): Promise<number>;
}

export async function connectLineClient(options: net.NetConnectOpts): Promise<LineClient> {
  const socket = net.connect({ ...options, allowHalfOpen: true });
  const opened = Date.now();
  let buffered = "";
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let isClosed = false;
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  socket.on("data", (chunk) => {
    buffered += chunk.toString("utf8");
    for (let newline = buffered.indexOf("\n"); newline !== -1; newline = buffered.indexOf("\n")) {
      lines.push(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
    wake();
  });
  socket.on("error", () => undefined);
  // The client is half-open capable, so "end" (the server's FIN) is what says the server closed.
  const markClosed = () => {
    isClosed = true;
    wake();
  };
  socket.on("end", markClosed);
  socket.on("close", markClosed);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const waitFor = <T>(ready: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = ready();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        } else if (isClosed && what === "line") {
          clearTimeout(timer);
          reject(new Error("connection closed before a line arrived"));
        } else waiters.push(check);
      };
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      check();
    });
  return {
    socket,
    send: (text) => socket.write(text),
    nextLine: (timeoutMs = 3000) => waitFor(() => lines.shift(), timeoutMs, "line"),
    closed: (timeoutMs = 3000) =>
      waitFor(() => (isClosed ? Date.now() - opened : undefined), timeoutMs, "close"),
  };
}

/** Poll a condition the server reaches asynchronously (its own "close" can trail the client's). */
export async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
