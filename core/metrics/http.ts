/**
 * The small HTTP endpoint each daemon serves beside its protocol sockets:
 *
 *   GET /metrics   Prometheus text format of the daemon's registry
 *   GET /ready     200 "ready" once the daemon can answer (snapshot loaded,
 *                  listeners open), else 503 "not ready"; for load balancers
 *                  and systemd/k8s readiness checks
 *   GET /live      200 "live" while the event loop runs
 *
 * Anything else is 404 (405 for another method on a known path). It is
 * built on node:http and kept bounded: request bodies are never read (a
 * request announcing one gets 413 and the connection is closed), headers,
 * slow requests and the number of connections are capped, and it should
 * listen on loopback or a management network only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

export interface MetricsServerSettings {
  host: string;
  /** 0 picks a free port (tests); the bound one is in `address`. */
  port: number;
  registry: Registry;
  isReady: () => boolean;
  log: Logger;
}

export interface MetricsServer {
  readonly address: { host: string; port: number };
  /** Stops accepting, ends idle keep-alive connections, resolves when all are closed. */
  close(): Promise<void>;
}

/** Prometheus scrapes every few seconds with one connection; a few spare for humans with curl. */
const MAX_CONNECTIONS = 32;
/** Open connections still busy this long after close() are cut. */
const CLOSE_GRACE_MS = 2000;

const KNOWN_PATHS = new Set(["/metrics", "/ready", "/live"]);

export async function startMetricsServer(settings: MetricsServerSettings): Promise<MetricsServer> {
  const { registry, isReady, log } = settings;

  const server = createServer(
    { maxHeaderSize: 8 * 1024, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 },
    (request, response) => {
      handle(request, response).catch((error: unknown) => {
        log.error({ err: error }, "metrics endpoint failed");
        if (!response.headersSent) send(response, 500, "internal error\n");
        else response.destroy();
      });
    },
  );
  server.maxConnections = MAX_CONNECTIONS;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (hasBody(request)) {
      response.setHeader("Connection", "close");
      send(response, 413, "request bodies are not accepted\n");
      return;
    }
    const path = (request.url ?? "/").split("?", 1)[0] ?? "/";
    if (!KNOWN_PATHS.has(path)) return send(response, 404, "not found\n");
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      return send(response, 405, "method not allowed\n");
    }
    switch (path) {
      case "/metrics": {
        const body = await registry.metrics();
        return send(response, 200, body, registry.contentType);
      }
      case "/ready":
        return readiness() ? send(response, 200, "ready\n") : send(response, 503, "not ready\n");
      default:
        return send(response, 200, "live\n");
    }
  }

  function readiness(): boolean {
    try {
      return isReady();
    } catch (error) {
      log.warn({ err: error }, "readiness check threw; reporting not ready");
      return false;
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(settings.port, settings.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (error) => log.error({ err: error }, "metrics endpoint error"));

  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  log.info({ metrics: `${address.host}:${address.port}` }, "metrics endpoint listening");

  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      });
      return closing;
    },
  };
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers["content-length"];
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

function send(
  response: ServerResponse,
  status: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
): void {
  response.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}
