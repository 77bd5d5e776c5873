/**
 * Dict suite (issue 4: dict userdb lookups ≥ 20,000/s): Dovecot 2.3 auth's
 * passdb/userdb lookups (`shared/passdb/<login>`, `shared/userdb/<login>`)
 * against verifyd's [verifyd.dovecot] dict on the internal snapshot, beside
 * the do-nothing dict server and core/net's server with a constant answer
 * (the socket layer alone), on the --users directory. Each generator
 * connection keeps its connection and sends lookups back to back; Dovecot's
 * own auth client opens one connection per lookup burst (idle_msecs=0), so
 * in production connection set-up adds to these figures.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { summarize } from "../lib/summary.js";
import { doNothingTarget } from "../targets/do-nothing.js";
import { verifydDictTarget } from "../targets/verifyd.js";
import { dictPool } from "../workload/pools.js";
import { runComparison } from "./comparison.js";
import { coreNetTarget } from "./socketmap.js";
import type { SuiteContext, SuiteResult } from "./suite.js";

const POOL_SIZE = 50_000;

export async function dictSuite(context: SuiteContext): Promise<SuiteResult> {
  const { options, work, log } = context;
  const startedAt = new Date().toISOString();
  const directory = await context.directory(options.users);
  const pools = { auth: join(work, "pool-dict.json") };
  writeFileSync(pools.auth, JSON.stringify(dictPool(directory.keys, POOL_SIZE, 9_001)));
  const outcome = await runComparison(
    [
      { target: doNothingTarget("dict", "unix", "auth") },
      {
        target: verifydDictTarget({
          snapshotPath: directory.internalSnapshotPath,
          knownLogin: directory.keys.logins[0]!,
          pool: "auth",
        }),
        row: "verifyd userdb/passdb",
      },
      { target: coreNetTarget("dict", "auth") },
    ],
    pools,
    options,
    work,
    options.concurrency,
    log,
  );
  return {
    suite: "dict",
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
    extra: { directory: { users: directory.users, groups: directory.groups }, poolSize: POOL_SIZE },
    notes: [
      `Requests: ${POOL_SIZE.toLocaleString("en-US")} lookups, 40% passdb and 60% userdb, logins drawn with Zipf popularity, 10% unknown users; hello \`H3 2 0 (empty user) auth\` as Dovecot 2.3.19 sends it.`,
      "Connections are kept open with lookups back to back; Dovecot's auth process reconnects per lookup burst, which these figures do not include.",
    ],
  };
}
