/**
 * The growth suite's prefilled stores are read back by the daemons' own
 * store classes: policyd's MemoryStore loads every counter and reads the
 * counts written, quotad's SqliteUsageStore answers every user. The counter
 * keys are policyd's (counterId) for the requests of the pool.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { POLICYD_RATE_RULES } from "../../bench/targets/emailng-policy.js";
import { policyPool, syntheticDirectoryKeys } from "../../bench/workload/pools.js";
import {
  counterKeys,
  poolCounterKeys,
  prefillPolicydStore,
  prefillQuotadUsage,
} from "../../bench/workload/prefill.js";
import { counterId } from "../../policyd/limits.js";
import { MemoryStore } from "../../policyd/memory-store.js";
import { SqliteUsageStore } from "../../quotad/usage-sqlite.js";
import { makeTempDir, removeTempDir } from "../harness/process.js";
import { silentLog } from "../wire/policyd-fixtures.js";

const NOW = Date.UTC(2026, 11, 7, 10, 20);
const pool = policyPool(syntheticDirectoryKeys(200), 2_000, 7_001);
const [loginRule, clientRule] = POLICYD_RATE_RULES;

let dir = "";
beforeEach(() => {
  dir = makeTempDir("bench-prefill");
});
afterEach(() => removeTempDir(dir));

describe("counter keys", () => {
  it("are policyd's keys for the pool's logins and client addresses, first use first", () => {
    const keys = [...poolCounterKeys(pool, POLICYD_RATE_RULES).keys()];
    const first = pool[0]!;
    const expected = [
      ...(first["sasl_username"]
        ? [counterId(loginRule.name, loginRule.periodMs, first["sasl_username"])]
        : []),
      counterId(clientRule.name, clientRule.periodMs, `${first["client_address"]}/32`),
    ];
    expect(keys.slice(0, expected.length)).toEqual(expected);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each([
    { name: "fewer than the pool touches", count: 10 },
    { name: "more than the pool touches", count: 20_000 },
  ])("$name: exactly that many, distinct", ({ count }) => {
    const keys = counterKeys(pool, POLICYD_RATE_RULES, count);
    expect(keys).toHaveLength(count);
    expect(new Set(keys.map((entry) => entry.key)).size).toBe(count);
    const touched = [...poolCounterKeys(pool, POLICYD_RATE_RULES).keys()];
    expect(keys.slice(0, 10).map((entry) => entry.key)).toEqual(touched.slice(0, 10));
  });
});

describe("prefilled stores", () => {
  it("policyd's memory store loads every counter with the count written", async () => {
    const path = `${dir}/store.sqlite`;
    const keys = counterKeys(pool, POLICYD_RATE_RULES, 5_000);
    prefillPolicydStore(path, keys, NOW);
    const store = new MemoryStore({
      path,
      flushIntervalMs: 60_000,
      maxEntries: 10_000,
      log: silentLog,
      now: () => NOW,
    });
    try {
      expect(store.size).toBe(5_000);
      const readings = await store.readCounters(
        keys.slice(0, 50).map(({ key, rule }) => ({
          id: key,
          spec: { algorithm: "sliding_window", periodMs: rule.periodMs, limit: rule.limit },
          cost: 1,
        })),
        NOW,
      );
      for (const reading of readings) {
        expect(reading.used).toBeGreaterThanOrEqual(1);
        expect(reading.fits).toBe(true);
      }
    } finally {
      await store.close();
    }
  });

  it("quotad's usage store answers every user, some of them full", () => {
    const path = `${dir}/usage.sqlite`;
    const users = syntheticDirectoryKeys(1_000).primaries;
    prefillQuotadUsage(path, users, NOW);
    const store = new SqliteUsageStore(path);
    try {
      expect(store.size).toBe(1_000);
      const readings = store.read(users);
      expect(readings.size).toBe(1_000);
      const full = [...readings.values()].filter((record) => (record.storageBytes ?? 0) > 4 * 2 ** 30);
      expect(full.length).toBeGreaterThan(5);
      expect(full.length).toBeLessThan(100);
      expect(readings.get(users[0]!)?.updatedAt).toBe(NOW);
    } finally {
      void store.close();
    }
  });
});
