/**
 * NAME
 *   quotad — over-quota rejection at the relay, through aliases, forwards
 *   and groups, answered like Dovecot's quota-status and fed live by
 *   Dovecot's quota_clone plugin
 *
 * SUMMARY
 *   emailng quotad [--config FILE]
 *   emailng quota import [FILE] | quota report [--json] | quota explain ADDRESS
 *
 * PROTOCOL
 *   Postfix policy delegation (check_policy_service), quota-status style:
 *     C: request=smtpd_access_policy LF protocol_state=RCPT LF
 *        recipient=george.papadopoulos@cs.example.org LF size=5000 LF LF
 *     S: action=552 5.2.2 Mailbox is full LF LF
 *   RCPT checks the recipient with the size MAIL FROM announced (0 without
 *   SIZE=: only full mailboxes are refused); END-OF-MESSAGE checks with the
 *   real size, the one recipient, or every recipient of the transaction
 *   (several_recipients). Replies ([quotad.replies]): success (DUNNO),
 *   over_quota, too_large, not_ours (DUNNO: existence is verifyd's job),
 *   unavailable (DUNNO or temporary); other protocol states and requests
 *   without a recipient get DUNNO. A request that cannot be parsed closes
 *   the connection (Postfix applies its default action).
 *
 *   Dovecot dict proxy protocol ([quotad.feed] listen), quota_clone writes
 *   from Dovecot 2.3 (H3) and 2.4 (H4):
 *     C: H3 TAB 2 TAB 0 TAB TAB quotaclone LF B1 TAB gpapadop LF
 *        S1 TAB priv/quota/storage TAB 1205 LF S1 TAB priv/quota/messages TAB 1 LF C1 LF
 *     S: O1 LF
 *   A malformed transaction is answered F<id> and changes nothing.
 *
 * SECURITY
 *   Runs as its own user. Reads the directory snapshot read-only (the
 *   relay view is enough: quotas, addresses, groups). Writes only its usage
 *   file (mode 0640) or Redis keys under usage.redis_key_prefix. Listens on
 *   UNIX sockets (policy: group postfix; feed: the group of Dovecot's mail
 *   processes, since quota_clone writes from lmtp/imap as the mail user) or
 *   on TCP with an allow-list (Dovecot's proxy dict only speaks UNIX). The
 *   policy answer reveals only whether a mailbox is full.
 *
 * CONFIGURATION (deploy/emailng.example.toml)
 *   [quotad] listen (may be [] on a back-end that only takes the feed),
 *   max_connections (1000), request_timeout (10 s),
 *   idle_timeout (330 s), default_limit (0 = unlimited), grace (10%),
 *   usage_max_age (7 d), dovecot_username (login), group_policy (all),
 *   several_recipients (accept), snapshot_check_interval (2 s),
 *   metrics.listen; [quotad.replies] success, over_quota, too_large,
 *   not_ours, unavailable; [quotad.usage] backend (sqlite), path,
 *   check_interval (2 s), redis_key_prefix ("quota/"); [quotad.feed]
 *   listen (none), dict_name (quotaclone), max_connections (200),
 *   request_timeout (5 s), idle_timeout (60 s); [snapshot] path, max_age;
 *   [directory] recipient_delimiter, max_expansion, max_depth; [redis].
 *
 * DIAGNOSTICS
 *   pino JSON on standard output: refusals and "cannot check quota" at
 *   info; snapshot or store trouble, malformed requests and refused dict
 *   transactions at warn (once per connection and kind); every answer at
 *   debug. Metrics: emailng_quotad_decisions_total{decision},
 *   emailng_quotad_usage_updates_total{outcome},
 *   emailng_quotad_usage_update_seconds, emailng_quotad_usage_records,
 *   emailng_snapshot_{version,age_seconds,fresh}, plus core/net's
 *   emailng_requests_* series for both listeners. SIGHUP re-reads the
 *   snapshot and the usage file now; SIGTERM/SIGINT stop after in-flight
 *   requests.
 *
 * LIMITS
 *   Policy lines over 2 KiB, more than 128 attributes or 32 KiB per request
 *   close the connection. Dict lines over 64 KiB close the connection; at
 *   most 8 open transactions and 16 changes per transaction. Never refuses
 *   on usage older than usage_max_age, without a limit, or when the
 *   directory or the store is unavailable.
 */
import type { Logger } from "pino";
import type { ProgramDefinition } from "../cli/programs.js";
import { toListenerSpec } from "../core/config/listener-config.js";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { LiveSnapshot } from "../core/directory/live-snapshot.js";
import { createLogger } from "../core/log/logger.js";
import { type MetricsServer, startMetricsServer } from "../core/metrics/http.js";
import { createDaemonMetrics } from "../core/metrics/registry.js";
import { registerSnapshotGauges } from "../core/metrics/snapshot-gauges.js";
import type { BoundAddress } from "../core/net/listeners.js";
import { dictProtocol, policyProtocol } from "../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../core/net/server.js";
import { installShutdownHandlers } from "../core/net/signals.js";
import { QUOTA_COMMANDS } from "./commands.js";
import type { QuotaDecisionKind } from "./decision.js";
import { quotaFeedSessions } from "./feed-session.js";
import { quotaPolicySessions } from "./policy-session.js";
import { repliesFromConfig } from "./replies.js";
import {
  type OpenedUsageStore,
  openUsageStore,
  quotaSettingsFromConfig,
  resolverOptionsFromConfig,
} from "./settings.js";

export interface Quotad {
  readonly snapshot: LiveSnapshot;
  readonly usage: OpenedUsageStore;
  /** The policy listeners as bound (port 0 resolved). */
  addresses(): BoundAddress[];
  /** The dict feed listeners as bound; empty when [quotad.feed] listen is. */
  feedAddresses(): BoundAddress[];
  readonly metricsAddress: { host: string; port: number } | null;
  /** SIGHUP: snapshot and usage file now; rejects when the snapshot cannot be loaded. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export interface StartQuotadOptions {
  /** Collect prom-client's process metrics (default true; tests running several daemons turn it off). */
  processMetrics?: boolean;
  /** ms since the epoch; tests pass a fake clock. */
  now?: () => number;
}

const DECISIONS: readonly QuotaDecisionKind[] = [
  "fits",
  "over-quota",
  "too-large",
  "not-ours",
  "not-checked",
  "unavailable",
];

export async function startQuotad(
  config: DeepReadonly<Config>,
  log: Logger,
  options: StartQuotadOptions = {},
): Promise<Quotad> {
  const settings = config.quotad;
  const now = options.now ?? Date.now;
  const metrics = createDaemonMetrics("quotad", { processMetrics: options.processMetrics ?? true });
  const decisions = metrics.counter({
    name: "emailng_quotad_decisions_total",
    help: "Policy requests answered, by decision (fits, over-quota, too-large, not-ours, not-checked, unavailable).",
    labelNames: ["decision"],
  });
  for (const decision of DECISIONS) decisions.inc({ decision }, 0);
  const updates = metrics.counter({
    name: "emailng_quotad_usage_updates_total",
    help: "quota_clone commits: applied, refused (malformed, usage unchanged) or failed (store unavailable).",
    labelNames: ["outcome"],
  });
  for (const outcome of ["applied", "refused", "failed"]) updates.inc({ outcome }, 0);
  const updateSeconds = metrics.histogram({
    name: "emailng_quotad_usage_update_seconds",
    help: "Time to apply one quota_clone commit to the usage store.",
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
  });

  const usage = await openUsageStore(config, "emailng-quotad");
  metrics.gauge({
    name: "emailng_quotad_usage_records",
    help: "Users with a usage record in the SQLite store (-1 with Redis, which is not counted).",
    collect() {
      this.set(usage.sqlite?.size ?? -1);
    },
  });

  const snapshot = new LiveSnapshot({
    path: config.snapshot.path,
    maxAgeMs: config.snapshot.max_age,
    checkIntervalMs: settings.snapshot_check_interval,
    resolverOptions: resolverOptionsFromConfig(config),
    log: log.child({ component: "snapshot" }),
    now,
  });
  registerSnapshotGauges(metrics, snapshot, "answers are 'unavailable'");
  snapshot.start();

  const refreshUsage = () => {
    try {
      if (usage.sqlite?.refresh() === true) {
        log.info({ records: usage.sqlite.size }, "usage file changed by another writer; reloaded");
      }
    } catch (error) {
      log.error({ err: error }, "usage file could not be re-read; keeping the records in memory");
    }
  };
  const usageTimer =
    usage.sqlite === undefined ? undefined : setInterval(refreshUsage, settings.usage.check_interval);
  usageTimer?.unref();

  const policyServer = createProtocolServer({
    name: "quotad",
    definition: policyProtocol(),
    sessions: quotaPolicySessions({
      snapshot: () => snapshot.current(),
      store: usage.store,
      settings: quotaSettingsFromConfig(config),
      replies: repliesFromConfig(settings.replies),
      now,
      decided: (decision) => decisions.inc({ decision: decision.kind }),
    }),
    limits: {
      maxConnections: settings.max_connections,
      requestTimeoutMs: settings.request_timeout,
      idleTimeoutMs: settings.idle_timeout,
    },
    log,
    observer: metrics.observer,
  });
  const feedServer: ProtocolServer | null =
    settings.feed.listen.length === 0
      ? null
      : createProtocolServer({
          name: "quotad-feed",
          definition: dictProtocol(),
          sessions: quotaFeedSessions({
            store: usage.store,
            dictName: settings.feed.dict_name,
            now,
            committed: (outcome, seconds) => {
              updates.inc({ outcome });
              if (outcome !== "refused") updateSeconds.observe(seconds);
            },
          }),
          limits: {
            maxConnections: settings.feed.max_connections,
            requestTimeoutMs: settings.feed.request_timeout,
            idleTimeoutMs: settings.feed.idle_timeout,
          },
          log: log.child({ component: "feed" }),
          observer: metrics.observer,
        });

  let metricsServer: MetricsServer | null = null;
  const stopEverything = async (graceMs: number) => {
    snapshot.stop();
    if (usageTimer !== undefined) clearInterval(usageTimer);
    await Promise.all([policyServer.close(graceMs), feedServer?.close(graceMs)]);
    await metricsServer?.close();
    await usage.close();
  };
  try {
    // Empty on a back-end whose quotad only receives quota_clone writes.
    if (settings.listen.length > 0) await policyServer.listen(settings.listen.map(toListenerSpec));
    await feedServer?.listen(settings.feed.listen.map(toListenerSpec));
    const metricsListen = settings.metrics.listen;
    if (metricsListen !== null) {
      metricsServer = await startMetricsServer({
        host: metricsListen.host,
        port: metricsListen.port,
        registry: metrics.registry,
        isReady: () =>
          snapshot.current()?.fresh === true &&
          policyServer.addresses().length + (feedServer?.addresses().length ?? 0) > 0,
        log,
      });
    }
  } catch (error) {
    await stopEverything(0);
    throw error;
  }
  log.info(
    { usageBackend: settings.usage.backend, records: usage.sqlite?.size ?? null, feed: feedServer !== null },
    "quotad started",
  );

  let closing: Promise<void> | undefined;
  return {
    snapshot,
    usage,
    addresses: () => policyServer.addresses(),
    feedAddresses: () => feedServer?.addresses() ?? [],
    metricsAddress: metricsServer?.address ?? null,
    async reload() {
      refreshUsage();
      await snapshot.reload();
    },
    close() {
      closing ??= stopEverything(Math.max(settings.request_timeout, settings.feed.request_timeout));
      return closing;
    },
  };
}

export const quotadProgram: ProgramDefinition = {
  name: "quotad",
  summary:
    "answer Postfix quota checks (quota-status compatible) from Dovecot's quota_clone usage and the directory",
  async run({ config }) {
    const log = createLogger({ program: "quotad", level: config.log.level });
    const quotad = await startQuotad(config, log);
    await new Promise<void>((resolve) => {
      const remove = installShutdownHandlers({
        log,
        onTerminate: () => quotad.close(),
        onReload: () => quotad.reload(),
        exit: (code) => {
          remove();
          if (code !== 0) process.exitCode = code;
          resolve();
        },
      });
    });
  },
};

export const QUOTAD_PROGRAMS: readonly ProgramDefinition[] = [quotadProgram, ...QUOTA_COMMANDS];
