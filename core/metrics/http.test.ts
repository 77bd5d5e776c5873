import { connect } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type MetricsServer, startMetricsServer } from "./http.js";
import { createDaemonMetrics } from "./registry.js";

const log = pino({ level: "silent" });
const servers: MetricsServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(isReady: () => boolean = () => true) {
  const metrics = createDaemonMetrics("verifyd", { processMetrics: false });
  const server = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    registry: metrics.registry,
    isReady,
    log,
  });
  servers.push(server);
  return { metrics, server, base: `http://127.0.0.1:${server.address.port}` };
}

/** Sends raw bytes and returns the whole reply (the server closes the connection). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let reply = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => {
      reply += chunk;
    });
    socket.on("end", () => resolve(reply));
    socket.on("error", reject);
  });
}

describe("startMetricsServer", () => {
  it("serves /metrics in the Prometheus text format", async () => {
    const { metrics, base } = await start();
    metrics.observer.request("OK", 0.001);
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await response.text()).toContain('emailng_requests_total{outcome="OK",program="verifyd"} 1');
  });

  it("answers /ready from isReady, re-evaluated on each request", async () => {
    let ready = false;
    const { base } = await start(() => ready);
    const before = await fetch(`${base}/ready`);
    expect([before.status, await before.text()]).toEqual([503, "not ready\n"]);
    ready = true;
    const after = await fetch(`${base}/ready`);
    expect([after.status, await after.text()]).toEqual([200, "ready\n"]);
  });

  it("reports not ready when isReady throws", async () => {
    const { base } = await start(() => {
      throw new Error("snapshot missing");
    });
    expect((await fetch(`${base}/ready`)).status).toBe(503);
  });

  it.each([
    { name: "live", method: "GET", path: "/live", status: 200 },
    { name: "query string ignored", method: "GET", path: "/live?x=1", status: 200 },
    { name: "HEAD", method: "HEAD", path: "/metrics", status: 200 },
    { name: "unknown path", method: "GET", path: "/", status: 404 },
    { name: "path prefix", method: "GET", path: "/metrics/x", status: 404 },
    { name: "other method", method: "DELETE", path: "/metrics", status: 405 },
  ])("$name → $status", async ({ method, path, status }) => {
    const { base } = await start();
    const response = await fetch(`${base}${path}`, { method });
    expect(response.status).toBe(status);
    await response.arrayBuffer();
  });

  it("refuses request bodies without reading them and closes the connection", async () => {
    const { server } = await start();
    const reply = await raw(
      server.address.port,
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nonly a little of it",
    );
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toMatch(/\r\nConnection: close\r\n/i);
  });

  it("close() resolves with a keep-alive connection open, and twice", async () => {
    const { server, base } = await start();
    await (await fetch(`${base}/live`)).text(); // leaves an idle keep-alive connection
    await server.close();
    await server.close();
    await expect(fetch(`${base}/live`)).rejects.toThrow();
  });

  it("rejects when the port is taken", async () => {
    const { server } = await start();
    const metrics = createDaemonMetrics("policyd", { processMetrics: false });
    await expect(
      startMetricsServer({
        host: "127.0.0.1",
        port: server.address.port,
        registry: metrics.registry,
        isReady: () => true,
        log,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
