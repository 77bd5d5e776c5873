/**
 * emailng's own policy daemons as benchmark targets, started from the
 * compiled CLI like the systemd units do, on UNIX sockets, reading the same
 * relay snapshot the policy requests were drawn from:
 *   policyd  a per-SASL-login message rate and a per-client recipient rate
 *            (the postfwd ruleset's two limits) plus greylisting with its
 *            defaults (what postgrey does), embedded SQLite store;
 *   quotad   the quota-status role: recipient quota from the snapshot,
 *            usage from its own SQLite table (empty in the policy suite: no
 *            Dovecot feeds it during the benchmark; the growth suite hands
 *            it a prefilled one).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startChildServer } from "./child-server.js";
import { policyAnswers } from "./policy-anchors.js";
import { CLI_PATH, type TargetDescriptor } from "./target.js";

export interface EmailngPolicyOptions {
  snapshotPath: string;
  pool: string;
  probeRecipient: string;
  /** Row name (default: the program's name). */
  name?: string;
  /** A store file written beforehand (policyd's write-behind file, quotad's usage table); default an empty one in the target's directory. */
  storePath?: string;
  /** policyd.store.max_entries (default policyd's own, 1,000,000). */
  maxEntries?: number;
  /** Appended to the description. */
  detail?: string;
}

/** policyd's rate limits here; bench/workload/prefill.ts writes counters for exactly these. */
export const POLICYD_RATE_RULES = [
  { name: "login-messages", key: "sasl_login", metric: "messages", periodMs: 3_600_000, limit: 500 },
  {
    name: "client-recipients",
    key: "client_address",
    metric: "recipients",
    periodMs: 3_600_000,
    limit: 2000,
  },
] as const;

function cliTarget(
  program: "policyd" | "quotad",
  description: string,
  options: EmailngPolicyOptions,
  config: (work: string, socket: string) => string,
): TargetDescriptor {
  const name = options.name ?? program;
  return {
    name,
    description: options.detail === undefined ? description : `${description}; ${options.detail}`,
    role: "daemon",
    protocol: "policy",
    transport: "unix",
    pool: options.pool,
    async start({ work }) {
      const socket = join(work, `${program}.sock`);
      const configPath = join(work, "emailng.toml");
      writeFileSync(configPath, config(work, socket));
      const endpoint = { path: socket };
      return startChildServer({
        name,
        file: process.execPath,
        args: [CLI_PATH, program, "--config", configPath],
        logPath: join(work, `${program}.log`),
        endpoint,
        startTimeoutMs: 120_000,
        ready: () => policyAnswers(endpoint, options.probeRecipient),
      });
    },
  };
}

export function policydTarget(options: EmailngPolicyOptions): TargetDescriptor {
  return cliTarget(
    "policyd",
    "emailng policyd: per-SASL-login message rate (500/h), per-client recipient rate (2000/h), greylisting with its defaults, embedded SQLite store, UNIX socket",
    options,
    (work, socket) =>
      [
        "[log]",
        'level = "warn"',
        "[snapshot]",
        `path = "${options.snapshotPath}"`,
        'max_age = "30d"',
        "[policyd]",
        `admin_socket = "${join(work, "admin.sock")}"`,
        "[[policyd.listen]]",
        `unix = "${socket}"`,
        "[policyd.store]",
        `path = "${options.storePath ?? join(work, "store.sqlite")}"`,
        ...(options.maxEntries === undefined ? [] : [`max_entries = ${options.maxEntries}`]),
        "[policyd.greylist]",
        "enabled = true",
        ...POLICYD_RATE_RULES.flatMap((rule) => [
          "[[policyd.rules]]",
          `name = "${rule.name}"`,
          `key = "${rule.key}"`,
          ...(rule.metric === "messages" ? [] : [`metric = "${rule.metric}"`]),
          "[[policyd.rules.windows]]",
          `period = "${rule.periodMs / 3_600_000}h"`,
          `limit = ${rule.limit}`,
        ]),
        "",
      ].join("\n"),
  );
}

export function quotadTarget(options: EmailngPolicyOptions): TargetDescriptor {
  return cliTarget(
    "quotad",
    options.storePath === undefined
      ? "emailng quotad: quota-status answers from the snapshot's quotas and its SQLite usage table (empty: no Dovecot feeds it here), grace 0, UNIX socket"
      : "emailng quotad: quota-status answers from the snapshot's quotas and its SQLite usage table (prefilled), UNIX socket",
    options,
    (work, socket) =>
      [
        "[log]",
        'level = "warn"',
        "[snapshot]",
        `path = "${options.snapshotPath}"`,
        'max_age = "30d"',
        "[quotad]",
        'dovecot_username = "primary_address"',
        "[[quotad.listen]]",
        `unix = "${socket}"`,
        "[quotad.usage]",
        `path = "${options.storePath ?? join(work, "usage.sqlite")}"`,
        "",
      ].join("\n"),
  );
}
