import fc from "fast-check";
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { REQUEST_DURATION_BUCKETS } from "./registry.js";
import { ScrapedCounter, ScrapedHistogram } from "./scraped.js";

/** The same two metrics, once from scraped.ts and once from prom-client itself, each in its own registry. */
function pair() {
  const definition = {
    counter: { name: "emailng_requests_total", help: "Requests answered.", labelNames: ["outcome"] as const },
    histogram: {
      name: "emailng_request_duration_seconds",
      help: "Time per request.",
      labelNames: ["outcome"] as const,
      buckets: [...REQUEST_DURATION_BUCKETS],
    },
  };
  const scraped = new Registry();
  const reference = new Registry();
  for (const registry of [scraped, reference]) registry.setDefaultLabels({ program: "verifyd" });
  const scrapedCounter = new ScrapedCounter(scraped, definition.counter);
  const scrapedHistogram = new ScrapedHistogram(scraped, definition.histogram);
  const referenceCounter = new Counter({
    ...definition.counter,
    labelNames: ["outcome"],
    registers: [reference],
  });
  const referenceHistogram = new Histogram({
    ...definition.histogram,
    labelNames: ["outcome"],
    registers: [reference],
  });
  return {
    scraped,
    reference,
    count(outcome: string, seconds: number) {
      scrapedCounter.series({ outcome }).inc();
      scrapedHistogram.series({ outcome }).observe(seconds);
      referenceCounter.labels({ outcome }).inc();
      referenceHistogram.labels({ outcome }).observe(seconds);
    },
  };
}

const outcomes = ["OK", "NOTFOUND", "TEMP", "lookup_found", 'a"b\\c\nd', ""];

describe("scraped counters and histograms", () => {
  it("write the exposition text prom-client writes for the same observations", async () => {
    const metrics = pair();
    for (const [outcome, seconds] of [
      ["OK", 0.00003],
      ["NOTFOUND", 0.0001],
      ["OK", 0.00049],
      ["TEMP", 10],
      ["TEMP", 11],
      ["OK", 0.0025],
    ] as const) {
      metrics.count(outcome, seconds);
    }
    const text = await metrics.scraped.metrics();
    expect(text).toContain(
      'emailng_request_duration_seconds_bucket{le="0.0005",program="verifyd",outcome="OK"} 2',
    );
    expect(text).toContain('emailng_requests_total{outcome="TEMP",program="verifyd"} 2');
    expect(text).toBe(await metrics.reference.metrics());
    expect(await metrics.scraped.getMetricsAsJSON()).toEqual(await metrics.reference.getMetricsAsJSON());
  });

  it("write nothing but the headers before the first request", async () => {
    const metrics = pair();
    expect(await metrics.scraped.metrics()).toBe(await metrics.reference.metrics());
  });

  it("agree with prom-client for any observations and scrapes in between", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              outcome: fc.constantFrom(...outcomes),
              seconds: fc.oneof(
                fc.double({ min: -1, max: 20, noNaN: true }),
                fc.constantFrom(...REQUEST_DURATION_BUCKETS),
              ),
            }),
            fc.constant("scrape" as const),
          ),
          { maxLength: 60 },
        ),
        async (steps) => {
          const metrics = pair();
          for (const step of steps) {
            if (step === "scrape") {
              expect(await metrics.scraped.metrics()).toBe(await metrics.reference.metrics());
            } else metrics.count(step.outcome, step.seconds);
          }
          expect(await metrics.scraped.metrics()).toBe(await metrics.reference.metrics());
        },
      ),
      { numRuns: 200 },
    );
  });

  it("list an unlabelled histogram from the start and empty both after reset", async () => {
    const scraped = new Registry();
    const reference = new Registry();
    const definition = { name: "emailng_test_seconds", help: "Test.", buckets: [0.1, 1] };
    const mine = new ScrapedHistogram(scraped, definition);
    const theirs = new Histogram({ ...definition, registers: [reference] });
    expect(await scraped.metrics()).toBe(await reference.metrics());
    mine.series().observe(0.5);
    theirs.observe(0.5);
    expect(await scraped.metrics()).toBe(await reference.metrics());
    scraped.resetMetrics();
    reference.resetMetrics();
    expect(await scraped.metrics()).toBe(await reference.metrics());
  });

  it("refuse what prom-client refuses", () => {
    const registry = new Registry();
    const counter = new ScrapedCounter(registry, {
      name: "emailng_c_total",
      help: "C.",
      labelNames: ["kind"],
    });
    expect(() => counter.series({ kind: "a" }).inc(-1)).toThrow(/not allowed/);
    expect(() => counter.series({ other: "a" } as never)).toThrow(/not one of/);
    const histogram = new ScrapedHistogram(registry, {
      name: "emailng_h_seconds",
      help: "H.",
      labelNames: ["kind"],
      buckets: [1],
    });
    expect(() => histogram.series({ kind: "a" }).observe(Number.NaN)).toThrow(/not a valid number/);
    expect(() => new ScrapedHistogram(registry, { name: "bad name", help: "H.", buckets: [1] })).toThrow(
      /invalid metric name/,
    );
  });
});
