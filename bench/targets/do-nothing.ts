/**
 * The ceiling targets: bench/servers/do-nothing-server.ts for a protocol,
 * on a UNIX socket or on 127.0.0.1, so each daemon and anchor is compared
 * with the ceiling on the same transport.
 */
import { join } from "node:path";
import { freePort } from "../../test/harness/process.js";
import type { Endpoint } from "../load/driver.js";
import type { LoadProtocol } from "../load/generate.js";
import { startChildServer } from "./child-server.js";
import { DIST_BENCH, type TargetDescriptor } from "./target.js";

export function doNothingTarget(
  protocol: Exclude<LoadProtocol, "ldap">,
  transport: "unix" | "tcp",
  pool: string,
): TargetDescriptor {
  return {
    name: transport === "unix" ? "do-nothing" : "do-nothing (tcp)",
    description: `Node ${process.version} server that frames ${protocol} requests and answers each with a constant reply (${transport === "unix" ? "UNIX socket" : "127.0.0.1"})`,
    role: "ceiling",
    protocol,
    transport,
    pool,
    async start({ work }) {
      const endpoint: Endpoint =
        transport === "unix"
          ? { path: join(work, `do-nothing-${protocol}.sock`) }
          : { host: "127.0.0.1", port: await freePort() };
      return startChildServer({
        name: `do-nothing ${protocol} server`,
        file: process.execPath,
        args: [
          join(DIST_BENCH, "servers/do-nothing-server.js"),
          "--protocol",
          protocol,
          ...("path" in endpoint ? ["--unix", endpoint.path] : ["--tcp", String(endpoint.port)]),
        ],
        logPath: join(work, `do-nothing-${protocol}-${transport}.log`),
        endpoint,
      });
    },
  };
}
