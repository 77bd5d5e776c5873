/**
 * emailng's own policy daemons as benchmark targets, started from the
 * compiled CLI like the systemd units do, on UNIX sockets, reading the same
 * relay snapshot the policy requests were drawn from:
 *   policyd  a per-SASL-login message rate and a per-client recipient rate
 *            (the postfwd ruleset's two limits) plus greylisting with its
 *            defaults (what postgrey does), embedded SQLite store;
 *   quotad   the quota-status role: recipient quota from the snapshot,
 *            usage from its own SQLite table (empty here: no Dovecot feeds
 *            it during the benchmark).
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
}

function cliTarget(
  name: "policyd" | "quotad",
  description: string,
  options: EmailngPolicyOptions,
  config: (work: string, socket: string) => string,
): TargetDescriptor {
  return {
    name,
    description,
    role: "daemon",
    protocol: "policy",
    transport: "unix",
    pool: options.pool,
    async start({ work }) {
      const socket = join(work, `${name}.sock`);
      const configPath = join(work, "emailng.toml");
      writeFileSync(configPath, config(work, socket));
      const endpoint = { path: socket };
      return startChildServer({
        name,
        file: process.execPath,
        args: [CLI_PATH, name, "--config", configPath],
        logPath: join(work, `${name}.log`),
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
        `path = "${join(work, "store.sqlite")}"`,
        "[policyd.greylist]",
        "enabled = true",
        "[[policyd.rules]]",
        'name = "login-messages"',
        'key = "sasl_login"',
        "[[policyd.rules.windows]]",
        'period = "1h"',
        "limit = 500",
        "[[policyd.rules]]",
        'name = "client-recipients"',
        'key = "client_address"',
        'metric = "recipients"',
        "[[policyd.rules.windows]]",
        'period = "1h"',
        "limit = 2000",
        "",
      ].join("\n"),
  );
}

export function quotadTarget(options: EmailngPolicyOptions): TargetDescriptor {
  return cliTarget(
    "quotad",
    "emailng quotad: quota-status answers from the snapshot's quotas and its SQLite usage table (empty: no Dovecot feeds it here), grace 0, UNIX socket",
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
        `path = "${join(work, "usage.sqlite")}"`,
        "",
      ].join("\n"),
  );
}
