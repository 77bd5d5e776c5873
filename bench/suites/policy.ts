/**
 * Policy delegation suite (issue 9): Postfix-style RCPT requests (all 29
 * attributes, varied senders, recipients, client addresses and SASL users)
 * against the do-nothing policy server (on a UNIX socket and on 127.0.0.1,
 * so each service is set against the ceiling on its own transport) and the
 * services a site would deploy from Debian: postfwd, postgrey,
 * policyd-rate-limit and Dovecot's quota-status.
 *
 * emailng's own policyd and quotad are the descriptors in
 * EMAILNG_POLICY_TARGETS (bench/targets/emailng-policy.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { summarize } from "../lib/summary.js";
import { doNothingTarget } from "../targets/do-nothing.js";
import { type EmailngPolicyOptions, policydTarget, quotadTarget } from "../targets/emailng-policy.js";
import {
  installDebianAnchors,
  policydRateLimitTarget,
  postfwdTarget,
  postgreyTarget,
  quotaStatusTarget,
} from "../targets/policy-anchors.js";
import type { TargetDescriptor } from "../targets/target.js";
import { policyPool } from "../workload/pools.js";
import { runComparison } from "./comparison.js";
import type { SuiteContext, SuiteResult } from "./suite.js";

/** RCPT requests in the pool (the growth suite draws its policy pools the same way). */
export const POLICY_POOL_SIZE = 20_000;
export const POLICY_POOL_SEED = 7_001;
/** Generated users of the snapshot policyd and quotad read here (and policyd in the growth suite). */
export const POLICY_USERS = 10_000;
const POOL_SIZE = POLICY_POOL_SIZE;

/** emailng's policy daemons, as descriptors (see bench/README.md, "Adding a target"). */
export const EMAILNG_POLICY_TARGETS: Array<(options: EmailngPolicyOptions) => TargetDescriptor> = [
  policydTarget,
  quotadTarget,
];

export async function policySuite(context: SuiteContext): Promise<SuiteResult> {
  const { options, work, log } = context;
  const startedAt = new Date().toISOString();
  log(`  ${await installDebianAnchors()}`);
  const directory = await context.directory(POLICY_USERS);
  const keys = directory.keys;
  const pools = { rcpt: join(work, "pool-policy.json") };
  writeFileSync(pools.rcpt, JSON.stringify(policyPool(keys, POOL_SIZE, POLICY_POOL_SEED)));
  const probe = keys.primaries[0]!;
  const targets: TargetDescriptor[] = [
    doNothingTarget("policy", "unix", "rcpt"),
    doNothingTarget("policy", "tcp", "rcpt"),
    ...EMAILNG_POLICY_TARGETS.map((make) =>
      make({ snapshotPath: directory.snapshotPath, pool: "rcpt", probeRecipient: probe }),
    ),
    postfwdTarget("rcpt", probe),
    postgreyTarget("rcpt", probe),
    policydRateLimitTarget("rcpt", probe),
    quotaStatusTarget("rcpt", keys.primaries),
  ];
  const outcome = await runComparison(
    targets.map((target) => ({ target })),
    pools,
    options,
    work,
    options.concurrency,
    log,
  );
  return {
    suite: "policy",
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
    extra: { poolSize: POOL_SIZE, users: POLICY_USERS },
    notes: [
      `Requests: ${POOL_SIZE.toLocaleString("en-US")} RCPT-state requests with Postfix 3.7's 29 attributes: 25% authenticated submissions (sasl_username, internal client, the user's own sender), 75% inbound from 5,000 client addresses and 20,000 senders (Zipf), recipients from the socketmap suite's mix over the sample directory plus ${POLICY_USERS.toLocaleString("en-US")} generated users (policyd and quotad read its relay snapshot).`,
      "Stateful services change their answers as the run goes on (postgrey defers new triplets and learns; rate limits start refusing); the answer counts show what each did.",
      "postfwd2 detaches from the process that starts it and closed most connections after a reply in our runs: those closes are counted as errors (the generator reconnects at once, where Postfix would first wait its retry_delay of 1 s), and its RSS and CPU could not be followed once its processes left the PID in its pid file (shown as –).",
      "postfwd and postgrey listen on TCP only here and are set against the do-nothing server on 127.0.0.1; the others against the one on a UNIX socket.",
      "quota-status runs with client_limit = 1 as Dovecot documents: one process per connection, all counted in its RSS.",
      "quotad's usage table is empty (no Dovecot feeds it during the run), so it answers from quotas alone; quota-status reads the (empty) mailboxes' usage through Dovecot.",
    ],
  };
}
