/**
 * verifyd as Postfix meets it: `emailng verifyd --config FILE` (the compiled
 * CLI, its own process, default Node flags) on a UNIX socket, answering from
 * a relay-view snapshot. Ready once a lookup of a known address says OK, so
 * the snapshot is loaded before any measurement starts.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSocketmapClient } from "../../core/net/socketmap-client.js";
import { startChildServer } from "./child-server.js";
import { CLI_PATH, type TargetDescriptor } from "./target.js";

export interface VerifydTargetOptions {
  snapshotPath: string;
  /** An address the snapshot holds, asked until it answers OK. */
  knownAddress: string;
  /** Label in tables, e.g. "verifyd (100,000 users)". */
  name?: string;
  pool: string;
  nodeFlags?: string[];
}

export function verifydSocketmapTarget(options: VerifydTargetOptions): TargetDescriptor {
  return {
    name: options.name ?? "verifyd",
    description: `emailng verifyd on a UNIX socket, relay-view snapshot, log level warn${options.nodeFlags?.length ? `, node ${options.nodeFlags.join(" ")}` : ""}`,
    role: "daemon",
    protocol: "socketmap",
    transport: "unix",
    pool: options.pool,
    async start({ work }) {
      const socketPath = join(work, "verifyd.sock");
      const configPath = join(work, "emailng.toml");
      writeFileSync(
        configPath,
        [
          "[log]",
          'level = "warn"',
          "[snapshot]",
          `path = "${options.snapshotPath}"`,
          'max_age = "30d"',
          "[verifyd]",
          "[[verifyd.listen]]",
          `unix = "${socketPath}"`,
          "",
        ].join("\n"),
      );
      return startChildServer({
        name: "verifyd",
        file: process.execPath,
        args: [...(options.nodeFlags ?? []), CLI_PATH, "verifyd", "--config", configPath],
        logPath: join(work, "verifyd.log"),
        endpoint: { path: socketPath },
        startTimeoutMs: 180_000,
        ready: async () => {
          const client = await openSocketmapClient({ path: socketPath }, 5_000);
          try {
            const reply = await client.lookup("recipient", options.knownAddress);
            return reply.status === "OK";
          } finally {
            client.close();
          }
        },
      });
    },
  };
}
