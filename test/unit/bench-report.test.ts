/**
 * The benchmark report's pure writers: the SVG line chart (ticks, escaping,
 * gaps for unmeasured points, log axes) and renderReport (tables and charts
 * only from measured rows, goals judged from the figures given).
 */
import { describe, expect, it } from "vitest";
import type { Measurement } from "../../bench/lib/measure.js";
import { summarize } from "../../bench/lib/summary.js";
import { renderReport, type StoredResult } from "../../bench/report/performance-report.js";
import { compactNumber, escapeXml, linearTicks, lineChart, logTicks } from "../../bench/report/svg-chart.js";

describe("svg chart", () => {
  it.each([
    { name: "0 to 47,000", min: 0, max: 47_000, want: [0, 10_000, 20_000, 30_000, 40_000, 50_000] },
    { name: "0 to 1", min: 0.1, max: 1, want: [0, 0.2, 0.4, 0.6, 0.8, 1] },
    { name: "all zero", min: 0, max: 0, want: [0, 0.2, 0.4, 0.6, 0.8, 1] },
  ])("linear ticks $name", ({ min, max, want }) => expect(linearTicks(min, max)).toEqual(want));

  it("log ticks cover the data with 1-2-5 steps", () => {
    expect(logTicks(0.03, 40)).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]);
    expect(logTicks(0.001, 1_000)).toEqual([0.001, 0.01, 0.1, 1, 10, 100, 1_000]);
  });

  it.each([
    [1_234, "1.2k"],
    [1_500_000, "1.5M"],
    [0.5, "0.5"],
    [20, "20"],
  ])("compact number %s → %s", (value, want) => expect(compactNumber(value)).toBe(want));

  it("draws one line per series, escapes text and leaves a gap where nothing was measured", () => {
    const svg = lineChart({
      title: "a <b> & c",
      categories: ["1", "10", "50"],
      xLabel: "connections",
      yLabel: "req/s",
      series: [
        { name: "ceiling", values: [10_000, 30_000, 40_000], dashed: true },
        { name: "daemon", values: [8_000, null, 35_000] },
      ],
    });
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain(`<title id="chart-title">${escapeXml("a <b> & c")}</title>`);
    expect(svg).toContain(escapeXml("a <b> & c"));
    expect(svg).not.toContain("a <b>");
    expect(svg.match(/<polyline/g)).toHaveLength(1); // the daemon's two points are not joined across the gap
    expect(svg.match(/<circle/g)).toHaveLength(5);
    expect(svg).toContain('stroke-dasharray="6 4"');
    expect(svg).not.toContain("NaN");
  });

  it("puts larger values higher on a log axis", () => {
    const svg = lineChart({
      title: "latency",
      categories: ["p50", "p99"],
      xLabel: "percentile",
      yLabel: "ms",
      yScale: "log",
      series: [{ name: "x", values: [0.1, 10] }],
    });
    const ys = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((match) => Number(match[1]));
    expect(ys[0]!).toBeGreaterThan(ys[1]!);
  });
});

function measurement(
  row: string,
  role: Measurement["role"],
  connections: number,
  rps: number,
  p99: number,
): Measurement {
  return {
    row,
    target: row.split(" ")[0]!,
    role,
    protocol: "socketmap",
    transport: "unix",
    connections,
    repetition: 1,
    result: {
      connections,
      requests: rps,
      warmupRequests: 0,
      measuredMs: 1_000,
      requestsPerSecond: rps,
      latencyUs: { mean: p99 / 3, p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 2, max: p99 * 4 },
      percentilesUs: [
        [50, p99 / 4],
        [90, p99 / 2],
        [99, p99],
        [99.9, p99 * 2],
        [99.99, p99 * 3],
      ],
      statuses: { OK: rps * 0.7, NOTFOUND: rps * 0.3 },
      errors: 0,
      errorKinds: {},
      stoppedBy: "duration",
    },
    server: { maxRssMb: 140, peakRssMb: 260, cpuSeconds: 1, cpuUsPerRequest: 25 },
  };
}

describe("renderReport", () => {
  const measurements = [
    measurement("do-nothing", "ceiling", 1, 18_000, 150),
    measurement("verifyd recipient", "daemon", 1, 15_000, 200),
    measurement("do-nothing", "ceiling", 50, 40_000, 2_500),
    measurement("verifyd recipient", "daemon", 50, 34_000, 1_900),
  ];
  const socketmap: StoredResult = {
    run: {
      machine: {
        cpuModel: "Test CPU",
        cores: 2,
        memoryGb: 4,
        os: "Debian 12",
        kernel: "6.1",
        node: "v20.0.0",
        loadAverageAtStart: 0.1,
      },
      command: "npm run bench -- --only socketmap",
      date: "2026-11-21T00:00:00.000Z",
    },
    suite: "socketmap",
    startedAt: "2026-11-21T00:00:00.000Z",
    finishedAt: "2026-11-21T00:10:00.000Z",
    settings: {
      durationMs: 5_000,
      warmupMs: 1_000,
      maxRequests: 1_000_000,
      repetitions: 1,
      concurrency: [1, 50],
    },
    targets: [],
    failures: [{ target: "slapd (ldapts)", error: "slapadd failed\nmore" }],
    measurements,
    summary: summarize(measurements),
    extra: { directory: { users: 100_000 } },
    notes: ["a note"],
  };

  it("shows the measured rows, their ratio and the goals they meet or miss", () => {
    const { markdown, charts } = renderReport({ socketmap });
    expect(markdown).toContain("Test CPU, 2 cores");
    expect(markdown).toContain("| verifyd recipient | 50 | 34,000 |");
    expect(markdown).toContain("85% of 40,000/s");
    expect(markdown).toMatch(/p99 at 50 connections \| ≤ 2 ms \| 1\.9 ms \(ceiling 2\.5 ms\) \| yes/);
    expect(markdown).toMatch(
      /RSS, 100,000 users \| ≤ 150 MB with 100,000 users \| 140 MB under load \(peak 260 MB/,
    );
    expect(markdown).toContain("**slapd (ldapts): not measured** — slapadd failed");
    expect(markdown).toContain("npm run bench -- --only socketmap");
    expect(markdown).not.toContain("Dovecot dict");
    expect(Object.keys(charts).sort()).toEqual(["socketmap-latency.svg", "socketmap-throughput.svg"]);
    expect(markdown).toContain("](../bench/results/charts/socketmap-throughput.svg)");
  });

  it("shows quotad's and policyd's growth with a table and a chart each, against the policy ceiling", () => {
    const policy = (row: string, role: Measurement["role"], rps: number, p99: number) => ({
      ...measurement(row, role, 50, rps, p99),
      protocol: "policy" as const,
    });
    const growthMeasurements = [
      measurement("do-nothing", "ceiling", 50, 40_000, 2_500),
      measurement("verifyd 1,000 users", "daemon", 50, 30_000, 3_000),
      policy("do-nothing (policy)", "ceiling", 20_000, 5_000),
      policy("quotad 1,000 users", "daemon", 10_000, 9_000),
      policy("policyd 1,000,000 keys", "daemon", 5_000, 40_000),
    ];
    const growth: StoredResult = {
      ...socketmap,
      suite: "growth",
      settings: { ...socketmap.settings, concurrency: [50] },
      failures: [],
      measurements: growthMeasurements,
      summary: summarize(growthMeasurements),
      extra: {
        connections: 50,
        points: [
          {
            users: 1_000,
            groups: 50,
            snapshotBytes: 1_048_576,
            target: "verifyd 1,000 users",
            startMs: 900,
            idleRssMb: 80,
          },
        ],
        sync: [],
        quotad: [
          { users: 1_000, target: "quotad 1,000 users", usageRows: 1_000, startMs: 1_500, idleRssMb: 90 },
        ],
        policyd: [
          {
            keys: 1_000_000,
            poolKeys: 5_020,
            target: "policyd 1,000,000 keys",
            storeBytes: 157_286_400,
            prefillMs: 4_200,
            startMs: 6_300,
            idleRssMb: 610,
          },
        ],
      },
    };
    const { markdown, charts } = renderReport({ growth });
    expect(markdown).toContain("| 1,000 | 1,000 | 1.5 s | 90 MB | 10,000 | 50% | 9 ms | 140 MB |");
    expect(markdown).toContain("| 1,000,000 | 150.0 MB | 4.2 s | 6.3 s | 610 MB | 5,000 | 25% | 40 ms |");
    expect(markdown).toContain("Policy ceiling in the same sitting: 20,000/s at 50 connections");
    // verifyd is still set against the socketmap ceiling.
    expect(markdown).toContain("Ceiling in the same sitting: 40,000/s at 50 connections.");
    expect(Object.keys(charts)).toEqual(
      expect.arrayContaining(["growth-quotad.svg", "growth-policyd.svg", "growth-throughput.svg"]),
    );
    expect(markdown).toContain("](../bench/results/charts/growth-policyd.svg)");
  });

  it("judges policyd against the policy ceiling and quotad against quota-status", () => {
    const policyRow = (row: string, role: Measurement["role"], rps: number) => ({
      ...measurement(row, role, 50, rps, 5_000),
      protocol: "policy" as const,
    });
    const policyMeasurements = [
      policyRow("do-nothing", "ceiling", 40_000),
      policyRow("policyd", "daemon", 12_000),
      policyRow("quotad", "daemon", 21_000),
      policyRow("postgrey", "anchor", 1_000),
      policyRow("quota-status", "anchor", 700),
    ];
    const policy: StoredResult = {
      ...socketmap,
      suite: "policy",
      failures: [],
      measurements: policyMeasurements,
      summary: summarize(policyMeasurements),
      extra: {},
    };
    const { markdown } = renderReport({ policy });
    expect(markdown).toMatch(
      /policyd at 50 connections \| ≥ 70% of the ceiling \| 12,000\/s = 30% of the ceiling; 12\.0× postgrey \| \*\*no\*\*/,
    );
    expect(markdown).toMatch(
      /quotad vs Dovecot's quota-status at 50 connections \| ≥ 20× \| 30\.0× \(21,000 against 700\/s; 53% of the ceiling\) \| yes/,
    );
  });

  it("writes no section and no goal for a suite without results", () => {
    const { markdown, charts } = renderReport({});
    expect(markdown).not.toContain("Against the targets");
    expect(charts).toEqual({});
  });
});
