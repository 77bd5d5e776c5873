import { register as globalRegistry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createDaemonMetrics } from "./registry.js";

/** The value of the sample with this name and exactly these labels, whatever their order. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(",");
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] === name && match[2]!.split(",").sort().join(",") === wanted) return Number(match[3]);
  }
  return undefined;
}

describe("createDaemonMetrics", () => {
  it("turns server events into labelled series", async () => {
    const metrics = createDaemonMetrics("policyd", { processMetrics: false });
    const { observer } = metrics;
    observer.connectionOpened("unix:/run/emailng/policyd.sock");
    observer.connectionOpened("unix:/run/emailng/policyd.sock");
    observer.connectionClosed("unix:/run/emailng/policyd.sock");
    observer.connectionRefused("tcp:127.0.0.1:10040", "not_allowed");
    observer.request("DUNNO", 0.0003);
    observer.request("DUNNO", 0.002);
    observer.request("DEFER_IF_PERMIT", 10);
    observer.error("deadline");

    const text = await metrics.registry.metrics();
    expect(sample(text, "emailng_requests_total", { outcome: "DUNNO", program: "policyd" })).toBe(2);
    expect(sample(text, "emailng_requests_total", { outcome: "DEFER_IF_PERMIT", program: "policyd" })).toBe(
      1,
    );
    expect(
      sample(text, "emailng_connections", { listener: "unix:/run/emailng/policyd.sock", program: "policyd" }),
    ).toBe(1);
    expect(
      sample(text, "emailng_connections_refused_total", { reason: "not_allowed", program: "policyd" }),
    ).toBe(1);
    expect(
      sample(text, "emailng_connections_refused_total", { reason: "max_connections", program: "policyd" }),
    ).toBe(0);
    expect(sample(text, "emailng_errors_total", { kind: "deadline", program: "policyd" })).toBe(1);
    expect(sample(text, "emailng_errors_total", { kind: "protocol", program: "policyd" })).toBe(0);
    const bucket = (le: string, outcome: string) =>
      sample(text, "emailng_request_duration_seconds_bucket", { le, outcome, program: "policyd" });
    expect(bucket("0.0001", "DUNNO")).toBe(0);
    expect(bucket("0.0005", "DUNNO")).toBe(1);
    expect(bucket("5", "DEFER_IF_PERMIT")).toBe(0);
    expect(bucket("10", "DEFER_IF_PERMIT")).toBe(1);
  });

  it("keeps daemons apart and leaves the global registry empty", async () => {
    const verifyd = createDaemonMetrics("verifyd", { processMetrics: false });
    const quotad = createDaemonMetrics("quotad", { processMetrics: false });
    verifyd.observer.request("OK", 0.001);
    expect(await quotad.registry.metrics()).not.toContain('outcome="OK"');
    expect((await globalRegistry.metrics()).trim()).toBe("");
  });

  it("lets a program add its own metrics to the same registry, with the program label", async () => {
    const metrics = createDaemonMetrics("verifyd", { processMetrics: false });
    const age = metrics.gauge({ name: "emailng_snapshot_age_seconds", help: "Age of the snapshot in use." });
    const lookups = metrics.counter({
      name: "emailng_lookups_total",
      help: "Lookups.",
      labelNames: ["map"] as const,
    });
    age.set(42);
    lookups.inc({ map: "virtual" });
    const text = await metrics.registry.metrics();
    expect(sample(text, "emailng_snapshot_age_seconds", { program: "verifyd" })).toBe(42);
    expect(sample(text, "emailng_lookups_total", { map: "virtual", program: "verifyd" })).toBe(1);
  });

  it("collects process metrics by default", async () => {
    const metrics = createDaemonMetrics("quotad");
    expect(await metrics.registry.metrics()).toMatch(
      /^process_resident_memory_bytes\{program="quotad"\} \d+/m,
    );
  });
});
