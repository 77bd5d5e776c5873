/**
 * Wire tests for core/net/listeners.ts through the server: TCP allow-lists
 * (IPv4, and IPv4-mapped IPv6 peers as a dual-stack socket reports them),
 * and UNIX sockets (mode, group, removal on close, stale file replaced, a
 * live socket or a regular file never replaced). UNIX sockets live in a
 * fresh temporary directory removed afterwards.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { ListenerSpec } from "../../core/net/listeners.js";
import { createProtocolServer, type ProtocolServer } from "../../core/net/server.js";
import {
  capturingLogger,
  connectLineClient,
  type LineClient,
  lineProtocol,
  lineSession,
  recordingObserver,
} from "./net-fixtures.js";

const directory = mkdtempSync(join(tmpdir(), "emailng-net-"));
const open: ProtocolServer[] = [];
const clients: LineClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  await Promise.all(open.splice(0).map((server) => server.close(100)));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function serve(spec: ListenerSpec) {
  const observer = recordingObserver();
  const { log, lines } = capturingLogger();
  const server = createProtocolServer({
    name: "test",
    definition: lineProtocol,
    sessions: () => lineSession(),
    limits: { maxConnections: 8, requestTimeoutMs: 1000, idleTimeoutMs: 10_000 },
    log,
    observer,
  });
  open.push(server);
  await server.listen([spec]);
  return { server, observer, lines };
}

async function connect(options: Parameters<typeof connectLineClient>[0]) {
  const client = await connectLineClient(options);
  clients.push(client);
  return client;
}

async function tcpPort(server: ProtocolServer): Promise<number> {
  const bound = server.addresses()[0];
  if (bound?.kind !== "tcp") throw new Error("expected a TCP listener");
  return bound.port;
}

describe("TCP allow-list", () => {
  it("drops a peer outside the allowed networks before reading anything", async () => {
    const { server, observer, lines } = await serve({
      kind: "tcp",
      host: "127.0.0.1",
      port: 0,
      allow: ["10.0.0.0/8", "2001:db8::/32"],
    });
    const client = await connect({ host: "127.0.0.1", port: await tcpPort(server) });
    client.send("echo hello\n");
    await client.closed();
    await expect(client.nextLine(100)).rejects.toThrow();
    expect(observer.events.filter((event) => event.endsWith("not_allowed"))).toHaveLength(1);
    expect(lines.filter((line) => line["msg"] === "connection refused")).toHaveLength(1);
    expect(server.connections).toBe(0);
  });

  it.each([
    { name: "an IPv4 network", host: "127.0.0.1", allow: ["127.0.0.0/8"] },
    { name: "a bare address", host: "127.0.0.1", allow: ["127.0.0.1"] },
    {
      name: "an IPv4 network, peer seen as ::ffff:127.0.0.1",
      host: "::ffff:127.0.0.1",
      allow: ["127.0.0.0/8"],
    },
    { name: "a mapped IPv6 network", host: "127.0.0.1", allow: ["::ffff:127.0.0.0/104"] },
  ])("serves a peer allowed by $name", async ({ host, allow }) => {
    const { server, lines } = await serve({ kind: "tcp", host, port: 0, allow });
    const client = await connect({ host: "127.0.0.1", port: await tcpPort(server) });
    client.send("echo hello\n");
    expect(await client.nextLine()).toBe("OK hello");
    expect(lines.some((line) => String(line["peer"]).startsWith("127.0.0.1:"))).toBe(true);
  });

  it("rejects an invalid allow entry at listen time", async () => {
    await expect(serve({ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.1/8"] })).rejects.toThrow(
      /127\.1\/8/,
    );
  });
});

function groupForTest(): { name: string; gid: number } {
  // As root any group will do, so pick one that is not ours to prove chgrp happened.
  const wanted =
    process.getuid?.() === 0 ? "daemon" : execFileSync("id", ["-gn"], { encoding: "utf8" }).trim();
  for (const line of readFileSync("/etc/group", "utf8").split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === wanted && gid !== undefined) return { name, gid: Number(gid) };
  }
  throw new Error(`group ${wanted} not in /etc/group`);
}

describe("UNIX socket listener", () => {
  it("creates the socket with the requested mode and group, serves it and removes it on close", async () => {
    const path = join(directory, "mode.sock");
    const group = groupForTest();
    const { server } = await serve({ kind: "unix", path, mode: 0o660, group: group.name });
    const stats = statSync(path);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o660);
    expect(stats.gid).toBe(group.gid);
    expect(server.addresses()).toEqual([{ kind: "unix", label: `unix:${path}`, path }]);
    const client = await connect({ path });
    client.send("echo unix\n");
    expect(await client.nextLine()).toBe("OK unix");
    await server.close(100);
    expect(() => statSync(path)).toThrow(/ENOENT/);
  });

  it("replaces a stale socket file nobody answers on", async () => {
    const path = join(directory, "stale.sock");
    // A socket bound and abandoned, as a crashed daemon leaves it.
    execFileSync("python3", [
      "-c",
      "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      path,
    ]);
    expect(statSync(path).isSocket()).toBe(true);
    await serve({ kind: "unix", path, mode: 0o600 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const client = await connect({ path });
    client.send("echo fresh\n");
    expect(await client.nextLine()).toBe("OK fresh");
  });

  it("refuses to take over a socket another process answers on", async () => {
    const path = join(directory, "live.sock");
    const { server } = await serve({ kind: "unix", path, mode: 0o600 });
    await expect(serve({ kind: "unix", path, mode: 0o600 })).rejects.toThrow(/in use/);
    const client = await connect({ path });
    client.send("echo first\n");
    expect(await client.nextLine()).toBe("OK first");
    expect(server.connections).toBe(1);
  });

  it("never replaces a file that is not a socket", async () => {
    const path = join(directory, "regular-file");
    writeFileSync(path, "keep me");
    await expect(serve({ kind: "unix", path, mode: 0o600 })).rejects.toThrow(/not a socket/);
    expect(readFileSync(path, "utf8")).toBe("keep me");
  });
});
