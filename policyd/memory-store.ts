/**
 * The embedded store: every counter, greylist triplet, burst figure and hold
 * in one Map in memory, so a decision costs a few map reads. Changed keys
 * are remembered and written behind to SQLite every `flush_interval` (and at
 * close); at start the file is read back, so counters, greylisting and holds
 * survive a restart. Nothing here awaits anything: each method runs to the
 * end in one turn of the event loop, which makes every operation atomic, and
 * answers with the value itself, never a promise (drive.ts then runs a whole
 * decision synchronously).
 *
 * Memory is bounded: expired records are swept every minute, and when
 * `max_entries` is reached anyway the oldest records go first (holds are
 * never evicted). One login's distinct-recipient set is capped at
 * MAX_DISTINCT_MEMBERS addresses.
 */
import type { Logger } from "pino";
import { assessBurst, type BurstRecord, burstExpiresAt, type HoldRecord, rollBurst } from "./burst.js";
import {
  type ClientRecord,
  clientExpiresAt,
  type GreylistDecision,
  type GreylistQuery,
  greylistStep,
  type TripletRecord,
  tripletExpiresAt,
} from "./greylist.js";
import type { BurstSettings, GreylistSettings } from "./rules.js";
import { type PersistedRecord, SqlitePersistence } from "./sqlite-persistence.js";
import type { BurstOutcome, BurstSample, CounterOperation, KeyReport, PolicyStore } from "./store.js";
import {
  type CounterState,
  chargeWindow,
  readWindow,
  type WindowReading,
  windowExpiresAt,
} from "./windows.js";

type StoredRecord =
  | { kind: "counter"; state: CounterState }
  | { kind: "charged" }
  | { kind: "triplet"; record: TripletRecord }
  | { kind: "client"; record: ClientRecord }
  | { kind: "burst"; record: BurstRecord; members: string[] }
  | { kind: "hold"; record: HoldRecord };

interface Entry {
  record: StoredRecord;
  /** Infinity for holds. */
  expiresAt: number;
  /** Distinct recipients of a burst record, as a set while in memory. */
  members?: Set<string> | undefined;
  /** Set when the entry left the map (expired, dropped, evicted): it must not be updated in place. */
  gone?: true;
}

export const MAX_DISTINCT_MEMBERS = 10_000;
const SWEEP_INTERVAL_MS = 60_000;

export interface MemoryStoreOptions {
  /** SQLite file for write-behind; null keeps everything in memory only. */
  path: string | null;
  flushIntervalMs: number;
  maxEntries: number;
  log: Logger;
  /** Clock for sweeping and loading (tests pass a fake one). */
  now?: () => number;
}

const burstKey = (login: string) => `burst:${login}`;
const holdKey = (login: string) => `hold:${login}`;

export class MemoryStore implements PolicyStore {
  readonly kind = "memory" as const;
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  private readonly persistence: SqlitePersistence | null;
  private readonly log: Logger;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private flushTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private evictionWarned = false;
  private closed = false;

  constructor(options: MemoryStoreOptions) {
    this.log = options.log;
    this.maxEntries = options.maxEntries;
    this.now = options.now ?? Date.now;
    this.persistence = options.path === null ? null : new SqlitePersistence(options.path);
    if (this.persistence !== null) this.loadPersisted(this.persistence);
    if (this.persistence !== null) {
      this.flushTimer = setInterval(() => this.flush(), options.flushIntervalMs);
      this.flushTimer.unref();
    }
    this.sweepTimer = setInterval(() => this.sweep(this.now()), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Records held now (for metrics and tests). */
  get size(): number {
    return this.entries.size;
  }

  private loadPersisted(persistence: SqlitePersistence): void {
    let loaded = 0;
    let skipped = 0;
    for (const row of persistence.load(this.now())) {
      const record = parseRecord(row.value);
      if (record === null) {
        skipped++;
        continue;
      }
      const entry: Entry = { record, expiresAt: row.expiresAt ?? Number.POSITIVE_INFINITY };
      if (record.kind === "burst") entry.members = new Set(record.members);
      this.entries.set(row.key, entry);
      loaded++;
    }
    this.log.info({ path: persistence.path, records: loaded, skipped }, "store loaded");
  }

  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      entry.gone = true;
      this.dirty.add(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Stores a record. `current` is the live entry read for this key in the
   * same operation, if any: it is updated in place, which spares the map two
   * more lookups of a long key on every request.
   */
  private put(
    key: string,
    current: Entry | undefined,
    record: StoredRecord,
    expiresAt: number,
    members?: Set<string>,
    persist = true,
  ): void {
    if (current !== undefined && current.gone !== true) {
      current.record = record;
      current.expiresAt = expiresAt;
      current.members = members;
    } else {
      if (this.entries.size >= this.maxEntries && !this.entries.has(key)) this.makeRoom();
      const entry: Entry = { record, expiresAt };
      if (members !== undefined) entry.members = members;
      this.entries.set(key, entry);
      persist = true;
    }
    if (persist) this.dirty.add(key);
  }

  private drop(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    entry.gone = true;
    this.dirty.add(key);
    return true;
  }

  private makeRoom(): void {
    this.sweep(this.now());
    if (this.entries.size < this.maxEntries) return;
    // Still full of live records: drop the oldest tenth (Map order is insertion order).
    let toDrop = Math.max(1, Math.floor(this.maxEntries / 10));
    for (const [key, entry] of this.entries) {
      if (toDrop === 0) break;
      if (entry.record.kind === "hold") continue;
      this.drop(key);
      toDrop--;
    }
    if (!this.evictionWarned) {
      this.evictionWarned = true;
      this.log.warn(
        { maxEntries: this.maxEntries },
        "store full of live records; oldest dropped (raise policyd.store.max_entries)",
      );
    }
  }

  /** Drops every expired record. */
  sweep(now: number): number {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(key);
        entry.gone = true;
        this.dirty.add(key);
        dropped++;
      }
    }
    return dropped;
  }

  private counterState(id: string, now: number): CounterState | undefined {
    return stateOf(this.live(id, now));
  }

  readCounters(operations: readonly CounterOperation[], now: number): WindowReading[] {
    return operations.map((operation) =>
      readWindow(this.counterState(operation.id, now), operation.spec, operation.cost, now),
    );
  }

  chargeCounters(
    transaction: string,
    operations: readonly CounterOperation[],
    now: number,
    markerTtlMs: number,
  ): boolean {
    const marker = `tx:${transaction}`;
    if (this.live(marker, now) !== undefined) return false;
    this.put(marker, undefined, { kind: "charged" }, now + markerTtlMs);
    for (const operation of operations) {
      const entry = this.live(operation.id, now);
      const state = chargeWindow(stateOf(entry), operation.spec, operation.cost, now);
      this.put(
        operation.id,
        entry,
        { kind: "counter", state },
        windowExpiresAt(state, operation.spec.periodMs),
      );
    }
    return true;
  }

  greylist(query: GreylistQuery, now: number, settings: GreylistSettings): GreylistDecision {
    const tripletEntry = this.live(query.tripletId, now);
    const clientEntry = this.live(query.clientId, now);
    const triplet = tripletEntry?.record.kind === "triplet" ? tripletEntry.record.record : undefined;
    const client = clientEntry?.record.kind === "client" ? clientEntry.record.record : undefined;
    const step = greylistStep(triplet, client, now, settings);
    if (step.triplet !== undefined) {
      // A retry deferred again changes only the lastSeen of a triplet that has not passed, which
      // no decision reads (it expires counting from firstSeen): not worth writing behind again.
      // Under load from senders retrying early this was most of what the flush wrote.
      const persist = step.decision.kind !== "deferred" || step.decision.firstAttempt;
      this.put(
        query.tripletId,
        tripletEntry,
        { kind: "triplet", record: step.triplet },
        tripletExpiresAt(step.triplet, settings),
        undefined,
        persist,
      );
    }
    if (step.client !== undefined) {
      this.put(
        query.clientId,
        clientEntry,
        { kind: "client", record: step.client },
        clientExpiresAt(step.client, settings),
      );
    }
    return step.decision;
  }

  recordBurst(sample: BurstSample, now: number, settings: BurstSettings): BurstOutcome {
    const key = burstKey(sample.login);
    const entry = this.live(key, now);
    const previous = entry?.record.kind === "burst" ? entry.record.record : undefined;
    const rolled = rollBurst(previous, now, settings);
    const members =
      previous !== undefined &&
      rolled.intervalStart === previous.intervalStart &&
      entry?.members !== undefined
        ? entry.members
        : new Set<string>();
    for (const address of sample.addresses) {
      if (members.size >= MAX_DISTINCT_MEMBERS) break;
      members.add(address);
    }
    const record: BurstRecord = {
      ...rolled,
      volume: rolled.volume + sample.recipients,
      distinct: Math.max(members.size, rolled.distinct),
    };
    this.put(key, entry, { kind: "burst", record, members: [] }, burstExpiresAt(record, settings), members);

    const existing = this.live(holdKey(sample.login), now);
    if (existing?.record.kind === "hold") {
      return { kind: "held", hold: existing.record.record, newlyHeld: false, trigger: null };
    }
    const trigger = assessBurst(record, settings);
    if (trigger === null) return { kind: "normal", record };
    const hold: HoldRecord = { login: sample.login, since: now, reason: trigger.reason };
    this.put(holdKey(sample.login), existing, { kind: "hold", record: hold }, Number.POSITIVE_INFINITY);
    return { kind: "held", hold, newlyHeld: true, trigger };
  }

  hold(login: string): HoldRecord | null {
    const entry = this.live(holdKey(login), this.now());
    return entry?.record.kind === "hold" ? entry.record.record : null;
  }

  release(login: string): boolean {
    const existed = this.drop(holdKey(login));
    if (existed) this.clearCurrentInterval(login);
    return existed;
  }

  /** A released login starts its interval afresh, or the same burst would hold it again at once. */
  private clearCurrentInterval(login: string): void {
    const key = burstKey(login);
    const entry = this.entries.get(key);
    if (entry?.record.kind !== "burst") return;
    const record = { ...entry.record.record, volume: 0, distinct: 0 };
    this.put(key, entry, { kind: "burst", record, members: [] }, entry.expiresAt, new Set());
  }

  report(
    counters: readonly CounterOperation[],
    login: string | null,
    clientId: string | null,
    now: number,
  ): KeyReport {
    const burstEntry = login === null ? undefined : this.live(burstKey(login), now);
    const clientEntry = clientId === null ? undefined : this.live(clientId, now);
    return {
      counters: counters.map((operation) => {
        const state = this.counterState(operation.id, now) ?? null;
        return {
          id: operation.id,
          state,
          reading: readWindow(state ?? undefined, operation.spec, operation.cost, now),
        };
      }),
      hold: login === null ? null : this.hold(login),
      burst: burstEntry?.record.kind === "burst" ? burstEntry.record.record : null,
      greylistClient: clientEntry?.record.kind === "client" ? clientEntry.record.record : null,
    };
  }

  reset(counterIds: readonly string[], login: string | null): number {
    let removed = 0;
    for (const id of counterIds) if (this.drop(id)) removed++;
    if (login !== null && this.drop(burstKey(login))) removed++;
    return removed;
  }

  /** Writes changed records to SQLite now; failures are logged and retried at the next flush. */
  flush(): void {
    if (this.persistence === null || this.dirty.size === 0) return;
    const upserts: PersistedRecord[] = [];
    const deletes: string[] = [];
    for (const key of this.dirty) {
      const entry = this.entries.get(key);
      if (entry === undefined) {
        deletes.push(key);
        continue;
      }
      const record =
        entry.record.kind === "burst"
          ? { ...entry.record, members: [...(entry.members ?? [])] }
          : entry.record;
      upserts.push({
        key,
        value: JSON.stringify(record),
        expiresAt: Number.isFinite(entry.expiresAt) ? Math.ceil(entry.expiresAt) : null,
      });
    }
    try {
      this.persistence.write(upserts, deletes);
      this.dirty.clear();
    } catch (error) {
      this.log.error({ err: error, pending: this.dirty.size }, "store flush failed; will retry");
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.flush();
    this.persistence?.close();
  }
}

function stateOf(entry: Entry | undefined): CounterState | undefined {
  return entry?.record.kind === "counter" ? entry.record.state : undefined;
}

const RECORD_KINDS = new Set(["counter", "charged", "triplet", "client", "burst", "hold"]);

/** A record read back from the file; null when it is not one we wrote (damaged or foreign). */
function parseRecord(text: string): StoredRecord | null {
  try {
    const value = JSON.parse(text) as { kind?: unknown; members?: unknown };
    if (typeof value !== "object" || value === null || !RECORD_KINDS.has(value.kind as string)) return null;
    if (value.kind === "burst" && !Array.isArray(value.members)) return null;
    return value as StoredRecord;
  } catch {
    return null;
  }
}
