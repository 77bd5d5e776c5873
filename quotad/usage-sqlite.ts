/**
 * The usage store of a single host: every record in memory (reads never
 * touch the disk), each write applied to the SQLite file in one
 * transaction before memory changes, so what quotad answered from survives
 * a restart. The file is WAL-journalled with synchronous=NORMAL: a power
 * cut may lose the last few writes, which Dovecot rewrites at the next
 * change anyway.
 *
 * Another process may write the same file (`emailng quota import` while
 * quotad runs): SQLite's data_version moves when someone else commits, and
 * refresh() — called on a timer and on SIGHUP — then reloads every record
 * into a new map swapped in at once.
 */
import { chmodSync, existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { UsageEntry, UsageReadings, UsageRecord, UsageStore, UsageUpdate } from "./usage-store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage (
  username TEXT PRIMARY KEY,
  storage_bytes INTEGER,
  messages INTEGER,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;`;

interface Row {
  username: string;
  storage_bytes: number | null;
  messages: number | null;
  updated_at: number;
}

export interface SqliteUsageStoreOptions {
  /** Read-only: for reports and explain, which must not create or change the file. */
  readonly?: boolean;
}

export class SqliteUsageStore implements UsageStore {
  readonly kind = "sqlite" as const;
  private readonly db: Database.Database;
  private records = new Map<string, UsageRecord>();
  private dataVersion: number;
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly applyAll: (
    updates: readonly UsageUpdate[],
    now: number,
  ) => Map<string, UsageRecord | null>;

  constructor(
    readonly path: string,
    options: SqliteUsageStoreOptions = {},
  ) {
    const created = !existsSync(path);
    if (options.readonly === true) {
      if (created)
        throw new Error(`no usage file at ${path} (quotad has not run yet, or quotad.usage.path is wrong)`);
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    } else {
      this.db = new Database(path);
      // Usage says who is near a limit: readable by quotad's own user and group only.
      if (created) chmodSync(path, 0o640);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(SCHEMA);
    }
    this.db.pragma("busy_timeout = 2000");
    this.upsert = this.prepareWrite(
      `INSERT INTO usage (username, storage_bytes, messages, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (username) DO UPDATE SET storage_bytes = excluded.storage_bytes,
       messages = excluded.messages, updated_at = excluded.updated_at`,
      options,
    );
    this.remove = this.prepareWrite("DELETE FROM usage WHERE username = ?", options);
    this.applyAll = this.db.transaction((updates: readonly UsageUpdate[], now: number) => {
      const next = new Map<string, UsageRecord | null>();
      for (const update of updates) {
        const before = next.get(update.username) ?? this.records.get(update.username);
        const storageBytes =
          update.storageBytes === undefined ? (before?.storageBytes ?? null) : update.storageBytes;
        const messages = update.messages === undefined ? (before?.messages ?? null) : update.messages;
        if (storageBytes === null && messages === null) {
          this.remove.run(update.username);
          next.set(update.username, null);
        } else {
          this.upsert.run(update.username, storageBytes, messages, now);
          next.set(update.username, { storageBytes, messages, updatedAt: now });
        }
      }
      return next;
    });
    this.dataVersion = this.readDataVersion();
    this.records = this.loadAll();
  }

  private prepareWrite(sql: string, options: SqliteUsageStoreOptions): Database.Statement {
    // A read-only handle cannot prepare writes; give it a statement that is never run.
    return options.readonly === true ? this.db.prepare("SELECT 1") : this.db.prepare(sql);
  }

  get size(): number {
    return this.records.size;
  }

  read(usernames: readonly string[]): UsageReadings {
    const readings = new Map<string, UsageRecord>();
    for (const username of usernames) {
      const record = this.records.get(username);
      if (record !== undefined) readings.set(username, record);
    }
    return readings;
  }

  /** Synchronous: the file and then memory; throws (and changes nothing) when SQLite fails. */
  write(updates: readonly UsageUpdate[], now: number): void {
    const next = this.applyAll(updates, now);
    for (const [username, record] of next) {
      if (record === null) this.records.delete(username);
      else this.records.set(username, record);
    }
    // Our own commits do not move data_version; only other writers' do.
  }

  async list(): Promise<UsageEntry[]> {
    return [...this.records].map(([username, record]) => ({ username, ...record }));
  }

  /** Reloads everything when another process wrote the file; returns true when it did. */
  refresh(): boolean {
    const version = this.readDataVersion();
    if (version === this.dataVersion) return false;
    this.dataVersion = version;
    this.records = this.loadAll();
    return true;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private readDataVersion(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  private loadAll(): Map<string, UsageRecord> {
    const rows = this.db
      .prepare("SELECT username, storage_bytes, messages, updated_at FROM usage")
      .all() as Row[];
    const records = new Map<string, UsageRecord>();
    for (const row of rows) {
      records.set(row.username, {
        storageBytes: row.storage_bytes,
        messages: row.messages,
        updatedAt: row.updated_at,
      });
    }
    return records;
  }
}
