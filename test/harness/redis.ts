// A private redis-server for tests of the Redis-backed counter store: bound
// to 127.0.0.1 on a free port, no persistence (no RDB snapshots, no AOF),
// working directory in a temp dir, run in the foreground as our child and
// stopped by PID. The system's redis on port 6379 is never touched.
import { join } from "node:path";
import {
  abandonStart,
  type CommandResult,
  type Daemon,
  destroyWith,
  freePort,
  makeTempDir,
  requireBinary,
  runCommand,
  startDaemon,
  waitFor,
} from "./process.js";

const REDIS_SERVER = "/usr/bin/redis-server";
const REDIS_CLI = "/usr/bin/redis-cli";

export interface RedisOptions {
  /** Extra "--name value" arguments for redis-server, e.g. ["--maxmemory", "10mb"]. */
  args?: string[];
  startTimeoutMs?: number;
}

export interface Redis {
  host: "127.0.0.1";
  port: number;
  url: string;
  dir: string;
  logPath: string;
  pid: number;
  /** redis-cli -h 127.0.0.1 -p <port> ...args */
  cli(args: string[]): Promise<CommandResult>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRedis(options: RedisOptions = {}): Promise<Redis> {
  requireBinary(REDIS_SERVER, "redis-server");
  requireBinary(REDIS_CLI, "redis-tools");
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const dir = makeTempDir("redis");
  let daemon: Daemon | undefined;
  try {
    const port = await freePort();
    const logPath = join(dir, "redis.log");
    const cli = (args: string[]) =>
      runCommand(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), ...args], { timeoutMs: 15_000 });
    const current = startDaemon({
      name: "redis-server",
      file: REDIS_SERVER,
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        // No unix socket, no snapshots, no AOF: state lives and dies with the test.
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--logfile",
        "",
        ...(options.args ?? []),
      ],
      logPath,
      cleanupDir: dir,
    });
    daemon = current;
    await waitFor(
      async () => {
        const result = await cli(["ping"]);
        return result.code === 0 && result.stdout.trim() === "PONG";
      },
      {
        timeoutMs,
        what: `redis-server on 127.0.0.1:${port} to answer PING`,
        intervalMs: 50,
        logPaths: [logPath],
        abortIf: () => current.exitStatus(),
      },
    );
    const stop = () => current.stop();
    return {
      host: "127.0.0.1",
      port,
      url: `redis://127.0.0.1:${port}`,
      dir,
      logPath,
      pid: current.pid,
      cli,
      stop,
      destroy: destroyWith(stop, dir),
    };
  } catch (error) {
    return abandonStart(daemon, dir, error);
  }
}
