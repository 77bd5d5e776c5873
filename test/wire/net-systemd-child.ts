/**
 * Child program for the systemd socket-activation wire test: started with a
 * listening socket on fd 3 and LISTEN_* set as systemd would, it serves the
 * line protocol on the socket named "echo", reports what it inherited on
 * stdout (one JSON line), and stops on SIGTERM through the shutdown handlers.
 */
import pino from "pino";
import { listenersFromSystemd } from "../../core/net/listeners.js";
import { createProtocolServer } from "../../core/net/server.js";
import { installShutdownHandlers } from "../../core/net/signals.js";
import { lineProtocol, lineSession } from "./net-fixtures.js";

const log = pino({ level: "silent" });
const inherited = listenersFromSystemd();
const leftInEnvironment = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"].filter((key) => key in process.env);
const server = createProtocolServer({
  name: "systemd-child",
  definition: lineProtocol,
  sessions: () => lineSession(),
  limits: { maxConnections: 4, requestTimeoutMs: 1000, idleTimeoutMs: 10_000 },
  log,
});
await server.listen([{ kind: "systemd", name: "echo" }]);
installShutdownHandlers({ log, onTerminate: () => server.close(1000) });
process.stdout.write(`${JSON.stringify({ inherited, leftInEnvironment, addresses: server.addresses() })}\n`);
