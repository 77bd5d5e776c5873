/**
 * The policy services a site would run instead of policyd and quotad, from
 * Debian's packages, each started privately in the foreground with a
 * configuration in its own temporary directory (never the system's):
 *
 *   postfwd       postfwd2 (Debian's default alternative), a ruleset with a
 *                 per-SASL-user message rate and a per-client recipient rate
 *                 (what policyd's rate limits do), pre-forking up to 64 children;
 *   postgrey      greylisting with its defaults (300 s delay, Debian's
 *                 whitelists), Berkeley DB in the temp dir;
 *   policyd-rate-limit  per-SASL-user and per-client-address limits, SQLite;
 *   quota-status  Dovecot's quota-status -p postfix service under a private
 *                 Dovecot (test/harness/dovecot.ts), count quota backend,
 *                 passwd-file userdb holding the pool's local users.
 *
 * installDebianAnchors() installs the missing packages with apt-get when run
 * as root; a target whose package is missing fails to start with the
 * package's name, and the report says it was not measured.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { type DovecotUser, startDovecot } from "../../test/harness/dovecot.js";
import { freePort, isAlive, requireBinary, runCommand } from "../../test/harness/process.js";
import { processTree, rssMb } from "../lib/proc.js";
import type { Endpoint } from "../load/driver.js";
import { encodePolicyRequest, PolicyReplyReader } from "../load/policy-client.js";
import { startChildServer } from "./child-server.js";
import type { TargetDescriptor } from "./target.js";

/** dpkg-query's own format field (built in two parts: it is not a template placeholder). */
const DPKG_STATUS_FORMAT = "-f=$" + "{Status}";

export const POLICY_ANCHOR_PACKAGES = ["postfwd", "postgrey", "policyd-rate-limit", "dovecot-core"];

/** apt-get installs the anchors that are missing; returns what it did, for the log. */
export async function installDebianAnchors(
  packages: readonly string[] = POLICY_ANCHOR_PACKAGES,
): Promise<string> {
  const missing: string[] = [];
  for (const name of packages) {
    const status = await runCommand("/usr/bin/dpkg-query", ["-W", DPKG_STATUS_FORMAT, name]);
    if (!status.stdout.includes("install ok installed")) missing.push(name);
  }
  if (missing.length === 0) return "anchors installed already";
  if (process.getuid?.() !== 0)
    return `not root: cannot install ${missing.join(", ")}; those anchors will not be measured`;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await runCommand("/usr/bin/apt-get", ["update", "-qq"], { env, timeoutMs: 600_000 });
  const install = await runCommand("/usr/bin/apt-get", ["install", "-y", "-qq", ...missing], {
    env,
    timeoutMs: 900_000,
  });
  // Debian starts packaged daemons on install; the system's own copies are none of ours and are left alone.
  return install.code === 0
    ? `installed ${missing.join(", ")}`
    : `apt-get install failed: ${install.stderr.slice(-300)}`;
}

/** One RCPT request whose answer proves the service is serving (any action will do). */
export function policyAnswers(endpoint: Endpoint, recipient: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = "path" in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    const reader = new PolicyReplyReader();
    const timer = setTimeout(() => finish(false), 10_000);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    socket.on("connect", () =>
      socket.write(
        encodePolicyRequest({
          request: "smtpd_access_policy",
          protocol_state: "RCPT",
          protocol_name: "ESMTP",
          client_address: "192.0.2.1",
          client_name: "probe.example",
          sender: "probe@example.org",
          recipient,
          size: "1000",
        }),
      ),
    );
    socket.on("data", (chunk: Buffer) => {
      try {
        const replies = reader.push(chunk);
        if (replies.length > 0) finish(replies[0]!.ok);
      } catch {
        finish(false);
      }
    });
    socket.on("error", () => finish(false));
  });
}

function tcpAnchor(
  name: string,
  description: string,
  pool: string,
  probeRecipient: string,
  launch: (work: string, port: number) => { file: string; args: string[]; debianPackage: string },
): TargetDescriptor {
  return {
    name,
    description,
    role: "anchor",
    protocol: "policy",
    transport: "tcp",
    pool,
    async start({ work }) {
      chmodSync(work, 0o755);
      const port = await freePort();
      const command = launch(work, port);
      requireBinary(command.file, command.debianPackage);
      const endpoint = { host: "127.0.0.1", port };
      return startChildServer({
        name,
        file: command.file,
        args: command.args,
        logPath: join(work, `${name}.log`),
        endpoint,
        cwd: work,
        startTimeoutMs: 60_000,
        ready: () => policyAnswers(endpoint, probeRecipient),
      });
    },
  };
}

export const POSTFWD_RULES = [
  "# authenticated submissions: messages per SASL user and hour",
  "id=SASL_RATE; protocol_state==RCPT; sasl_username=!!(^$); action=rate(sasl_username/500/3600/450 4.7.1 too many messages from $$sasl_username)",
  "# everyone: recipients per client address and hour",
  "id=CLIENT_RCPT; protocol_state==RCPT; action=rcpt(client_address/2000/3600/450 4.7.1 too many recipients from $$client_address)",
  "id=DEFAULT; action=dunno",
  "",
].join("\n");

/**
 * postfwd2 always detaches (its --nodaemon mode runs no cache daemon, so
 * rate() does nothing): it is started, its master PID read from the pid
 * file, and stopped by signalling every process of its tree by PID.
 */
export function postfwdTarget(pool: string, probeRecipient: string): TargetDescriptor {
  return {
    name: "postfwd",
    description:
      "postfwd2 from Debian (master, cache daemon, 5–64 pre-forked policy children): per-SASL-user message rate and per-client recipient rate rules, --nodns, --perfmon (no logging)",
    role: "anchor",
    protocol: "policy",
    transport: "tcp",
    pool,
    async start({ work }) {
      const postfwd = requireBinary("/usr/sbin/postfwd2", "postfwd");
      const port = await freePort();
      const rules = join(work, "postfwd.cf");
      const pidFile = join(work, "postfwd.pid");
      writeFileSync(rules, POSTFWD_RULES);
      const args = [
        "--nodns",
        "--perfmon",
        "-f",
        rules,
        "--server_socket",
        `tcp:127.0.0.1:${port}`,
        "--cache_socket",
        `unix:${join(work, "postfwd-cache.sock")}`,
        "--pidfile",
        pidFile,
        "-u",
        "root",
        "-g",
        "root",
        "--min_servers",
        "5",
        "--max_servers",
        "64",
      ];
      const launched = await runCommand(postfwd, args, { timeoutMs: 30_000 });
      if (launched.code !== 0)
        throw new Error(`postfwd2 exited ${launched.code}: ${launched.stderr.slice(-500)}`);
      const endpoint = { host: "127.0.0.1", port };
      let pid = 0;
      const stop = async () => {
        if (pid === 0) return;
        const tree = processTree(pid);
        for (const member of tree) {
          try {
            process.kill(member, "SIGTERM");
          } catch {
            // gone already
          }
        }
        const deadline = Date.now() + 10_000;
        while (tree.some((member) => isAlive(member)) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        for (const member of tree.filter((candidate) => isAlive(candidate))) process.kill(member, "SIGKILL");
        pid = 0;
      };
      const onExit = () => {
        if (pid !== 0) for (const member of processTree(pid)) process.kill(member, "SIGKILL");
      };
      process.once("exit", onExit);
      try {
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (pid === 0 && existsSync(pidFile)) pid = Number(readFileSync(pidFile, "utf8").trim()) || 0;
          if (pid !== 0 && (await policyAnswers(endpoint, probeRecipient))) break;
          if (Date.now() > deadline)
            throw new Error(`postfwd2 did not answer on 127.0.0.1:${port} (pid file ${pid || "missing"})`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } catch (error) {
        await stop();
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      return {
        pid,
        endpoint,
        idleRssMb: rssMb(processTree(pid)),
        logPath: join(work, "postfwd.log"),
        stop: async () => {
          await stop();
          process.off("exit", onExit);
        },
      };
    },
  };
}

export function postgreyTarget(pool: string, probeRecipient: string): TargetDescriptor {
  return tcpAnchor(
    "postgrey",
    "postgrey from Debian: greylisting with its defaults (delay 300 s, Debian's whitelists), database in the temp dir",
    pool,
    probeRecipient,
    (work, port) => {
      const dbdir = join(work, "db");
      mkdirSync(dbdir, { recursive: true });
      return {
        file: "/usr/sbin/postgrey",
        debianPackage: "postgrey",
        args: [
          `--inet=127.0.0.1:${port}`,
          `--dbdir=${dbdir}`,
          `--pidfile=${join(work, "postgrey.pid")}`,
          "--user=root",
          "--group=root",
        ],
      };
    },
  );
}

export function policydRateLimitTarget(pool: string, probeRecipient: string): TargetDescriptor {
  return {
    name: "policyd-rate-limit",
    description:
      "policyd-rate-limit from Debian: limits 10/min and 150/day per SASL user and per client address, SQLite backend, UNIX socket",
    role: "anchor",
    protocol: "policy",
    transport: "unix",
    pool,
    async start({ work }) {
      requireBinary("/usr/bin/policyd-rate-limit", "policyd-rate-limit");
      const socketPath = join(work, "policyd-rate-limit.sock");
      const configPath = join(work, "policyd-rate-limit.yaml");
      writeFileSync(
        configPath,
        [
          "debug: False",
          'user: "root"',
          'group: "root"',
          `pidfile: "${join(work, "policyd-rate-limit.pid")}"`,
          "backend: 0",
          "sqlite_config:",
          `    database: "${join(work, "db.sqlite3")}"`,
          `SOCKET: "${socketPath}"`,
          "socket_permission: 0660",
          "limits:",
          "    - [10, 60]",
          "    - [150, 86400]",
          "limits_by_id: {}",
          "limit_by_sasl: True",
          "limit_by_sender: False",
          "limit_by_ip: True",
          "limited_networks: []",
          'success_action: "dunno"',
          'fail_action: "defer_if_permit Rate limit reach, retry later"',
          'db_error_action: "dunno"',
          "report: False",
          "delay_to_close: 300",
          "",
        ].join("\n"),
      );
      const endpoint = { path: socketPath };
      return startChildServer({
        name: "policyd-rate-limit",
        file: "/usr/bin/policyd-rate-limit",
        args: ["--file", configPath],
        logPath: join(work, "policyd-rate-limit.log"),
        endpoint,
        startTimeoutMs: 60_000,
        ready: () => policyAnswers(endpoint, probeRecipient),
      });
    },
  };
}

/** Dovecot's quota-status under a private Dovecot whose passwd-file holds `users` (login@domain names). */
export function quotaStatusTarget(pool: string, users: readonly string[]): TargetDescriptor {
  return {
    name: "quota-status",
    description: `Dovecot ${"2.3"} quota-status -p postfix (client_limit 1, count quota backend, quota_status_* as in Dovecot's documentation) with a passwd-file userdb of ${users.length.toLocaleString("en-US")} users, UNIX socket`,
    role: "anchor",
    protocol: "policy",
    transport: "unix",
    pool,
    async start({ work }) {
      requireBinary("/usr/lib/dovecot/quota-status", "dovecot-core");
      const socketPath = join(work, "quota-status.sock");
      const dovecotUsers: DovecotUser[] = users.map((name, index) => ({
        name,
        password: "x",
        fields: { quota_rule: `*:storage=${(1 + (index % 4)) * 1024}M` },
      }));
      const dovecot = await startDovecot({
        protocols: [],
        users: dovecotUsers,
        startTimeoutMs: 120_000,
        conf: `
mail_plugins = $mail_plugins quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
}
service quota-status {
  executable = quota-status -p postfix
  unix_listener ${socketPath} {
    mode = 0666
  }
  client_limit = 1
}
`,
      });
      const endpoint = { path: socketPath };
      try {
        const deadline = Date.now() + 60_000;
        while (!(existsSync(socketPath) && (await policyAnswers(endpoint, users[0] ?? "nobody")))) {
          if (Date.now() > deadline)
            throw new Error(
              `quota-status did not answer on ${socketPath}:\n${dovecot.readLog().slice(-1500)}`,
            );
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } catch (error) {
        await dovecot.destroy();
        throw error;
      }
      return {
        pid: dovecot.pid,
        endpoint,
        idleRssMb: rssMb(processTree(dovecot.pid)),
        logPath: dovecot.logPath,
        stop: () => dovecot.destroy(),
      };
    },
  };
}
