/**
 * Wire tests for core/net/server.ts over TCP on 127.0.0.1:0 with the line
 * protocol from net-fixtures.ts: ordering, pipelining, deadlines, handler
 * failures, broken framing, idle timeout, limits, half-close and graceful
 * close. Every server a test opens is closed in afterEach.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createProtocolServer, type ProtocolServer, type ServerLimits } from "../../core/net/server.js";
import {
  capturingLogger,
  connectLineClient,
  type LineClient,
  lineProtocol,
  lineSession,
  MAX_LINE,
  recordingObserver,
  until,
} from "./net-fixtures.js";

const defaultLimits: ServerLimits = { maxConnections: 16, requestTimeoutMs: 2000, idleTimeoutMs: 30_000 };
const open: ProtocolServer[] = [];
const clients: LineClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  await Promise.all(open.splice(0).map((server) => server.close(100)));
});

async function startServer(limits: Partial<ServerLimits> = {}) {
  const observer = recordingObserver();
  const { log, lines } = capturingLogger();
  const server = createProtocolServer({
    name: "test",
    definition: lineProtocol,
    sessions: () => lineSession(),
    limits: { ...defaultLimits, ...limits },
    log,
    observer,
  });
  open.push(server);
  await server.listen([{ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.0.0.0/8"] }]);
  const bound = server.addresses()[0];
  if (bound?.kind !== "tcp") throw new Error("expected a TCP listener");
  const connect = async () => {
    const client = await connectLineClient({ host: "127.0.0.1", port: bound.port });
    clients.push(client);
    return client;
  };
  return { server, observer, lines, connect, port: bound.port };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("protocol server over TCP", () => {
  it("answers several requests on one connection, in order", async () => {
    const { connect, observer, lines } = await startServer();
    const client = await connect();
    for (const word of ["one", "two", "three"]) {
      client.send(`echo ${word}\n`);
      expect(await client.nextLine()).toBe(`OK ${word}`);
    }
    expect(observer.events.filter((event) => event === "request OK")).toHaveLength(3);
    expect(lines.filter((line) => line["msg"] === "request")).toHaveLength(3);
    expect(lines.filter((line) => line["msg"] === "reply" && line["outcome"] === "OK")).toHaveLength(3);
  });

  it("answers pipelined requests in order, even when the first is slow", async () => {
    const { connect } = await startServer({ maxQueuedFrames: 2 });
    const client = await connect();
    const burst = ["slow 100", ...Array.from({ length: 40 }, (_, index) => `echo ${index}`)];
    client.send(burst.map((line) => `${line}\n`).join(""));
    expect(await client.nextLine()).toBe("OK slow 100");
    for (let index = 0; index < 40; index++) expect(await client.nextLine()).toBe(`OK ${index}`);
  });

  it("sends the fail-safe reply at the deadline and drops the late result", async () => {
    const { connect, observer } = await startServer({ requestTimeoutMs: 200 });
    const client = await connect();
    const started = Date.now();
    client.send("slow 600\necho after\n");
    expect(await client.nextLine()).toBe("TEMP");
    expect(Date.now() - started).toBeLessThan(500);
    expect(await client.nextLine()).toBe("OK after");
    await sleep(600);
    await expect(client.nextLine(200)).rejects.toThrow(/no line/);
    expect(observer.events).toContain("error deadline");
  });

  it("answers a throwing handler with the fail-safe and keeps its text out of the reply", async () => {
    const { connect, observer, lines } = await startServer();
    const client = await connect();
    client.send("throw\nnoreply\necho still here\n");
    expect(await client.nextLine()).toBe("TEMP");
    // noreply gets nothing, so the next line is the echo.
    expect(await client.nextLine()).toBe("OK still here");
    expect(observer.events).toContain("error handler");
    const logged = lines.find((line) => line["msg"] === "handler failed; answering fail-safe");
    expect(JSON.stringify(logged)).toContain("secret internal detail");
  });

  it.each([
    { name: "garbage", bytes: "echo a\u0000b\n" },
    { name: "an oversized line", bytes: "x".repeat(MAX_LINE + 10) },
  ])("closes only the connection that sent $name", async ({ bytes }) => {
    const { connect, observer, lines } = await startServer();
    const bad = await connect();
    const good = await connect();
    bad.send(bytes);
    await bad.closed();
    good.send("echo fine\n");
    expect(await good.nextLine()).toBe("OK fine");
    expect(observer.events.filter((event) => event === "error protocol")).toHaveLength(1);
    const warnings = lines.filter((line) => line["msg"] === "protocol error; closing connection");
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.["reason"])).not.toContain("\u001b");
    expect(warnings[0]?.["peer"]).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("closes an idle connection after the idle timeout, never one with a request in flight", async () => {
    const { connect, observer } = await startServer({ idleTimeoutMs: 300 });
    const idle = await connect();
    const busy = await connect();
    busy.send("slow 900\n");
    const idleFor = await idle.closed(2000);
    expect(idleFor).toBeGreaterThanOrEqual(250);
    expect(await busy.nextLine(2000)).toBe("OK slow 900");
    const busyFor = await busy.closed(2000);
    expect(busyFor).toBeGreaterThanOrEqual(1150);
    await until(() => observer.events.filter((event) => event.startsWith("closed")).length === 2);
  });

  it("refuses connections beyond maxConnections", async () => {
    const { connect, observer, server } = await startServer({ maxConnections: 1 });
    const first = await connect();
    first.send("echo first\n");
    expect(await first.nextLine()).toBe("OK first");
    const second = await connect();
    await second.closed();
    expect(
      observer.events.some((event) => /^refused tcp:127\.0\.0\.1:\d+ max_connections$/.test(event)),
    ).toBe(true);
    expect(server.connections).toBe(1);
    first.send("echo again\n");
    expect(await first.nextLine()).toBe("OK again");
  });

  it("answers a half-closed client, then closes", async () => {
    const { connect } = await startServer();
    const client = await connect();
    client.send("slow 100\necho last\n");
    client.socket.end();
    expect(await client.nextLine()).toBe("OK slow 100");
    expect(await client.nextLine()).toBe("OK last");
    await client.closed();
  });

  it("logs peer-supplied text sanitised and cut", async () => {
    const { connect, lines } = await startServer();
    const client = await connect();
    client.send(`echo \u001b[31m${"y".repeat(400)}\n`);
    await client.nextLine();
    const request = lines.find((line) => line["msg"] === "request");
    const text = String(request?.["request"]);
    expect(text).not.toContain("\u001b");
    // core/log's sanitiser shows the escape and counts what it cut.
    expect(text).toContain("echo \\x1b[31m");
    expect(text).toMatch(/…\[\d+ more\]$/);
    expect(text.length).toBeLessThanOrEqual(200 + "…[999 more]".length);
  });
});

describe("graceful close", () => {
  it("finishes the request in flight, closes idle connections and refuses new ones", async () => {
    const { connect, server, port } = await startServer();
    const busy = await connect();
    const idle = await connect();
    busy.send("slow 400\n");
    await sleep(50);
    const closing = server.close(5000);
    await idle.closed(500);
    await expect(connectLineClient({ host: "127.0.0.1", port })).rejects.toThrow(/ECONNREFUSED/);
    expect(await busy.nextLine()).toBe("OK slow 400");
    await busy.closed();
    await closing;
    expect(server.connections).toBe(0);
  });

  it("drops what is left when the grace period ends", async () => {
    const { connect, server } = await startServer({ requestTimeoutMs: 10_000 });
    const client = await connect();
    client.send("slow 5000\n");
    await sleep(50);
    const started = Date.now();
    await server.close(300);
    expect(Date.now() - started).toBeLessThan(1500);
    await client.closed();
    await expect(client.nextLine(100)).rejects.toThrow();
  });
});

describe("bounded memory for a hostile pipelining client", () => {
  it("stops reading from a client that pipelines more than maxQueuedFrames", async () => {
    // Count what the decoder has produced: that is what the server holds in memory.
    let decoded = 0;
    const countingProtocol = {
      ...lineProtocol,
      createDecoder() {
        const inner = lineProtocol.createDecoder();
        return {
          get buffered() {
            return inner.buffered;
          },
          push(chunk: Uint8Array) {
            const events = inner.push(chunk);
            decoded += events.length;
            return events;
          },
        };
      },
    };
    const server = createProtocolServer({
      name: "test",
      definition: countingProtocol,
      sessions: () => lineSession(),
      limits: { ...defaultLimits, maxQueuedFrames: 4, requestTimeoutMs: 10_000 },
      log: capturingLogger().log,
    });
    open.push(server);
    await server.listen([{ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.0.0.1"] }]);
    const bound = server.addresses()[0];
    if (bound?.kind !== "tcp") throw new Error("expected a TCP listener");
    const socket = net.connect({ host: "127.0.0.1", port: bound.port });
    socket.on("error", () => undefined);
    await new Promise((resolve) => socket.once("connect", resolve));
    // A million slow requests in one go; unpaused, the server would decode them all within the second.
    socket.write("slow 50\n".repeat(1024 * 1024));
    await sleep(1000);
    // Paused after the first chunk or two: a few thousand frames at most (one chunk is ≤ 64 KiB).
    expect(decoded).toBeGreaterThan(0);
    expect(decoded).toBeLessThan(50_000);
    expect(socket.writableLength).toBeGreaterThan(0);
    socket.destroy();
  });

  it("closes a connection whose peer stops reading its replies, after the idle timeout", async () => {
    const { port, observer } = await startServer({ idleTimeoutMs: 300 });
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("error", () => undefined);
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.pause();
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.write(`echo ${"x".repeat(1000)}\n`.repeat(20_000));
    await closed;
    await until(() => observer.events.some((event) => event.startsWith("closed")));
  });
});
