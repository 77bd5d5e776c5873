/**
 * The SQLite file behind the in-memory store: one table of records (key,
 * JSON value, expiry), read whole at start and written behind in batches,
 * one transaction per flush, never on the request path. Journal in WAL mode
 * with synchronous=NORMAL: a crash loses at most the last flush interval,
 * which for rate counters and greylisting only means a little leniency.
 */
import Database from "better-sqlite3";

export interface PersistedRecord {
  key: string;
  /** JSON text of the record. */
  value: string;
  /** Milliseconds since the epoch; null for records that never expire (holds). */
  expiresAt: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

const FORMAT = "1";

export class SqlitePersistence {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly writeBatch: (upserts: readonly PersistedRecord[], deletes: readonly string[]) => void;

  /** Opens (creating if needed) the file; throws with the path when it cannot. */
  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(SCHEMA);
      const format = this.db.prepare("SELECT value FROM meta WHERE name = 'format'").get() as
        | { value: string }
        | undefined;
      if (format === undefined) this.db.prepare("INSERT INTO meta VALUES ('format', ?)").run(FORMAT);
      else if (format.value !== FORMAT) {
        throw new Error(`store format ${format.value} is not ${FORMAT}; move the file away to start afresh`);
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot open the policyd store ${path}: ${reason}`, { cause: error });
    }
    this.upsert = this.db.prepare(
      "INSERT INTO records (key, value, expires_at) VALUES (?, ?, ?) " +
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.remove = this.db.prepare("DELETE FROM records WHERE key = ?");
    this.writeBatch = this.db.transaction(
      (upserts: readonly PersistedRecord[], deletes: readonly string[]) => {
        for (const record of upserts) this.upsert.run(record.key, record.value, record.expiresAt);
        for (const key of deletes) this.remove.run(key);
      },
    );
  }

  /** Every record still alive at `now`; expired ones are deleted on the way. */
  load(now: number): PersistedRecord[] {
    this.db.prepare("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?").run(now);
    const rows = this.db.prepare("SELECT key, value, expires_at FROM records").all() as Array<{
      key: string;
      value: string;
      expires_at: number | null;
    }>;
    return rows.map((row) => ({ key: row.key, value: row.value, expiresAt: row.expires_at }));
  }

  write(upserts: readonly PersistedRecord[], deletes: readonly string[]): void {
    if (upserts.length === 0 && deletes.length === 0) return;
    this.writeBatch(upserts, deletes);
  }

  close(): void {
    this.db.close();
  }
}
