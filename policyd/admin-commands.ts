/**
 * `emailng policy explain|reset|release KEY`: ask the running policyd over
 * its admin socket ([policyd] admin_socket) and print the answer, as text
 * or with --json as the daemon sent it.
 *
 *   explain KEY   every counter of every rule that counts by KEY (used and
 *                 limit per window), the login's hold and burst figures,
 *                 the greylisting record of a client network
 *   reset KEY     forgets those counters (and the login's burst figures)
 *   release LOGIN ends the hold on a login put on hold after a burst
 *
 * Exit status: 0 done, 3 policyd unreachable or the command failed,
 * 4 nothing to release (the login was not held).
 */
import { connect } from "node:net";
import { exitWith } from "../cli/io.js";
import type { ProgramContext, ProgramDefinition } from "../cli/programs.js";
import type { AdminCommand, AdminReply } from "./admin-protocol.js";

export const EXIT_FAILED = 3;
export const EXIT_NOT_HELD = 4;

const KEY_HELP = `KEY: a login (gpapadop), an address (user@example.org), a domain (@example.org),
a client address or network (192.0.2.7, 2001:db8::/64), "global", or one kind only:
login:NAME, sender:ADDRESS, recipient:ADDRESS, domain:NAME, client:ADDRESS.
`;

const TIMEOUT_MS = 15_000;
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

/** Sends one request to the admin socket and returns the reply line, parsed. */
export function askPolicyd(socketPath: string, command: AdminCommand, key: string): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    let received = "";
    const fail = (message: string) => {
      socket.destroy();
      reject(new Error(message));
    };
    socket.setTimeout(TIMEOUT_MS, () => fail(`policyd did not answer within ${TIMEOUT_MS / 1000} s`));
    socket.on("error", (error: NodeJS.ErrnoException) =>
      fail(`cannot reach policyd at ${socketPath}: ${error.code ?? error.message}`),
    );
    socket.on("connect", () => socket.write(`${JSON.stringify({ command, key })}\n`));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
      if (received.length > MAX_REPLY_BYTES) return fail("reply too large");
      const newline = received.indexOf("\n");
      if (newline < 0) return;
      socket.end();
      try {
        resolve(JSON.parse(received.slice(0, newline)) as AdminReply);
      } catch {
        reject(new Error("policyd sent a reply that is not JSON"));
      }
    });
    socket.on("end", () => {
      if (!received.includes("\n")) fail("policyd closed the connection without answering");
    });
  });
}

interface CounterLine {
  rule: string;
  key: string;
  value: string;
  periodSeconds: number;
  limit: number;
  used: number;
  full: boolean;
}

function formatPeriod(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function formatExplain(reply: Record<string, unknown>): string {
  const lines: string[] = [];
  const counters = (reply["counters"] as CounterLine[] | undefined) ?? [];
  if (counters.length === 0) lines.push("no rule counts by this key");
  for (const counter of counters) {
    const state = counter.full ? "  FULL" : "";
    lines.push(
      `${counter.rule} [${counter.key}=${counter.value}] ${formatPeriod(counter.periodSeconds)}: ${counter.used}/${counter.limit}${state}`,
    );
  }
  const hold = reply["hold"] as { since: string; reason: string } | null | undefined;
  if (hold) lines.push(`HELD since ${hold.since}: ${hold.reason}`);
  const burst = reply["burst"] as
    | { volume: number; distinct: number; baselineVolume: number }
    | null
    | undefined;
  if (burst) {
    lines.push(
      `burst: ${burst.volume} recipients (${burst.distinct} distinct) this interval, baseline ${Math.round(burst.baselineVolume * 10) / 10}`,
    );
  }
  const client = reply["greylistClient"] as { passes: number } | null | undefined;
  if (client) lines.push(`greylisting: ${client.passes} retries passed from this client network`);
  return `${lines.join("\n")}\n`;
}

function adminCommand(command: AdminCommand, summary: string): ProgramDefinition {
  return {
    name: `policy ${command}`,
    summary,
    // cli/programs.ts hands `run` the options only, so KEY travels as one: a
    // declared argument would shift commander's action parameters.
    configure: (cli) =>
      cli
        .usage("[options] <key>")
        .allowExcessArguments(true)
        .option("--json", "print the daemon's answer as JSON")
        .addHelpText("after", `\n${KEY_HELP}`)
        .hook("preAction", (invoked) => {
          const [key, ...extra] = invoked.args;
          if (key === undefined || extra.length > 0) {
            invoked.error(`error: policy ${command} needs exactly one KEY`, {
              exitCode: 1,
              code: "commander.missingArgument",
            });
          }
          invoked.setOptionValue("key", key);
        }),
    async run(context: ProgramContext) {
      const { config, io, options } = context;
      const key = String(options["key"] ?? "");
      const socketPath = config.policyd.admin_socket;
      if (socketPath === "") {
        io.err("policyd.admin_socket is empty: the admin commands are disabled\n");
        return exitWith(EXIT_FAILED, "emailng.policy_disabled", "admin socket disabled");
      }
      let reply: AdminReply;
      try {
        reply = await askPolicyd(socketPath, command, key);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        io.err(`policy ${command} failed: ${message}\n`);
        return exitWith(EXIT_FAILED, "emailng.policy_failed", message);
      }
      if (!reply.ok) {
        io.err(`policy ${command} failed: ${reply.error}\n`);
        return exitWith(EXIT_FAILED, "emailng.policy_failed", reply.error);
      }
      if (options["json"] === true) io.out(`${JSON.stringify(reply)}\n`);
      else if (command === "explain") io.out(formatExplain(reply));
      else if (command === "reset") io.out(`${String(reply["removed"])} records removed\n`);
      else
        io.out(
          reply["released"] === true
            ? `${String(reply["login"])} released\n`
            : `${String(reply["login"])} was not held\n`,
        );
      if (command === "release" && reply["released"] !== true) {
        return exitWith(EXIT_NOT_HELD, "emailng.policy_not_held", "the login was not held");
      }
    },
  };
}

export const POLICYD_ADMIN_COMMANDS: readonly ProgramDefinition[] = [
  adminCommand(
    "explain",
    "show policyd's counters, hold and greylisting for a login, address, domain or client",
  ),
  adminCommand("reset", "forget policyd's counters for a login, address, domain or client"),
  adminCommand("release", "release a login held after a burst"),
];
