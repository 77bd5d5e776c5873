/**
 * One way to open the Redis connection policyd and quotad share when several
 * relays must see the same counters and usage ([redis] in the config).
 *
 * The client fails fast instead of queueing: no offline queue, one retry per
 * command, a short command timeout. A policy answer that waits for Redis
 * holds an SMTP client; it is better to give the configured failure answer
 * (DUNNO or DEFER_IF_PERMIT) at once and let ioredis reconnect in the
 * background. Callers see every Redis failure as a TransientError.
 *
 * ioredis itself is imported when a client is opened: a program that only
 * may use Redis (policyd and quotad default to their embedded stores; the
 * doctor checks it only when [redis] is set) does not load it at start.
 */
import type { Redis, RedisOptions } from "ioredis";
import type { DeepReadonly } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { readSecretFile } from "../config/secrets.js";
import { TransientError } from "../errors.js";

export type RedisSettings = DeepReadonly<Config["redis"]>;

/** True when the [redis] table names a server or a Sentinel group. */
export function redisConfigured(settings: RedisSettings): boolean {
  return settings.url !== "" || settings.sentinels.length > 0;
}

/** Opens a client (connecting in the background); throws when [redis] names nothing or the password file is bad. */
export async function openRedis(settings: RedisSettings, connectionName: string): Promise<Redis> {
  if (!redisConfigured(settings)) {
    throw new TransientError(
      "transient.backend_down",
      "redis is not configured: set redis.url or redis.sentinels",
    );
  }
  const password = settings.password_file === "" ? undefined : await readSecretFile(settings.password_file);
  const { Redis } = await import("ioredis");
  const common: RedisOptions = {
    connectionName,
    db: settings.database,
    password,
    connectTimeout: settings.connect_timeout,
    commandTimeout: settings.command_timeout,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect forever with a capped back-off; each command fails fast meanwhile.
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
  };
  if (settings.sentinels.length > 0) {
    return new Redis({
      ...common,
      sentinels: settings.sentinels.map(({ host, port }) => ({ host, port })),
      name: settings.sentinel_master,
    });
  }
  return new Redis(settings.url, common);
}

/** Runs one Redis operation; any failure (down, timeout, script error) becomes a TransientError. */
export async function redisCall<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof TransientError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    const code = /timed? ?out/i.test(reason) ? "transient.timeout" : "transient.backend_down";
    throw new TransientError(code, `redis ${what} failed: ${reason}`, { cause: error });
  }
}
