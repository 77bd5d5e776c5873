/**
 * What quotad knows about a mailbox's usage and where it keeps it. Usage is
 * keyed by the name Dovecot uses for the user (the `<user>` of quota_clone's
 * `B<id><TAB><user>` line, lower-cased), holds the absolute values Dovecot
 * last wrote, and when that was. Two stores implement the same interface:
 * SQLite (one host: memory for reads, the file for restarts) and Redis
 * (several relays and back-ends, written by quotad's dict feed or by
 * Dovecot's own redis dict). The decision never sees a store, only the
 * readings a session fetched from it.
 */

/** One user's usage as last written; a field Dovecot never sent is null. */
export interface UsageRecord {
  storageBytes: number | null;
  messages: number | null;
  /**
   * When it was written (ms since the epoch), or null when the store cannot
   * tell (a Redis key without expiry): such usage is never trusted to refuse.
   */
  updatedAt: number | null;
}

/** What one quota_clone transaction (or one import line) sets; undefined leaves a field alone, null removes it. */
export interface UsageUpdate {
  username: string;
  storageBytes?: number | null;
  messages?: number | null;
}

export interface UsageEntry extends UsageRecord {
  username: string;
}

export type UsageReadings = ReadonlyMap<string, UsageRecord>;

export interface UsageStore {
  readonly kind: "sqlite" | "redis";
  /**
   * Readings for these usernames (already normalised); a user without a
   * record is absent. SQLite answers synchronously from memory; Redis
   * returns a promise and rejects with a TransientError when it is down.
   */
  read(usernames: readonly string[]): UsageReadings | Promise<UsageReadings>;
  /** Applies updates atomically (all or none), stamped with `now`. */
  write(updates: readonly UsageUpdate[], now: number): void | Promise<void>;
  /** Every record, for reports. */
  list(): Promise<UsageEntry[]>;
  close(): Promise<void>;
}

/** Longest username we store; Dovecot's own limit for a user name is far below this. */
export const MAX_USERNAME_LENGTH = 255;

/**
 * The key usage is stored under: Dovecot usernames compare case-insensitively
 * in practice (auth_username_format = %Lu is the default), so one user is one
 * record whatever case a writer used. Null for a name no writer can have.
 */
export function normaliseUsername(raw: string): string | null {
  const name = raw.trim().toLowerCase();
  if (name.length === 0 || name.length > MAX_USERNAME_LENGTH) return null;
  if (/[\s\x00-\x1f\x7f]/.test(name)) return null;
  return name;
}

/** Decimal byte or message count as Dovecot writes it; null when it is not one. */
export function parseCount(text: string): number | null {
  if (!/^[0-9]{1,15}$/.test(text)) return null;
  return Number(text);
}
