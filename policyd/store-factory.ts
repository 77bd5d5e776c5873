/**
 * Opens the store [policyd.store] names: the embedded memory store with its
 * SQLite write-behind file (the default), or the Redis store shared by
 * several relays ([redis] table).
 */
import type { Logger } from "pino";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { MemoryStore } from "./memory-store.js";
import { openRedisStore } from "./redis-store.js";
import type { PolicyStore } from "./store.js";

export async function openPolicyStore(config: DeepReadonly<Config>, log: Logger): Promise<PolicyStore> {
  const settings = config.policyd.store;
  switch (settings.backend) {
    case "memory":
      return new MemoryStore({
        path: settings.path === "" ? null : settings.path,
        flushIntervalMs: settings.flush_interval,
        maxEntries: settings.max_entries,
        log,
      });
    case "redis":
      return openRedisStore(config.redis, log);
    default: {
      const unreachable: never = settings.backend;
      return unreachable;
    }
  }
}
