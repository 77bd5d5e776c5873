/**
 * A Dovecot dict proxy server for integration tests, made only of emailng's
 * own pieces: createProtocolServer (core/net/server.ts) with dictProtocol()
 * and a Session answering from an in-memory table of full keys
 * ("shared/passdb/alice@example.test") to values. It records what the peer
 * sent (hellos, commands) and what the server counted (outcomes, handler
 * errors, missed deadlines) so tests can assert on both sides. Two users are
 * rigged for the fail-safe path: lookups for `throwUser` throw, lookups for
 * `hangUser` wait until the request deadline aborts them.
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import type { RequestContext, ServerObserver, Session } from "../../core/net/protocol.js";
import { dictProtocol } from "../../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../../core/net/server.js";
import { type DictCommand, type DictHello, DictIterateFlag } from "../../core/protocols/dict-commands.js";
import type { DictIterateRow } from "../../core/protocols/dict-replies.js";
import type { DictClientFrame, DictServerReply } from "../../core/protocols/dovecot-dict.js";
import { makeTempDir, removeTempDir } from "../harness/process.js";

export interface DictTableServerOptions {
  /** Full keys as the peer sends them, e.g. "shared/userdb/alice@example.test". */
  table: ReadonlyMap<string, string>;
  /** Lookups whose user field is this throw inside the handler. */
  throwUser: string;
  /** Lookups whose user field is this never answer before the deadline. */
  hangUser: string;
  requestTimeoutMs: number;
  /** Group (name or gid) given to the socket, mode 0660. */
  socketGroup: string;
}

export interface DictTableServer {
  socketPath: string;
  dir: string;
  hellos: DictHello[];
  commands: DictCommand[];
  /** Reply outcome labels ("lookup_found", "lookup_failed", ...) in the order they were written. */
  outcomes: string[];
  /** observer.error() kinds: "handler", "deadline", "protocol", "socket". */
  errors: string[];
  /** Lookups whose late answer came after the deadline (and so was dropped by the server). */
  lateAnswers: string[];
  stop(): Promise<void>;
}

/** Keys directly below `path`; deeper keys only with the RECURSE flag, as Dovecot's own dict servers do. */
function iterateRows(table: ReadonlyMap<string, string>, path: string, flags: number): DictIterateRow[] {
  const rows: DictIterateRow[] = [];
  for (const [key, value] of table) {
    if (!key.startsWith(path) || key === path) continue;
    const rest = key.slice(path.length);
    if (rest.includes("/") && (flags & DictIterateFlag.recurse) === 0) continue;
    rows.push({ key, values: (flags & DictIterateFlag.noValue) !== 0 ? [] : [value] });
  }
  return rows.sort((a, b) => a.key.localeCompare(b.key));
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export async function startDictTableServer(options: DictTableServerOptions): Promise<DictTableServer> {
  const dir = makeTempDir("dict");
  // The auth processes (dovecot and root) must walk into the directory to reach the socket.
  chmodSync(dir, 0o755);
  const socketPath = join(dir, "auth.sock");
  const hellos: DictHello[] = [];
  const commands: DictCommand[] = [];
  const outcomes: string[] = [];
  const errors: string[] = [];
  const lateAnswers: string[] = [];

  async function answer(
    command: DictCommand,
    version: DictHello["version"],
    context: RequestContext,
  ): Promise<DictServerReply | undefined> {
    switch (command.kind) {
      case "lookup": {
        if (command.user === options.throwUser) {
          throw new Error("simulated backend crash: secret-detail-42");
        }
        if (command.user === options.hangUser) {
          await waitForAbort(context.signal);
          lateAnswers.push(command.key);
          // Would let the user in if it ever reached the peer; the server must drop it.
          return { kind: "lookup", version, result: { kind: "found", values: ['{"password": "late"}'] } };
        }
        const value = options.table.get(command.key);
        return {
          kind: "lookup",
          version,
          result: value === undefined ? { kind: "not-found" } : { kind: "found", values: [value] },
        };
      }
      case "iterate":
        return {
          kind: "iterate",
          version,
          rows: iterateRows(options.table, command.path, command.flags),
          end: { ok: true },
        };
      case "commit":
        return { kind: "commit", version, id: command.id, result: { kind: "failed", error: "read-only" } };
      case "begin":
      case "rollback":
      case "set":
      case "unset":
      case "atomic-inc":
      case "timestamp":
        return undefined;
      default: {
        const unreachable: never = command;
        return unreachable;
      }
    }
  }

  const session = (): Session<DictClientFrame, DictServerReply> => ({
    async handle(frame, context) {
      switch (frame.kind) {
        case "hello":
          hellos.push(frame.hello);
          return undefined;
        case "command":
          commands.push(frame.command);
          return answer(frame.command, frame.version, context);
        case "invalid":
          // The fail-safe answers a broken L/I/C with F; anything else gets no reply.
          throw new Error(`invalid dict line (${frame.letter}): ${frame.reason}`);
        default: {
          const unreachable: never = frame;
          return unreachable;
        }
      }
    },
  });

  const observer: ServerObserver = {
    connectionOpened() {},
    connectionClosed() {},
    connectionRefused() {},
    request: (outcome) => outcomes.push(outcome),
    error: (kind) => errors.push(kind),
  };

  const server: ProtocolServer = createProtocolServer({
    name: "smoke-dict",
    definition: dictProtocol(),
    sessions: session,
    limits: { maxConnections: 32, requestTimeoutMs: options.requestTimeoutMs, idleTimeoutMs: 60_000 },
    log: pino({ level: "silent" }),
    observer,
  });
  try {
    await server.listen([{ kind: "unix", path: socketPath, mode: 0o660, group: options.socketGroup }]);
  } catch (error) {
    removeTempDir(dir);
    throw error;
  }
  return {
    socketPath,
    dir,
    hellos,
    commands,
    outcomes,
    errors,
    lateAnswers,
    async stop() {
      try {
        await server.close(1_000);
      } finally {
        removeTempDir(dir);
      }
    },
  };
}
