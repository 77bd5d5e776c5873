/**
 * Runs targets side by side in one sitting: every target started once (its
 * own process), then for each repetition and each concurrency every row is
 * measured in turn, so a disturbance on the shared machine (another
 * engineer's test run, a cron job) hits the ceiling and the daemon alike
 * instead of one of them. Rows name a target and a request pool; several
 * rows may share one running target (verifyd's recipient and alias maps).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { isAlive } from "../../test/harness/process.js";
import type { BenchOptions } from "../lib/args.js";
import { type Measurement, measure } from "../lib/measure.js";
import { processTree } from "../lib/proc.js";
import { formatCount, formatMicros } from "../lib/stats.js";
import { canConnect } from "../targets/child-server.js";
import type { RunningTarget, TargetDescriptor } from "../targets/target.js";

export interface ComparisonRow {
  /** Label in tables; defaults to the target's name. */
  row?: string;
  target: TargetDescriptor;
  /** Pool file; defaults to the suite's pool named by the target. */
  poolFile?: string;
}

export interface TargetInfo {
  name: string;
  role: TargetDescriptor["role"];
  protocol: TargetDescriptor["protocol"];
  transport: TargetDescriptor["transport"];
  description: string;
  idleRssMb: number;
  startMs: number;
}

export interface ComparisonOutcome {
  measurements: Measurement[];
  targets: TargetInfo[];
  /** Targets that could not be started, with the reason (reported, never hidden). */
  failures: Array<{ target: string; error: string }>;
}

export async function runComparison(
  rows: ComparisonRow[],
  pools: Record<string, string>,
  options: BenchOptions,
  work: string,
  concurrency: number[] = options.concurrency,
  log: (line: string) => void = console.log,
  /** Runs after the rows of each repetition and concurrency, while every target is still up. */
  alongside?: (connections: number, repetition: number) => Promise<void>,
): Promise<ComparisonOutcome> {
  const running = new Map<TargetDescriptor, RunningTarget>();
  const targets: TargetInfo[] = [];
  const failures: ComparisonOutcome["failures"] = [];
  const measurements: Measurement[] = [];
  try {
    for (const descriptor of new Set(rows.map((row) => row.target))) {
      const targetWork = join(work, descriptor.name.replace(/[^a-zA-Z0-9.-]+/g, "_"));
      mkdirSync(targetWork, { recursive: true });
      const started = Date.now();
      try {
        const instance = await descriptor.start({ work: targetWork });
        running.set(descriptor, instance);
        targets.push({
          name: descriptor.name,
          role: descriptor.role,
          protocol: descriptor.protocol,
          transport: descriptor.transport,
          description: descriptor.description,
          idleRssMb: Math.round(instance.idleRssMb * 10) / 10,
          startMs: Date.now() - started,
        });
        log(
          `  started ${descriptor.name} (pid ${instance.pid}, ${Date.now() - started} ms, idle RSS ${instance.idleRssMb.toFixed(1)} MB)`,
        );
      } catch (error) {
        const message = (error as Error).message.split("\n").slice(0, 8).join("\n");
        failures.push({ target: descriptor.name, error: message });
        log(`  could not start ${descriptor.name}: ${message}`);
      }
    }
    for (let repetition = 1; repetition <= options.repetitions; repetition++) {
      for (const connections of concurrency) {
        for (const row of rows) {
          const instance = running.get(row.target);
          if (instance === undefined) continue;
          // A server that died (or was stopped by something else) is reported, never measured as 0/s.
          // (Processes alone are not enough: a daemon may detach from the PID it was started as and go on serving.)
          if (
            processTree(instance.pid).every((pid) => !isAlive(pid)) &&
            !(await canConnect(instance.endpoint))
          ) {
            running.delete(row.target);
            const error = `exited during the run (before repetition ${repetition} at ${connections} connections); see ${instance.logPath}`;
            failures.push({ target: row.target.name, error });
            log(`  ${row.target.name} ${error}`);
            continue;
          }
          const poolFile = row.poolFile ?? pools[row.target.pool];
          if (poolFile === undefined)
            throw new Error(`no request pool "${row.target.pool}" for ${row.target.name}`);
          const label = row.row ?? row.target.name;
          const { result, server } = await measure(
            instance,
            row.target.protocol,
            poolFile,
            connections,
            options,
            work,
          );
          measurements.push({
            row: label,
            target: row.target.name,
            role: row.target.role,
            protocol: row.target.protocol,
            transport: row.target.transport,
            connections,
            repetition,
            result,
            server,
          });
          const errors =
            result.errors > 0 ? `, ${result.errors} errors ${JSON.stringify(result.errorKinds)}` : "";
          log(
            `  [${repetition}/${options.repetitions}] ${label} × ${connections}: ${formatCount(result.requestsPerSecond)}/s, p50 ${formatMicros(result.latencyUs.p50)}, p99 ${formatMicros(result.latencyUs.p99)}, RSS ${server.maxRssMb} MB${errors}`,
          );
        }
        await alongside?.(connections, repetition);
      }
    }
  } finally {
    for (const [descriptor, instance] of running) {
      await instance
        .stop()
        .catch((error: unknown) => log(`  stopping ${descriptor.name}: ${(error as Error).message}`));
    }
  }
  return { measurements, targets, failures };
}
