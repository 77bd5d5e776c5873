/**
 * The usage store shared by several relays and back-ends: Redis, with the
 * keys Dovecot's own redis dict writes for quota_clone, so either writer
 * will do — quotad's dict feed on a back-end, or Dovecot itself with
 * `quota_clone_dict = redis:host=…:prefix=<redis_key_prefix>:expire_secs=…`.
 * Checked against Dovecot 2.3.19 and redis-server: a priv/ key is stored as
 * `<prefix><username>/<key without "priv/">`, i.e.
 *
 *     quota/alice@example.test/quota/storage   "1205"
 *     quota/alice@example.test/quota/messages  "1"
 *
 * plain strings, with a TTL of expire_secs when set. There is no time stamp
 * in them, so the TTL is the clock: a writer sets the expiry to
 * usage_max_age on every write (quotad does; Dovecot with expire_secs),
 * the age of a value is usage_max_age minus its remaining TTL, and a value
 * not refreshed in time disappears (no usage: never refused for). A key
 * without expiry has an unknown age and is treated as stale.
 *
 * Every Redis failure is a TransientError (core/redis/client.ts): the
 * session answers the configured "unavailable" reply and the dict feed a
 * commit failure, never a refusal.
 */
import type { Redis } from "ioredis";
import { redisCall } from "../core/redis/client.js";
import type { UsageEntry, UsageReadings, UsageRecord, UsageStore, UsageUpdate } from "./usage-store.js";

const STORAGE_SUFFIX = "/quota/storage";
const MESSAGES_SUFFIX = "/quota/messages";
/** Keys asked per SCAN step in list(). */
const SCAN_BATCH = 1000;

export interface RedisUsageStoreOptions {
  redis: Redis;
  /** Must equal the prefix= of Dovecot's redis dict when Dovecot writes directly. */
  keyPrefix: string;
  /** Expiry given to every value written, and the reference for computing ages from TTLs. */
  maxAgeMs: number;
  /** ms since the epoch; tests pass a fake clock. */
  now?: () => number;
}

export function usageKeys(prefix: string, username: string): { storage: string; messages: string } {
  return {
    storage: `${prefix}${username}${STORAGE_SUFFIX}`,
    messages: `${prefix}${username}${MESSAGES_SUFFIX}`,
  };
}

function count(value: string | null | undefined): number | null {
  return typeof value === "string" && /^[0-9]{1,15}$/.test(value) ? Number(value) : null;
}

export class RedisUsageStore implements UsageStore {
  readonly kind = "redis" as const;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: RedisUsageStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.keyPrefix;
    this.maxAgeMs = options.maxAgeMs;
    this.now = options.now ?? Date.now;
  }

  /** One round trip: MGET of both values and the storage key's PTTL for every user. */
  async read(usernames: readonly string[]): Promise<UsageReadings> {
    const readings = new Map<string, UsageRecord>();
    if (usernames.length === 0) return readings;
    const keys = usernames.map((username) => usageKeys(this.prefix, username));
    const results = await redisCall("usage read", () => {
      const pipeline = this.redis.pipeline();
      pipeline.mget(...keys.flatMap((key) => [key.storage, key.messages]));
      for (const key of keys) pipeline.pttl(key.storage);
      return pipeline.exec();
    });
    if (results === null) throw new Error("redis pipeline was discarded");
    const [valuesResult, ...ttlResults] = results;
    if (valuesResult === undefined || valuesResult[0] !== null)
      throw valuesResult?.[0] ?? new Error("no reply");
    const values = valuesResult[1] as (string | null)[];
    const now = this.now();
    usernames.forEach((username, index) => {
      const storageBytes = count(values[index * 2]);
      const messages = count(values[index * 2 + 1]);
      if (storageBytes === null && messages === null) return;
      const ttl = ttlResults[index];
      const pttl = ttl !== undefined && ttl[0] === null ? Number(ttl[1]) : -1;
      readings.set(username, { storageBytes, messages, updatedAt: this.writtenAt(pttl, now) });
    });
    return readings;
  }

  /** When a value with this remaining TTL was written, if it was written with our expiry. */
  private writtenAt(pttl: number, now: number): number | null {
    if (pttl < 0) return null;
    return now - Math.max(0, this.maxAgeMs - pttl);
  }

  /** MULTI/EXEC: all the values of all the updates, each with the expiry, or none. */
  async write(updates: readonly UsageUpdate[], _now: number): Promise<void> {
    if (updates.length === 0) return;
    const results = await redisCall("usage write", () => {
      const transaction = this.redis.multi();
      for (const update of updates) {
        const keys = usageKeys(this.prefix, update.username);
        for (const [key, value] of [
          [keys.storage, update.storageBytes],
          [keys.messages, update.messages],
        ] as const) {
          if (value === undefined) continue;
          if (value === null) transaction.del(key);
          else transaction.set(key, String(value), "PX", this.maxAgeMs);
        }
      }
      return transaction.exec();
    });
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined) {
      await redisCall("usage write", () => Promise.reject(failed?.[0] ?? new Error("transaction discarded")));
    }
  }

  /** Every user with a storage value (SCAN, so a big keyspace does not block Redis). */
  async list(): Promise<UsageEntry[]> {
    const pattern = `${this.prefix}*${STORAGE_SUFFIX}`;
    const usernames: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redisCall("usage scan", () =>
        this.redis.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH),
      );
      cursor = next;
      for (const key of keys) {
        usernames.push(key.slice(this.prefix.length, key.length - STORAGE_SUFFIX.length));
      }
    } while (cursor !== "0");
    const entries: UsageEntry[] = [];
    for (let start = 0; start < usernames.length; start += SCAN_BATCH) {
      const batch = usernames.slice(start, start + SCAN_BATCH);
      const readings = await this.read(batch);
      for (const username of batch) {
        const record = readings.get(username);
        if (record !== undefined) entries.push({ username, ...record });
      }
    }
    return entries;
  }

  async close(): Promise<void> {
    // The connection belongs to whoever opened it (program.ts), which quits it.
  }
}
