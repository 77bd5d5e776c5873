/**
 * The socket server every emailng daemon runs: it takes a protocol (codec
 * plus fail-safe, see protocol.ts) and a session factory (the program's
 * logic), listens on UNIX, TCP or systemd-passed sockets, enforces the
 * connection limit and TCP allow-lists at accept time, and shuts down
 * gracefully so a restart never cuts a request in half. Per-connection
 * behaviour (ordering, deadlines, idle timeout, backpressure) lives in
 * connection.ts.
 */
import type net from "node:net";
import type { Logger } from "pino";
import { sanitizePeerString } from "../log/logger.js";
import { normalizePeerAddress } from "./allow-list.js";
import { Connection } from "./connection.js";
import { type BoundAddress, type ListenerSpec, type OpenListener, openListener } from "./listeners.js";
import type { PeerInfo, ProtocolDefinition, ServerObserver, SessionFactory } from "./protocol.js";

export interface ServerLimits {
  /** Connections beyond this are closed at once. */
  maxConnections: number;
  /** Budget per request; past it the fail-safe reply is sent. Keep it below the peer's timeout. */
  requestTimeoutMs: number;
  /** Close a connection after this long without bytes and with nothing in flight. Keep it above the peer's. */
  idleTimeoutMs: number;
  /** Pause reading from a client that has this many unanswered frames queued (default 64). */
  maxQueuedFrames?: number;
}

export interface ProtocolServerOptions<Frame, Reply> {
  /** Program or service name, for logs. */
  name: string;
  definition: ProtocolDefinition<Frame, Reply>;
  sessions: SessionFactory<Frame, Reply>;
  limits: ServerLimits;
  log: Logger;
  observer?: ServerObserver;
}

export interface ProtocolServer {
  /** Open every listener; on failure the ones opened by this call are closed again and the error is thrown. */
  listen(specs: readonly ListenerSpec[]): Promise<void>;
  /** What we are actually bound to (port 0 resolved), for tests and the startup log line. */
  addresses(): BoundAddress[];
  /** Stop accepting, let in-flight requests finish, destroy what is left after graceMs. */
  close(graceMs: number): Promise<void>;
  /** Open connections right now. */
  readonly connections: number;
}

const DEFAULT_MAX_QUEUED_FRAMES = 64;
const REFUSAL_LOG_INTERVAL_MS = 10_000;

const silentObserver: ServerObserver = {
  connectionOpened() {},
  connectionClosed() {},
  connectionRefused() {},
  request() {},
  error() {},
};

export function createProtocolServer<Frame, Reply>(
  options: ProtocolServerOptions<Frame, Reply>,
): ProtocolServer {
  const { definition, sessions, limits } = options;
  const observer = options.observer ?? silentObserver;
  const log = options.log.child({ server: options.name, protocol: definition.name });
  const settings = {
    definition,
    observer,
    requestTimeoutMs: limits.requestTimeoutMs,
    idleTimeoutMs: limits.idleTimeoutMs,
    maxQueuedFrames: Math.max(1, limits.maxQueuedFrames ?? DEFAULT_MAX_QUEUED_FRAMES),
  };
  const listeners: OpenListener[] = [];
  const connections = new Set<Connection<Frame, Reply>>();
  let nextConnectionId = 1;
  let closing: Promise<void> | undefined;
  let whenAllClosed: (() => void) | undefined;

  // A flood of refused connections must not flood the log: one line, then a
  // summary with the count at most every ten seconds per listener and reason.
  const refusalLog = new Map<string, { lastLogged: number; suppressed: number }>();
  function refuse(socket: net.Socket, listener: OpenListener, reason: "max_connections" | "not_allowed") {
    socket.destroy();
    observer.connectionRefused(listener.label, reason);
    const key = `${listener.label} ${reason}`;
    const now = Date.now();
    const entry = refusalLog.get(key);
    if (entry !== undefined && now - entry.lastLogged < REFUSAL_LOG_INTERVAL_MS) {
      entry.suppressed += 1;
      return;
    }
    const peer = sanitizePeerString(socket.remoteAddress ?? listener.label);
    log.warn(
      { listener: listener.label, peer, reason, suppressed: entry?.suppressed ?? 0 },
      "connection refused",
    );
    refusalLog.set(key, { lastLogged: now, suppressed: 0 });
  }

  function accept(socket: net.Socket, listener: OpenListener): void {
    // A connection can slip in between close() starting and the handle closing.
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    if (listener.allow !== undefined && !listener.allow.allows(socket.remoteAddress)) {
      refuse(socket, listener, "not_allowed");
      return;
    }
    if (connections.size >= limits.maxConnections) {
      refuse(socket, listener, "max_connections");
      return;
    }

    const id = nextConnectionId++;
    const peer: PeerInfo =
      listener.transport === "tcp"
        ? {
            transport: "tcp",
            address:
              normalizePeerAddress(socket.remoteAddress)?.toString() ?? socket.remoteAddress ?? "unknown",
            port: socket.remotePort,
            id,
          }
        : // UNIX peers have no address of their own; name the socket they came in on.
          { transport: "unix", address: listener.label.replace(/^(unix|systemd):/, ""), id };
    const peerText = peer.port === undefined ? peer.address : `${peer.address}:${peer.port}`;
    const connectionLog = log.child({ conn: id, peer: peerText });

    let session: ReturnType<typeof sessions>;
    try {
      session = sessions(peer, connectionLog);
    } catch (error) {
      connectionLog.error({ err: error }, "session could not be created; closing connection");
      observer.error("handler");
      socket.destroy();
      return;
    }
    const connection = new Connection(socket, peer, connectionLog, session, settings, (closed) => {
      connections.delete(closed);
      observer.connectionClosed(listener.label);
      if (connections.size === 0) whenAllClosed?.();
    });
    connections.add(connection);
    observer.connectionOpened(listener.label);
    connectionLog.debug({ listener: listener.label }, "connection opened");
  }

  async function listen(specs: readonly ListenerSpec[]): Promise<void> {
    if (closing !== undefined) throw new Error(`${options.name}: listen() after close()`);
    const opened: OpenListener[] = [];
    try {
      for (const spec of specs) {
        const listener = await openListener(spec, accept);
        listener.server.on("error", (error: NodeJS.ErrnoException) => {
          // e.g. EMFILE on accept: keep serving the connections we have.
          log.error({ listener: listener.label, code: error.code, err: error }, "listener error");
        });
        opened.push(listener);
        log.info({ listener: listener.label }, "listening");
      }
    } catch (error) {
      await Promise.all(opened.map((listener) => listener.close()));
      throw error;
    }
    listeners.push(...opened);
  }

  async function drain(graceMs: number): Promise<void> {
    await Promise.all(listeners.map((listener) => listener.close()));
    log.info({ connections: connections.size, graceMs }, "closing");
    if (connections.size === 0) return;
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        log.warn({ connections: connections.size }, "grace period over; dropping remaining connections");
        for (const connection of connections) connection.destroy();
      }, graceMs);
      whenAllClosed = () => {
        clearTimeout(deadline);
        resolve();
      };
      for (const connection of connections) connection.shutdown();
    });
  }

  return {
    listen,
    addresses: () => listeners.filter((listener) => listener.server.listening).map((l) => l.address()),
    close(graceMs) {
      closing ??= drain(graceMs);
      return closing;
    },
    get connections() {
      return connections.size;
    },
  };
}
