/**
 * State written before a daemon starts, so the growth suite measures it
 * holding what a busy site accumulates: policyd's write-behind file with N
 * distinct rate-limit counters, quotad's usage table with a row per user.
 * The rows are exactly what the daemons themselves write
 * (policyd/sqlite-persistence.ts and memory-store.ts: key, the record as
 * JSON, expiry; quotad/usage-sqlite.ts: username, bytes, messages, when),
 * so they load them as their own at start. Each file is written in one
 * transaction with better-sqlite3.
 *
 * Which counters: first those the request pool will touch, in the order the
 * pool first touches them (Zipf: the popular ones first), so lookups hit
 * whatever the size; then made-up logins and client addresses up to N.
 */
import Database from "better-sqlite3";
import { seededRandom } from "../lib/random.js";
import type { PolicyItem } from "../load/policy-client.js";

/** A policyd rate rule as far as its counter keys go (see POLICYD_RATE_RULES). */
export interface CounterRule {
  name: string;
  key: "sasl_login" | "client_address";
  periodMs: number;
  limit: number;
}

/** policyd's counter key (policyd/limits.ts counterId): rule, period and the key value. */
export function counterKey(rule: CounterRule, value: string): string {
  return `rl:${rule.name}:${rule.periodMs}:${value}`;
}

/**
 * The key value a request has for a rule, as policyd normalises it: the
 * SASL login in lower case, the client's IPv4 address as a /32 network (the
 * rules' default prefix). Null when the request does not carry it.
 */
function keyValue(rule: CounterRule, item: PolicyItem): string | null {
  if (rule.key === "sasl_login") {
    const login = item["sasl_username"]?.trim().toLowerCase() ?? "";
    return login === "" ? null : login;
  }
  const client = item["client_address"] ?? "";
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(client) ? `${client}/32` : null;
}

/** Counters the pool touches, in order of first use, each once, with the rule each belongs to. */
export function poolCounterKeys(
  pool: readonly PolicyItem[],
  rules: readonly CounterRule[],
): Map<string, CounterRule> {
  const keys = new Map<string, CounterRule>();
  for (const item of pool) {
    for (const rule of rules) {
      const value = keyValue(rule, item);
      if (value !== null && !keys.has(counterKey(rule, value))) keys.set(counterKey(rule, value), rule);
    }
  }
  return keys;
}

/** `count` distinct counter keys: the pool's first, then made-up ones taking the rules in turn. */
export function counterKeys(
  pool: readonly PolicyItem[],
  rules: readonly CounterRule[],
  count: number,
): Array<{ key: string; rule: CounterRule }> {
  const out: Array<{ key: string; rule: CounterRule }> = [];
  for (const [key, rule] of poolCounterKeys(pool, rules)) {
    if (out.length >= count) return out;
    out.push({ key, rule });
  }
  // Made-up keys cannot collide with the pool's: logins "filler…", clients in 100.64.0.0/10.
  for (let index = 0; out.length < count; index++) {
    const rule = rules[index % rules.length]!;
    const value =
      rule.key === "sasl_login"
        ? `filler${index}`
        : `100.${64 + ((index >> 16) & 63)}.${(index >> 8) & 255}.${index & 255}/32`;
    out.push({ key: counterKey(rule, value), rule });
  }
  return out;
}

const POLICYD_SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
`;
/** policyd/sqlite-persistence.ts FORMAT. */
const POLICYD_STORE_FORMAT = "1";

/**
 * Writes `keys` sliding-window counters into a new policyd store file, each
 * in the current period with a few units used (well under any limit, so the
 * answers stay those of a quiet site), alive for two periods as policyd
 * keeps them (windows.ts windowExpiresAt).
 */
export function prefillPolicydStore(
  path: string,
  keys: ReadonlyArray<{ key: string; rule: CounterRule }>,
  now: number,
  seed = 4_242,
): void {
  const random = seededRandom(seed);
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    db.exec(POLICYD_SCHEMA);
    const insert = db.prepare("INSERT INTO records (key, value, expires_at) VALUES (?, ?, ?)");
    db.transaction(() => {
      db.prepare("INSERT OR REPLACE INTO meta VALUES ('format', ?)").run(POLICYD_STORE_FORMAT);
      for (const { key, rule } of keys) {
        const start = Math.floor(now / rule.periodMs) * rule.periodMs;
        const state = {
          algorithm: "sliding_window",
          start,
          current: 1 + Math.floor(random() * Math.min(20, rule.limit / 10)),
          previous: Math.floor(random() * Math.min(20, rule.limit / 10)),
        };
        insert.run(key, JSON.stringify({ kind: "counter", state }), start + 2 * rule.periodMs);
      }
    })();
  } finally {
    db.close();
  }
}

const USAGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS usage (
  username TEXT PRIMARY KEY,
  storage_bytes INTEGER,
  messages INTEGER,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;`;

const MIB = 1_048_576;
/** Over every quota the generated directory gives (1 to 4 GiB). */
const FULL_MAILBOX_BYTES = 5 * 1_024 * MIB;

/**
 * Writes a usage row for each username into a new quotad usage file, as
 * quota_clone would have left it just now: most mailboxes well under 1 GiB
 * (the smallest quota the generated directory gives), `fullShare` of them
 * over every quota (5 GiB), so some answers are refusals.
 */
export function prefillQuotadUsage(
  path: string,
  usernames: readonly string[],
  now: number,
  fullShare = 0.03,
  seed = 4_243,
): void {
  const random = seededRandom(seed);
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    db.exec(USAGE_SCHEMA);
    const insert = db.prepare(
      "INSERT OR REPLACE INTO usage (username, storage_bytes, messages, updated_at) VALUES (?, ?, ?, ?)",
    );
    db.transaction(() => {
      for (const username of usernames) {
        const full = random() < fullShare;
        const bytes = full ? FULL_MAILBOX_BYTES : Math.floor(random() * 900 * MIB);
        insert.run(username.toLowerCase(), bytes, Math.floor(bytes / 60_000), now);
      }
    })();
  } finally {
    db.close();
  }
}
