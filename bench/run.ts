/**
 * `npm run bench [-- flags]`: the performance report of issue 9.
 *
 * Runs the suites (socketmap, dict, policy, growth; --only picks some), each
 * starting its servers as child processes and measuring them with load
 * generator processes, prints a table per suite, writes
 * bench/results/<suite>.json and then docs/performance.md from every result
 * file present (so a suite run alone refreshes its own section). Anchors
 * from Debian's packages are installed with apt-get when missing and we are
 * root. Every measurement is bounded in time and count; servers listen on
 * UNIX sockets or 127.0.0.1 only. `--help` lists the flags.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, removeTempDir } from "../test/harness/process.js";
import { parseBenchArgs, SUITES, type SuiteName, USAGE } from "./lib/args.js";
import { describeMachine, type RunInfo } from "./lib/machine.js";
import { formatCount, formatMicros, formatPercent } from "./lib/stats.js";
import type { SummaryRow } from "./lib/summary.js";
import { textTable } from "./lib/table.js";
import { type ReportInput, renderReport } from "./report/performance-report.js";
import { dictSuite } from "./suites/dict.js";
import { growthSuite } from "./suites/growth.js";
import { policySuite } from "./suites/policy.js";
import { socketmapSuite } from "./suites/socketmap.js";
import type { SuiteContext, SuiteResult } from "./suites/suite.js";
import { REPOSITORY_ROOT } from "./targets/target.js";
import { buildWorkloadDirectory, type WorkloadDirectory } from "./workload/directory.js";

export const RESULTS_DIR = join(REPOSITORY_ROOT, "bench/results");

const SUITE_RUNNERS: Partial<Record<SuiteName, (context: SuiteContext) => Promise<SuiteResult>>> = {
  socketmap: socketmapSuite,
  dict: dictSuite,
  policy: policySuite,
  growth: growthSuite,
};

/** Rewrites docs/performance.md and bench/results/charts/ from every result file present. */
export function writeReport(): string {
  const input: ReportInput = {};
  for (const suite of SUITES) {
    const result = readSuiteResult(suite);
    if (result !== undefined) input[suite] = result;
  }
  const profileDir = join(RESULTS_DIR, "profile");
  for (const protocol of ["socketmap", "dict"]) {
    try {
      const text = readFileSync(join(profileDir, `verifyd-${protocol}-profile.txt`), "utf8");
      input.profiles = { ...input.profiles, [protocol]: text };
    } catch {
      // not profiled
    }
  }
  const report = renderReport(input);
  const chartsDir = join(RESULTS_DIR, "charts");
  mkdirSync(chartsDir, { recursive: true });
  for (const [name, svg] of Object.entries(report.charts)) writeFileSync(join(chartsDir, name), svg);
  mkdirSync(join(REPOSITORY_ROOT, "docs"), { recursive: true });
  const path = join(REPOSITORY_ROOT, "docs/performance.md");
  writeFileSync(path, report.markdown);
  return path;
}

export function summaryTable(rows: readonly SummaryRow[]): string {
  return textTable(
    [
      "target",
      "conns",
      "req/s",
      "min–max",
      "of ceiling",
      "p50",
      "p99",
      "p99.9",
      "RSS MB",
      "CPU/req",
      "errors",
    ],
    rows.map((row) => [
      row.row,
      String(row.connections),
      formatCount(row.requestsPerSecond),
      `${formatCount(row.requestsPerSecondMin)}–${formatCount(row.requestsPerSecondMax)}`,
      row.role === "ceiling" ? "ceiling" : formatPercent(row.ratioToCeiling),
      formatMicros(row.p50Us),
      formatMicros(row.p99Us),
      formatMicros(row.p999Us),
      row.maxRssMb.toFixed(0),
      formatMicros(row.cpuUsPerRequest),
      String(row.errors),
    ]),
  );
}

async function main(): Promise<void> {
  const parsed = parseBenchArgs(process.argv.slice(2));
  if (!parsed.ok) {
    console.error(parsed.error);
    process.exit(2);
  }
  const { options } = parsed;
  if (options.help) {
    console.log(USAGE);
    return;
  }
  if (options.reportOnly) {
    console.log(`report written to ${writeReport()}`);
    return;
  }
  const run: RunInfo = {
    machine: describeMachine(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    date: new Date().toISOString(),
  };
  console.log(
    `${run.machine.cpuModel}, ${run.machine.cores} cores, ${run.machine.os}, Node ${run.machine.node}, load ${run.machine.loadAverageAtStart}`,
  );
  const work = makeTempDir("bench");
  const directories = new Map<number, Promise<WorkloadDirectory>>();
  const directory = (users: number) => {
    let built = directories.get(users);
    if (built === undefined) {
      console.log(`building a directory of ${users.toLocaleString("en-US")} users …`);
      built = buildWorkloadDirectory(work, users);
      directories.set(users, built);
    }
    return built;
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  let failed = false;
  try {
    for (const suite of options.suites) {
      const runner = SUITE_RUNNERS[suite];
      if (runner === undefined) {
        console.log(`\n== ${suite}: not built yet, skipped`);
        continue;
      }
      console.log(`\n== ${suite}`);
      const suiteWork = join(work, suite);
      mkdirSync(suiteWork, { recursive: true });
      try {
        const result = await runner({
          options,
          work: suiteWork,
          directory,
          log: (line) => console.log(line),
        });
        writeFileSync(join(RESULTS_DIR, `${suite}.json`), `${JSON.stringify({ run, ...result }, null, 2)}\n`);
        console.log(`\n${summaryTable(result.summary)}`);
        for (const failure of result.failures)
          console.log(`NOT MEASURED ${failure.target}: ${failure.error}`);
        console.log(`written to bench/results/${suite}.json`);
      } catch (error) {
        failed = true;
        console.error(`suite ${suite} failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    removeTempDir(work);
  }
  if (options.report) console.log(`\nreport written to ${writeReport()}`);
  if (failed) process.exitCode = 1;
}

/** Reads bench/results/<suite>.json if a run left one. */
export function readSuiteResult(suite: SuiteName): (SuiteResult & { run: RunInfo }) | undefined {
  try {
    return JSON.parse(readFileSync(join(RESULTS_DIR, `${suite}.json`), "utf8")) as SuiteResult & {
      run: RunInfo;
    };
  } catch {
    return undefined;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
