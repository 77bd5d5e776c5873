/**
 * What policyd keeps between requests, behind one interface with two
 * implementations: memory-store.ts (the embedded default: maps in memory,
 * written behind to SQLite and read back at start) and redis-store.ts
 * (several relays sharing every counter through atomic Lua scripts). The
 * decisions (windows.ts, greylist.ts, burst.ts) are pure; a store only
 * applies them to its records atomically. A method answers with the value
 * itself when it has it at hand (the memory store: a decision then costs no
 * promise at all, see drive.ts) or with a promise (Redis). Any method may
 * fail with a TransientError (Redis down or slow), thrown or as a rejection;
 * callers turn either into the configured failure answer.
 *
 * Clock values are passed in (milliseconds since the epoch) so that tests
 * run on a fake clock and several relays agree as long as their clocks do.
 */

import type { MaybePromise } from "../core/maybe-promise.js";
import type { BurstRecord, BurstTrigger, HoldRecord } from "./burst.js";
import type { ClientRecord, GreylistDecision, GreylistQuery, TripletRecord } from "./greylist.js";
import type { BurstSettings, GreylistSettings } from "./rules.js";
import type { CounterState, WindowReading, WindowSpec } from "./windows.js";

export interface CounterOperation {
  id: string;
  spec: WindowSpec;
  cost: number;
}

export interface BurstSample {
  login: string;
  /** Recipients of this message (recipient_count). */
  recipients: number;
  /** Their normalised addresses, as far as known, for the distinct count. */
  addresses: readonly string[];
}

export type BurstOutcome =
  /** The login is (now) held: `trigger` is set when this message tripped it, `newlyHeld` when the hold is new. */
  | { kind: "held"; hold: HoldRecord; newlyHeld: boolean; trigger: BurstTrigger | null }
  | { kind: "normal"; record: BurstRecord };

export interface StoredCounter {
  id: string;
  state: CounterState;
}

/** What `policy explain` shows about one key. */
export interface KeyReport {
  counters: Array<{ id: string; reading: WindowReading; state: CounterState | null }>;
  hold: HoldRecord | null;
  burst: BurstRecord | null;
  greylistClient: ClientRecord | null;
}

export interface PolicyStore {
  readonly kind: "memory" | "redis";
  /** Reads counters with the cost each request would add; changes nothing. */
  readCounters(operations: readonly CounterOperation[], now: number): MaybePromise<WindowReading[]>;
  /**
   * Charges every counter once per transaction: false (and nothing charged)
   * when `transaction` was charged before (Postfix resends a request after a
   * timeout). The marker is kept for `markerTtlMs`.
   */
  chargeCounters(
    transaction: string,
    operations: readonly CounterOperation[],
    now: number,
    markerTtlMs: number,
  ): MaybePromise<boolean>;
  /** One greylisting attempt, applied atomically. */
  greylist(query: GreylistQuery, now: number, settings: GreylistSettings): MaybePromise<GreylistDecision>;
  /** Adds a message to the login's burst figures; holds the login when they trip. */
  recordBurst(sample: BurstSample, now: number, settings: BurstSettings): MaybePromise<BurstOutcome>;
  /** The hold on a login, if any. */
  hold(login: string): MaybePromise<HoldRecord | null>;
  /** Ends a hold and clears the login's current-interval figures; false when it was not held. */
  release(login: string): MaybePromise<boolean>;
  /** Counters, hold, burst and greylist figures for `policy explain`. */
  report(
    counters: readonly CounterOperation[],
    login: string | null,
    clientId: string | null,
    now: number,
  ): MaybePromise<KeyReport>;
  /** Deletes counters (and the login's burst figures); returns how many records existed. */
  reset(counterIds: readonly string[], login: string | null): MaybePromise<number>;
  /** Writes what is pending and releases the backend. */
  close(): Promise<void>;
}

export type { BurstRecord, ClientRecord, HoldRecord, TripletRecord };
