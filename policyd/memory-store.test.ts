import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { fakeClock, settingsFrom, silentLog } from "../test/wire/policyd-fixtures.js";
import { MemoryStore } from "./memory-store.js";
import type { CounterOperation } from "./store.js";

const dir = mkdtempSync(join(tmpdir(), "emailng-policyd-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MINUTE = 60_000;
const counter = (id: string, limit = 10): CounterOperation => ({
  id,
  spec: { algorithm: "sliding_window", periodMs: MINUTE, limit },
  cost: 1,
});
const settings = settingsFrom(`
[policyd.greylist]
enabled = true
delay = "1m"
[policyd.burst]
enabled = true
min_recipients = 3
min_distinct_recipients = 3
`);

function open(path: string | null, clock = fakeClock(), maxEntries = 1000) {
  return new MemoryStore({ path, flushIntervalMs: 60_000, maxEntries, log: silentLog, now: clock.now });
}

describe("memory store with SQLite write-behind", () => {
  it("writes a greylisting triplet when it is new or passes, not for each early retry", async () => {
    const path = join(dir, "greylist-writes.sqlite");
    const clock = fakeClock();
    const store = open(path, clock);
    const query = { tripletId: "gl:t:198.51.100.0/24/a@x/b@y", clientId: "gl:c:198.51.100.0/24" };
    const written = () => {
      const db = new Database(path, { readonly: true });
      try {
        const row = db.prepare("SELECT value FROM records WHERE key = ?").get(query.tripletId) as
          | { value: string }
          | undefined;
        return row === undefined ? undefined : JSON.parse(row.value).record;
      } finally {
        db.close();
      }
    };
    const started = clock.now();
    expect(store.greylist(query, clock.now(), settings.greylist)).toMatchObject({ firstAttempt: true });
    store.flush();
    expect(written()).toEqual({ firstSeen: started, lastSeen: started, passed: false });
    clock.advance(30_000);
    expect(store.greylist(query, clock.now(), settings.greylist)).toMatchObject({ firstAttempt: false });
    store.flush();
    expect(written()).toEqual({ firstSeen: started, lastSeen: started, passed: false });
    clock.advance(31_000);
    expect(store.greylist(query, clock.now(), settings.greylist).kind).toBe("passed");
    store.flush();
    expect(written()).toEqual({ firstSeen: started, lastSeen: started + 61_000, passed: true });
    await store.close();
    const reopened = open(path, clock);
    clock.advance(MINUTE);
    expect(reopened.greylist(query, clock.now(), settings.greylist).kind).toBe("known");
    await reopened.close();
  });

  it("keeps counters, greylisting, charge markers and holds across a restart", async () => {
    const path = join(dir, "restart.sqlite");
    const clock = fakeClock();
    const first = open(path, clock);
    expect(
      await first.chargeCounters("tx1", [counter("rl:a:60000:gpapadop")], clock.now(), 10 * MINUTE),
    ).toBe(true);
    await first.chargeCounters("tx2", [{ ...counter("rl:a:60000:gpapadop"), cost: 2 }], clock.now(), MINUTE);
    expect(
      (await first.greylist({ tripletId: "gl:t:x", clientId: "gl:c:x" }, clock.now(), settings.greylist))
        .kind,
    ).toBe("deferred");
    const burst = await first.recordBurst(
      { login: "gpapadop", recipients: 5, addresses: ["a@x", "b@x", "c@x", "d@x", "e@x"] },
      clock.now(),
      settings.burst,
    );
    expect(burst.kind).toBe("held");
    await first.close();

    clock.advance(2 * MINUTE - 1);
    const second = open(path, clock);
    expect(second.size).toBeGreaterThan(0);
    // 3 units charged one bucket ago, one unit of that bucket still inside the window.
    const [reading] = await second.readCounters([counter("rl:a:60000:gpapadop")], clock.now());
    expect(reading?.used).toBeGreaterThan(0);
    expect(
      await second.chargeCounters("tx1", [counter("rl:a:60000:gpapadop")], clock.now(), 5 * MINUTE),
    ).toBe(false);
    expect(
      (await second.greylist({ tripletId: "gl:t:x", clientId: "gl:c:x" }, clock.now(), settings.greylist))
        .kind,
    ).toBe("passed");
    expect((await second.hold("gpapadop"))?.reason).toMatch(/recipients this interval/);
    expect(await second.release("gpapadop")).toBe(true);
    await second.close();

    const third = open(path, clock);
    expect(await third.hold("gpapadop")).toBeNull();
    await third.close();
  });

  it("drops expired records at load and when swept", async () => {
    const path = join(dir, "expiry.sqlite");
    const clock = fakeClock();
    const store = open(path, clock);
    await store.chargeCounters("t", [counter("rl:b:60000:x")], clock.now(), MINUTE);
    expect(store.size).toBe(2);
    clock.advance(3 * MINUTE);
    expect(store.sweep(clock.now())).toBe(2);
    await store.chargeCounters("u", [counter("rl:b:60000:y")], clock.now(), MINUTE);
    await store.close();
    clock.advance(3 * MINUTE);
    const reopened = open(path, clock);
    expect(reopened.size).toBe(0);
    await reopened.close();
  });

  it("stays within max_entries, dropping the oldest records but never a hold", async () => {
    const clock = fakeClock();
    const store = open(null, clock, 100);
    await store.recordBurst(
      { login: "victim", recipients: 9, addresses: ["a@x", "b@x", "c@x", "d@x"] },
      clock.now(),
      settings.burst,
    );
    for (let i = 0; i < 500; i++) {
      await store.chargeCounters(`t${i}`, [counter(`rl:c:60000:k${i}`)], clock.now(), MINUTE);
      expect(store.size).toBeLessThanOrEqual(100);
    }
    expect(await store.hold("victim")).not.toBeNull();
    const [latest] = await store.readCounters([counter("rl:c:60000:k499")], clock.now());
    expect(latest?.used).toBe(1);
    await store.close();
  });

  it("skips damaged rows instead of failing to start", async () => {
    const path = join(dir, "damaged.sqlite");
    const clock = fakeClock();
    const store = open(path, clock);
    await store.chargeCounters("t", [counter("rl:d:60000:x")], clock.now(), MINUTE);
    await store.close();
    const db = new Database(path);
    db.prepare("INSERT INTO records VALUES ('rl:d:60000:y', 'not json', NULL)").run();
    db.prepare("INSERT INTO records VALUES ('rl:d:60000:z', '{\"kind\":\"nonsense\"}', NULL)").run();
    db.close();
    const reopened = open(path, clock);
    expect(reopened.size).toBe(2);
    await reopened.close();
  });

  it("refuses to start on a file that is not a store, naming it", () => {
    const path = join(dir, "not-sqlite.sqlite");
    writeFileSync(path, "this is not a database, just text long enough to look like a header........");
    expect(() => open(path)).toThrow(/cannot open the policyd store .*not-sqlite\.sqlite/);
  });
});
