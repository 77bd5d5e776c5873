/**
 * From the validated configuration to what quotad's pieces take: the
 * decision settings, the usage store (SQLite file or Redis connection) and
 * the dict name of the feed. Shared by the daemon and the `quota` commands
 * so that `quota explain` answers exactly as the daemon would.
 */
import type { Redis } from "ioredis";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { openRedis, redisConfigured } from "../core/redis/client.js";
import type { QuotaSettings } from "./decision.js";
import { RedisUsageStore } from "./usage-redis.js";
import { SqliteUsageStore } from "./usage-sqlite.js";
import type { UsageStore } from "./usage-store.js";

export function quotaSettingsFromConfig(config: DeepReadonly<Config>): QuotaSettings {
  const quotad = config.quotad;
  return {
    defaultLimitBytes: quotad.default_limit,
    dovecotUsername: quotad.dovecot_username,
    groupPolicy: quotad.group_policy,
    maxDepth: config.directory.max_depth,
    grace: quotad.grace,
    usageMaxAgeMs: quotad.usage_max_age,
    severalRecipients: quotad.several_recipients,
  };
}

export function resolverOptionsFromConfig(config: DeepReadonly<Config>) {
  return {
    recipientDelimiters: config.directory.recipient_delimiter,
    maxExpansion: config.directory.max_expansion,
    maxDepth: config.directory.max_depth,
  };
}

export interface OpenedUsageStore {
  store: UsageStore;
  /** SQLite only: reload when another process wrote the file. */
  sqlite?: SqliteUsageStore;
  /** Redis only: the connection, closed with the store. */
  redis?: Redis;
  close(): Promise<void>;
}

/**
 * Opens the configured store. SQLite is opened (and created) at once and
 * throws when the file cannot be; Redis connects in the background, so a
 * Redis that is down at start gives "unavailable" answers until it is back.
 */
export async function openUsageStore(
  config: DeepReadonly<Config>,
  connectionName: string,
  options: { readonly?: boolean } = {},
): Promise<OpenedUsageStore> {
  const usage = config.quotad.usage;
  switch (usage.backend) {
    case "sqlite": {
      const sqlite = new SqliteUsageStore(usage.path, { readonly: options.readonly ?? false });
      return { store: sqlite, sqlite, close: () => sqlite.close() };
    }
    case "redis": {
      if (!redisConfigured(config.redis)) {
        throw new Error('quotad.usage.backend = "redis" needs [redis] url or sentinels');
      }
      const redis = await openRedis(config.redis, connectionName);
      // Errors surface on commands (as TransientError); the event only needs a listener so it is not thrown.
      redis.on("error", () => {});
      const store = new RedisUsageStore({
        redis,
        keyPrefix: usage.redis_key_prefix,
        maxAgeMs: config.quotad.usage_max_age,
      });
      return {
        store,
        redis,
        close: async () => {
          redis.disconnect();
        },
      };
    }
    default: {
      const unreachable: never = usage.backend;
      throw new Error(`unknown usage backend ${String(unreachable)}`);
    }
  }
}
