/**
 * verifyd's live LDAP path ([verifyd.live_ldap]): a name the snapshot does
 * not know (a user created since the last sync) is asked of LDAP once, and
 * the answer is remembered for a short time: "not found" for negative_ttl, a
 * found user for positive_ttl. Only a successful LDAP answer makes a "not
 * found"; an LDAP error, a timeout, too many lookups in flight or an entry
 * that cannot be decided reject with a TransientError, which the callers turn
 * into TEMP or a dict failure.
 *
 * One connection is kept and reused; after an error it is dropped and the
 * next lookup connects again (no background reconnect loop). The cache is a
 * Map in least-recently-used order, bounded by cache_entries.
 */
import type { Logger } from "pino";
import type { DirectoryUser, DomainSet } from "../core/directory/model.js";
import { TransientError } from "../core/errors.js";
import type { LdapConnection } from "../core/ldap/client.js";
import type { LdapMapping } from "../core/ldap/mapping.js";
import { lookupUser } from "../core/ldap/user-lookup.js";

export interface LiveLdapOptions {
  connect: () => Promise<LdapConnection>;
  mapping: LdapMapping;
  negativeTtlMs: number;
  positiveTtlMs: number;
  maxEntries: number;
  maxConcurrent: number;
  log: Logger;
  now?: () => number;
  /** Counts each outcome: hit_found, hit_not_found, found, not_found, error, busy, undecidable. */
  counted?: (outcome: string) => void;
}

interface CacheEntry {
  user: DirectoryUser | null;
  expiresAt: number;
}

export class LiveLdap {
  private readonly options: LiveLdapOptions;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  /** Lookups of the same name in flight share one LDAP search. */
  private readonly pending = new Map<string, Promise<DirectoryUser | null>>();
  private connection: Promise<LdapConnection> | null = null;
  private inFlight = 0;
  private closed = false;

  constructor(options: LiveLdapOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** The user LDAP knows by this login or address, or null; rejects with TransientError when LDAP cannot say. */
  lookup(name: string, domains: DomainSet, signal?: AbortSignal): Promise<DirectoryUser | null> {
    const key = name.toLowerCase();
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (cached.expiresAt > this.now()) {
        // Refresh its place in the LRU order.
        this.cache.delete(key);
        this.cache.set(key, cached);
        this.options.counted?.(cached.user === null ? "hit_not_found" : "hit_found");
        return Promise.resolve(cached.user);
      }
      this.cache.delete(key);
    }
    const already = this.pending.get(key);
    if (already !== undefined) return already;
    if (this.closed)
      return Promise.reject(new TransientError("transient.internal", "live LDAP lookups stopped"));
    if (this.inFlight >= this.options.maxConcurrent) {
      this.options.counted?.("busy");
      return Promise.reject(
        new TransientError("transient.backend_down", "too many live LDAP lookups in flight; try again later"),
      );
    }
    const search = this.search(key, domains, signal).finally(() => this.pending.delete(key));
    this.pending.set(key, search);
    return search;
  }

  private async search(key: string, domains: DomainSet, signal?: AbortSignal): Promise<DirectoryUser | null> {
    this.inFlight += 1;
    try {
      const connection = await this.connected();
      signal?.throwIfAborted();
      const result = await lookupUser(connection, this.options.mapping, domains, key);
      switch (result.kind) {
        case "found":
          this.remember(key, result.user, this.options.positiveTtlMs);
          this.options.counted?.("found");
          this.options.log.info(
            { name: key, login: result.user.login },
            "user found in LDAP, not yet in the snapshot",
          );
          return result.user;
        case "not-found":
          this.remember(key, null, this.options.negativeTtlMs);
          this.options.counted?.("not_found");
          return null;
        case "undecidable":
          this.options.counted?.("undecidable");
          throw new TransientError(
            "transient.internal",
            `LDAP answer for ${key} cannot be used: ${result.reason}`,
          );
        default: {
          const unreachable: never = result;
          return unreachable;
        }
      }
    } catch (error) {
      if (!(error instanceof TransientError && error.code === "transient.internal")) {
        this.options.counted?.("error");
        this.drop();
      }
      if (error instanceof TransientError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new TransientError("transient.backend_down", `live LDAP lookup failed: ${reason}`, {
        cause: error,
      });
    } finally {
      this.inFlight -= 1;
    }
  }

  private connected(): Promise<LdapConnection> {
    if (this.connection === null) {
      const opening = this.options.connect();
      // A failed connect is not kept: the next lookup tries again.
      opening.catch(() => {
        if (this.connection === opening) this.connection = null;
      });
      this.connection = opening;
    }
    return this.connection;
  }

  private drop(): void {
    const old = this.connection;
    this.connection = null;
    old?.then((connection) => connection.close()).catch(() => {});
  }

  private remember(key: string, user: DirectoryUser | null, ttlMs: number): void {
    this.cache.set(key, { user, expiresAt: this.now() + ttlMs });
    while (this.cache.size > this.options.maxEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.cache.delete(oldest.value);
    }
  }

  /** Forgets every remembered answer (a new snapshot arrived). */
  clear(): void {
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    const old = this.connection;
    this.connection = null;
    await old?.then((connection) => connection.close()).catch(() => {});
  }
}
