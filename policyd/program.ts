/**
 * NAME
 *   policyd — rate limits, greylisting, protected lists and
 *   compromised-account bursts for Postfix, over policy delegation
 *
 * SUMMARY
 *   emailng policyd [--config FILE]
 *   emailng policy explain|reset|release KEY [--config FILE] [--json]
 *
 * PROTOCOL
 *   Postfix SMTPD access policy delegation: `name=value` lines, a blank line,
 *   one `action=…` reply per request, many requests per connection. Hooked
 *   twice (README.md): at RCPT (smtpd_recipient_restrictions) it decides,
 *   at END-OF-MESSAGE (smtpd_end_of_data_restrictions) it charges.
 *     C: request=smtpd_access_policy  protocol_state=RCPT  sasl_username=gpapadop
 *        recipient=csall@cs.example.org …
 *     S: action=550 5.7.1 csall is a protected list: only members of csstaff, csfaculty may post to it
 *     S: action=450 4.7.1 Rate limit exceeded (login-hourly), please try again later
 *     S: action=DEFER_IF_PERMIT Greylisted, please try again later
 *     S: action=PREPEND X-Greylist: delayed 301 seconds by emailng-policyd at relay1; …
 *     S: action=HOLD held: unusual sending volume for this account
 *     S: action=DUNNO
 *   A stage other than RCPT and END-OF-MESSAGE: DUNNO. Store down: the
 *   failure action (DUNNO or DEFER_IF_PERMIT). Internal error or missed
 *   deadline: DEFER_IF_PERMIT, never a permanent answer. A request that
 *   cannot be parsed (line without "=", oversized) closes the connection.
 *   Admin socket (admin-protocol.ts): one JSON line each way.
 *
 * SECURITY
 *   Runs as its own user; listens on UNIX sockets (mode 0660, group postfix)
 *   or TCP with an allow-list; the admin socket is mode 0600. Reads the
 *   relay snapshot read-only (groups and categories: no secrets); writes its
 *   own SQLite store, or Redis. The optional alert command runs without a
 *   shell with the login as its last argument. Peer strings are sanitised
 *   before logging; counters hold logins, addresses and client networks.
 *
 * CONFIGURATION (deploy/emailng.example.toml, [policyd])
 *   listen, max_connections, request_timeout (10 s), idle_timeout (330 s),
 *   metrics.listen; mode (enforce|shadow), failure_action (DEFER_IF_PERMIT),
 *   snapshot_check_interval (2 s), transaction_timeout (1 h),
 *   max_transactions, admin_socket; [policyd.store] backend (memory|redis),
 *   path, flush_interval (1 s), max_entries; [[policyd.classes]];
 *   [[policyd.rules]] with [[policyd.rules.windows]]; [policyd.greylist];
 *   [policyd.protected_lists] with [[policyd.protected_lists.lists]];
 *   [policyd.burst]. [redis] for the shared store; [snapshot] path.
 *
 * DIAGNOSTICS
 *   pino JSON on standard output: one "decision" line at info per refusal,
 *   hold, greylisting or store failure (with the rule or list), at debug for
 *   plain acceptances; "login held" at warn once per hold. Metrics:
 *   emailng_policyd_checks_total{check,name,result,mode},
 *   emailng_policyd_outcomes_total{outcome}, emailng_policyd_alerts_total,
 *   emailng_policyd_store_failures_total, emailng_policyd_transactions,
 *   emailng_policyd_store_records, plus emailng_requests_* of core/net.
 *   SIGHUP re-reads the configuration (rules are validated, then swapped
 *   atomically; counters are kept; an invalid file is refused and the
 *   running rules stay) and the snapshot; SIGTERM stops after in-flight
 *   requests and flushes the store.
 *
 * LIMITS
 *   Policy lines over 2 KiB, more than 128 attributes or 32 KiB per request
 *   close the connection. At most max_transactions open transactions and
 *   store.max_entries records (oldest dropped first). Store backend and path
 *   changes need a restart.
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ProgramDefinition } from "../cli/programs.js";
import { toListenerSpec } from "../core/config/listener-config.js";
import { type DeepReadonly, loadConfig } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { LiveSnapshot } from "../core/directory/live-snapshot.js";
import { createLogger } from "../core/log/logger.js";
import { type MetricsServer, startMetricsServer } from "../core/metrics/http.js";
import { createDaemonMetrics } from "../core/metrics/registry.js";
import type { CounterSeries } from "../core/metrics/scraped.js";
import type { BoundAddress } from "../core/net/listeners.js";
import { policyProtocol } from "../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../core/net/server.js";
import { installShutdownHandlers } from "../core/net/signals.js";
import { POLICYD_ADMIN_COMMANDS } from "./admin-commands.js";
import { adminProtocol } from "./admin-protocol.js";
import { adminSessions } from "./admin-session.js";
import { raiseHoldAlert } from "./alerts.js";
import type { DecisionDependencies } from "./decide.js";
import { policySessions } from "./policy-session.js";
import { compilePolicy, type PolicySettings } from "./rules.js";
import type { PolicyStore } from "./store.js";
import { openPolicyStore } from "./store-factory.js";
import { TransactionTable } from "./transactions.js";

export interface Policyd {
  readonly store: PolicyStore;
  readonly snapshot: LiveSnapshot;
  /** The rules in force now. */
  settings(): PolicySettings;
  /** The policy listeners as bound (port 0 resolved). */
  addresses(): BoundAddress[];
  readonly metricsAddress: { host: string; port: number } | null;
  /**
   * SIGHUP: re-reads the configuration file (when started with one) or takes
   * `config`, validates the rules and swaps them in; re-reads the snapshot.
   * Rejects, keeping the running rules, when the new ones are invalid.
   */
  reload(config?: DeepReadonly<Config>): Promise<void>;
  close(): Promise<void>;
}

export interface StartPolicydOptions {
  /** The configuration file reload() re-reads. */
  configPath?: string;
  /** Collect prom-client's process metrics (default true). */
  processMetrics?: boolean;
  /** Clock (tests pass a fake one). */
  now?: () => number;
  /** Store to use instead of opening the configured one (tests). */
  store?: PolicyStore;
}

function compileOrThrow(config: DeepReadonly<Config>): PolicySettings {
  const compiled = compilePolicy(config);
  if (compiled.ok) return compiled.settings;
  const lines = compiled.errors.map((issue) => `${issue.path}: ${issue.message} (${issue.fix})`);
  throw new Error(`invalid policyd configuration:\n  ${lines.join("\n  ")}`);
}

export async function startPolicyd(
  config: DeepReadonly<Config>,
  log: Logger,
  options: StartPolicydOptions = {},
): Promise<Policyd> {
  const now = options.now ?? Date.now;
  let settings = compileOrThrow(config);
  const daemon = config.policyd;
  const metrics = createDaemonMetrics("policyd", { processMetrics: options.processMetrics ?? true });
  // The two counted on every request: plain numbers, made Prometheus values when scraped.
  const checks = metrics.scrapedCounter({
    name: "emailng_policyd_checks_total",
    help: "Check results by check (protected_list, hold, rate_limit, greylist, burst, charge), rule or list name, result and mode.",
    labelNames: ["check", "name", "result", "mode"],
  });
  const outcomes = metrics.scrapedCounter({
    name: "emailng_policyd_outcomes_total",
    help: "Decisions by outcome (accepted, rate_limited, list_refused, greylisted, held, charged, store_failed, …).",
    labelNames: ["outcome"],
  });
  const alerts = metrics.counter({
    name: "emailng_policyd_alerts_total",
    help: "Logins put on hold after a burst (one alert each).",
  });
  const storeFailures = metrics.counter({
    name: "emailng_policyd_store_failures_total",
    help: "Decisions answered with the failure action because the store failed.",
  });
  // Series resolved once and kept (names come from the rules and lists).
  const checkSeries = new Map<string, Map<string, Map<string, Map<string, CounterSeries>>>>();
  const outcomeSeries = new Map<string, CounterSeries>();
  alerts.inc(0);
  storeFailures.inc(0);

  const snapshot = new LiveSnapshot({
    path: config.snapshot.path,
    maxAgeMs: config.snapshot.max_age,
    checkIntervalMs: daemon.snapshot_check_interval,
    resolverOptions: {
      recipientDelimiters: config.directory.recipient_delimiter,
      maxExpansion: config.directory.max_expansion,
      maxDepth: config.directory.max_depth,
    },
    log: log.child({ component: "snapshot" }),
  });
  snapshot.start();

  let store: PolicyStore;
  try {
    store = options.store ?? (await openPolicyStore(config, log.child({ component: "store" })));
  } catch (error) {
    snapshot.stop();
    throw error;
  }
  const transactions = new TransactionTable(daemon.transaction_timeout, daemon.max_transactions);
  metrics.gauge({
    name: "emailng_policyd_transactions",
    help: "Mail transactions between RCPT and END-OF-MESSAGE remembered now.",
    collect() {
      this.set(transactions.size);
    },
  });
  metrics.gauge({
    name: "emailng_policyd_store_records",
    help: "Records in the embedded store (-1 for Redis).",
    collect() {
      this.set("size" in store && typeof store.size === "number" ? store.size : -1);
    },
  });

  const hostName = hostname();
  const current = (): DecisionDependencies => ({
    settings,
    store,
    resolver: snapshot.current()?.resolver ?? null,
    transactions,
    now,
    hostName,
  });

  const server = createProtocolServer({
    name: "policyd",
    definition: policyProtocol(),
    sessions: policySessions({
      current,
      counted(events, decision) {
        for (const event of events) {
          // Nested by label: the values are short strings whose hashes V8 keeps, so no key is built per event.
          let byName = checkSeries.get(event.check);
          if (byName === undefined) {
            byName = new Map();
            checkSeries.set(event.check, byName);
          }
          let byResult = byName.get(event.name);
          if (byResult === undefined) {
            byResult = new Map();
            byName.set(event.name, byResult);
          }
          let byMode = byResult.get(event.result);
          if (byMode === undefined) {
            byMode = new Map();
            byResult.set(event.result, byMode);
          }
          let child = byMode.get(event.mode);
          if (child === undefined) {
            child = checks.series({
              check: event.check,
              name: event.name,
              result: event.result,
              mode: event.mode,
            });
            byMode.set(event.mode, child);
          }
          child.inc();
        }
        let outcome = outcomeSeries.get(decision.outcome.kind);
        if (outcome === undefined) {
          outcome = outcomes.series({ outcome: decision.outcome.kind });
          outcomeSeries.set(decision.outcome.kind, outcome);
        }
        outcome.inc();
        if (decision.outcome.kind === "store_failed") storeFailures.inc();
      },
      alert(alert, connectionLog) {
        alerts.inc();
        void raiseHoldAlert(alert.hold, alert.trigger, settings.burst, connectionLog);
      },
    }),
    limits: {
      maxConnections: daemon.max_connections,
      requestTimeoutMs: daemon.request_timeout,
      idleTimeoutMs: daemon.idle_timeout,
    },
    log,
    observer: metrics.observer,
  });

  let adminServer: ProtocolServer | null = null;
  let metricsServer: MetricsServer | null = null;
  try {
    await server.listen(daemon.listen.map(toListenerSpec));
    if (daemon.admin_socket !== "") {
      adminServer = createProtocolServer({
        name: "policyd-admin",
        definition: adminProtocol,
        sessions: adminSessions(current),
        limits: { maxConnections: 8, requestTimeoutMs: daemon.request_timeout, idleTimeoutMs: 60_000 },
        log,
      });
      await adminServer.listen([{ kind: "unix", path: daemon.admin_socket, mode: 0o600 }]);
    }
    const metricsListen = daemon.metrics.listen;
    if (metricsListen !== null) {
      metricsServer = await startMetricsServer({
        host: metricsListen.host,
        port: metricsListen.port,
        registry: metrics.registry,
        isReady: () => server.addresses().length > 0,
        log,
      });
    }
  } catch (error) {
    snapshot.stop();
    await server.close(0);
    await adminServer?.close(0);
    await store.close();
    throw error;
  }
  const lists = settings.protectedLists;
  if ((lists.fromDirectory || lists.lists.size > 0) && snapshot.current() === null) {
    log.warn(
      { path: config.snapshot.path },
      "no directory snapshot: every recipient answers DEFER_IF_PERMIT until one is readable (protected lists need it)",
    );
  }
  log.info(
    {
      rules: settings.rules.map((rule) => `${rule.name}(${rule.mode})`),
      greylist: settings.greylist.enabled,
      burst: settings.burst.enabled,
      store: store.kind,
    },
    "policyd started",
  );

  async function reload(next?: DeepReadonly<Config>): Promise<void> {
    let fresh = next;
    if (fresh === undefined && options.configPath !== undefined) {
      const loaded = await loadConfig(options.configPath);
      if (!loaded.ok) {
        const lines = loaded.errors.map((issue) => `${issue.path}: ${issue.message}`);
        throw new Error(`configuration not reloaded:\n  ${lines.join("\n  ")}`);
      }
      fresh = loaded.config;
    }
    if (fresh !== undefined) {
      const compiled = compileOrThrow(fresh);
      const store = fresh.policyd.store;
      if (store.backend !== daemon.store.backend || store.path !== daemon.store.path) {
        log.warn("policyd.store changes take effect at the next restart; the running store stays");
      }
      // The swap: one assignment; a request in flight keeps the settings it started with.
      settings = compiled;
      log.info({ rules: settings.rules.map((rule) => `${rule.name}(${rule.mode})`) }, "rules reloaded");
    }
    await snapshot.reload().catch((error: unknown) => {
      log.warn({ err: error }, "snapshot not reloaded; the rules were");
    });
  }

  let closing: Promise<void> | undefined;
  return {
    store,
    snapshot,
    settings: () => settings,
    addresses: () => server.addresses(),
    metricsAddress: metricsServer?.address ?? null,
    reload,
    close() {
      closing ??= (async () => {
        snapshot.stop();
        await Promise.all([server.close(daemon.request_timeout), adminServer?.close(1000)]);
        await metricsServer?.close();
        await store.close();
      })();
      return closing;
    },
  };
}

export const policydProgram: ProgramDefinition = {
  name: "policyd",
  summary: "Postfix policy service: rate limits, greylisting, protected lists, burst holds",
  async run({ config, configPath }) {
    const log = createLogger({ program: "policyd", level: config.log.level });
    const policyd = await startPolicyd(config, log, { configPath });
    await new Promise<void>((resolve) => {
      const remove = installShutdownHandlers({
        log,
        onTerminate: () => policyd.close(),
        onReload: () => policyd.reload(),
        exit: (code) => {
          remove();
          if (code !== 0) process.exitCode = code;
          resolve();
        },
      });
    });
  },
};

export const POLICYD_PROGRAMS: readonly ProgramDefinition[] = [policydProgram, ...POLICYD_ADMIN_COMMANDS];
