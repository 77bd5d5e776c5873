/**
 * One measurement: a generator process (bench/load/generate.ts) driving a
 * running target with one request pool at one concurrency, while the
 * target's process tree is sampled for RSS and CPU time.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../../test/harness/process.js";
import type { DriverResult } from "../load/driver.js";
import type { LoadProtocol, LoadSpec } from "../load/generate.js";
import { DIST_BENCH, type RunningTarget } from "../targets/target.js";
import { ProcessSampler } from "./proc.js";

export interface MeasureSettings {
  warmupMs: number;
  durationMs: number;
  maxRequests: number;
  requestTimeoutMs?: number;
}

export interface ServerUsage {
  /** Largest RSS of the server's process tree seen during the run (MB). */
  maxRssMb: number;
  /** VmHWM of the server's main process: its peak since it started, loading included (MB). */
  peakRssMb: number;
  cpuSeconds: number;
  /** Server CPU time per request answered (warm-up included), µs. */
  cpuUsPerRequest: number;
}

export interface Measurement {
  /** Row label: target name, or name plus variant ("verifyd alias"). */
  row: string;
  target: string;
  role: "ceiling" | "daemon" | "anchor";
  protocol: LoadProtocol;
  transport: "unix" | "tcp";
  connections: number;
  repetition: number;
  result: DriverResult;
  server: ServerUsage;
}

let specCounter = 0;

export async function measure(
  running: RunningTarget,
  protocol: LoadProtocol,
  poolFile: string,
  connections: number,
  settings: MeasureSettings,
  work: string,
): Promise<{ result: DriverResult; server: ServerUsage }> {
  const spec: LoadSpec = {
    protocol,
    endpoint: running.endpoint,
    poolFile,
    connections,
    warmupMs: settings.warmupMs,
    durationMs: settings.durationMs,
    maxRequests: settings.maxRequests,
    requestTimeoutMs: settings.requestTimeoutMs ?? 10_000,
    ...running.spec,
  };
  const specPath = join(work, `load-spec-${process.pid}-${++specCounter}.json`);
  writeFileSync(specPath, JSON.stringify(spec));
  const sampler = new ProcessSampler(running.pid);
  const run = await runCommand(process.execPath, [join(DIST_BENCH, "load/generate.js"), specPath], {
    timeoutMs: settings.warmupMs + settings.durationMs + 60_000 + connections * 200,
  });
  const usage = sampler.finish();
  if (run.code !== 0)
    throw new Error(`load generator failed (${run.code ?? run.signal}): ${run.stderr.slice(-2000)}`);
  const result = JSON.parse(run.stdout) as DriverResult;
  const answered = result.requests + result.warmupRequests;
  return {
    result,
    server: {
      maxRssMb: Math.round(usage.maxRssMb * 10) / 10,
      peakRssMb: Math.round(usage.peakRssMb * 10) / 10,
      cpuSeconds: usage.cpuSeconds,
      cpuUsPerRequest: answered > 0 ? (usage.cpuSeconds * 1e6) / answered : Number.NaN,
    },
  };
}
