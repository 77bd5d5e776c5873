/**
 * Growth suite: how cost grows with what the daemons hold, each measured at
 * the highest --concurrency beside the ceiling of its protocol, all in one
 * sitting (every target started once, then measured in turn):
 *   verifyd  socketmap `recipient` lookups on snapshots of each
 *            --growth-users size;
 *   quotad   RCPT policy requests on the same snapshots, with a usage row
 *            per user written into its SQLite table before it starts, so
 *            lookups hit;
 *   policyd  RCPT policy requests on the policy suite's 10,000-user
 *            snapshot, with --growth-keys distinct rate-limit counters
 *            written into its SQLite write-behind file before it starts
 *            (bench/workload/prefill.ts);
 * with the start time (until the first answer) and idle RSS of each, and
 * the time and peak RSS of `emailng sync run` publishing each directory
 * from a private slapd (the job that must finish between two cron runs).
 */
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../../test/harness/process.js";
import { startSlapd } from "../../test/harness/slapd.js";
import { summarize } from "../lib/summary.js";
import { doNothingTarget } from "../targets/do-nothing.js";
import { POLICYD_RATE_RULES, policydTarget, quotadTarget } from "../targets/emailng-policy.js";
import { CLI_PATH } from "../targets/target.js";
import { verifydSocketmapTarget } from "../targets/verifyd.js";
import type { WorkloadDirectory } from "../workload/directory.js";
import { policyPool, socketmapPool } from "../workload/pools.js";
import {
  counterKeys,
  poolCounterKeys,
  prefillPolicydStore,
  prefillQuotadUsage,
} from "../workload/prefill.js";
import { type ComparisonRow, runComparison } from "./comparison.js";
import { POLICY_POOL_SEED, POLICY_POOL_SIZE, POLICY_USERS } from "./policy.js";
import type { SuiteContext, SuiteResult } from "./suite.js";

const POOL_SIZE = 50_000;
/** policyd's store holds what the run adds (greylisting, markers) beside the prefilled counters, without evicting. */
const STORE_HEADROOM = 1_000_000;

export interface QuotadPoint {
  users: number;
  target: string;
  usageRows: number;
  startMs: number | null;
  idleRssMb: number | null;
}

export interface PolicydPoint {
  keys: number;
  /** Distinct counters the request pool touches (all prefilled once keys reaches this). */
  poolKeys: number;
  target: string;
  storeBytes: number;
  prefillMs: number;
  startMs: number | null;
  idleRssMb: number | null;
}

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

const formatNumber = (value: number) => value.toLocaleString("en-US");

export async function growthSuite(context: SuiteContext): Promise<SuiteResult> {
  const { options, work, log } = context;
  const startedAt = new Date().toISOString();
  const connections = Math.max(...options.concurrency);
  const rows: ComparisonRow[] = [];
  const pools: Record<string, string> = {};
  const directories: Array<WorkloadDirectory & { target: string }> = [];
  const quotadRows: ComparisonRow[] = [];
  const quotadPoints: Array<Omit<QuotadPoint, "startMs" | "idleRssMb">> = [];
  for (const users of options.growthUsers) {
    const directory = await context.directory(users);
    const target = `verifyd ${formatNumber(users)} users`;
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

    const rcptPool = `rcpt-${users}`;
    pools[rcptPool] = join(work, `pool-rcpt-${users}.json`);
    writeFileSync(
      pools[rcptPool],
      JSON.stringify(policyPool(directory.keys, POLICY_POOL_SIZE, POLICY_POOL_SEED)),
    );
    const usagePath = join(work, `quotad-usage-${users}.sqlite`);
    const usernames = [...directory.keys.primaries, ...directory.keys.inactive];
    prefillQuotadUsage(usagePath, usernames, Date.now());
    const quotad = `quotad ${formatNumber(users)} users`;
    quotadPoints.push({ users: directory.users, target: quotad, usageRows: usernames.length });
    quotadRows.push({
      target: quotadTarget({
        name: quotad,
        snapshotPath: directory.snapshotPath,
        pool: rcptPool,
        probeRecipient: directory.keys.primaries[0]!,
        storePath: usagePath,
        detail: `${formatNumber(usernames.length)} usage rows, one per user (3% over every quota)`,
      }),
    });
  }

  const policyDirectory = await context.directory(POLICY_USERS);
  const policydPool = policyPool(policyDirectory.keys, POLICY_POOL_SIZE, POLICY_POOL_SEED);
  pools["rcpt-policyd"] = join(work, "pool-rcpt-policyd.json");
  writeFileSync(pools["rcpt-policyd"], JSON.stringify(policydPool));
  const poolKeys = poolCounterKeys(policydPool, POLICYD_RATE_RULES).size;
  const policydRows: ComparisonRow[] = [];
  const policydPoints: Array<Omit<PolicydPoint, "startMs" | "idleRssMb">> = [];
  for (const keys of options.growthKeys) {
    const storePath = join(work, `policyd-store-${keys}.sqlite`);
    const started = Date.now();
    prefillPolicydStore(storePath, counterKeys(policydPool, POLICYD_RATE_RULES, keys), Date.now());
    const prefillMs = Date.now() - started;
    const storeBytes = statSync(storePath).size;
    log(
      `  prefilled ${formatNumber(keys)} counters for policyd in ${prefillMs} ms (${(storeBytes / 1024 / 1024).toFixed(1)} MB)`,
    );
    const target = `policyd ${formatNumber(keys)} keys`;
    policydPoints.push({ keys, poolKeys, target, storeBytes, prefillMs });
    policydRows.push({
      target: policydTarget({
        name: target,
        snapshotPath: policyDirectory.snapshotPath,
        pool: "rcpt-policyd",
        probeRecipient: policyDirectory.keys.primaries[0]!,
        storePath,
        maxEntries: keys + STORE_HEADROOM,
        detail: `${formatNumber(keys)} rate-limit counters prefilled, max_entries ${formatNumber(keys + STORE_HEADROOM)}`,
      }),
    });
  }
  const policyCeiling = { ...doNothingTarget("policy", "unix", "rcpt-policyd"), name: "do-nothing (policy)" };
  rows.push({ target: policyCeiling }, ...quotadRows, ...policydRows);
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

  const started = (name: string) => {
    const target = outcome.targets.find((info) => info.name === name);
    return { startMs: target?.startMs ?? null, idleRssMb: target?.idleRssMb ?? null };
  };
  const points = directories.map((directory) => ({
    users: directory.users,
    groups: directory.groups,
    snapshotBytes: directory.snapshotBytes,
    target: directory.target,
    ...started(directory.target),
  }));
  const quotad: QuotadPoint[] = quotadPoints.map((point) => ({ ...point, ...started(point.target) }));
  const policyd: PolicydPoint[] = policydPoints.map((point) => ({ ...point, ...started(point.target) }));

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
    extra: { connections, points, sync, quotad, policyd, policydUsers: policyDirectory.users },
    notes: [
      `verifyd answers socketmap \`recipient\` lookups at ${connections} connections on each snapshot; the request mix is the socketmap suite's, drawn from each directory.`,
      "Start time is from process start until the first lookup answers OK (snapshot read, hash checked, indexes built); idle RSS is read 0.5 s later.",
      "sync run: `emailng sync run` (first publish, default Node heap) from a private slapd holding the same LDIF, wall time and peak RSS from GNU time.",
      `quotad answers the policy suite's RCPT requests (${formatNumber(POLICY_POOL_SIZE)}, drawn from each directory) at ${connections} connections on each snapshot, with a usage row per user (primary address, as \`dovecot_username = "primary_address"\`) written into its SQLite usage file before it starts: most mailboxes under 900 MiB, 3% at 5 GiB, over every quota the directory gives; set against the do-nothing policy server.`,
      `policyd answers the policy suite's RCPT requests on its ${formatNumber(policyDirectory.users)}-user snapshot at ${connections} connections, with N sliding-window counters of its two rate rules written into its SQLite write-behind file before it starts (exactly the rows it writes itself): first the ${formatNumber(poolKeys)} counters the requests touch, in the order they first touch them, then made-up logins and client addresses. Start time includes reading the file back. max_entries is raised to N + ${formatNumber(STORE_HEADROOM)} so nothing is evicted during the run.`,
    ],
  };
}
