// A private Postfix 3.7 instance for integration tests. Its config, queue
// and data directories all live in a temp dir; main.cf and master.cf are
// written from scratch (loopback only, no chroot, smtpd on a free port,
// logging to a file through postlogd so tests can read Postfix's own log
// lines) and callers add restrictions, maps and transports. The instance is
// started as our own child and stopped by PID; /etc/postfix and port 25 are
// never touched. Helpers run postmap, postqueue, postsuper and postconf with
// -c on this instance, and swaks against its smtpd.
//
// Why master and not "postfix start-fg": start-fg runs postfix-script, which
// only execs the master when it is PID 1; otherwise a shell stays in between
// and the master is a grandchild we cannot stop or reap by PID. So we do
// what start-fg does without the shell: "postfix -c DIR check" (creates the
// queue directories with the right owners and checks the configuration),
// then run "master -c DIR -s" in the foreground as our child.
//
// No /etc/postfix/main.cf is needed: the commands only check
// alternate_config_directories in the default main.cf when they do not run
// as root, and the tests run as root (locally and in CI). The Debian package
// may be installed with "No configuration", and we leave it that way.
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
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

const POSTFIX = "/usr/sbin/postfix";
const POSTCONF = "/usr/sbin/postconf";
const POSTMAP = "/usr/sbin/postmap";
const POSTQUEUE = "/usr/sbin/postqueue";
const POSTSUPER = "/usr/sbin/postsuper";
const MASTER = "/usr/lib/postfix/sbin/master";
const SWAKS = "/usr/bin/swaks";

export interface PostfixOptions {
  /** main.cf settings added to (or replacing) the defaults below. */
  mainCf?: Record<string, string>;
  /** "-o name=value" overrides for the smtpd listener only. */
  smtpdOptions?: Record<string, string>;
  /** Lines appended to master.cf (more services, transports, ...). */
  masterCfExtra?: string;
  /**
   * Files written into the config dir before start (maps named in main.cf
   * must exist when smtpd opens them), e.g. { senders: "x.example REJECT\n" }
   * for "texthash:$config_directory/senders".
   */
  files?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface QueueEntry {
  queue_name: string;
  queue_id: string;
  sender: string;
  recipients: { address: string; delay_reason?: string }[];
  [key: string]: unknown;
}

export interface Postfix {
  /** The directory holding main.cf and master.cf (what -c takes). */
  configDir: string;
  queueDir: string;
  dir: string;
  host: "127.0.0.1";
  /** smtpd's port. */
  port: number;
  logPath: string;
  /** PID of the master process, which is our child. */
  pid: number;
  postconf(args: string[]): Promise<CommandResult>;
  postmap(args: string[]): Promise<CommandResult>;
  postqueue(args: string[]): Promise<CommandResult>;
  postsuper(args: string[]): Promise<CommandResult>;
  /** Every queued message, hold queue included (postqueue -j). */
  listQueue(): Promise<QueueEntry[]>;
  /** Runs swaks against this smtpd; the transcript is swaks' stdout and stderr. */
  swaks(args: string[]): Promise<{ code: number | null; transcript: string }>;
  /** Postfix's own log (maillog_file). */
  readLog(): string;
  /** Waits until the log matches, e.g. /status=sent/. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Writes a file into the config dir (maps, etc.) and returns its path. */
  writeConfigFile(name: string, content: string): string;
  /** SIGTERM to the master (what "postfix stop" does), then checks no worker is left. */
  stop(): Promise<void>;
  /** stop() and remove the temp dir. */
  destroy(): Promise<void>;
}

function mainCfText(settings: Record<string, string>): string {
  return `${Object.entries(settings)
    .map(([name, value]) => `${name} = ${value}`)
    .join("\n")}\n`;
}

// Every service runs unchrooted ("n" in column 5) so it can reach maps and
// sockets anywhere in the temp dir; the usual Debian set minus local delivery.
const MASTER_SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** Reads the first line from a TCP port; resolves true when it is Postfix's 220 greeting. */
function greets220(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = "";
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n")) {
        socket.end("QUIT\r\n");
        done(received.startsWith("220 "));
      }
    });
  });
}

export async function startPostfix(options: PostfixOptions = {}): Promise<Postfix> {
  for (const binary of [POSTFIX, POSTCONF, POSTMAP, POSTQUEUE, POSTSUPER, MASTER])
    requireBinary(binary, "postfix");
  requireBinary(SWAKS, "swaks");
  if (userInfo().uid !== 0)
    throw new Error("the Postfix harness must run as root (master drops to mail_owner)");
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = makeTempDir("postfix");
  let daemon: Daemon | undefined;
  try {
    // Postfix daemons run as "postfix" and must reach data and log paths.
    chmodSync(dir, 0o755);
    const configDir = join(dir, "etc");
    const queueDir = join(dir, "spool");
    const dataDir = join(dir, "data");
    const logPath = join(dir, "postfix.log");
    mkdirSync(configDir);
    mkdirSync(queueDir);
    mkdirSync(dataDir);
    const postfixUser = await runChecked("/usr/bin/id", ["-u", "postfix"]);
    chownSync(dataDir, Number(postfixUser.stdout.trim()), 0);

    const port = await freePort();
    const main: Record<string, string> = {
      compatibility_level: "3.6",
      queue_directory: queueDir,
      data_directory: dataDir,
      // Postfix >= 3.4 logs to a file through postlogd; the prefix list is a
      // safety net Postfix insists on, so allow only our temp dir.
      maillog_file: logPath,
      maillog_file_prefixes: dir,
      inet_interfaces: "127.0.0.1",
      inet_protocols: "ipv4",
      myhostname: "relay.test",
      mydomain: "test",
      mydestination: "",
      mynetworks: "127.0.0.0/8",
      relay_domains: "",
      alias_maps: "",
      alias_database: "",
      local_recipient_maps: "",
      mail_owner: "postfix",
      setgid_group: "postdrop",
      biff: "no",
      // Tests send bursts from one client; no artificial slow-down.
      in_flow_delay: "0",
      smtpd_banner: "$myhostname ESMTP",
      ...options.mainCf,
    };
    writeFileSync(join(configDir, "main.cf"), mainCfText(main));
    for (const [name, content] of Object.entries(options.files ?? {})) {
      writeFileSync(join(configDir, name), content);
    }
    const smtpdOverrides = Object.entries(options.smtpdOptions ?? {})
      .map(([name, value]) => `\n  -o ${name}=${value}`)
      .join("");
    const masterCf = `127.0.0.1:${port} inet n - n - - smtpd${smtpdOverrides}\n${MASTER_SERVICES}${options.masterCfExtra ?? ""}\n`;
    writeFileSync(join(configDir, "master.cf"), masterCf);

    const withConfig = (file: string) => (args: string[]) =>
      runCommand(file, ["-c", configDir, ...args], { timeoutMs: 30_000 });
    const postconf = withConfig(POSTCONF);
    const postmap = withConfig(POSTMAP);
    const postqueue = withConfig(POSTQUEUE);
    const postsuper = withConfig(POSTSUPER);

    // "postfix check" creates the queue directories with their owners and
    // checks main.cf/master.cf, exactly as "postfix start" would. It logs
    // its complaints to maillog_file, not to stderr, so show the log.
    const check = await runCommand(POSTFIX, ["-c", configDir, "check"], { timeoutMs });
    if (check.code !== 0) {
      throw new Error(`postfix check failed (${check.code}): ${check.stderr}\n${safeRead(logPath)}`);
    }

    const current = startDaemon({
      name: "postfix master",
      file: MASTER,
      // -s: stay in the foreground with stdout kept (what start-fg uses).
      args: ["-c", configDir, "-s"],
      logPath: join(dir, "master.out"),
      cleanupDir: dir,
    });
    daemon = current;
    await waitFor(() => greets220(port), {
      timeoutMs,
      what: `Postfix smtpd on 127.0.0.1:${port} to greet with 220`,
      intervalMs: 100,
      logPaths: [logPath, current.logPath],
      abortIf: () => current.exitStatus(),
    });

    const stop = async (): Promise<void> => {
      await current.stop();
      await ensureNoProcessesUsing(queueDir, "postfix");
    };

    return {
      configDir,
      queueDir,
      dir,
      host: "127.0.0.1",
      port,
      logPath,
      pid: current.pid,
      postconf,
      postmap,
      postqueue,
      postsuper,
      async listQueue(): Promise<QueueEntry[]> {
        const result = await postqueue(["-j"]);
        if (result.code !== 0) throw new Error(`postqueue -j failed: ${result.stderr}`);
        return result.stdout
          .split("\n")
          .filter((line) => line.trim() !== "")
          .map((line) => JSON.parse(line) as QueueEntry);
      },
      async swaks(args: string[]) {
        const result = await runCommand(SWAKS, ["--server", "127.0.0.1", "--port", String(port), ...args], {
          timeoutMs: 30_000,
        });
        return { code: result.code, transcript: result.stdout + result.stderr };
      },
      readLog: () => safeRead(logPath),
      async waitForLog(pattern: RegExp, waitMs = 20_000): Promise<string> {
        await waitFor(() => pattern.test(safeRead(logPath)), {
          timeoutMs: waitMs,
          what: `Postfix log to match ${pattern}`,
          logPaths: [logPath],
        });
        return safeRead(logPath);
      },
      writeConfigFile(name: string, content: string): string {
        const path = join(configDir, name);
        writeFileSync(path, content);
        return path;
      },
      stop,
      destroy: destroyWith(stop, dir),
    };
  } catch (error) {
    return abandonStart(daemon, dir, error);
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
