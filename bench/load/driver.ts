/**
 * The load driver every generator shares: N connections, each sending its
 * next request as soon as the previous reply is complete (how Postfix's
 * smtpd, cleanup and trivial-rewrite processes and Dovecot's auth workers
 * use a socketmap, policy or dict server: one request at a time per
 * connection, many connections), requests taken in turn from a pool drawn
 * beforehand, per-request latency recorded in an HDR histogram.
 *
 * A run is bounded twice: by time (warm-up, then the measured period) and by
 * a request count. Only requests sent after the warm-up are recorded, and the
 * throughput is recorded replies divided by the measured period. A reply that
 * does not come within the request timeout is an error and that connection
 * is replaced; a server that keeps failing stops the run early with the
 * error counts, so a broken target reads as broken, never as fast.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import type { ReplyStatus, WireClient } from "./wire-client.js";

export type Endpoint = { path: string } | { host: string; port: number };

export interface DriverOptions {
  connections: number;
  warmupMs: number;
  durationMs: number;
  maxRequests: number;
  /** A reply slower than this is an error (the connection is dropped and opened again). */
  requestTimeoutMs: number;
  /** Stop early once this many errors were counted. */
  maxErrors?: number;
}

export interface LatencySummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface DriverResult {
  connections: number;
  /** Replies recorded in the measured period. */
  requests: number;
  warmupRequests: number;
  measuredMs: number;
  requestsPerSecond: number;
  /** Latency in microseconds, send to complete reply, as the generator saw it. */
  latencyUs: LatencySummary;
  /** (percentile, microseconds) points for the latency chart. */
  percentilesUs: Array<[number, number]>;
  /** Reply statuses seen in the measured period (OK, NOTFOUND, DUNNO, O, N …). */
  statuses: Record<string, number>;
  errors: number;
  errorKinds: Record<string, number>;
  /** Why the run ended: "duration", "max-requests" or "errors". */
  stoppedBy: string;
}

/** One connection as the driver sees it; raw sockets and the LDAP client both fit. */
export interface LoadConnection {
  /** Sends one request (by pool index); resolves with its status. Rejects on a transport failure. */
  request(index: number): Promise<ReplyStatus>;
  close(): void;
}

export type ConnectionFactory = () => Promise<LoadConnection>;

export const PERCENTILE_POINTS = [50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100];

/** A raw-socket connection speaking one of the wire protocols, requests pre-encoded. */
export function rawConnectionFactory<Item>(
  endpoint: Endpoint,
  client: WireClient<Item>,
  encoded: readonly Buffer[],
  requestTimeoutMs: number,
): ConnectionFactory {
  return async () => {
    const socket: Socket = await new Promise((resolve, reject) => {
      const opened = "path" in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
      opened.once("connect", () => {
        opened.off("error", reject);
        resolve(opened);
      });
      opened.once("error", reject);
    });
    socket.setNoDelay(true);
    const greeting = client.greeting();
    if (greeting !== null) socket.write(greeting);
    const reader = client.newReplyReader();
    let waiting: { resolve: (status: ReplyStatus) => void; reject: (error: Error) => void } | null = null;
    let failure: Error | null = null;
    const fail = (error: Error) => {
      failure ??= error;
      const current = waiting;
      waiting = null;
      current?.reject(error);
      socket.destroy();
    };
    socket.setTimeout(requestTimeoutMs, () => {
      if (waiting !== null) fail(new Error("timeout"));
    });
    socket.on("data", (chunk: Buffer) => {
      let replies: ReplyStatus[];
      try {
        replies = reader.push(chunk);
      } catch (error) {
        fail(new Error(`framing: ${(error as Error).message}`));
        return;
      }
      for (const reply of replies) {
        const current = waiting;
        waiting = null;
        if (current === null) {
          fail(new Error("unsolicited reply"));
          return;
        }
        current.resolve(reply);
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => fail(new Error(error.code ?? error.message)));
    socket.on("close", () => fail(new Error("closed by server")));
    return {
      request(index) {
        if (failure !== null) return Promise.reject(failure);
        return new Promise<ReplyStatus>((resolve, reject) => {
          waiting = { resolve, reject };
          socket.write(encoded[index % encoded.length]!);
        });
      },
      close() {
        failure ??= new Error("closed");
        socket.destroy();
      },
    };
  };
}

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/** Runs the load and returns what it measured. */
export async function drive(
  factory: ConnectionFactory,
  poolSize: number,
  options: DriverOptions,
): Promise<DriverResult> {
  const histogram = newHistogram();
  const statuses: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  const maxErrors = options.maxErrors ?? 1_000;
  let errors = 0;
  let recorded = 0;
  let warmupRequests = 0;
  let recordFrom = Number.POSITIVE_INFINITY;
  let recordUntil = Number.POSITIVE_INFINITY;
  let stopping = false;
  let stoppedBy = "duration";

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    stoppedBy = reason;
    recordUntil = performance.now();
  };
  const countError = (kind: string) => {
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    if (errors >= maxErrors) stop("errors");
  };

  const loop = async (connectionIndex: number) => {
    // Spread the connections over the pool so they do not ask the same keys in lock step.
    let next = Math.floor((connectionIndex * poolSize) / options.connections);
    while (!stopping) {
      let connection: LoadConnection;
      try {
        connection = await factory();
      } catch (error) {
        countError(`connect: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      try {
        while (!stopping) {
          const sent = performance.now();
          const reply = await connection.request(next++);
          const done = performance.now();
          if (sent >= recordFrom && done <= recordUntil) {
            recorded++;
            histogram.recordValue(Math.max(1, Math.round((done - sent) * 1_000)));
            statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
            if (!reply.ok) countError(`reply ${reply.status}`);
            if (recorded >= options.maxRequests) stop("max-requests");
          } else if (sent < recordFrom) {
            warmupRequests++;
            if (!reply.ok) countError(`reply ${reply.status} (warm-up)`);
          }
        }
      } catch (error) {
        countError((error as Error).message);
      } finally {
        connection.close();
      }
    }
  };

  const started = performance.now();
  const loops = Array.from({ length: options.connections }, (_, index) => loop(index));
  const warmupTimer = setTimeout(() => {
    recordFrom = performance.now();
  }, options.warmupMs);
  const endTimer = setTimeout(() => stop("duration"), options.warmupMs + options.durationMs);
  await Promise.all(loops);
  clearTimeout(warmupTimer);
  clearTimeout(endTimer);
  if (!Number.isFinite(recordFrom)) recordFrom = started;
  const measuredMs = Math.max(0, recordUntil - recordFrom);

  const empty = recorded === 0;
  const at = (percentile: number) => (empty ? Number.NaN : histogram.getValueAtPercentile(percentile));
  const result: DriverResult = {
    connections: options.connections,
    requests: recorded,
    warmupRequests,
    measuredMs: Math.round(measuredMs),
    requestsPerSecond: measuredMs > 0 ? (recorded * 1_000) / measuredMs : 0,
    latencyUs: {
      mean: empty ? Number.NaN : histogram.mean,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: empty ? Number.NaN : histogram.maxValue,
    },
    percentilesUs: PERCENTILE_POINTS.map((percentile) => [percentile, at(percentile)]),
    statuses,
    errors,
    errorKinds,
    stoppedBy,
  };
  histogram.destroy();
  return result;
}
