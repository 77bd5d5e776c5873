// A minimal SMTP server on 127.0.0.1 that accepts mail and records each
// message's envelope and data, so integration tests can point a private
// Postfix at it (relayhost, transport_maps or an smtp: nexthop) and see what
// was actually delivered. It speaks just enough RFC 5321 for Postfix's smtp
// client: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT.
// A hook lets a test refuse chosen recipients to exercise bounces and
// deferrals.
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { waitFor } from "./process.js";

export interface SunkMessage {
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  /** The message as received, dot-unstuffed, CRLF line ends, without the final ".". */
  data: string;
  receivedAt: Date;
}

export interface SmtpSinkOptions {
  /** Reply to RCPT TO for this address (angle brackets stripped); default "250 2.1.5 Ok". */
  rcptReply?: (address: string) => string;
  /** Reply after the end of DATA; default "250 2.0.0 Ok: queued". */
  dataReply?: (message: SunkMessage) => string;
}

export interface SmtpSink {
  host: "127.0.0.1";
  port: number;
  /** Every accepted message, in order of arrival. */
  messages: SunkMessage[];
  /** Resolves once at least `count` messages arrived; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<SunkMessage[]>;
  close(): Promise<void>;
}

/** Caps what a misbehaving client can make us buffer: 10 MB per message. */
const MAX_DATA_BYTES = 10 * 1024 * 1024;

function stripBrackets(argument: string): string {
  const match = /<([^>]*)>/.exec(argument);
  return match?.[1] ?? argument.trim();
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: SunkMessage[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buffer = "";
    let helo = "";
    let mailFrom: string | undefined;
    let rcptTo: string[] = [];
    let inData = false;
    let dataLines: string[] = [];
    let dataBytes = 0;
    const reply = (line: string): void => {
      socket.write(`${line}\r\n`);
    };

    const handleCommand = (line: string): void => {
      const verb = line.slice(0, 4).toUpperCase();
      const argument = line.slice(line.indexOf(":") + 1);
      switch (verb) {
        case "EHLO":
          helo = line.slice(5).trim();
          reply("250-sink.test");
          reply("250-8BITMIME");
          reply("250 SMTPUTF8");
          return;
        case "HELO":
          helo = line.slice(5).trim();
          reply("250 sink.test");
          return;
        case "MAIL":
          mailFrom = stripBrackets(argument);
          rcptTo = [];
          reply("250 2.1.0 Ok");
          return;
        case "RCPT": {
          if (mailFrom === undefined) {
            reply("503 5.5.1 Error: need MAIL command");
            return;
          }
          const address = stripBrackets(argument);
          const answer = options.rcptReply?.(address) ?? "250 2.1.5 Ok";
          if (answer.startsWith("2")) rcptTo.push(address);
          reply(answer);
          return;
        }
        case "DATA":
          if (mailFrom === undefined || rcptTo.length === 0) {
            reply("503 5.5.1 Error: need RCPT command");
            return;
          }
          inData = true;
          dataLines = [];
          dataBytes = 0;
          reply("354 End data with <CR><LF>.<CR><LF>");
          return;
        case "RSET":
          mailFrom = undefined;
          rcptTo = [];
          reply("250 2.0.0 Ok");
          return;
        case "NOOP":
          reply("250 2.0.0 Ok");
          return;
        case "QUIT":
          reply("221 2.0.0 Bye");
          socket.end();
          return;
        default:
          reply("502 5.5.2 Error: command not recognized");
      }
    };

    const handleDataLine = (line: string): void => {
      if (line === ".") {
        inData = false;
        const message: SunkMessage = {
          helo,
          mailFrom: mailFrom ?? "",
          rcptTo,
          data: dataLines.map((l) => `${l}\r\n`).join(""),
          receivedAt: new Date(),
        };
        mailFrom = undefined;
        rcptTo = [];
        const answer = options.dataReply?.(message) ?? "250 2.0.0 Ok: queued";
        if (answer.startsWith("2")) messages.push(message);
        reply(answer);
        return;
      }
      dataBytes += line.length + 2;
      if (dataBytes > MAX_DATA_BYTES) {
        reply("552 5.3.4 Message too big");
        socket.end();
        return;
      }
      dataLines.push(line.startsWith(".") ? line.slice(1) : line);
    };

    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      for (;;) {
        const end = buffer.indexOf("\r\n");
        if (end < 0) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) handleDataLine(line);
        else handleCommand(line);
      }
      // A command line longer than any sane one: drop the client.
      if (!inData && buffer.length > 4096) socket.destroy();
    });
    reply("220 sink.test ESMTP test sink");
  });

  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("smtp sink: no TCP address");

  return {
    host: "127.0.0.1",
    port: address.port,
    messages,
    async waitForMessages(count: number, timeoutMs = 20_000): Promise<SunkMessage[]> {
      await waitFor(() => messages.length >= count, {
        timeoutMs,
        what: `${count} message(s) at the SMTP sink on port ${address.port} (have ${messages.length})`,
      });
      return messages.slice(0, count);
    },
    async close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
