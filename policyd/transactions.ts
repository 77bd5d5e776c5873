/**
 * What policyd remembers about a mail transaction between its RCPT requests
 * and its END-OF-MESSAGE request, keyed by Postfix's `instance` attribute:
 * the recipients it let through (recipient-keyed rules, recipient counts
 * at RCPT, distinct recipients for burst detection) and whether the
 * greylisting header was already prepended. Kept in this process only: one
 * Postfix smtpd talks to one policyd for the whole transaction. Entries end
 * at END-OF-MESSAGE, or after `transaction_timeout` for transactions that
 * never got there (rejected, aborted); the table is bounded.
 */

export interface Transaction {
  /** Normalised recipients accepted at RCPT, in order, without duplicates. */
  recipients: string[];
  /** The X-Greylist header went out for this transaction. */
  headerPrepended: boolean;
  touchedAt: number;
}

/** Most recipients remembered per transaction (Postfix's default smtpd_recipient_limit is 1000). */
export const MAX_TRACKED_RECIPIENTS = 10_000;

export class TransactionTable {
  private readonly table = new Map<string, Transaction>();

  constructor(
    private readonly timeoutMs: number,
    private readonly maxTransactions: number,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** The transaction, if it is known and not timed out. */
  get(instance: string, now: number): Transaction | undefined {
    const entry = this.table.get(instance);
    if (entry === undefined) return undefined;
    if (now - entry.touchedAt > this.timeoutMs) {
      this.table.delete(instance);
      return undefined;
    }
    return entry;
  }

  /** The transaction, created when new. */
  open(instance: string, now: number): Transaction {
    let entry = this.get(instance, now);
    if (entry === undefined) {
      if (this.table.size >= this.maxTransactions) this.evict(now);
      entry = { recipients: [], headerPrepended: false, touchedAt: now };
      this.table.set(instance, entry);
    }
    entry.touchedAt = now;
    return entry;
  }

  /** Notes an accepted recipient of a transaction `open` returned (no second lookup). */
  addRecipient(entry: Transaction, recipient: string): void {
    if (entry.recipients.length < MAX_TRACKED_RECIPIENTS && !entry.recipients.includes(recipient)) {
      entry.recipients.push(recipient);
    }
  }

  /** Ends a transaction and returns what was known about it. */
  finish(instance: string, now: number): Transaction | undefined {
    const entry = this.get(instance, now);
    this.table.delete(instance);
    return entry;
  }

  /** Drops timed-out transactions, then the oldest tenth if still full. */
  evict(now: number): void {
    for (const [instance, entry] of this.table) {
      if (now - entry.touchedAt > this.timeoutMs) this.table.delete(instance);
    }
    if (this.table.size < this.maxTransactions) return;
    let toDrop = Math.max(1, Math.floor(this.maxTransactions / 10));
    for (const instance of this.table.keys()) {
      if (toDrop-- === 0) break;
      this.table.delete(instance);
    }
  }
}
