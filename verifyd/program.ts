/**
 * NAME
 *   verifyd — recipient verification, alias expansion and sender ownership
 *   for Postfix, answered from the directory snapshot
 *
 * SUMMARY
 *   emailng verifyd [--config FILE]
 *
 * PROTOCOL
 *   Postfix socketmap (socketmap_table(5)): netstring requests `NAME SP KEY`,
 *   netstring replies `OK SP data`, `NOTFOUND SP`, `TEMP SP reason` or
 *   `PERM SP reason`, many per connection. Maps (maps.ts, README.md):
 *     C: 33:recipient gpapadop@cs.example.org,   S: 8:OK DUNNO,
 *     C: 31:recipient nobody@cs.example.org,     S: 9:NOTFOUND ,
 *     C: 28:alias csstaff@cs.example.org,        S: 48:OK jsmith@cs.example.org,ekaragia@cs.example.org,
 *     C: 29:login gpapadop@cs.example.org,       S: 11:OK gpapadop,
 *     C: 21:domain cs.example.org,               S: 17:OK cs.example.org,
 *   No snapshot, a stale snapshot or an internal error: `TEMP …` (Postfix
 *   answers 4xx or defers, never "user unknown"). Unknown map name or a
 *   malformed request: `PERM …`. Framing errors close the connection.
 *
 *   Dovecot dict proxy protocol, 2.3 (dovecot-auth.ts, README.md), on the
 *   [verifyd.dovecot] listeners: passdb and userdb with driver = dict.
 *     C: H3<TAB>2<TAB>0<TAB><TAB>auth              (hello, no reply)
 *     C: Lshared/userdb/gpapadop<TAB>gpapadop
 *     S: O{"user":"gpapadop","uid":"5000","gid":"5000","home":"/var/vmail/gpapadop"}
 *   Unknown user from a fresh snapshot: `N`; stale snapshot, no hash,
 *   ambiguous address: `F…` (Dovecot: temporary failure).
 *
 * SECURITY
 *   Runs as its own user; reads the snapshot file read-only (the relay view
 *   holds no password hashes); listens on UNIX sockets (mode and group from
 *   the config, e.g. 0660 group postfix) or on TCP with a client allow-list
 *   (loopback only unless `allow` widens it). The recipient map reveals only
 *   whether an address is deliverable. LDAP is used only for live lookups
 *   ([verifyd.live_ldap], back-ends); the dict answers password hashes, so
 *   its socket is for Dovecot's group alone and the internal snapshot is
 *   mode 0640.
 *
 * CONFIGURATION (deploy/emailng.example.toml)
 *   [verifyd] listen (default unix /run/emailng/verifyd.sock), max_connections
 *   (1000), request_timeout (5 s), idle_timeout (30 s), snapshot_check_interval
 *   (2 s), metrics.listen ("" = off); [verifyd.dovecot] listen ([] = off),
 *   username, uid, gid, home, mail_location, proxy_backends;
 *   [verifyd.live_ldap] enabled (false), negative_ttl (60 s), positive_ttl
 *   (5 min), cache_entries (10000), max_concurrent (8), with [ldap].
 *   [snapshot] path, max_age (1 h: older means every lookup answers TEMP). [directory] recipient_delimiter ("+"),
 *   max_expansion (10000), max_depth (16). [log] level.
 *
 * DIAGNOSTICS
 *   pino JSON on standard output: "snapshot loaded" (version, counts) at
 *   info; snapshot problems, malformed requests, unknown map names,
 *   ambiguous addresses and expansions over a limit at warn/error; each
 *   lookup at debug. Metrics: emailng_verifyd_lookups_total{map,result},
 *   emailng_verifyd_dovecot_lookups_total{kind,detail},
 *   emailng_verifyd_live_ldap_total{outcome},
 *   emailng_snapshot_version, emailng_snapshot_age_seconds,
 *   emailng_snapshot_fresh, plus the emailng_requests_* series of core/net.
 *   SIGHUP re-reads the snapshot now; SIGTERM/SIGINT stop after in-flight
 *   requests (bounded by request_timeout).
 *
 * LIMITS
 *   Requests over 10,000 bytes close the connection (Postfix never sends
 *   more); replies are at most 100,000 bytes (a larger expansion is TEMP
 *   and logged). Postfix itself defers a message whose alias expansion
 *   passes virtual_alias_expansion_limit (1000 addresses by default).
 */
import type { Logger } from "pino";
import type { ProgramDefinition } from "../cli/programs.js";
import { toListenerSpec } from "../core/config/listener-config.js";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { LiveSnapshot } from "../core/directory/live-snapshot.js";
import type { DomainSet } from "../core/directory/model.js";
import { connectLdap, ldapConnectOptionsFromConfig } from "../core/ldap/client.js";
import { mappingFromConfig } from "../core/ldap/mapping.js";
import { createLogger } from "../core/log/logger.js";
import { type MetricsServer, startMetricsServer } from "../core/metrics/http.js";
import { createDaemonMetrics } from "../core/metrics/registry.js";
import type { CounterSeries } from "../core/metrics/scraped.js";
import { registerSnapshotGauges } from "../core/metrics/snapshot-gauges.js";
import type { BoundAddress } from "../core/net/listeners.js";
import { dictProtocol, socketmapProtocol } from "../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../core/net/server.js";
import { installShutdownHandlers } from "../core/net/signals.js";
import { verifydDictSessions } from "./dict-session.js";
import type { DovecotAuthSettings } from "./dovecot-auth.js";
import { LiveLdap } from "./live-ldap.js";
import { MAP_NAMES } from "./maps.js";
import { verifydSocketmapSessions } from "./socketmap-session.js";

export interface Verifyd {
  readonly snapshot: LiveSnapshot;
  /** The socketmap listeners as bound (port 0 resolved). */
  addresses(): BoundAddress[];
  /** The Dovecot dict listeners as bound; empty when [verifyd.dovecot] listen is empty. */
  dictAddresses(): BoundAddress[];
  /** The metrics endpoint, when configured. */
  readonly metricsAddress: { host: string; port: number } | null;
  /** Reads the snapshot now (SIGHUP); rejects when it cannot be loaded, keeping the one in use. */
  reload(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to request_timeout), stops the snapshot timer. */
  close(): Promise<void>;
}

export interface StartVerifydOptions {
  /** Collect prom-client's process metrics (default true; tests running several daemons turn it off). */
  processMetrics?: boolean;
}

export async function startVerifyd(
  config: DeepReadonly<Config>,
  log: Logger,
  options: StartVerifydOptions = {},
): Promise<Verifyd> {
  const settings = config.verifyd;
  const metrics = createDaemonMetrics("verifyd", { processMetrics: options.processMetrics ?? true });
  const lookups = metrics.scrapedCounter({
    name: "emailng_verifyd_lookups_total",
    help: "Socketmap lookups answered, by map and reply status (OK, NOTFOUND, TEMP, PERM).",
    labelNames: ["map", "result"],
  });
  // Bumped on every lookup: each series resolved once, by map then result.
  const lookupSeries = seriesTable((map, result) => lookups.series({ map, result }));
  for (const map of [...MAP_NAMES, "other"]) {
    for (const result of ["OK", "NOTFOUND", "TEMP", "PERM"]) lookupSeries(map, result).inc(0);
  }

  const liveSettings = settings.live_ldap;
  let live: LiveLdap | null = null;
  if (liveSettings.enabled) {
    if (config.ldap.urls.length === 0) {
      throw new Error("verifyd.live_ldap.enabled needs ldap.urls: set them, or turn live lookups off");
    }
    const connectOptions = await ldapConnectOptionsFromConfig(config);
    const liveLookups = metrics.counter({
      name: "emailng_verifyd_live_ldap_total",
      help: "Live LDAP lookups for names missing from the snapshot, by outcome (found, not_found, hit_found, hit_not_found, error, busy, undecidable).",
      labelNames: ["outcome"],
    });
    live = new LiveLdap({
      connect: () => connectLdap(connectOptions),
      mapping: mappingFromConfig(config.ldap),
      negativeTtlMs: liveSettings.negative_ttl,
      positiveTtlMs: liveSettings.positive_ttl,
      maxEntries: liveSettings.cache_entries,
      maxConcurrent: liveSettings.max_concurrent,
      log: log.child({ component: "live-ldap" }),
      counted: (outcome) => liveLookups.inc({ outcome }),
    });
  }
  const liveLookup =
    live === null
      ? undefined
      : (name: string, domains: DomainSet, signal: AbortSignal) =>
          (live as LiveLdap).lookup(name, domains, signal);

  const snapshot = new LiveSnapshot({
    // Answers remembered from LDAP belong to the snapshot they were missing from.
    onSwap: () => live?.clear(),
    path: config.snapshot.path,
    maxAgeMs: config.snapshot.max_age,
    checkIntervalMs: settings.snapshot_check_interval,
    resolverOptions: {
      recipientDelimiters: config.directory.recipient_delimiter,
      maxExpansion: config.directory.max_expansion,
      maxDepth: config.directory.max_depth,
    },
    log: log.child({ component: "snapshot" }),
  });

  registerSnapshotGauges(metrics, snapshot, "lookups answer TEMP");

  snapshot.start();

  const server = createProtocolServer({
    name: "verifyd",
    definition: socketmapProtocol(),
    sessions: verifydSocketmapSessions({
      snapshot: () => snapshot.current(),
      ...(liveLookup === undefined ? {} : { liveLookup }),
      counted: (map, result) => lookupSeries(map, result).inc(),
    }),
    limits: {
      maxConnections: settings.max_connections,
      requestTimeoutMs: settings.request_timeout,
      idleTimeoutMs: settings.idle_timeout,
    },
    log,
    observer: metrics.observer,
  });

  let dictServer: ProtocolServer | null = null;
  const dovecot = settings.dovecot;
  if (dovecot.listen.length > 0) {
    const authLookups = metrics.scrapedCounter({
      name: "emailng_verifyd_dovecot_lookups_total",
      help: "Dovecot dict lookups answered, by kind (passdb, userdb, iterate, other) and detail (found, not_found, inactive, stale, no_password …).",
      labelNames: ["kind", "detail"],
    });
    const authLookupSeries = seriesTable((kind, detail) => authLookups.series({ kind, detail }));
    const authSettings: DovecotAuthSettings = {
      username: dovecot.username,
      uid: dovecot.uid,
      gid: dovecot.gid,
      home: dovecot.home,
      mailLocation: dovecot.mail_location,
      proxyBackends: dovecot.proxy_backends,
    };
    dictServer = createProtocolServer({
      name: "verifyd-dict",
      definition: dictProtocol(),
      sessions: verifydDictSessions({
        snapshot: () => snapshot.current(),
        settings: authSettings,
        ...(liveLookup === undefined
          ? {}
          : {
              liveLookup: (name: string, signal: AbortSignal) => {
                const current = snapshot.current();
                if (current === null) return Promise.resolve(null);
                return liveLookup(name, current.resolver.domains, signal);
              },
            }),
        counted: (kind, detail) => authLookupSeries(kind, detail).inc(),
      }),
      limits: {
        maxConnections: settings.max_connections,
        requestTimeoutMs: settings.request_timeout,
        idleTimeoutMs: settings.idle_timeout,
      },
      log: log.child({ component: "dict" }),
      observer: metrics.observer,
    });
  }

  let metricsServer: MetricsServer | null = null;
  try {
    await server.listen(settings.listen.map(toListenerSpec));
    await dictServer?.listen(dovecot.listen.map(toListenerSpec));
    const metricsListen = settings.metrics.listen;
    if (metricsListen !== null) {
      metricsServer = await startMetricsServer({
        host: metricsListen.host,
        port: metricsListen.port,
        registry: metrics.registry,
        isReady: () => snapshot.current()?.fresh === true && server.addresses().length > 0,
        log,
      });
    }
  } catch (error) {
    snapshot.stop();
    await server.close(0);
    await dictServer?.close(0);
    await live?.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    snapshot,
    addresses: () => server.addresses(),
    dictAddresses: () => dictServer?.addresses() ?? [],
    metricsAddress: metricsServer?.address ?? null,
    reload: () => snapshot.reload(),
    close() {
      closing ??= (async () => {
        snapshot.stop();
        await Promise.all([
          server.close(settings.request_timeout),
          dictServer?.close(settings.request_timeout),
        ]);
        await live?.close();
        await metricsServer?.close();
      })();
      return closing;
    },
  };
}

/** Counter series by two label values, each made once (a handful of maps, results, kinds and details). */
function seriesTable(make: (first: string, second: string) => CounterSeries) {
  const table = new Map<string, Map<string, CounterSeries>>();
  return (first: string, second: string): CounterSeries => {
    let row = table.get(first);
    if (row === undefined) {
      row = new Map();
      table.set(first, row);
    }
    let series = row.get(second);
    if (series === undefined) {
      series = make(first, second);
      row.set(second, series);
    }
    return series;
  };
}

export const verifydProgram: ProgramDefinition = {
  name: "verifyd",
  summary: "answer Postfix socketmap lookups (recipient, alias, login, domain) from the directory snapshot",
  async run({ config }) {
    const log = createLogger({ program: "verifyd", level: config.log.level });
    const verifyd = await startVerifyd(config, log);
    await new Promise<void>((resolve) => {
      const remove = installShutdownHandlers({
        log,
        onTerminate: () => verifyd.close(),
        onReload: () => verifyd.reload(),
        // Resolve instead of exiting: the CLI ends once nothing is left running.
        exit: (code) => {
          remove();
          if (code !== 0) process.exitCode = code;
          resolve();
        },
      });
    });
  },
};
