/**
 * verifyd as Postfix meets it: `emailng verifyd --config FILE` (the compiled
 * CLI, its own process, with the Node flags its systemd unit sets) on a UNIX socket, answering from
 * a relay-view snapshot. Ready once a lookup of a known address says OK, so
 * the snapshot is loaded before any measurement starts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSocketmapClient } from "../../core/net/socketmap-client.js";
import { startChildServer } from "./child-server.js";
import { CLI_PATH, REPOSITORY_ROOT, type TargetDescriptor } from "./target.js";

/**
 * The Node flags a unit in deploy/systemd gives its daemon
 * (`Environment=NODE_OPTIONS=…`), so the benchmark measures verifyd as it
 * ships, memory settings included.
 */
export function unitNodeFlags(unit: string): string[] {
  const text = readFileSync(join(REPOSITORY_ROOT, "deploy", "systemd", unit), "utf8");
  const value = /^Environment=NODE_OPTIONS=(.*)$/m.exec(text)?.[1];
  if (value === undefined) return [];
  return value
    .replace(/^"|"$/g, "")
    .split(/\s+/)
    .filter((part) => part !== "");
}

const VERIFYD_UNIT = "emailng-verifyd.service";

/**
 * The configuration every benchmarked verifyd gets: warn-level logs, a
 * snapshot that never goes stale, the socketmap listener and, with
 * `dictPath`, the Dovecot dict ([verifyd.dovecot]) as a back-end would run it.
 */
export function verifydConfigText(options: {
  snapshotPath: string;
  socketPath: string;
  dictPath?: string;
}): string {
  const lines = [
    "[log]",
    'level = "warn"',
    "[snapshot]",
    `path = "${options.snapshotPath}"`,
    'max_age = "30d"',
    "[verifyd]",
    "[[verifyd.listen]]",
    `unix = "${options.socketPath}"`,
  ];
  if (options.dictPath !== undefined) {
    lines.push(
      "[verifyd.dovecot]",
      'username = "login"',
      "uid = 5000",
      "gid = 5000",
      'home = "/var/vmail/%d/%n"',
      'mail_location = "maildir:~/Maildir"',
      "[[verifyd.dovecot.listen]]",
      `unix = "${options.dictPath}"`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export interface VerifydTargetOptions {
  snapshotPath: string;
  /** An address the snapshot holds, asked until it answers OK. */
  knownAddress: string;
  /** Label in tables, e.g. "verifyd (100,000 users)". */
  name?: string;
  pool: string;
  /** Default: the flags of emailng-verifyd.service. */
  nodeFlags?: string[];
}

export function verifydSocketmapTarget(options: VerifydTargetOptions): TargetDescriptor {
  const nodeFlags = options.nodeFlags ?? unitNodeFlags(VERIFYD_UNIT);
  return {
    name: options.name ?? "verifyd",
    description: `emailng verifyd on a UNIX socket, relay-view snapshot, log level warn${nodeFlags.length > 0 ? `, node ${nodeFlags.join(" ")}` : ""}`,
    role: "daemon",
    protocol: "socketmap",
    transport: "unix",
    pool: options.pool,
    async start({ work }) {
      const socketPath = join(work, "verifyd.sock");
      const configPath = join(work, "emailng.toml");
      writeFileSync(configPath, verifydConfigText({ snapshotPath: options.snapshotPath, socketPath }));
      return startChildServer({
        name: "verifyd",
        file: process.execPath,
        args: [...nodeFlags, CLI_PATH, "verifyd", "--config", configPath],
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

export interface VerifydDictTargetOptions {
  /** Internal-view snapshot (the dict answers homes, uids and password hashes). */
  snapshotPath: string;
  /** A login the snapshot holds, looked up until userdb answers. */
  knownLogin: string;
  name?: string;
  pool: string;
  /** Default: the flags of emailng-verifyd.service. */
  nodeFlags?: string[];
}

/** Asks one dict lookup on a fresh connection; true when it is answered found. */
async function dictAnswers(socketPath: string, login: string): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5_000);
    let reply = "";
    socket.on("connect", () => socket.write(`H3\t2\t0\t\tauth\nLshared/userdb/${login}\t${login}\n`));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      if (!reply.includes("\n")) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply.startsWith("O"));
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** verifyd's Dovecot userdb/passdb dict ([verifyd.dovecot]) on a UNIX socket, internal snapshot. */
export function verifydDictTarget(options: VerifydDictTargetOptions): TargetDescriptor {
  const nodeFlags = options.nodeFlags ?? unitNodeFlags(VERIFYD_UNIT);
  return {
    name: options.name ?? "verifyd",
    description: `emailng verifyd [verifyd.dovecot] dict on a UNIX socket (dict name auth, username login, internal snapshot), log level warn${nodeFlags.length > 0 ? `, node ${nodeFlags.join(" ")}` : ""}`,
    role: "daemon",
    protocol: "dict",
    transport: "unix",
    pool: options.pool,
    async start({ work }) {
      const socketPath = join(work, "verifyd.sock");
      const dictPath = join(work, "verifyd-dict.sock");
      const configPath = join(work, "emailng.toml");
      writeFileSync(
        configPath,
        verifydConfigText({ snapshotPath: options.snapshotPath, socketPath, dictPath }),
      );
      return startChildServer({
        name: "verifyd (dict)",
        file: process.execPath,
        args: [...nodeFlags, CLI_PATH, "verifyd", "--config", configPath],
        logPath: join(work, "verifyd.log"),
        endpoint: { path: dictPath },
        startTimeoutMs: 180_000,
        ready: () => dictAnswers(dictPath, options.knownLogin),
        spec: { dictName: "auth" },
      });
    },
  };
}
