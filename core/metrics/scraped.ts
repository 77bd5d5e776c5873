/**
 * Counters and histograms for the per-request path, counted in plain numbers
 * and turned into Prometheus values only when /metrics is scraped. prom-client
 * hashes, validates and copies the label set on every inc() and observe(),
 * which at tens of thousands of requests per second was a visible share of
 * verifyd's CPU; here a series is resolved once (series(labels), kept by the
 * caller) and counting is an addition on a plain object.
 *
 * The exposition text is the one prom-client writes for the same
 * observations, series in the order they were first counted
 * (scraped.test.ts compares the two): the counter is a prom-client Counter
 * whose collect() callback adds what was counted since the last scrape; the
 * histogram is registered as a metric of its own that returns the values in
 * the shape prom-client's Histogram gives its registry.
 */
import { Counter, type Metric, type Registry } from "prom-client";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface ScrapedDefinition<Label extends string> {
  name: string;
  help: string;
  labelNames?: readonly Label[];
}

/** One label set of a ScrapedCounter. */
export interface CounterSeries {
  /** Adds `by` (default 1, whole numbers keep the exposition exact). */
  inc(by?: number): void;
}

/** One label set of a ScrapedHistogram. */
export interface HistogramSeries {
  observe(value: number): void;
}

function checkLabels(labelNames: readonly string[], labels: Record<string, string>): void {
  for (const name of Object.keys(labels)) {
    if (!labelNames.includes(name)) throw new Error(`label "${name}" is not one of ${labelNames.join(", ")}`);
  }
}

/** Every label set with a value, in the order the label values are given. */
function seriesKey(labelNames: readonly string[], labels: Record<string, string>): string {
  return labelNames.map((name) => labels[name] ?? "").join("\u0000");
}

class PlainCounterSeries implements CounterSeries {
  private value = 0;
  private reported = 0;
  private counted = false;

  constructor(
    private readonly child: { inc(value?: number): void },
    private readonly onFirstCount: (series: PlainCounterSeries) => void,
  ) {}

  inc(by = 1): void {
    if (!(by >= 0) || by === Number.POSITIVE_INFINITY)
      throw new Error(`counter increment ${by} is not allowed`);
    if (!this.counted) {
      this.counted = true;
      this.onFirstCount(this);
    }
    this.value += by;
  }

  /** At scrape time: hand prom-client what was counted since the last scrape (0 the first time). */
  report(): void {
    const delta = this.value - this.reported;
    this.reported = this.value;
    this.child.inc(delta);
  }
}

export class ScrapedCounter<Label extends string> {
  private readonly counter: Counter<Label>;
  private readonly labelNames: readonly Label[];
  private readonly bySeries = new Map<string, PlainCounterSeries>();
  /** Series in the order they were first counted: the order prom-client would list them in. */
  private readonly counted: PlainCounterSeries[] = [];

  constructor(registry: Registry, definition: ScrapedDefinition<Label>) {
    this.labelNames = definition.labelNames ?? [];
    const counted = this.counted;
    this.counter = new Counter<Label>({
      name: definition.name,
      help: definition.help,
      labelNames: [...this.labelNames],
      registers: [registry],
      collect() {
        for (const series of counted) series.report();
      },
    });
  }

  /** The series for these labels, made on first use: look it up once, then call inc() on it. */
  series(labels: Partial<Record<Label, string>> = {}): CounterSeries {
    const key = seriesKey(this.labelNames, labels as Record<string, string>);
    let series = this.bySeries.get(key);
    if (series === undefined) {
      checkLabels(this.labelNames, labels as Record<string, string>);
      const child = this.labelNames.length === 0 ? this.counter : this.counter.labels(labels);
      series = new PlainCounterSeries(child, (first) => this.counted.push(first));
      this.bySeries.set(key, series);
    }
    return series;
  }
}

export interface ScrapedHistogramDefinition<Label extends string> extends ScrapedDefinition<Label> {
  buckets: readonly number[];
}

class PlainHistogramSeries implements HistogramSeries {
  /** Observations per bucket (not cumulative); values above the last bound are only in count. */
  readonly perBucket: number[];
  sum = 0;
  count = 0;
  private observed = false;

  constructor(
    readonly labels: Record<string, string>,
    private readonly upperBounds: readonly number[],
    private readonly onFirstObservation: (series: PlainHistogramSeries) => void,
  ) {
    this.perBucket = upperBounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (!this.observed) {
      this.observed = true;
      this.onFirstObservation(this);
    }
    this.sum += value;
    this.count += 1;
    const bounds = this.upperBounds;
    for (let index = 0; index < bounds.length; index++) {
      if (value <= (bounds[index] as number)) {
        (this.perBucket[index] as number)++;
        return;
      }
    }
  }

  /** Listed before any observation (a histogram without labels). */
  markListed(): void {
    if (this.observed) return;
    this.observed = true;
    this.onFirstObservation(this);
  }

  reset(): void {
    this.perBucket.fill(0);
    this.sum = 0;
    this.count = 0;
    this.observed = false;
  }
}

interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/**
 * A histogram the registry reads like prom-client's own: `getForPromString`
 * (what Registry.metrics() uses) gives the series labels as shared labels,
 * `get` (getMetricsAsJSON) merges them into each value's labels.
 */
export class ScrapedHistogram<Label extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly Label[];
  private readonly upperBounds: readonly number[];
  private readonly bySeries = new Map<string, PlainHistogramSeries>();
  private observed: PlainHistogramSeries[] = [];

  constructor(registry: Registry, definition: ScrapedHistogramDefinition<Label>) {
    this.name = definition.name;
    this.help = definition.help;
    this.labelNames = definition.labelNames ?? [];
    this.upperBounds = [...definition.buckets];
    if (!METRIC_NAME.test(this.name)) throw new Error(`invalid metric name ${this.name}`);
    for (const label of this.labelNames) {
      if (!LABEL_NAME.test(label) || label === "le") throw new Error(`invalid label name ${label}`);
    }
    // The registry only calls name, type, get/getForPromString and reset on what it holds.
    registry.registerMetric(this as unknown as Metric<Label>);
    // Like prom-client's, a histogram without labels lists its one series, zero, from the start.
    if (this.labelNames.length === 0) this.listUnlabelled();
  }

  private listUnlabelled(): void {
    const series = this.series() as PlainHistogramSeries;
    series.markListed();
  }

  /** The series for these labels, made on first use: look it up once, then call observe() on it. */
  series(labels: Partial<Record<Label, string>> = {}): HistogramSeries {
    const key = seriesKey(this.labelNames, labels as Record<string, string>);
    let series = this.bySeries.get(key);
    if (series === undefined) {
      checkLabels(this.labelNames, labels as Record<string, string>);
      series = new PlainHistogramSeries(labels as Record<string, string>, this.upperBounds, (first) =>
        this.observed.push(first),
      );
      this.bySeries.set(key, series);
    }
    return series;
  }

  reset(): void {
    for (const series of this.observed) series.reset();
    // prom-client's reset empties the histogram, unlabelled series included.
    this.observed = [];
  }

  async getForPromString() {
    const bucketName = `${this.name}_bucket`;
    const values: HistogramValue[] = [];
    for (const series of this.observed) {
      const shared = series.labels;
      let cumulative = 0;
      this.upperBounds.forEach((upperBound, index) => {
        cumulative += series.perBucket[index] as number;
        values.push({
          labels: { le: upperBound },
          sharedLabels: shared,
          value: cumulative,
          metricName: bucketName,
          exemplar: null,
        });
      });
      values.push(
        {
          labels: { le: "+Inf" },
          sharedLabels: shared,
          value: series.count,
          metricName: bucketName,
          exemplar: null,
        },
        {
          labels: {},
          sharedLabels: shared,
          value: series.sum,
          metricName: `${this.name}_sum`,
          exemplar: undefined,
        },
        {
          labels: {},
          sharedLabels: shared,
          value: series.count,
          metricName: `${this.name}_count`,
          exemplar: undefined,
        },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }
}
