/**
 * policyd's Redis store against a real redis-server (test/harness/redis.ts).
 *
 * - Conformance: one sequence of counter, charge, greylisting, burst, hold,
 *   release, report and reset operations, on a fake clock, gives the same
 *   answers from the Lua scripts as from the in-memory store.
 * - Two policyd daemons on two sockets share one Redis: a limit of 3
 *   messages per login is enforced across both, a triplet greylisted by one
 *   is accepted after the delay by the other, a hold raised by one holds
 *   the login on the other, and the admin command on one releases it for both.
 * - Redis stopped: each rule's failure action (DEFER_IF_PERMIT or DUNNO)
 *   answers at once, well within the request budget.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePolicyRequest } from "../../core/protocols/policy.js";
import { askPolicyd } from "../../policyd/admin-commands.js";
import { MemoryStore } from "../../policyd/memory-store.js";
import { type Policyd, startPolicyd } from "../../policyd/program.js";
import { openRedisStore } from "../../policyd/redis-store.js";
import type { PolicyStore } from "../../policyd/store.js";
import type { WindowSpec } from "../../policyd/windows.js";
import { type Redis, startRedis } from "../harness/redis.js";
import { connectLineClient, type LineClient } from "../wire/net-fixtures.js";
import { configFrom, policyAttributes, settingsFrom, silentLog } from "../wire/policyd-fixtures.js";

const MINUTE = 60_000;
// The scripts set expiry times from the clock they are given, so the fake clock starts in the real future.
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;

let redis: Redis;
const root = mkdtempSync(join(tmpdir(), "emailng-policyd-redis-"));

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
  rmSync(root, { recursive: true, force: true });
});

function redisConfig(prefix: string) {
  return configFrom(`[redis]\nurl = "${redis.url}"\nkey_prefix = "${prefix}"\ncommand_timeout = "300ms"\n`)
    .redis;
}

describe("the Redis store answers like the in-memory store", () => {
  const settings = settingsFrom(`
[policyd.greylist]
enabled = true
delay = "1m"
retry_window = "10m"
max_age = "1h"
auto_whitelist_after = 2
[policyd.burst]
enabled = true
interval = "10m"
baseline_intervals = 3
factor = 4
min_recipients = 10
min_distinct_recipients = 6
`);
  const sliding: WindowSpec = { algorithm: "sliding_window", periodMs: MINUTE, limit: 5 };
  const gcra: WindowSpec = { algorithm: "gcra", periodMs: MINUTE, limit: 4 };

  /** Runs the scenario and returns everything each step answered. */
  async function scenario(store: PolicyStore): Promise<unknown[]> {
    const out: unknown[] = [];
    const ops = (cost: number) => [
      { id: "rl:s:60000:alice", spec: sliding, cost },
      { id: "rl:g:60000:alice", spec: gcra, cost },
    ];
    const round = (readings: { used: number; fits: boolean; retryAfterMs: number }[]) =>
      readings.map((reading) => ({ ...reading, used: Math.round(reading.used * 1e6) / 1e6 }));
    let now = T0 + 5_000;
    for (let i = 0; i < 7; i++) {
      out.push(round(await store.readCounters(ops(1), now)));
      out.push(await store.chargeCounters(`tx${i}`, ops(1), now, 10 * MINUTE));
      now += 7_000;
    }
    out.push(await store.chargeCounters("tx3", ops(1), now, 10 * MINUTE));
    now += 50_000;
    out.push(round(await store.readCounters(ops(2), now)));
    now += 3 * MINUTE;
    out.push(round(await store.readCounters(ops(1), now)));

    const triplet = (n: number) => ({ tripletId: `gl:t:net/s@x/r${n}@y`, clientId: "gl:c:net" });
    for (const [n, advance] of [
      [1, 0],
      [1, 30_000],
      [1, 40_000],
      [1, 1_000],
      [2, 0],
      [2, 61_000],
      [3, 0],
      [4, 11 * MINUTE],
    ] as const) {
      now += advance;
      out.push(await store.greylist(triplet(n), now, settings.greylist));
    }

    const burst = (recipients: number, addresses: string[]) =>
      store.recordBurst({ login: "bob", recipients, addresses }, now, settings.burst);
    for (let interval = 0; interval < 4; interval++) {
      out.push((await burst(2, ["a@x", "b@x"])).kind);
      now += 10 * MINUTE;
    }
    const tripped = await burst(12, ["c@x", "d@x", "e@x", "f@x", "g@x", "h@x", "i@x"]);
    out.push(
      tripped.kind === "held" ? { newlyHeld: tripped.newlyHeld, reason: tripped.hold.reason } : tripped,
    );
    const again = await burst(1, ["j@x"]);
    out.push(again.kind === "held" ? { newlyHeld: again.newlyHeld } : again.kind);
    out.push((await store.hold("bob"))?.reason ?? null);
    const report = await store.report(ops(1), "bob", "gl:c:net", now);
    out.push({
      hold: report.hold?.login,
      volume: report.burst?.volume,
      baseline: Math.round((report.burst?.baselineVolume ?? -1) * 1e6) / 1e6,
      client: report.greylistClient?.passes,
    });
    out.push(await store.release("bob"));
    out.push(await store.release("bob"));
    out.push((await burst(1, ["k@x"])).kind);
    // How many records still existed depends on Redis's own clock expiring keys; that some did does not.
    out.push((await store.reset(["rl:s:60000:alice", "rl:g:60000:alice", "rl:none:1:x"], "bob")) > 0);
    out.push(round(await store.readCounters(ops(1), now)));
    return out;
  }

  it("gives the same answers for the same sequence", async () => {
    const memory = new MemoryStore({
      path: null,
      flushIntervalMs: 1000,
      maxEntries: 10_000,
      log: silentLog,
      now: () => T0,
    });
    const shared = await openRedisStore(redisConfig("conformance:"), silentLog);
    try {
      const fromMemory = await scenario(memory);
      const fromRedis = await scenario(shared);
      expect(fromRedis).toEqual(fromMemory);
      // And the scenario says something: limits were reached, retries passed, a hold was raised.
      expect(JSON.stringify(fromMemory)).toContain('"fits":false');
      expect(fromMemory).toContainEqual({ kind: "passed", delayedMs: 70_000 });
      expect(fromMemory).toContainEqual({ kind: "whitelisted" });
      expect(fromMemory).toContainEqual({ newlyHeld: true, reason: "12 recipients this interval, above 10" });
    } finally {
      await memory.close();
      await shared.close();
    }
  });
});

describe("two policyd instances sharing one Redis", () => {
  const instances: Array<{ policyd: Policyd; socket: string; admin: string }> = [];
  const clients: LineClient[] = [];

  beforeAll(async () => {
    for (const name of ["relay1", "relay2"]) {
      const dir = mkdtempSync(join(root, `${name}-`));
      const config = configFrom(`
[log]
level = "error"
[snapshot]
path = "${join(dir, "none.sqlite")}"
[redis]
url = "${redis.url}"
key_prefix = "shared:"
command_timeout = "300ms"
[policyd]
request_timeout = "2s"
admin_socket = "${join(dir, "admin.sock")}"
[[policyd.listen]]
unix = "${join(dir, "policyd.sock")}"
[policyd.store]
backend = "redis"
[policyd.protected_lists]
from_directory = false

[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
[[policyd.rules.windows]]
period = "1h"
limit = 3

[[policyd.rules]]
name = "client-open"
key = "client_address"
failure_action = "DUNNO"
[[policyd.rules.windows]]
period = "1h"
limit = 1000

[policyd.greylist]
enabled = true
delay = "1s"

[policyd.burst]
enabled = true
min_recipients = 5
min_distinct_recipients = 100
`);
      const policyd = await startPolicyd(config, silentLog, { processMetrics: false });
      instances.push({ policyd, socket: join(dir, "policyd.sock"), admin: join(dir, "admin.sock") });
      clients.push(await connectLineClient({ path: join(dir, "policyd.sock") }));
    }
  });

  afterAll(async () => {
    for (const client of clients) client.socket.destroy();
    for (const instance of instances) await instance.policyd.close();
  });

  let transaction = 0;
  async function ask(relay: number, overrides: Record<string, string>): Promise<string> {
    const client = clients[relay]!;
    client.send(Buffer.from(encodePolicyRequest(policyAttributes(overrides))).toString("utf8"));
    const action = await client.nextLine(5000);
    expect(await client.nextLine(5000)).toBe("");
    return action;
  }

  /** One message of `login` through `relay`: RCPT for each recipient, then END-OF-MESSAGE. */
  async function message(relay: number, login: string, recipients: string[]): Promise<string[]> {
    const instance = `r${++transaction}`;
    const base = { instance, sasl_username: login, sasl_method: "PLAIN", sender: `${login}@cs.example.org` };
    const answers: string[] = [];
    for (const recipient of recipients) answers.push(await ask(relay, { ...base, recipient }));
    if (!answers.some((answer) => answer !== "action=DUNNO")) {
      answers.push(
        await ask(relay, {
          ...base,
          protocol_state: "END-OF-MESSAGE",
          recipient: recipients.length === 1 ? (recipients[0] ?? "") : "",
          recipient_count: String(recipients.length),
          size: "2000",
        }),
      );
    }
    return answers;
  }

  it("enforces one limit together", async () => {
    expect(await message(0, "alice", ["a@remote.example"])).toEqual(["action=DUNNO", "action=DUNNO"]);
    expect(await message(1, "alice", ["b@remote.example"])).toEqual(["action=DUNNO", "action=DUNNO"]);
    expect(await message(0, "alice", ["c@remote.example"])).toEqual(["action=DUNNO", "action=DUNNO"]);
    const refusal = "action=450 4.7.1 Rate limit exceeded (login-messages), please try again later";
    expect(await message(1, "alice", ["d@remote.example"])).toEqual([refusal]);
    expect(await message(0, "alice", ["d@remote.example"])).toEqual([refusal]);
    expect(await message(1, "carol", ["d@remote.example"])).toEqual(["action=DUNNO", "action=DUNNO"]);
    const explained = await askPolicyd(instances[1]!.admin, "explain", "alice");
    expect(explained).toMatchObject({
      ok: true,
      counters: [{ rule: "login-messages", used: 3, limit: 3, full: true }],
    });
  });

  it("greylists on one relay and accepts the retry on the other", async () => {
    const attempt = { instance: "g1", sender: "news@remote.example", recipient: "gpapadop@cs.example.org" };
    expect(await ask(0, attempt)).toBe("action=DEFER_IF_PERMIT Greylisted, please try again later");
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await ask(1, { ...attempt, instance: "g2" })).toMatch(
      /^action=PREPEND X-Greylist: delayed 1 seconds by emailng-policyd at /,
    );
  });

  it("holds a login on both relays after a burst on one, and a release on one frees it on both", async () => {
    const burst = await message(0, "dave", [
      "1@x.example",
      "2@x.example",
      "3@x.example",
      "4@x.example",
      "5@x.example",
      "6@x.example",
    ]);
    expect(burst.at(-1)).toBe("action=HOLD held: unusual sending volume for this account");
    expect(await ask(1, { instance: "h2", sasl_username: "dave", recipient: "7@x.example" })).toBe(
      "action=HOLD held: unusual sending volume for this account",
    );
    expect(await askPolicyd(instances[1]!.admin, "release", "dave")).toMatchObject({
      ok: true,
      released: true,
    });
    expect(await ask(0, { instance: "h3", sasl_username: "dave", recipient: "8@x.example" })).toBe(
      "action=DUNNO",
    );
  });

  it("answers each rule's failure action at once when Redis is stopped", async () => {
    await redis.stop();
    const started = Date.now();
    // login-messages fails to DEFER_IF_PERMIT ([policyd] default): it wins over client-open's DUNNO.
    expect(await ask(0, { instance: "f1", sasl_username: "erin", recipient: "x@remote.example" })).toBe(
      "action=DEFER_IF_PERMIT Service temporarily unavailable",
    );
    // Unauthenticated: only client-open (failure_action DUNNO) applies; greylisting fails to the [policyd] default.
    expect(await ask(1, { instance: "f2", sender: "", recipient: "x@cs.example.org" })).toBe(
      "action=DEFER_IF_PERMIT Service temporarily unavailable",
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
