/**
 * The shared store for several relays: every counter, greylist record,
 * burst figure and hold lives in Redis under `<key_prefix>policyd:`, and
 * each operation is one Lua script (redis-scripts.ts) run atomically, so
 * two policyd instances enforce one limit together. The client comes from
 * core/redis (one server or Sentinel, short command timeout, no offline
 * queue): when Redis is down every method rejects at once with a
 * TransientError and the caller gives the configured failure answer while
 * ioredis reconnects in the background.
 *
 * Scripts are sent by SHA1 (EVALSHA) and loaded with EVAL the first time a
 * server answers NOSCRIPT (after a restart or a fail-over).
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { openRedis, type RedisSettings, redisCall } from "../core/redis/client.js";
import type { BurstRecord, HoldRecord } from "./burst.js";
import type { ClientRecord, GreylistDecision, GreylistQuery } from "./greylist.js";
import { CHARGE_COUNTERS, GREYLIST, READ_COUNTERS, RECORD_BURST, RELEASE } from "./redis-scripts.js";
import type { BurstSettings, GreylistSettings } from "./rules.js";
import type { BurstOutcome, BurstSample, CounterOperation, KeyReport, PolicyStore } from "./store.js";
import type { WindowReading } from "./windows.js";

/** Most addresses sent to PFADD in one call (Lua's unpack has a stack limit). */
const MAX_BURST_ADDRESSES = 1000;

class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw error;
    }
  }
}

const scripts = {
  read: new LuaScript(READ_COUNTERS),
  charge: new LuaScript(CHARGE_COUNTERS),
  greylist: new LuaScript(GREYLIST),
  burst: new LuaScript(RECORD_BURST),
  release: new LuaScript(RELEASE),
};

function operationArgs(operation: CounterOperation): (string | number)[] {
  const { spec } = operation;
  return [spec.algorithm === "gcra" ? 1 : 0, spec.periodMs, spec.limit, operation.cost];
}

function toNumber(value: unknown): number {
  const number = Number(value);
  return Number.isFinite(number) ? number : 0;
}

function strings(reply: unknown, what: string): string[] {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply to ${what}`);
  return reply.map((item) => String(item));
}

export class RedisStore implements PolicyStore {
  readonly kind = "redis" as const;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
  ) {
    this.prefix = `${keyPrefix}policyd:`;
  }

  private key(id: string): string {
    return this.prefix + id;
  }

  private intervalKey(login: string, now: number, intervalMs: number): string {
    const start = Math.floor(now / intervalMs) * intervalMs;
    return this.key(`burstd:${login}:${start}`);
  }

  async readCounters(operations: readonly CounterOperation[], now: number): Promise<WindowReading[]> {
    if (operations.length === 0) return [];
    const reply = await redisCall("read counters", () =>
      scripts.read.run(
        this.redis,
        operations.map((operation) => this.key(operation.id)),
        [now, ...operations.flatMap(operationArgs)],
      ),
    );
    const values = strings(reply, "read counters");
    return operations.map((_, index) => {
      const retry = toNumber(values[index * 3 + 2]);
      return {
        used: toNumber(values[index * 3]),
        fits: values[index * 3 + 1] === "1",
        retryAfterMs: retry < 0 ? Number.POSITIVE_INFINITY : retry,
      };
    });
  }

  async chargeCounters(
    transaction: string,
    operations: readonly CounterOperation[],
    now: number,
    markerTtlMs: number,
  ): Promise<boolean> {
    const reply = await redisCall("charge counters", () =>
      scripts.charge.run(
        this.redis,
        [this.key(`tx:${transaction}`), ...operations.map((operation) => this.key(operation.id))],
        [now, Math.max(1, Math.round(markerTtlMs)), ...operations.flatMap(operationArgs)],
      ),
    );
    return toNumber(reply) === 1;
  }

  async greylist(query: GreylistQuery, now: number, settings: GreylistSettings): Promise<GreylistDecision> {
    const reply = await redisCall("greylist", () =>
      scripts.greylist.run(
        this.redis,
        [this.key(query.tripletId), this.key(query.clientId)],
        [now, settings.delayMs, settings.retryWindowMs, settings.maxAgeMs, settings.autoWhitelistAfter],
      ),
    );
    const [kind, value, first] = strings(reply, "greylist");
    switch (kind) {
      case "whitelisted":
        return { kind: "whitelisted" };
      case "known":
        return { kind: "known" };
      case "passed":
        return { kind: "passed", delayedMs: toNumber(value) };
      case "deferred":
        return { kind: "deferred", retryInMs: toNumber(value), firstAttempt: first === "1" };
      default:
        throw new Error(`unexpected greylist reply ${String(kind)}`);
    }
  }

  async recordBurst(sample: BurstSample, now: number, settings: BurstSettings): Promise<BurstOutcome> {
    const reply = await redisCall("record burst", () =>
      scripts.burst.run(
        this.redis,
        [
          this.key(`burst:${sample.login}`),
          this.intervalKey(sample.login, now, settings.intervalMs),
          this.key(`hold:${sample.login}`),
        ],
        [
          now,
          settings.intervalMs,
          settings.baselineIntervals,
          settings.factor,
          settings.minRecipients,
          settings.minDistinctRecipients,
          sample.recipients,
          sample.login,
          ...sample.addresses.slice(0, MAX_BURST_ADDRESSES),
        ],
      ),
    );
    const values = strings(reply, "record burst");
    if (values[0] === "normal") {
      // The figures are not needed on the hot path; report() reads them when asked.
      return {
        kind: "normal",
        record: { intervalStart: 0, volume: 0, distinct: 0, baselineVolume: 0, baselineDistinct: 0 },
      };
    }
    const [, newly, since, reason, volume, distinct, volumeThreshold, distinctThreshold] = values;
    const hold: HoldRecord = { login: sample.login, since: toNumber(since), reason: reason ?? "" };
    const newlyHeld = newly === "1";
    return {
      kind: "held",
      hold,
      newlyHeld,
      trigger: newlyHeld
        ? {
            volume: toNumber(volume),
            distinct: toNumber(distinct),
            volumeThreshold: toNumber(volumeThreshold),
            distinctThreshold: toNumber(distinctThreshold),
            reason: reason ?? "",
          }
        : null,
    };
  }

  async hold(login: string): Promise<HoldRecord | null> {
    const fields = await redisCall("read hold", () =>
      this.redis.hmget(this.key(`hold:${login}`), "since", "reason"),
    );
    if (fields[0] === null || fields[0] === undefined) return null;
    return { login, since: toNumber(fields[0]), reason: fields[1] ?? "" };
  }

  async release(login: string): Promise<boolean> {
    const keys = [this.key(`hold:${login}`), this.key(`burst:${login}`)];
    const burst = await redisCall("read burst", () => this.redis.hget(this.key(`burst:${login}`), "i"));
    const start = burst === null ? null : toNumber(burst);
    keys.push(start === null ? this.key(`burstd:${login}:none`) : this.key(`burstd:${login}:${start}`));
    const reply = await redisCall("release", () => scripts.release.run(this.redis, keys, []));
    return toNumber(reply) === 1;
  }

  async report(
    counters: readonly CounterOperation[],
    login: string | null,
    clientId: string | null,
    now: number,
  ): Promise<KeyReport> {
    const readings = await this.readCounters(counters, now);
    let burst: BurstRecord | null = null;
    if (login !== null) {
      const fields = await redisCall("read burst", () =>
        this.redis.hmget(this.key(`burst:${login}`), "i", "v", "d", "bv", "bd"),
      );
      if (fields[0] !== null && fields[0] !== undefined) {
        burst = {
          intervalStart: toNumber(fields[0]),
          volume: toNumber(fields[1]),
          distinct: toNumber(fields[2]),
          baselineVolume: toNumber(fields[3]),
          baselineDistinct: toNumber(fields[4]),
        };
      }
    }
    let greylistClient: ClientRecord | null = null;
    if (clientId !== null) {
      const fields = await redisCall("read greylist client", () =>
        this.redis.hmget(this.key(clientId), "n", "l"),
      );
      if (fields[0] !== null && fields[0] !== undefined) {
        greylistClient = { passes: toNumber(fields[0]), lastSeen: toNumber(fields[1]) };
      }
    }
    return {
      counters: counters.map((operation, index) => ({
        id: operation.id,
        state: null,
        reading: readings[index] ?? { used: 0, fits: true, retryAfterMs: 0 },
      })),
      hold: login === null ? null : await this.hold(login),
      burst,
      greylistClient,
    };
  }

  async reset(counterIds: readonly string[], login: string | null): Promise<number> {
    const keys = counterIds.map((id) => this.key(id));
    if (login !== null) keys.push(this.key(`burst:${login}`));
    if (keys.length === 0) return 0;
    return redisCall("reset", () => this.redis.del(...keys));
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

export async function openRedisStore(settings: RedisSettings, log: Logger): Promise<RedisStore> {
  const redis = await openRedis(settings, "emailng-policyd");
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) log.error({ reason: error.message }, "redis connection failed; answering the failure policy");
    down = true;
  });
  redis.on("ready", () => {
    if (down) log.info("redis connection back");
    down = false;
  });
  // Wait for the first connection (bounded by connect_timeout) so that the
  // first requests after start do not all meet the failure answer.
  if (redis.status !== "ready") {
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), settings.connect_timeout);
      const onReady = () => finish(true);
      function finish(value: boolean) {
        clearTimeout(timer);
        redis.off("ready", onReady);
        resolve(value);
      }
      redis.once("ready", onReady);
    });
    if (!ready) log.warn("redis not reachable at start; answering the failure policy until it is");
  }
  return new RedisStore(redis, settings.key_prefix);
}
