// Process plumbing for the real-peer harness: every peer (slapd, Postfix,
// Dovecot, Redis) is started in the foreground as our own child so that we
// hold its PID, its output goes to a log file in the test's temporary
// directory, and it is stopped by PID with a bounded SIGTERM-then-SIGKILL.
// Also the small helpers each peer module needs: a fresh temp dir, a free
// loopback port, a bounded polling wait whose error shows the peer's log, a
// bounded command runner, and a loud check that a Debian package is
// installed (a missing peer must fail the test, never skip it).
import { type ChildProcess, spawn } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SETPRIV = "/usr/bin/setpriv";

/** Children still running; killed from the 'exit' hook if a test crashes before stop(). */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is the only thing that is
  // certain to land before we are gone, and a leaked daemon would hold ports
  // and files for the next run. This covers a normal exit (process.exit,
  // uncaught exception); death by signal is covered by the parent-death
  // signal set in startDaemon.
  process.on("exit", () => {
    for (const child of liveChildren) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  });
}

/** Throws an error naming the Debian package when a peer binary is missing or not executable. */
export function requireBinary(path: string, debianPackage: string): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `real-peer test needs ${path}, from the Debian package "${debianPackage}": ` +
        `install it (apt-get install ${debianPackage}, or run scripts/ensure-test-deps.mjs as root)`,
    );
  }
  return path;
}

/** A fresh private directory under the system temp dir; removed by removeTempDir(). */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `emailng-${prefix}-`));
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A port that was free on 127.0.0.1 a moment ago. There is a small race
 * until the peer binds it; the two test workers rarely collide because the
 * kernel hands out ephemeral ports in sequence.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: no TCP address"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** The last `lines` lines of a log file, or a note that it cannot be read. */
export function tailFile(path: string, lines = 30): string {
  try {
    const text = readFileSync(path, "utf8");
    return text
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  } catch (error) {
    return `(cannot read ${path}: ${(error as Error).message})`;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** What we are waiting for, e.g. "slapd to answer ldapsearch"; used in the error. */
  what: string;
  intervalMs?: number;
  /** Log file(s) whose tail goes into the timeout error. */
  logPaths?: string[];
  /** Give up early when this returns a reason (e.g. the peer exited). */
  abortIf?: () => string | undefined;
}

/**
 * Polls `condition` until it returns true, within a hard time bound. The
 * error names what we waited for, the last failure and the peer's log tail,
 * because "timed out" alone tells nobody why a daemon did not come up.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 50;
  let lastError = "";
  for (;;) {
    const abortReason = options.abortIf?.();
    if (abortReason !== undefined) {
      throw new Error(`gave up waiting for ${options.what}: ${abortReason}${logTails(options.logPaths)}`);
    }
    try {
      if (await condition()) return;
      lastError = "";
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      const last = lastError === "" ? "" : ` (last error: ${lastError})`;
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what}${last}${logTails(options.logPaths)}`,
      );
    }
    await sleep(interval);
  }
}

function logTails(paths: string[] | undefined): string {
  if (paths === undefined) return "";
  return paths.map((path) => `\n--- tail of ${path} ---\n${tailFile(path)}`).join("");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True while a process with this PID exists and has not exited. A zombie
 * counts as gone: daemons' worker processes are reparented to PID 1 when
 * their master exits, and some container inits never reap them.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM means it exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return processState(pid) !== "Z";
}

/** The state letter from /proc/<pid>/stat (R, S, Z, ...), or undefined if it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may itself contain spaces or ')'.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/**
 * PIDs of live processes whose working directory or command line lies under
 * `dir`. Postfix and Dovecot workers chdir into their queue or base
 * directory, so this finds every process of a private instance even after
 * its master is gone, without touching the system's own daemons.
 */
export function livePidsUsing(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !isAlive(pid)) continue;
    let cwd = "";
    let commandLine = "";
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // exited meanwhile, or a kernel thread
    }
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      // exited meanwhile
    }
    if (cwd === dir || cwd.startsWith(`${dir}/`) || commandLine.includes(dir)) found.push(pid);
  }
  return found;
}

/**
 * After a master process has stopped, waits (bounded) for its workers to go
 * too, SIGKILLs any straggler and throws so the test notices: a leftover
 * worker would keep sockets and files of the next run busy.
 */
export async function ensureNoProcessesUsing(dir: string, name: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = livePidsUsing(dir);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = livePidsUsing(dir);
  }
  if (left.length === 0) return;
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`${name}: processes still running under ${dir} after stop: ${left.join(", ")} (killed)`);
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Runs a short command to completion and returns its output; never throws
 * for a non-zero exit (callers assert on it), but kills it at the deadline
 * so a hung client cannot hang the test run.
 */
export function runCommand(file: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${file} ${args.join(" ")}: killed after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      });
    });
    // A child that exits before reading its input makes stdin emit EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}

/** Like runCommand, but throws with the output when the exit code is not 0. */
export async function runChecked(
  file: string,
  args: string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(" ")} exited with ${result.code ?? result.signal}\n` +
        `stdout: ${result.stdout.trim()}\nstderr: ${result.stderr.trim()}`,
    );
  }
  return result;
}

/**
 * A watcher that SIGKILLs `pid` when we die. The parent-death signal set on
 * the daemon itself is cleared by the kernel as soon as the daemon changes
 * its effective user or group (Postfix's master does, briefly, to create
 * files as mail_owner), so a tiny shell holds the parent-death signal for
 * it instead. It exits by itself once the daemon is gone.
 */
function guardDaemon(pid: number, cleanupDir: string | undefined): void {
  if (!existsSync(SETPRIV)) return;
  // The directory goes in through the environment: never into the script
  // text, and not onto the command line, where livePidsUsing() would take
  // the guard for one of the peer's processes.
  const cleanup = cleanupDir === undefined ? "" : ` sleep 0.5; rm -rf -- "$GUARD_CLEANUP_DIR";`;
  const script = `trap 'kill -KILL ${pid} 2>/dev/null;${cleanup} exit 0' TERM; while kill -0 ${pid} 2>/dev/null; do sleep 0.5; done`;
  const guard = spawn(SETPRIV, ["--pdeathsig", "SIGTERM", "--", "/bin/sh", "-c", script], {
    stdio: "ignore",
    env: { PATH: "/usr/bin:/bin", GUARD_CLEANUP_DIR: cleanupDir ?? "" },
  });
  guard.on("error", () => {});
  // The guard must never keep a test worker alive.
  guard.unref();
}

export interface DaemonOptions {
  /** Shown in errors ("slapd", "postfix master", ...). */
  name: string;
  file: string;
  args: string[];
  /** stdout and stderr of the daemon are appended here. */
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Removed by the guard if the test process dies while the daemon runs (never on a normal stop). */
  cleanupDir?: string;
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Undefined while running; the exit code or signal once it has exited. */
  exitStatus(): string | undefined;
  /** Resolves when the process has exited (immediately if it already has). */
  exited(): Promise<void>;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again; resolves once the PID is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a daemon that stays in the foreground, so the PID we get is the
 * daemon itself and not a shell or a forked parent that exits at once.
 */
export function startDaemon(options: DaemonOptions): Daemon {
  installExitHook();
  const logFd = openSync(options.logPath, "a");
  // The kernel SIGKILLs the daemon when we die (parent-death signal), so a
  // test worker killed by vitest (SIGTERM, then SIGKILL: no 'exit' event)
  // still leaves nothing behind. setpriv sets it and then execs the daemon,
  // so the PID stays the daemon's own. A daemon that changes its effective
  // IDs loses it (see guardDaemon, which covers that case).
  const [file, args] = existsSync(SETPRIV)
    ? [SETPRIV, ["--pdeathsig", "SIGKILL", "--", options.file, ...options.args]]
    : [options.file, options.args];
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      stdio: ["ignore", logFd, logFd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`cannot start ${options.name} (${options.file}): no PID`);
  }
  liveChildren.add(child);
  guardDaemon(pid, options.cleanupDir);
  let status: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      status = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
      liveChildren.delete(child);
      resolve();
    });
    child.on("error", (error) => {
      status = `failed to start: ${error.message}`;
      liveChildren.delete(child);
      resolve();
    });
  });

  async function waitExit(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([exitPromise.then(() => true), timedOut]);
    clearTimeout(timer);
    return result;
  }

  return {
    name: options.name,
    pid,
    logPath: options.logPath,
    exitStatus: () => status,
    exited: () => exitPromise,
    async stop(graceMs = 10_000): Promise<void> {
      if (status !== undefined) return;
      child.kill("SIGTERM");
      if (await waitExit(graceMs)) return;
      child.kill("SIGKILL");
      if (!(await waitExit(5_000))) {
        throw new Error(`${options.name} (pid ${pid}) survived SIGKILL`);
      }
    },
  };
}

/** A peer's destroy(): stop it, then remove its temp dir even when stopping failed. */
export function destroyWith(stop: () => Promise<void>, dir: string): () => Promise<void> {
  return async () => {
    try {
      await stop();
    } finally {
      removeTempDir(dir);
    }
  };
}

/** Undoes a start that failed half-way: stops what was started, removes the temp dir, rethrows. */
export async function abandonStart(daemon: Daemon | undefined, dir: string, error: unknown): Promise<never> {
  await daemon?.stop();
  removeTempDir(dir);
  throw error;
}
