/**
 * Property tests of the usage feed session, without sockets: lines go
 * through the real dict decoder into the session, usage into an in-memory
 * store. Whatever the lines, the session never throws, answers exactly the
 * commands that expect an answer, and the store changes only through
 * transactions that were well-formed from B to C — for a mix of good
 * transactions and transactions with one fault planted, the store ends
 * equal to a model that applies only the good ones. The doveadm import
 * parser never throws on arbitrary text either.
 */
import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { PeerInfo } from "../core/net/protocol.js";
import { DictCommandDecoder } from "../core/protocols/dovecot-dict.js";
import { quotaFeedSessions } from "./feed-session.js";
import { parseDoveadmQuota } from "./import.js";
import type { UsageEntry, UsageReadings, UsageRecord, UsageStore, UsageUpdate } from "./usage-store.js";

class MemoryStore implements UsageStore {
  readonly kind = "sqlite" as const;
  readonly records = new Map<string, UsageRecord>();
  read(usernames: readonly string[]): UsageReadings {
    return new Map(
      usernames.flatMap((name) => (this.records.has(name) ? [[name, this.records.get(name)!]] : [])),
    );
  }
  write(updates: readonly UsageUpdate[], now: number): void {
    for (const update of updates) {
      const before = this.records.get(update.username);
      const storageBytes =
        update.storageBytes === undefined ? (before?.storageBytes ?? null) : update.storageBytes;
      const messages = update.messages === undefined ? (before?.messages ?? null) : update.messages;
      if (storageBytes === null && messages === null) this.records.delete(update.username);
      else this.records.set(update.username, { storageBytes, messages, updatedAt: now });
    }
  }
  async list(): Promise<UsageEntry[]> {
    return [...this.records].map(([username, record]) => ({ username, ...record }));
  }
  async close(): Promise<void> {}
}

const peer: PeerInfo = { transport: "unix", address: "/test.sock", id: 1 };
const log = pino({ level: "silent" });
const context = { log, peer, signal: new AbortController().signal };

/** Feeds the lines through decoder and session; returns the replies' kinds in order. */
async function run(store: UsageStore, lines: readonly string[]): Promise<string[]> {
  const session = quotaFeedSessions({ store, dictName: "quotaclone", now: () => 1 })(peer, log);
  const decoder = new DictCommandDecoder();
  const replies: string[] = [];
  for (const event of decoder.push(Buffer.from(lines.map((line) => `${line}\n`).join(""), "utf8"))) {
    if (event.kind === "error") break;
    const reply = await session.handle(event.frame, context);
    if (reply !== undefined)
      replies.push(reply.kind === "commit" ? `commit ${reply.result.kind}` : reply.kind);
  }
  return replies;
}

const users = fc.constantFrom("alice", "bob", "carol");
const count = fc.integer({ min: 0, max: 10_000_000 });
const goodTransaction = fc.record({
  user: users,
  storage: count,
  messages: fc.option(count, { nil: undefined }),
});
const FAULTS = [
  (id: number) => `S${id}\tpriv/quota/storage\tlots`,
  (id: number) => `S${id}\tpriv/quota/other\t1`,
  (id: number) => `A${id}\tpriv/quota/storage\t-1`,
  (id: number) => `S${id}\tpriv/quota/storage`,
  (id: number) => `S${id}\tshared/quota/storage\t1`,
  () => "Zgarbage",
];
const transaction = fc.oneof(
  goodTransaction.map((good) => ({ ...good, fault: -1 })),
  fc.record({
    user: users,
    storage: count,
    messages: fc.constant(undefined),
    fault: fc.nat(FAULTS.length - 1),
  }),
);

describe("feed session properties", () => {
  it("arbitrary lines never throw, and only L, I and C are answered", async () => {
    const line = fc.oneof(
      fc.string({ maxLength: 40 }).map((text) => text.replace(/\n/g, "")),
      fc.constantFrom(
        "H3\t2\t0\t\tquotaclone",
        "B1\talice",
        "S1\tpriv/quota/storage\t5",
        "C1",
        "R1",
        "U1\tpriv/quota/messages",
        "Lpriv/quota/storage\talice",
        "I0\t0\tpriv/\talice",
        "T1\t1\t2",
        "C9",
        "H4\t0\t0\t\tother",
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 30 }), async (lines) => {
        const store = new MemoryStore();
        const replies = await run(store, lines);
        const answerable = lines.filter((text) => /^[LICD]/.test(text)).length;
        expect(replies.length).toBeLessThanOrEqual(answerable);
        for (const [, record] of store.records) {
          expect(Number.isSafeInteger(record.storageBytes ?? 0) && (record.storageBytes ?? 0) >= 0).toBe(
            true,
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("only well-formed transactions change usage", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(transaction, { minLength: 1, maxLength: 12 }), async (transactions) => {
        const store = new MemoryStore();
        const model = new MemoryStore();
        // One connection per transaction, as quota_clone does.
        for (const t of transactions) {
          const lines = ["H3\t2\t0\t\tquotaclone", `B1\t${t.user}`, `S1\tpriv/quota/storage\t${t.storage}`];
          if (t.messages !== undefined) lines.push(`S1\tpriv/quota/messages\t${t.messages}`);
          if (t.fault >= 0) lines.push((FAULTS[t.fault] as (id: number) => string)(1));
          lines.push("C1");
          const replies = await run(store, lines);
          expect(replies).toEqual([t.fault >= 0 ? "commit failed" : "commit ok"]);
          if (t.fault < 0) {
            const update: UsageUpdate = { username: t.user, storageBytes: t.storage };
            if (t.messages !== undefined) update.messages = t.messages;
            model.write([update], 1);
          }
        }
        expect(store.records).toEqual(model.records);
      }),
      { numRuns: 200 },
    );
  });

  it("the doveadm parser never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const parsed = parseDoveadmQuota(`Username\tQuota name\tType\tValue\tLimit\t%\n${text}`);
        if (parsed.ok) for (const update of parsed.updates) expect(update.username.length).toBeGreaterThan(0);
        else expect(parsed.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});
