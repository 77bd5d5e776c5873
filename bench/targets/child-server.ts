/**
 * Starts a server under test as our own foreground child (through the test
 * harness's startDaemon: parent-death signal, output to a log file, stopped
 * by PID) and waits, bounded, until it answers.
 */
import { connect } from "node:net";
import { startDaemon, waitFor } from "../../test/harness/process.js";
import { processTree, rssMb } from "../lib/proc.js";
import type { Endpoint } from "../load/driver.js";
import type { RunningTarget } from "./target.js";

export interface ChildServerOptions {
  name: string;
  file: string;
  args: string[];
  logPath: string;
  endpoint: Endpoint;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the server gives a real answer (default: a connection is accepted). */
  ready?: () => Promise<boolean>;
  startTimeoutMs?: number;
  spec?: RunningTarget["spec"];
}

export function canConnect(endpoint: Endpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = "path" in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function startChildServer(options: ChildServerOptions): Promise<RunningTarget> {
  const daemon = startDaemon({
    name: options.name,
    file: options.file,
    args: options.args,
    logPath: options.logPath,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  try {
    await waitFor(options.ready ?? (() => canConnect(options.endpoint)), {
      timeoutMs: options.startTimeoutMs ?? 120_000,
      what: `${options.name} to answer`,
      intervalMs: 100,
      logPaths: [options.logPath],
      abortIf: () => daemon.exitStatus(),
    });
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  // Let start-up garbage be collected before the idle figure is read.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return {
    pid: daemon.pid,
    endpoint: options.endpoint,
    idleRssMb: rssMb(processTree(daemon.pid)),
    ...(options.spec === undefined ? {} : { spec: options.spec }),
    logPath: options.logPath,
    stop: () => daemon.stop(),
  };
}
