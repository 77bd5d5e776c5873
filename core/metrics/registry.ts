/**
 * Prometheus metrics of one daemon. Each daemon gets its own Registry (never
 * prom-client's global default), so tests can run several daemons in one
 * process and a program can only publish what it registered itself.
 *
 * The registry carries the `program` label on every series, including the
 * ones a program adds, so dashboards can tell verifyd from policyd without
 * each metric repeating the label. The ServerObserver half feeds the metrics
 * core/net reports (connections, requests, errors); programs add their own
 * counters, gauges and histograms through the same object.
 *
 * Series:
 *   emailng_requests_total{program,outcome}                counter
 *   emailng_request_duration_seconds{program,outcome}      histogram, 0.1 ms .. 10 s
 *   emailng_connections{program,listener}                  gauge (open now)
 *   emailng_connections_refused_total{program,reason}      counter
 *   emailng_errors_total{program,kind}                     counter
 *   process_* and nodejs_*                                 prom-client's process metrics
 */
import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from "prom-client";
import type { ServerObserver } from "../net/protocol.js";
import {
  type CounterSeries,
  type HistogramSeries,
  ScrapedCounter,
  type ScrapedDefinition,
  ScrapedHistogram,
} from "./scraped.js";

/**
 * Lookups answered from memory take well under a millisecond; a request that
 * waits for LDAP or hits its deadline takes seconds. The buckets span both.
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const ERROR_KINDS = ["protocol", "handler", "deadline", "socket"] as const;
const REFUSAL_REASONS = ["max_connections", "not_allowed"] as const;

/** A metric definition without `registers`: the daemon's registry is always the one used. */
type Definition<Configuration> = Omit<Configuration, "registers">;

export interface DaemonMetrics {
  readonly registry: Registry;
  /** Hand this to the core/net server. */
  readonly observer: ServerObserver;
  /** Program-specific metrics, registered on the same registry; names should start with "emailng_". */
  counter<Label extends string>(definition: Definition<CounterConfiguration<Label>>): Counter<Label>;
  gauge<Label extends string>(definition: Definition<GaugeConfiguration<Label>>): Gauge<Label>;
  histogram<Label extends string>(definition: Definition<HistogramConfiguration<Label>>): Histogram<Label>;
  /** A counter for the per-request path: resolve each label set once with series(), then inc() it. */
  scrapedCounter<Label extends string>(definition: ScrapedDefinition<Label>): ScrapedCounter<Label>;
}

export interface DaemonMetricsOptions {
  /** Collect prom-client's process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
}

export function createDaemonMetrics(program: string, options: DaemonMetricsOptions = {}): DaemonMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ program });
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  // Counted on every request: plain numbers, turned into prom-client values when scraped.
  const requests = new ScrapedCounter(registry, {
    name: "emailng_requests_total",
    help: "Requests answered, by outcome (OK, NOTFOUND, TEMP, DUNNO, …).",
    labelNames: ["outcome"],
  });
  const duration = new ScrapedHistogram(registry, {
    name: "emailng_request_duration_seconds",
    help: "Time from a complete request to its reply being queued, by outcome.",
    labelNames: ["outcome"],
    buckets: REQUEST_DURATION_BUCKETS,
  });
  const connections = new Gauge({
    name: "emailng_connections",
    help: "Connections open now, by listener.",
    labelNames: ["listener"],
    registers: [registry],
  });
  const refused = new Counter({
    name: "emailng_connections_refused_total",
    help: "Connections refused: over max_connections, or from an address not in allow.",
    labelNames: ["reason"],
    registers: [registry],
  });
  const errors = new Counter({
    name: "emailng_errors_total",
    help: "Errors by kind: protocol (bad framing), handler (exception), deadline (request budget exceeded), socket.",
    labelNames: ["kind"],
    registers: [registry],
  });

  // Series that exist from the start read 0 instead of missing, so rate()
  // and alerts on them work before the first error happens.
  for (const kind of ERROR_KINDS) errors.inc({ kind }, 0);
  for (const reason of REFUSAL_REASONS) refused.inc({ reason }, 0);

  const byOutcome = new Map<string, { count: CounterSeries; time: HistogramSeries }>();
  const observer: ServerObserver = {
    connectionOpened: (listener) => connections.inc({ listener }),
    connectionClosed: (listener) => connections.dec({ listener }),
    connectionRefused: (_listener, reason) => refused.inc({ reason }),
    request: (outcome, seconds) => {
      // Per-request path: label children looked up once per outcome (a
      // handful per protocol), not resolved from a label object each time.
      let series = byOutcome.get(outcome);
      if (series === undefined) {
        series = { count: requests.series({ outcome }), time: duration.series({ outcome }) };
        byOutcome.set(outcome, series);
      }
      series.count.inc();
      series.time.observe(seconds);
    },
    error: (kind) => errors.inc({ kind }),
  };

  return {
    registry,
    observer,
    counter: (definition) => new Counter({ ...definition, registers: [registry] }),
    gauge: (definition) => new Gauge({ ...definition, registers: [registry] }),
    histogram: (definition) => new Histogram({ ...definition, registers: [registry] }),
    scrapedCounter: (definition) => new ScrapedCounter(registry, definition),
  };
}
