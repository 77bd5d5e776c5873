/**
 * Growth suite: how verifyd's cost grows with the directory — throughput,
 * p99 and RSS of socketmap `recipient` lookups at the highest --concurrency
 * on snapshots of each --growth-users size (beside the ceiling, measured in
 * the same sitting), the time and idle RSS of loading each snapshot, and the
 * time and peak RSS of `emailng sync run` publishing each directory from a
 * private slapd (the job that must finish between two cron runs).
 * quotad (usage table size) and policyd (distinct counter keys) get rows
 * here once their daemons can be started: see bench/README.md.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../../test/harness/process.js";
import { startSlapd } from "../../test/harness/slapd.js";
import { summarize } from "../lib/summary.js";
import { doNothingTarget } from "../targets/do-nothing.js";
import { CLI_PATH } from "../targets/target.js";
import { verifydSocketmapTarget } from "../targets/verifyd.js";
import type { WorkloadDirectory } from "../workload/directory.js";
import { socketmapPool } from "../workload/pools.js";
import { type ComparisonRow, runComparison } from "./comparison.js";
import type { SuiteContext, SuiteResult } from "./suite.js";

const POOL_SIZE = 50_000;

export interface SyncPoint {
  users: number;
  seconds: number;
  peakRssMb: number;
  slapaddSeconds: number;
}

/** Publishes the directory from a private slapd with `emailng sync run` under GNU time. */
async function timeSync(directory: WorkloadDirectory, work: string): Promise<SyncPoint> {
  const slapd = await startSlapd({ ldif: [directory.ldifPath], logLevel: "none", startTimeoutMs: 900_000 });
  try {
    const passwordFile = join(work, `bind-password-${directory.users}`);
    writeFileSync(passwordFile, `${slapd.readerPassword}\n`, { mode: 0o600 });
    const configPath = join(work, `sync-${directory.users}.toml`);
    writeFileSync(
      configPath,
      [
        "[log]",
        'level = "warn"',
        "[ldap]",
        `urls = ["${slapd.url}"]`,
        `bind_dn = "${slapd.readerDn}"`,
        `bind_password_file = "${passwordFile}"`,
        `base_dn = "${slapd.baseDn}"`,
        'timeout = "60s"',
        "page_size = 1000",
        "[snapshot]",
        `path = "${join(work, `synced-${directory.users}.sqlite`)}"`,
        "[directory]",
        'primary_domain = "cs.example.org"',
        'alias_domains = ["example.org"]',
        "[sync]",
        `lock_file = "${join(work, `sync-${directory.users}.lock`)}"`,
        "",
      ].join("\n"),
    );
    const run = await runCommand(
      "/usr/bin/time",
      ["-f", "TIME %e %M", process.execPath, CLI_PATH, "sync", "run", "--config", configPath],
      { timeoutMs: 900_000 },
    );
    const timing = /TIME ([\d.]+) (\d+)\s*$/.exec(run.stderr);
    if (run.code !== 0 || timing === null)
      throw new Error(`sync run failed (${run.code}): ${run.stderr.slice(-1000)}`);
    return {
      users: directory.users,
      seconds: Number(timing[1]),
      peakRssMb: Math.round(Number(timing[2]) / 1024),
      slapaddSeconds: slapd.loadMs / 1000,
    };
  } finally {
    await slapd.destroy();
  }
}

export async function growthSuite(context: SuiteContext): Promise<SuiteResult> {
  const { options, work, log } = context;
  const startedAt = new Date().toISOString();
  const connections = Math.max(...options.concurrency);
  const rows: ComparisonRow[] = [];
  const pools: Record<string, string> = {};
  const directories: Array<WorkloadDirectory & { target: string }> = [];
  for (const users of options.growthUsers) {
    const directory = await context.directory(users);
    const target = `verifyd ${users.toLocaleString("en-US")} users`;
    directories.push({ ...directory, target });
    const pool = `recipient-${users}`;
    pools[pool] = join(work, `pool-${users}.json`);
    writeFileSync(pools[pool], JSON.stringify(socketmapPool(directory.keys, "recipient", POOL_SIZE, 4_2001)));
    if (rows.length === 0) rows.push({ target: doNothingTarget("socketmap", "unix", pool) });
    rows.push({
      target: verifydSocketmapTarget({
        name: target,
        snapshotPath: directory.snapshotPath,
        knownAddress: directory.keys.primaries[0]!,
        pool,
      }),
    });
  }
  const outcome = await runComparison(rows, pools, options, work, [connections], log);

  const sync: SyncPoint[] = [];
  const syncFailures: string[] = [];
  for (const directory of directories) {
    try {
      const point = await timeSync(directory, work);
      sync.push(point);
      log(
        `  sync run, ${directory.users.toLocaleString("en-US")} users: ${point.seconds} s, peak RSS ${point.peakRssMb} MB`,
      );
    } catch (error) {
      syncFailures.push(`${directory.users} users: ${(error as Error).message.split("\n")[0]}`);
      log(`  sync run, ${directory.users} users failed: ${(error as Error).message}`);
    }
  }

  const points = directories.map((directory) => {
    const target = outcome.targets.find((info) => info.name === directory.target);
    return {
      users: directory.users,
      groups: directory.groups,
      snapshotBytes: directory.snapshotBytes,
      target: directory.target,
      startMs: target?.startMs ?? null,
      idleRssMb: target?.idleRssMb ?? null,
    };
  });

  return {
    suite: "growth",
    startedAt,
    finishedAt: new Date().toISOString(),
    settings: {
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      maxRequests: options.maxRequests,
      repetitions: options.repetitions,
      concurrency: [connections],
    },
    targets: outcome.targets,
    failures: [...outcome.failures, ...syncFailures.map((error) => ({ target: "sync run", error }))],
    measurements: outcome.measurements,
    summary: summarize(outcome.measurements),
    extra: { connections, points, sync },
    notes: [
      `verifyd answers socketmap \`recipient\` lookups at ${connections} connections on each snapshot; the request mix is the socketmap suite's, drawn from each directory.`,
      "Start time is from process start until the first lookup answers OK (snapshot read, hash checked, indexes built); idle RSS is read 0.5 s later.",
      "sync run: `emailng sync run` (first publish, default Node heap) from a private slapd holding the same LDIF, wall time and peak RSS from GNU time.",
    ],
  };
}
