/**
 * The socket layer alone: emailng's own protocol server (core/net, the one
 * every daemon runs) with a session that answers every request with a
 * constant reply. Beside the do-nothing server (bare node:net) and verifyd,
 * it separates what framing, queueing, deadlines, encoding and metrics cost
 * from the daemon's own lookups.
 *
 *   node dist-bench/bench/servers/core-net-server.js --protocol socketmap|policy|dict --unix PATH
 *
 * Replies are the do-nothing server's: socketmap `OK DUNNO`, policy
 * `action=DUNNO`, dict one userdb-sized found line (hello and transaction
 * lines get none). Metrics go through a DaemonMetrics observer as in the
 * daemons (no HTTP endpoint). Prints "ready" once listening; stops on SIGTERM.
 */
import { rmSync } from "node:fs";
import { createLogger } from "../../core/log/logger.js";
import { createDaemonMetrics } from "../../core/metrics/registry.js";
import type { SessionFactory } from "../../core/net/protocol.js";
import { dictProtocol, policyProtocol, socketmapProtocol } from "../../core/net/protocol-definitions.js";
import { createProtocolServer } from "../../core/net/server.js";
import type { DictClientFrame, DictServerReply } from "../../core/protocols/dovecot-dict.js";
import type { SocketmapReply } from "../../core/protocols/socketmap.js";

const DICT_VALUE = '{"uid":"100042","gid":"2004","home":"/home/csd100042","quota_rule":"*:bytes=2147483648"}';

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

function socketmapSessions(): SessionFactory<Uint8Array, SocketmapReply> {
  const reply: SocketmapReply = { status: "OK", data: "DUNNO" };
  return () => ({ handle: () => reply });
}

function dictSessions(): SessionFactory<DictClientFrame, DictServerReply> {
  return () => ({
    handle: (frame) =>
      frame.kind === "command" && frame.command.kind === "lookup"
        ? { kind: "lookup", version: frame.version, result: { kind: "found", values: [DICT_VALUE] } }
        : undefined,
  });
}

async function main(): Promise<void> {
  const protocol = flag("protocol");
  const path = flag("unix");
  if (path === undefined || (protocol !== "socketmap" && protocol !== "policy" && protocol !== "dict")) {
    console.error("usage: core-net-server --protocol socketmap|policy|dict --unix PATH");
    process.exit(2);
  }
  const log = createLogger({ program: "core-net-server", level: "warn" });
  const metrics = createDaemonMetrics("core-net-server");
  const limits = { maxConnections: 1000, requestTimeoutMs: 5_000, idleTimeoutMs: 300_000 };
  const common = { name: `core-net ${protocol}`, limits, log, observer: metrics.observer };
  // Each branch builds its own server so the frame and reply types stay tied together.
  const server =
    protocol === "socketmap"
      ? createProtocolServer({ ...common, definition: socketmapProtocol(), sessions: socketmapSessions() })
      : protocol === "dict"
        ? createProtocolServer({ ...common, definition: dictProtocol(), sessions: dictSessions() })
        : createProtocolServer({
            ...common,
            definition: policyProtocol(),
            sessions: () => ({ handle: () => ({ action: "DUNNO" }) }),
          });
  rmSync(path, { force: true });
  await server.listen([{ kind: "unix", path, mode: 0o600 }]);
  console.log("ready");
  process.on("SIGTERM", () => {
    server.close(1_000).then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
