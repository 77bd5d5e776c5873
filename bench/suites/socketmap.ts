/**
 * Socketmap suite (issue 4 "Performance", issue 9): on one directory of
 * --users people, side by side at each concurrency —
 *   do-nothing   the ceiling (UNIX socket, constant `OK DUNNO`);
 *   verifyd      `recipient` lookups (relay_recipient_maps) and `alias`
 *                lookups (virtual_alias_maps) of the same addresses;
 *   slapd        the same addresses searched in LDAP (ldapts), and Postfix's
 *                own ldap_table through `postmap -q -` processes;
 *   core/net     emailng's socket server with a constant answer
 *                (bench/servers/core-net-server.ts): the socket layer's share
 *                of verifyd's cost, between the ceiling and verifyd.
 * Targets from issue 4: verifyd ≥ 80% of the ceiling at 50 connections,
 * p99 ≤ 2 ms, RSS ≤ 150 MB with 100,000 users.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { median } from "../lib/stats.js";
import { summarize } from "../lib/summary.js";
import type { LoadProtocol } from "../load/generate.js";
import { startChildServer } from "../targets/child-server.js";
import { doNothingTarget } from "../targets/do-nothing.js";
import { installDebianAnchors } from "../targets/policy-anchors.js";
import { type PostmapRun, postmapLdapRun, slapdAnchor } from "../targets/slapd.js";
import { DIST_BENCH, type TargetDescriptor } from "../targets/target.js";
import { verifydSocketmapTarget } from "../targets/verifyd.js";
import { socketmapPool } from "../workload/pools.js";
import { runComparison } from "./comparison.js";
import type { SuiteContext, SuiteResult } from "./suite.js";

export const SOCKETMAP_POOL_SIZE = 50_000;

/** core/net's protocol server answering a constant (also used by the dict suite). */
export function coreNetTarget(
  protocol: Extract<LoadProtocol, "socketmap" | "dict">,
  pool: string,
): TargetDescriptor {
  return {
    name: "core/net, constant answer",
    description: `emailng's protocol server (core/net, metrics observer on) on a UNIX socket, every ${protocol} request answered with the do-nothing server's reply`,
    role: "anchor",
    protocol,
    transport: "unix",
    pool,
    start: ({ work }) => {
      const path = join(work, `core-net-${protocol}.sock`);
      return startChildServer({
        name: `core/net ${protocol} server`,
        file: process.execPath,
        args: [join(DIST_BENCH, "servers/core-net-server.js"), "--protocol", protocol, "--unix", path],
        logPath: join(work, `core-net-${protocol}.log`),
        endpoint: { path },
        ...(protocol === "dict" ? { spec: { dictName: "auth" } } : {}),
      });
    },
  };
}
const POOL_SEED = 4_2001;

export async function socketmapSuite(context: SuiteContext): Promise<SuiteResult> {
  const { options, work, log } = context;
  const startedAt = new Date().toISOString();
  // postmap's ldap: table type lives in its own Debian package.
  log(`  ${await installDebianAnchors(["postfix", "postfix-ldap", "slapd", "ldap-utils"])}`);
  const directory = await context.directory(options.users);
  const recipientPool = socketmapPool(directory.keys, "recipient", SOCKETMAP_POOL_SIZE, POOL_SEED);
  const pools = {
    recipient: join(work, "pool-recipient.json"),
    alias: join(work, "pool-alias.json"),
  };
  writeFileSync(pools.recipient, JSON.stringify(recipientPool));
  writeFileSync(pools.alias, JSON.stringify(recipientPool.map((item) => ({ map: "alias", key: item.key }))));

  const ceiling = doNothingTarget("socketmap", "unix", "recipient");
  const verifyd = verifydSocketmapTarget({
    snapshotPath: directory.snapshotPath,
    knownAddress: directory.keys.primaries[0]!,
    pool: "recipient",
  });
  const anchor = slapdAnchor(directory.ldifPath, directory.users, "recipient");
  const postmapRuns: Array<PostmapRun & { repetition: number }> = [];
  const postmapKeys = recipientPool
    .map((item) => item.key)
    .slice(
      0,
      Math.min(SOCKETMAP_POOL_SIZE, Math.max(2_000, Math.round((options.durationMs / 1000) * 4_000))),
    );

  const outcome = await runComparison(
    [
      { target: ceiling },
      { target: verifyd, row: "verifyd recipient" },
      { target: verifyd, row: "verifyd alias", poolFile: pools.alias },
      { target: coreNetTarget("socketmap", "recipient") },
      { target: anchor.descriptor },
    ],
    pools,
    options,
    work,
    options.concurrency,
    log,
    async (connections, repetition) => {
      const slapd = anchor.slapd();
      if (slapd === undefined) return;
      const run = await postmapLdapRun(slapd, work, postmapKeys, connections);
      postmapRuns.push({ ...run, repetition });
      log(
        `  [${repetition}/${options.repetitions}] postmap -q - ldap: × ${connections}: ${Math.round(run.requestsPerSecond).toLocaleString("en-US")}/s (${run.keys} keys in ${run.seconds.toFixed(2)} s, ${run.found} found)`,
      );
    },
  );

  const postmapSummary = options.concurrency.map((connections) => {
    const runs = postmapRuns.filter((run) => run.processes === connections);
    return {
      processes: connections,
      requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
      keys: runs[0]?.keys ?? 0,
      repetitions: runs.length,
    };
  });

  return {
    suite: "socketmap",
    startedAt,
    finishedAt: new Date().toISOString(),
    settings: {
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      maxRequests: options.maxRequests,
      repetitions: options.repetitions,
      concurrency: options.concurrency,
    },
    targets: outcome.targets,
    failures: outcome.failures,
    measurements: outcome.measurements,
    summary: summarize(outcome.measurements),
    extra: {
      directory: {
        users: directory.users,
        groups: directory.groups,
        snapshotBytes: directory.snapshotBytes,
        buildMs: directory.buildMs,
      },
      poolSize: SOCKETMAP_POOL_SIZE,
      postmap: { runs: postmapRuns, summary: postmapSummary },
    },
    notes: [
      `Directory: the sample directory plus ${options.users.toLocaleString("en-US")} generated people and ${Math.round(options.users / 20).toLocaleString("en-US")} groups of 50 (test/harness/directory-ldif.ts), relay-view snapshot written by core/directory/snapshot-store.ts; slapd loads the same LDIF.`,
      `Requests: ${SOCKETMAP_POOL_SIZE.toLocaleString("en-US")} addresses drawn with Zipf popularity (exponent 1): 50% primary addresses, 15% lastname.firstname, 5% +extension, 5% lists, 2% inactive users, 18% unknown local addresses, 5% other domains.`,
      "verifyd alias asks virtual_alias_maps for the same addresses (group replies carry their member addresses).",
      "slapd (ldapts) sends each address once as the key; Postfix's ldap_table would also retry a +extension address without it and skip other domains when `domain` is set, so its real load differs slightly.",
      "postmap -q - runs as many processes as connections, each with its own LDAP connection, and reads its share of the first keys of the same pool; its figure is keys / wall time including process start and bind.",
    ],
  };
}
