// A private Dovecot 2.3 for integration tests: its own dovecot.conf in a
// temp dir with its own base_dir (sockets, pid file), state_dir and log
// file, listeners on free 127.0.0.1 ports for the protocols the caller picks
// (imap, lmtp, sieve), a passwd-file passdb/userdb with test users and
// maildirs under the temp dir (or, with the `auth` option, the caller's own
// passdb/userdb blocks, e.g. driver = dict against a test server). It runs
// with "dovecot -F -c FILE" as our child and is stopped by PID; every
// doveadm call carries -c FILE, so /etc/dovecot/dovecot.conf is never read
// and the system instance never touched. ssl=no unless the caller passes a
// certificate (see tls.ts).
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import {
  abandonStart,
  type CommandResult,
  type Daemon,
  destroyWith,
  ensureNoProcessesUsing,
  freePort,
  makeTempDir,
  requireBinary,
  runChecked,
  runCommand,
  startDaemon,
  waitFor,
} from "./process.js";
import type { SelfSignedCertificate } from "./tls.js";

const DOVECOT = "/usr/sbin/dovecot";
const DOVEADM = "/usr/bin/doveadm";

export type DovecotProtocol = "imap" | "lmtp" | "sieve";

const PACKAGE_OF: Record<DovecotProtocol, [string, string]> = {
  imap: ["/usr/lib/dovecot/imap", "dovecot-imapd"],
  lmtp: ["/usr/lib/dovecot/lmtp", "dovecot-lmtpd"],
  sieve: ["/usr/lib/dovecot/managesieve", "dovecot-managesieved"],
};

export interface DovecotUser {
  name: string;
  password: string;
  /** Extra userdb fields, e.g. { quota_rule: "*:storage=1M" }. */
  fields?: Record<string, string>;
}

export interface DovecotOptions {
  /** Default ["imap"]. Each gets a listener on a free 127.0.0.1 port. */
  protocols?: DovecotProtocol[];
  /** Appended to the generated dovecot.conf (plugins, services, ...); later settings win. */
  conf?: string;
  /** Default one user "testuser" with password "testpass". Only feeds the passwd-file, so unused with `auth`. */
  users?: DovecotUser[];
  /**
   * Replaces the generated passwd-file passdb and userdb blocks (plus any auth
   * settings that go with them, e.g. auth_cache_size = 0). Dovecot 2.3.19 runs
   * auth as $default_internal_user (dovecot) and auth-worker as root, so a
   * backend socket must be reachable for both.
   */
  auth?: string;
  /** ssl=yes with this certificate (needed for STARTTLS); default ssl=no. */
  tls?: SelfSignedCertificate;
  startTimeoutMs?: number;
}

export interface Dovecot {
  dir: string;
  configPath: string;
  baseDir: string;
  logPath: string;
  /** Where maildirs live: <mailDir>/<user>/Maildir. */
  mailDir: string;
  host: "127.0.0.1";
  ports: Partial<Record<DovecotProtocol, number>>;
  users: DovecotUser[];
  pid: number;
  /** doveadm -c <configPath> ...args */
  doveadm(args: string[]): Promise<CommandResult>;
  readLog(): string;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

const LISTENER: Record<DovecotProtocol, (port: number) => string> = {
  imap: (port) => `service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`,
  lmtp: (port) => `service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
}
`,
  sieve: (port) => `service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = ${port}
  }
}
`,
};

async function numericId(kind: "-u" | "-g", name: string): Promise<number> {
  const result = await runChecked("/usr/bin/id", [kind, name]);
  return Number(result.stdout.trim());
}

/** Resolves true once the port sends a greeting line (IMAP "* OK", LMTP "220", ManageSieve "OK"). */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    let received = "";
    socket.setTimeout(2_000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      // ManageSieve sends its capabilities before the final OK line.
      if (/^(\* OK|220 )/.test(received) || /\r\nOK/.test(`\r\n${received}`)) done(true);
    });
  });
}

function passwdFileAuth(usersPath: string): string {
  return `passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${usersPath}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${usersPath}
}`;
}

export async function startDovecot(options: DovecotOptions = {}): Promise<Dovecot> {
  requireBinary(DOVECOT, "dovecot-core");
  requireBinary(DOVEADM, "dovecot-core");
  const protocols = options.protocols ?? ["imap"];
  for (const protocol of protocols) {
    const [binary, debianPackage] = PACKAGE_OF[protocol];
    requireBinary(binary, debianPackage);
  }
  const users = options.users ?? [{ name: "testuser", password: "testpass" }];
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = makeTempDir("dovecot");
  let daemon: Daemon | undefined;
  try {
    // Mail processes run as nobody and must walk into the temp dir.
    chmodSync(dir, 0o755);
    const baseDir = join(dir, "run");
    const stateDir = join(dir, "state");
    const mailDir = join(dir, "mail");
    const logPath = join(dir, "dovecot.log");
    const configPath = join(dir, "dovecot.conf");
    const usersPath = join(dir, "users");
    mkdirSync(stateDir);
    mkdirSync(mailDir);
    // nobody/nogroup own the mail so no test user needs a system account;
    // Dovecot refuses UID 0 for mail access, rightly.
    const mailUid = await numericId("-u", "nobody");
    const mailGid = await numericId("-g", "nobody");
    chownSync(mailDir, mailUid, mailGid);

    // passwd-file: user:password:uid:gid:(gecos):home:(shell):extra fields
    writeFileSync(
      usersPath,
      users
        .map((user) => {
          const extra = Object.entries(user.fields ?? {})
            .map(([key, value]) => `userdb_${key}=${value}`)
            .join(" ");
          return `${user.name}:{PLAIN}${user.password}:${mailUid}:${mailGid}::${mailDir}/${user.name}::${extra}`;
        })
        .join("\n") + "\n",
    );

    const ports: Partial<Record<DovecotProtocol, number>> = {};
    for (const protocol of protocols) ports[protocol] = await freePort();

    const ssl =
      options.tls === undefined
        ? "ssl = no\n"
        : `ssl = yes\nssl_cert = <${options.tls.certPath}\nssl_key = <${options.tls.keyPath}\n`;
    const conf = `# generated by test/harness/dovecot.ts
instance_name = emailng-test-${dir.slice(-6)}
base_dir = ${baseDir}
state_dir = ${stateDir}
log_path = ${logPath}
info_log_path = ${logPath}
debug_log_path = ${logPath}
protocols = ${protocols.join(" ")}
listen = 127.0.0.1
${ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose; the default 2 s delay only slows them.
# (anvil's per-IP auth penalty still applies to later logins from 127.0.0.1;
# a caller can lift it with login_trusted_networks = 127.0.0.0/8.)
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
mail_privileged_group =
first_valid_uid = 1
postmaster_address = postmaster@cs.example.org
hostname = backend.test
${options.auth ?? passwdFileAuth(usersPath)}
${protocols.map((protocol) => LISTENER[protocol](ports[protocol] as number)).join("")}${options.conf ?? ""}
`;
    writeFileSync(configPath, conf);

    const current = startDaemon({
      name: "dovecot",
      file: DOVECOT,
      // -F: foreground, so the PID is the dovecot master itself.
      args: ["-F", "-c", configPath],
      logPath: join(dir, "dovecot.out"),
      cleanupDir: dir,
    });
    daemon = current;
    for (const protocol of protocols) {
      const port = ports[protocol] as number;
      await waitFor(() => greets(port), {
        timeoutMs,
        what: `Dovecot ${protocol} on 127.0.0.1:${port} to greet`,
        intervalMs: 100,
        logPaths: [logPath, current.logPath],
        abortIf: () => current.exitStatus(),
      });
    }

    const stop = async (): Promise<void> => {
      await current.stop();
      await ensureNoProcessesUsing(dir, "dovecot");
    };

    return {
      dir,
      configPath,
      baseDir,
      logPath,
      mailDir,
      host: "127.0.0.1",
      ports,
      users,
      pid: current.pid,
      doveadm: (args: string[]) => runCommand(DOVEADM, ["-c", configPath, ...args], { timeoutMs: 30_000 }),
      readLog: () => {
        try {
          return readFileSync(logPath, "utf8");
        } catch {
          return "";
        }
      },
      stop,
      destroy: destroyWith(stop, dir),
    };
  } catch (error) {
    return abandonStart(daemon, dir, error);
  }
}

/** `doveadm user` prints "field<TAB>value" lines after a header. */
export function doveadmUserFields(result: CommandResult): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of result.stdout.split("\n").slice(1)) {
    const tab = line.indexOf("\t");
    if (tab > 0) fields[line.slice(0, tab)] = line.slice(tab + 1);
  }
  return fields;
}

/** Everything a doveadm run printed, for assertion messages. */
export const doveadmOutput = (result: CommandResult): string => `${result.stdout}${result.stderr}`;
