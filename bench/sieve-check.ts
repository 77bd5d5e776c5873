/**
 * `npm run bench:sieve [-- --lines 10000 --runs 5 --calls 20]`: how long
 * `emailng sieve check` takes on a large script, beside Dovecot's own
 * compiler, sievec (dovecot-sieve, installed with apt-get when missing and
 * we are root).
 *
 * On a generated script of --lines lines (bench/workload/sieve-script.ts,
 * Pigeonhole's default extensions only) and on a 10-line one (what start-up
 * alone costs), each run interleaved, --runs times:
 *   - the whole command in a fresh process: `emailng sieve check` (compiled
 *     CLI) and `sievec` under GNU time (wall time from here, CPU user+sys
 *     and peak RSS from time);
 *   - checkScript alone in a fresh Node process (this file with --probe):
 *     the import of the checker, the CPU of its first, cold call, then the
 *     best of --calls warm calls in the same process.
 * Medians over the runs go to bench/results/sieve.json and a table.
 * Both tools must accept the script first, or nothing is timed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, removeTempDir, runCommand } from "../test/harness/process.js";
import { describeMachine, type RunInfo } from "./lib/machine.js";
import { median } from "./lib/stats.js";
import { textTable } from "./lib/table.js";
import { CLI_PATH, DIST_BENCH, REPOSITORY_ROOT } from "./targets/target.js";
import { generateSieveScript } from "./workload/sieve-script.js";

const SIEVEC = "/usr/bin/sievec";
const TIME = "/usr/bin/time";
const RESULTS = join(REPOSITORY_ROOT, "bench/results/sieve.json");

interface Flags {
  lines: number;
  runs: number;
  calls: number;
  probe: string | null;
}

const USAGE = "usage: node dist-bench/bench/sieve-check.js [--lines 10000] [--runs 5] [--calls 20]";

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = { lines: 10_000, runs: 5, calls: 20, probe: null };
  for (let index = 0; index < argv.length; index++) {
    const name = argv[index];
    const value = argv[++index];
    if (name === "--probe" && value !== undefined) {
      flags.probe = value;
      continue;
    }
    const number = Number(value);
    if (value === undefined || !/^\d+$/.test(value) || number < 1) throw new Error(`${name}: ${USAGE}`);
    if (name === "--lines") flags.lines = Math.max(10, number);
    else if (name === "--runs") flags.runs = number;
    else if (name === "--calls") flags.calls = number;
    else throw new Error(`unknown flag ${name}\n${USAGE}`);
  }
  return flags;
}

interface ProbeResult {
  importMs: number;
  coldCpuMs: number;
  coldWallMs: number;
  warmBestMs: number;
  warmMedianMs: number;
  valid: boolean;
}

/** --probe FILE: checkScript in this fresh process, cold then warm; prints JSON. */
async function probe(file: string, calls: number): Promise<void> {
  const bytes = readFileSync(file);
  const imported = performance.now();
  const { checkScript } = await import("../sieve-tools/check.js");
  const importMs = performance.now() - imported;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const first = checkScript(bytes);
  const coldWallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const warm: number[] = [];
  for (let call = 0; call < calls; call++) {
    const start = performance.now();
    checkScript(bytes);
    warm.push(performance.now() - start);
  }
  const result: ProbeResult = {
    importMs,
    coldCpuMs: (used.user + used.system) / 1000,
    coldWallMs,
    warmBestMs: Math.min(...warm),
    warmMedianMs: median(warm),
    valid: first.valid,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface CommandSample {
  wallMs: number;
  cpuMs: number;
  peakRssMb: number;
  code: number | null;
  stderr: string;
}

/** Runs a command under GNU time; wall time measured here (finer than time's 10 ms). */
async function timed(file: string, args: readonly string[]): Promise<CommandSample> {
  const started = performance.now();
  const run = await runCommand(TIME, ["-f", "TIME %e %U %S %M", file, ...args], { timeoutMs: 120_000 });
  const wallMs = performance.now() - started;
  const match = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(run.stderr);
  if (match === null) throw new Error(`no timing from ${file}: ${run.stderr.slice(-500)}`);
  return {
    wallMs,
    cpuMs: (Number(match[2]) + Number(match[3])) * 1000,
    peakRssMb: Number(match[4]) / 1024,
    code: run.code,
    stderr: run.stderr.replace(/TIME [^\n]*\s*$/, ""),
  };
}

/** sievec from dovecot-sieve: installed when missing and we may. */
function ensureSievec(): void {
  if (existsSync(SIEVEC)) return;
  if (process.getuid?.() !== 0) throw new Error(`${SIEVEC} is missing: apt-get install dovecot-sieve`);
  const install = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "dovecot-sieve"], {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (install.status !== 0 || !existsSync(SIEVEC))
    throw new Error(`apt-get install dovecot-sieve failed: ${install.stderr.slice(-1000)}`);
}

interface Row {
  what: string;
  samples: number[];
  cpuMs?: number[];
  peakRssMb?: number[];
}

const formatMs = (ms: number) =>
  Number.isFinite(ms) ? `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms` : "–";

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.probe !== null) return probe(flags.probe, flags.calls);
  ensureSievec();
  const work = makeTempDir("bench-sieve");
  try {
    const big = join(work, "large.sieve");
    const small = join(work, "small.sieve");
    writeFileSync(big, generateSieveScript(flags.lines));
    writeFileSync(small, generateSieveScript(10));
    const config = join(work, "emailng.toml");
    writeFileSync(config, "[sieve]\n");
    // A private dovecot.conf, so sievec reads nothing of the system's and needs no running Dovecot.
    const baseDir = join(work, "run");
    mkdirSync(baseDir);
    const dovecotConf = join(work, "dovecot.conf");
    writeFileSync(dovecotConf, `base_dir = ${baseDir}\nlog_path = /dev/stderr\n`);
    const emailng = (script: string) =>
      timed(process.execPath, [CLI_PATH, "sieve", "check", "--config", config, script]);
    const sievec = (script: string) =>
      timed(SIEVEC, [
        "-c",
        dovecotConf,
        script,
        join(work, `${script.endsWith("large.sieve") ? "large" : "small"}.svbin`),
      ]);
    const probeRun = async () => {
      const run = await runCommand(
        process.execPath,
        [join(DIST_BENCH, "sieve-check.js"), "--probe", big, "--calls", String(flags.calls)],
        { timeoutMs: 300_000 },
      );
      if (run.code !== 0) throw new Error(`probe failed: ${run.stderr.slice(-1000)}`);
      return JSON.parse(run.stdout) as ProbeResult;
    };

    for (const [name, check] of [
      ["emailng sieve check", emailng],
      ["sievec", sievec],
    ] as const) {
      const first = await check(big);
      if (first.code !== 0)
        throw new Error(`${name} refuses the generated script: ${first.stderr.slice(0, 2000)}`);
    }

    const rows = {
      emailngLarge: {
        what: `emailng sieve check, ${flags.lines.toLocaleString("en-US")} lines (whole command)`,
        samples: [],
        cpuMs: [],
        peakRssMb: [],
      } as Row,
      sievecLarge: {
        what: `sievec, ${flags.lines.toLocaleString("en-US")} lines (whole command)`,
        samples: [],
        cpuMs: [],
        peakRssMb: [],
      } as Row,
      emailngSmall: {
        what: "emailng sieve check, 10 lines (start-up)",
        samples: [],
        cpuMs: [],
        peakRssMb: [],
      } as Row,
      sievecSmall: { what: "sievec, 10 lines (start-up)", samples: [], cpuMs: [], peakRssMb: [] } as Row,
      importCheck: {
        what: "import of the checker (sieve-tools/check.js), fresh process",
        samples: [],
      } as Row,
      cold: { what: "checkScript, first call in a fresh process", samples: [], cpuMs: [] } as Row,
      warm: { what: `checkScript, warm: best of ${flags.calls} calls in one process`, samples: [] } as Row,
    };
    const add = (row: Row, sample: CommandSample) => {
      if (sample.code !== 0)
        throw new Error(`${row.what}: exit ${sample.code}: ${sample.stderr.slice(0, 500)}`);
      row.samples.push(sample.wallMs);
      row.cpuMs?.push(sample.cpuMs);
      row.peakRssMb?.push(sample.peakRssMb);
    };
    for (let run = 1; run <= flags.runs; run++) {
      add(rows.emailngLarge, await emailng(big));
      add(rows.sievecLarge, await sievec(big));
      add(rows.emailngSmall, await emailng(small));
      add(rows.sievecSmall, await sievec(small));
      const probed = await probeRun();
      if (!probed.valid) throw new Error("checkScript refuses the generated script");
      rows.importCheck.samples.push(probed.importMs);
      rows.cold.samples.push(probed.coldWallMs);
      rows.cold.cpuMs?.push(probed.coldCpuMs);
      rows.warm.samples.push(probed.warmBestMs);
      console.log(`run ${run}/${flags.runs} done`);
    }
    const run: RunInfo = {
      machine: describeMachine(),
      command: `npm run bench:sieve${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
      date: new Date().toISOString(),
    };
    const summary = Object.values(rows).map((row) => ({
      what: row.what,
      medianMs: median(row.samples),
      medianCpuMs: row.cpuMs === undefined ? null : median(row.cpuMs),
      medianPeakRssMb: row.peakRssMb === undefined ? null : median(row.peakRssMb),
      samplesMs: row.samples.map((value) => Math.round(value * 100) / 100),
    }));
    const bytes = readFileSync(big).length;
    mkdirSync(join(REPOSITORY_ROOT, "bench/results"), { recursive: true });
    writeFileSync(
      RESULTS,
      `${JSON.stringify({ run, script: { lines: flags.lines, bytes }, runs: flags.runs, calls: flags.calls, summary }, null, 2)}\n`,
    );
    console.log(
      `\n${run.machine.cpuModel}, ${run.machine.cores} cores, Node ${run.machine.node}, load ${run.machine.loadAverageAtStart}; script ${flags.lines.toLocaleString("en-US")} lines, ${(bytes / 1024).toFixed(0)} KiB; medians of ${flags.runs}\n`,
    );
    console.log(
      textTable(
        ["what", "wall (median)", "CPU user+sys", "peak RSS"],
        summary.map((row) => [
          row.what,
          formatMs(row.medianMs),
          row.medianCpuMs === null ? "" : formatMs(row.medianCpuMs),
          row.medianPeakRssMb === null ? "" : `${row.medianPeakRssMb.toFixed(0)} MB`,
        ]),
      ),
    );
    console.log("\nwritten to bench/results/sieve.json");
  } finally {
    removeTempDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
