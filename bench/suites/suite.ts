/**
 * What every suite gets and gives back. A suite writes nothing itself: the
 * runner stores its result in bench/results/<suite>.json and the report is
 * built from those files, so a suite run alone (--only) updates its part.
 */
import type { BenchOptions } from "../lib/args.js";
import type { Measurement } from "../lib/measure.js";
import type { SummaryRow } from "../lib/summary.js";
import type { WorkloadDirectory } from "../workload/directory.js";
import type { TargetInfo } from "./comparison.js";

export interface SuiteContext {
  options: BenchOptions;
  /** Private temporary directory of this suite. */
  work: string;
  /** A workload directory of this many generated users, built once per run and shared by suites. */
  directory(users: number): Promise<WorkloadDirectory>;
  log(line: string): void;
}

export interface SuiteResult {
  suite: string;
  startedAt: string;
  finishedAt: string;
  settings: Pick<BenchOptions, "durationMs" | "warmupMs" | "maxRequests" | "repetitions" | "concurrency">;
  targets: TargetInfo[];
  failures: Array<{ target: string; error: string }>;
  measurements: Measurement[];
  summary: SummaryRow[];
  /** Suite-specific figures (snapshot sizes, load times, postmap runs, growth points). */
  extra: Record<string, unknown>;
  /** What was measured and how, in sentences for the report. */
  notes: string[];
}
