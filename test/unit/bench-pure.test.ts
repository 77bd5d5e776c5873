/**
 * The benchmark's pure pieces: flag parsing, the seeded PRNG and Zipf
 * sampler behind the request pools, the pools' mixes, the statistics and
 * the summary (medians over repetitions, ratio to the same sitting's
 * ceiling).
 */
import { describe, expect, it } from "vitest";
import { parseBenchArgs, parseDuration } from "../../bench/lib/args.js";
import type { Measurement } from "../../bench/lib/measure.js";
import { seededRandom, weightedPicker, ZipfSampler } from "../../bench/lib/random.js";
import { formatMicros, median, ratio, significant } from "../../bench/lib/stats.js";
import { summarize } from "../../bench/lib/summary.js";
import { policyPool, recipientAddresses, syntheticDirectoryKeys } from "../../bench/workload/pools.js";

describe("flags", () => {
  it.each([
    {
      name: "defaults",
      input: [],
      want: {
        suites: ["socketmap", "dict", "policy", "growth"],
        durationMs: 5_000,
        concurrency: [1, 10, 50],
      },
    },
    {
      name: "a quick single piece",
      input: [
        "--only",
        "policy,socketmap",
        "--duration",
        "500ms",
        "--concurrency=50,1",
        "--repetitions",
        "1",
      ],
      want: { suites: ["socketmap", "policy"], durationMs: 500, concurrency: [1, 50], repetitions: 1 },
    },
    {
      name: "growth sizes",
      input: ["--growth-users", "1000,100000"],
      want: { growthUsers: [1_000, 100_000] },
    },
    {
      name: "growth counter keys",
      input: ["--growth-keys", "1000000,1000"],
      want: { growthKeys: [1_000, 1_000_000], growthUsers: [1_000, 10_000, 100_000] },
    },
  ])("$name", ({ input, want }) => {
    const parsed = parseBenchArgs(input);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(parsed.options).toMatchObject(want);
  });

  it.each([
    { name: "unknown suite", input: ["--only", "smtp"], want: /expected some of/ },
    { name: "bad duration", input: ["--duration", "fast"], want: /duration/ },
    { name: "zero repetitions", input: ["--repetitions", "0"], want: /positive whole number/ },
    { name: "missing value", input: ["--users"], want: /needs a value/ },
    { name: "unknown flag", input: ["--turbo"], want: /unknown flag/ },
    { name: "too many connections", input: ["--concurrency", "5000"], want: /at most 1000/ },
    { name: "too many counter keys", input: ["--growth-keys", "90000000"], want: /at most 50000000 keys/ },
    { name: "bad counter keys", input: ["--growth-keys", "1000,lots"], want: /whole numbers/ },
  ])("refuses $name", ({ input, want }) => {
    const parsed = parseBenchArgs(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(want);
  });

  it.each([
    ["5s", 5_000],
    ["250ms", 250],
    ["2m", 120_000],
    ["3", 3_000],
    ["0s", undefined],
    ["-1s", undefined],
  ])("duration %s → %s", (text, want) => expect(parseDuration(text)).toBe(want));
});

describe("randomness", () => {
  it("repeats a sequence for the same seed", () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const first = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(first);
    expect(Array.from({ length: 5 }, c)).not.toEqual(first);
  });

  it("draws Zipf ranks with the expected skew", () => {
    const sampler = new ZipfSampler(1_000, 1, seededRandom(1));
    const counts = new Array<number>(1_000).fill(0);
    const draws = 200_000;
    for (let n = 0; n < draws; n++) counts[sampler.next()]!++;
    // P(rank 0) = 1 / H(1000) ≈ 0.1336; rank 9 ten times rarer.
    expect(sampler.probability(0)).toBeCloseTo(0.1336, 3);
    expect(counts[0]! / draws).toBeCloseTo(sampler.probability(0), 2);
    expect(counts[0]! / counts[9]!).toBeGreaterThan(8);
    expect(counts[0]! / counts[9]!).toBeLessThan(12);
    expect(counts.filter((count) => count > 0).length).toBeGreaterThan(900);
  });

  it("picks weighted categories in proportion", () => {
    const pick = weightedPicker(
      [
        { weight: 3, value: "a" },
        { weight: 1, value: "b" },
      ],
      seededRandom(3),
    );
    let a = 0;
    for (let n = 0; n < 40_000; n++) if (pick() === "a") a++;
    expect(a / 40_000).toBeCloseTo(0.75, 1);
  });
});

describe("request pools", () => {
  const keys = syntheticDirectoryKeys(5_000);

  it("mixes recipient kinds as declared and is the same for the same seed", () => {
    const drawn = recipientAddresses(keys, 20_000, 11);
    expect(recipientAddresses(keys, 20_000, 11)).toEqual(drawn);
    const share = (kind: string) => drawn.filter((entry) => entry.kind === kind).length / drawn.length;
    expect(share("unknownLocal")).toBeCloseTo(0.18, 1);
    expect(share("otherDomain")).toBeCloseTo(0.05, 1);
    const known = new Set(keys.primaries);
    expect(drawn.filter((entry) => entry.kind === "primary").every((entry) => known.has(entry.address))).toBe(
      true,
    );
  });

  it("builds RCPT policy requests with varied senders, clients and SASL users", () => {
    const pool = policyPool(keys, 2_000, 5);
    expect(pool.every((item) => item["protocol_state"] === "RCPT" && item["recipient"] !== "")).toBe(true);
    const distinct = (name: string) => new Set(pool.map((item) => item[name])).size;
    expect(distinct("client_address")).toBeGreaterThan(100);
    expect(distinct("sender")).toBeGreaterThan(100);
    const authenticated = pool.filter((item) => item["sasl_username"] !== "").length / pool.length;
    expect(authenticated).toBeGreaterThan(0.15);
    expect(authenticated).toBeLessThan(0.35);
  });
});

describe("statistics", () => {
  it.each([
    { input: [3, 1, 2], want: 2 },
    { input: [4, 1, 3, 2], want: 2.5 },
    { input: [], want: Number.NaN },
  ])("median of $input", ({ input, want }) => expect(median(input)).toEqual(want));

  it("ratio, rounding and units", () => {
    expect(ratio(40, 50)).toBe(0.8);
    expect(ratio(40, 0)).toBeNaN();
    expect(significant(123_456, 3)).toBe(123_000);
    expect(formatMicros(85)).toBe("85 µs");
    expect(formatMicros(1_420)).toBe("1.42 ms");
  });

  it("summarizes repetitions by median and sets each row against its own ceiling", () => {
    const make = (
      row: string,
      role: Measurement["role"],
      connections: number,
      rps: number,
      p99: number,
      repetition: number,
    ): Measurement => ({
      row,
      target: row,
      role,
      protocol: "socketmap",
      transport: "unix",
      connections,
      repetition,
      result: {
        connections,
        requests: rps * 5,
        warmupRequests: 0,
        measuredMs: 5_000,
        requestsPerSecond: rps,
        latencyUs: { mean: p99 / 2, p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 2, max: p99 * 3 },
        percentilesUs: [],
        statuses: { OK: rps },
        errors: 0,
        errorKinds: {},
        stoppedBy: "duration",
      },
      server: { maxRssMb: 100, peakRssMb: 120, cpuSeconds: 1, cpuUsPerRequest: 20 },
    });
    const rows = summarize([
      make("ceiling", "ceiling", 50, 50_000, 1_000, 1),
      make("ceiling", "ceiling", 50, 40_000, 1_000, 2),
      make("ceiling", "ceiling", 50, 60_000, 1_000, 3),
      make("daemon", "daemon", 50, 45_000, 1_500, 1),
      make("daemon", "daemon", 50, 10_000, 9_000, 2),
      make("daemon", "daemon", 50, 40_000, 1_800, 3),
      make("ceiling", "ceiling", 1, 10_000, 100, 1),
    ]);
    const daemon = rows.find((row) => row.row === "daemon" && row.connections === 50)!;
    expect(daemon.requestsPerSecond).toBe(40_000);
    expect(daemon.requestsPerSecondMin).toBe(10_000);
    expect(daemon.p99Us).toBe(1_800);
    expect(daemon.ratioToCeiling).toBeCloseTo(0.8);
    expect(daemon.ceiling).toBe("ceiling");
    expect(daemon.statuses["OK"]).toBe(95_000);
    expect(rows[0]!.connections).toBe(1);
  });
});
