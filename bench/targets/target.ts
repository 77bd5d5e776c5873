/**
 * A benchmark target is a small descriptor: its name and role, the protocol
 * the generator speaks to it, which request pool it gets, and how to start
 * it as a process of its own (so its RSS and CPU can be read from /proc and
 * the generator's work is not counted against it). Adding a daemon to a
 * suite is one descriptor: see bench/README.md, "Adding a target".
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Endpoint } from "../load/driver.js";
import type { LoadProtocol, LoadSpec } from "../load/generate.js";

/** The repository root, from bench/targets (source) or dist-bench/bench/targets (compiled). */
export const REPOSITORY_ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
/** The compiled CLI the daemons are started from. */
export const CLI_PATH = join(REPOSITORY_ROOT, "dist-bench/cli/main.js");
export const DIST_BENCH = join(REPOSITORY_ROOT, "dist-bench/bench");

export type TargetRole = "ceiling" | "daemon" | "anchor";

export interface TargetContext {
  /** A private temporary directory for this target's sockets, configs and logs. */
  work: string;
}

export interface RunningTarget {
  /** The process whose tree's RSS and CPU are measured. */
  pid: number;
  endpoint: Endpoint;
  /** RSS (MB) of the tree once started and idle. */
  idleRssMb: number;
  /** Extra generator settings (dict name, LDAP bind). */
  spec?: Partial<Pick<LoadSpec, "dictName" | "ldap">>;
  logPath: string;
  stop(): Promise<void>;
}

export interface TargetDescriptor {
  /** Row name: "do-nothing", "verifyd", "postgrey" … */
  name: string;
  /** One line for the report: what runs and how it is configured. */
  description: string;
  role: TargetRole;
  protocol: LoadProtocol;
  transport: "unix" | "tcp";
  /** Which of the suite's request pools it is sent. */
  pool: string;
  start(context: TargetContext): Promise<RunningTarget>;
}
