/**
 * The decision is written once and driven two ways (drive.ts): straight
 * through while the store answers with values (memory), asynchronously from
 * the first promise (Redis). A simulated day of relay traffic must give the
 * same decisions both ways, and over the memory store no promise may be made
 * at all. A store that fails, by throwing or by rejecting, must give the same
 * configured failure answers.
 */
import { describe, expect, it } from "vitest";
import { TransientError } from "../core/errors.js";
import { isPromiseLike, type MaybePromise } from "../core/maybe-promise.js";
import {
  decisionDependencies,
  fakeClock,
  policyRequest,
  settingsFrom,
  silentLog,
} from "../test/wire/policyd-fixtures.js";
import { type Decision, type DecisionDependencies, decide } from "./decide.js";
import { readFacts } from "./facts.js";
import { MemoryStore } from "./memory-store.js";
import { policySessions } from "./policy-session.js";
import type { PolicyStore } from "./store.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

type StoreMethod = Exclude<keyof PolicyStore, "kind" | "close">;
const STORE_METHODS: readonly StoreMethod[] = [
  "readCounters",
  "chargeCounters",
  "greylist",
  "recordBurst",
  "hold",
  "release",
  "report",
  "reset",
];

/**
 * The same store seen through a wrapper: each method's answer passes through
 * `answer(method, call)`, which may call it now, later, or fail instead.
 */
function wrapStore(
  inner: PolicyStore,
  answer: (method: StoreMethod, call: () => unknown) => unknown,
): PolicyStore {
  const wrapped: Record<string, unknown> = { kind: inner.kind, close: () => inner.close() };
  for (const method of STORE_METHODS) {
    const original = inner[method] as (...args: unknown[]) => unknown;
    wrapped[method] = (...args: unknown[]) => answer(method, () => original.apply(inner, args));
  }
  return wrapped as unknown as PolicyStore;
}

function memoryStore(now: () => number): MemoryStore {
  return new MemoryStore({ path: null, flushIntervalMs: 1000, maxEntries: 100_000, log: silentLog, now });
}

// ---------------------------------------------------------------------------
// A simulated day of traffic.

const DAY_RULES = `
[policyd]
failure_action = "DEFER_IF_PERMIT"

[[policyd.classes]]
name = "staff"
groups = ["csstaff", "csfaculty"]

[policyd.protected_lists]
from_directory = true
[[policyd.protected_lists.lists]]
group = "research"
allowed_groups = ["csfaculty"]

[policyd.greylist]
enabled = true
delay = "5m"
retry_window = "4h"
auto_whitelist_after = 3

[policyd.burst]
enabled = true
interval = "10m"
baseline_intervals = 6
factor = 5
min_recipients = 25
min_distinct_recipients = 20

[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
metric = "messages"
[[policyd.rules.windows]]
period = "1h"
limit = 12
class_limits = { staff = 30 }

[[policyd.rules]]
name = "login-recipients"
key = "sasl_login"
metric = "recipients"
action = "reject"
[[policyd.rules.windows]]
period = "10m"
limit = 25
[[policyd.rules.windows]]
period = "1d"
limit = 400

[[policyd.rules]]
name = "client-recipients"
key = "client_address"
metric = "recipients"
algorithm = "gcra"
except_networks = ["10.0.0.0/8"]
[[policyd.rules.windows]]
period = "1h"
limit = 25

[[policyd.rules]]
name = "recipient-domain"
key = "recipient_domain"
metric = "messages"
mode = "shadow"
[[policyd.rules.windows]]
period = "1h"
limit = 20
`;

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit xorshift), so both runs see the same day. */
function randomSequence(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

interface Recorded {
  at: number;
  stage: string;
  action: Decision["action"];
  outcome: Decision["outcome"];
  events: Decision["events"];
  alert: Decision["alert"];
}

const LOGINS = ["jsmith", "gpapadop", "csd4713", "csd4714", "mnikolai"];
const INTERNAL_RECIPIENTS = [
  "jsmith@cs.example.org",
  "gpapadop@cs.example.org",
  "george.papadopoulos@cs.example.org",
  "csd4713+lists@cs.example.org",
  "mnikolai@cs.example.org",
  "csall@cs.example.org",
  "everyone@example.org",
  "research@cs.example.org",
  "students@cs.example.org",
];
const CLIENTS = [
  "198.51.100.7",
  "198.51.100.200",
  "203.0.113.5",
  "203.0.113.77",
  "192.0.2.9",
  "::ffff:192.0.2.10",
  "2001:db8:1:2::25",
  "2001:db8:1:2::26",
  "2001:db8:9::1",
  "10.1.2.3",
];
const SENDERS = [
  "news@remote.example",
  "prvs=1234abcd=alerts@bank.example",
  "friend+tag@remote.example",
  "",
  "someone@partner.example",
  "noreply@shop.example",
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/**
 * One day of a relay: submissions of the department's logins (now and then
 * to protected lists, sometimes a burst of many recipients), inbound mail
 * from outside that is greylisted and retried, Postfix resending an
 * END-OF-MESSAGE, requests at stages policyd does not use, and an
 * administrator releasing a held login. `check` sees every decide() result
 * before it is awaited.
 */
async function simulateDay(
  deps: DecisionDependencies & { clock: { advance(ms: number): void; now(): number } },
  check: (result: MaybePromise<Decision>) => void,
): Promise<Recorded[]> {
  const random = randomSequence(20_261_207);
  const recorded: Recorded[] = [];
  let transaction = 0;
  const ask = async (attributes: Record<string, string>): Promise<Decision> => {
    const result = decide(readFacts(policyRequest(attributes), "+"), deps);
    check(result);
    const decision = await result;
    recorded.push({
      at: deps.clock.now(),
      stage: attributes["protocol_state"] ?? "RCPT",
      action: decision.action,
      outcome: decision.outcome,
      events: decision.events,
      alert: decision.alert,
    });
    return decision;
  };
  const refused = (decision: Decision) =>
    decision.action.action === "REPLY" || decision.action.action === "DEFER_IF_PERMIT";

  /** One SMTP transaction: RCPT per recipient, END-OF-MESSAGE if any was accepted; the refused ones. */
  const message = async (common: Record<string, string>, recipients: readonly string[]) => {
    const instance = `${(++transaction).toString(16)}.6575a1f0.${transaction % 7}.0`;
    const accepted: string[] = [];
    const refusedRecipients: string[] = [];
    for (const recipient of recipients) {
      const decision = await ask({ ...common, instance, protocol_state: "RCPT", recipient });
      (refused(decision) ? refusedRecipients : accepted).push(recipient);
    }
    if (accepted.length > 0) {
      const endOfMessage = {
        ...common,
        instance,
        protocol_state: "END-OF-MESSAGE",
        recipient: accepted.length === 1 ? (accepted[0] as string) : "",
        recipient_count: String(accepted.length),
        size: String(1000 + Math.floor(random() * 50_000)),
      };
      await ask(endOfMessage);
      // Postfix resends a request whose answer it did not get in time.
      if (random() < 0.03) await ask(endOfMessage);
    }
    return refusedRecipients;
  };

  const retries: Array<{ at: number; common: Record<string, string>; recipients: string[] }> = [];
  const end = deps.clock.now() + 24 * HOUR;
  while (deps.clock.now() < end) {
    deps.clock.advance(Math.floor(random() * 90 * SECOND) + 1);
    const due = retries.filter((retry) => retry.at <= deps.clock.now());
    for (const retry of due) {
      retries.splice(retries.indexOf(retry), 1);
      await message(retry.common, retry.recipients);
    }
    const roll = random();
    if (roll < 0.4) {
      const login = pick(random, LOGINS);
      const common = {
        sasl_username: login,
        sasl_method: "PLAIN",
        sender: `${login}@cs.example.org`,
        client_address: random() < 0.7 ? "10.1.2.3" : pick(random, CLIENTS),
      };
      const count = 1 + Math.floor(random() ** 3 * 6);
      const recipients = Array.from({ length: count }, () =>
        random() < 0.5
          ? pick(random, INTERNAL_RECIPIENTS)
          : `user${Math.floor(random() * 300)}@remote.example`,
      );
      await message(common, recipients);
    } else if (roll < 0.41) {
      // A compromised login spraying many distinct addresses.
      const login = pick(random, LOGINS);
      const recipients = Array.from({ length: 30 }, (_, i) => `target${transaction}-${i}@remote.example`);
      await message(
        { sasl_username: login, sasl_method: "LOGIN", sender: `${login}@cs.example.org` },
        recipients,
      );
    } else if (roll < 0.95) {
      const common = {
        client_address: pick(random, CLIENTS),
        client_name: random() < 0.1 ? "mail-ot1.google.com" : "mail.remote.example",
        sender: pick(random, SENDERS),
      };
      const recipients = Array.from({ length: 1 + Math.floor(random() ** 4 * 4) }, () =>
        pick(random, INTERNAL_RECIPIENTS),
      );
      const deferred = await message(common, recipients);
      if (deferred.length > 0 && random() < 0.8) {
        retries.push({
          at: deps.clock.now() + (3 + Math.floor(random() * 30)) * MINUTE,
          common,
          recipients: deferred,
        });
      }
    } else if (roll < 0.99) {
      await ask({
        protocol_state: pick(random, ["CONNECT", "MAIL", "DATA", "VRFY"]),
        sender: "x@remote.example",
      });
    } else {
      // The administrator releases whoever is held.
      for (const login of LOGINS) await deps.store.release(login);
    }
  }
  return recorded;
}

describe("a simulated day of traffic", () => {
  it("decides the same over the memory store (no promise at all), an async store and a mixed one", async () => {
    const clock = fakeClock();
    let promisesFromStore = 0;
    let storeCalls = 0;
    const syncStore = wrapStore(memoryStore(clock.now), (_method, call) => {
      storeCalls++;
      const answer = call();
      if (isPromiseLike(answer)) promisesFromStore++;
      return answer;
    });
    let promisesFromDecide = 0;
    const syncDay = await simulateDay(
      decisionDependencies(settingsFrom(DAY_RULES), { clock, store: syncStore }),
      (result) => {
        if (isPromiseLike(result)) promisesFromDecide++;
      },
    );
    expect(storeCalls).toBeGreaterThan(1000);
    expect(promisesFromStore).toBe(0);
    expect(promisesFromDecide).toBe(0);

    // Every kind of answer happened, so the comparison below covers them all.
    const kinds = new Set(syncDay.map((entry) => entry.outcome.kind));
    for (const kind of [
      "accepted",
      "not_applicable",
      "list_refused",
      "held",
      "rate_limited",
      "greylisted",
      "greylist_passed",
      "charged",
    ]) {
      expect(kinds, kind).toContain(kind);
    }
    const results = new Set(
      syncDay.flatMap((entry) => entry.events.map((event) => `${event.check}=${event.result}`)),
    );
    for (const result of [
      "greylist=whitelisted",
      "greylist=known",
      "burst=held_now",
      "charge=duplicate",
      "rate_limit=reject",
    ]) {
      expect(results, result).toContain(result);
    }
    expect(syncDay.filter((entry) => entry.alert !== null).length).toBeGreaterThan(0);

    // The same store answering every operation later, as Redis does.
    const asyncClock = fakeClock();
    let asyncDecisions = 0;
    const asyncStore = wrapStore(memoryStore(asyncClock.now), (_method, call) =>
      Promise.resolve().then(call),
    );
    const asyncDay = await simulateDay(
      decisionDependencies(settingsFrom(DAY_RULES), { clock: asyncClock, store: asyncStore }),
      (result) => {
        if (isPromiseLike(result)) asyncDecisions++;
      },
    );
    expect(asyncDecisions).toBeGreaterThan(0);
    expect(asyncDay).toEqual(syncDay);

    // Every other operation pending: the driver goes back and forth within one decision.
    const mixedClock = fakeClock();
    let calls = 0;
    const mixedStore = wrapStore(memoryStore(mixedClock.now), (_method, call) =>
      ++calls % 2 === 0 ? Promise.resolve().then(call) : call(),
    );
    const mixedDay = await simulateDay(
      decisionDependencies(settingsFrom(DAY_RULES), { clock: mixedClock, store: mixedStore }),
      () => {},
    );
    expect(mixedDay).toEqual(syncDay);
  });
});

// ---------------------------------------------------------------------------
// Store failures: thrown or rejected, the same answers.

const FAILURE_RULES = (globalAction: string, ruleAction: string) => `
[policyd]
failure_action = "${globalAction}"
[policyd.greylist]
enabled = true
[policyd.burst]
enabled = true
[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
failure_action = "${ruleAction}"
[[policyd.rules.windows]]
period = "1h"
limit = 100
[[policyd.rules]]
name = "client-shadow"
key = "client_address"
mode = "shadow"
failure_action = "DEFER_IF_PERMIT"
[[policyd.rules.windows]]
period = "1h"
limit = 100
`;

type FailureMode = "throws" | "rejects";

/** A memory store whose listed operations fail (TransientError, or `error` when given) by throwing or rejecting. */
function failingStore(
  now: () => number,
  mode: FailureMode,
  failing: ReadonlySet<StoreMethod>,
  error: () => Error = () => new TransientError("transient.backend_down", "store down (test)"),
): PolicyStore {
  return wrapStore(memoryStore(now), (method, call) => {
    if (!failing.has(method)) return call();
    if (mode === "throws") throw error();
    return Promise.reject(error());
  });
}

const AUTHENTICATED = {
  instance: "fail.1",
  sasl_username: "jsmith",
  sasl_method: "PLAIN",
  sender: "jsmith@cs.example.org",
  recipient: "a@remote.example",
};
const INBOUND = { instance: "fail.2", sender: "news@remote.example", recipient: "jsmith@cs.example.org" };
const END_OF_MESSAGE = {
  ...AUTHENTICATED,
  protocol_state: "END-OF-MESSAGE",
  recipient_count: "1",
  size: "1000",
};

const FAILURE_CASES: Array<{
  name: string;
  globalAction: string;
  ruleAction: string;
  failing: StoreMethod[];
  request: Record<string, string>;
  want: { action: string; outcome: Record<string, unknown> };
}> = [
  {
    name: "counters down, rule says DEFER_IF_PERMIT",
    globalAction: "DUNNO",
    ruleAction: "DEFER_IF_PERMIT",
    failing: ["readCounters"],
    request: AUTHENTICATED,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "store_failed", action: "DEFER_IF_PERMIT" } },
  },
  {
    name: "counters down, rule says DUNNO: the shadow rule's DEFER does not count",
    globalAction: "DEFER_IF_PERMIT",
    ruleAction: "DUNNO",
    failing: ["readCounters"],
    request: AUTHENTICATED,
    want: { action: "DUNNO", outcome: { kind: "store_failed", action: "DUNNO" } },
  },
  {
    name: "counters down with DUNNO, greylisting still runs",
    globalAction: "DEFER_IF_PERMIT",
    ruleAction: "DUNNO",
    failing: ["readCounters"],
    request: INBOUND,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "greylisted" } },
  },
  {
    name: "greylisting down, DEFER_IF_PERMIT",
    globalAction: "DEFER_IF_PERMIT",
    ruleAction: "DUNNO",
    failing: ["greylist"],
    request: INBOUND,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "store_failed", action: "DEFER_IF_PERMIT" } },
  },
  {
    name: "greylisting down, DUNNO",
    globalAction: "DUNNO",
    ruleAction: "DUNNO",
    failing: ["greylist"],
    request: INBOUND,
    want: { action: "DUNNO", outcome: { kind: "store_failed", action: "DUNNO" } },
  },
  {
    name: "holds down, DEFER_IF_PERMIT",
    globalAction: "DEFER_IF_PERMIT",
    ruleAction: "DUNNO",
    failing: ["hold"],
    request: AUTHENTICATED,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "store_failed", action: "DEFER_IF_PERMIT" } },
  },
  {
    name: "holds down, DUNNO: the rate limits still read",
    globalAction: "DUNNO",
    ruleAction: "DEFER_IF_PERMIT",
    failing: ["hold"],
    request: AUTHENTICATED,
    want: { action: "DUNNO", outcome: { kind: "store_failed", action: "DUNNO" } },
  },
  {
    name: "charge down at END-OF-MESSAGE, rule says DEFER_IF_PERMIT",
    globalAction: "DUNNO",
    ruleAction: "DEFER_IF_PERMIT",
    failing: ["chargeCounters"],
    request: END_OF_MESSAGE,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "store_failed", action: "DEFER_IF_PERMIT" } },
  },
  {
    name: "charge down with DUNNO: burst figures still recorded",
    globalAction: "DUNNO",
    ruleAction: "DUNNO",
    failing: ["chargeCounters"],
    request: END_OF_MESSAGE,
    want: { action: "DUNNO", outcome: { kind: "store_failed", action: "DUNNO" } },
  },
  {
    name: "burst figures down, DEFER_IF_PERMIT",
    globalAction: "DEFER_IF_PERMIT",
    ruleAction: "DUNNO",
    failing: ["recordBurst"],
    request: END_OF_MESSAGE,
    want: { action: "DEFER_IF_PERMIT", outcome: { kind: "store_failed", action: "DEFER_IF_PERMIT" } },
  },
];

describe("a store that fails", () => {
  it.each(
    FAILURE_CASES.flatMap((failure) =>
      (["throws", "rejects"] as const).map((mode) => ({ ...failure, mode })),
    ),
  )("$name ($mode)", async ({ globalAction, ruleAction, failing, request, want, mode }) => {
    const clock = fakeClock();
    const store = failingStore(clock.now, mode, new Set(failing));
    const deps = decisionDependencies(settingsFrom(FAILURE_RULES(globalAction, ruleAction)), {
      clock,
      store,
    });
    const result = decide(readFacts(policyRequest(request), "+"), deps);
    // A store that throws is answered synchronously; only a promise makes the decision wait.
    expect(isPromiseLike(result)).toBe(mode === "rejects");
    const decision = await result;
    expect(decision.action.action).toBe(want.action);
    expect(decision.outcome).toMatchObject(want.outcome);
    expect(decision.events.some((event) => event.result === "store_failed")).toBe(true);
  });

  it.each(["throws", "rejects"] as const)(
    "lets an error that is not the store's out, for the server's fail-safe answer (%s)",
    async (mode) => {
      const clock = fakeClock();
      const store = failingStore(clock.now, mode, new Set(["readCounters"]), () => new TypeError("bug"));
      const deps = decisionDependencies(settingsFrom(FAILURE_RULES("DUNNO", "DUNNO")), { clock, store });
      const facts = readFacts(policyRequest(AUTHENTICATED), "+");
      if (mode === "throws") expect(() => decide(facts, deps)).toThrow("bug");
      else await expect(decide(facts, deps)).rejects.toThrow("bug");
    },
  );
});

describe("the policy session", () => {
  it("answers with the reply itself over the memory store and with a promise over an async one", async () => {
    const request = policyRequest({
      instance: "s.1",
      sasl_username: "jsmith",
      recipient: "a@remote.example",
    });
    const peer = { transport: "unix" as const, address: "/test", id: 1 };
    const context = { log: silentLog, peer, signal: new AbortController().signal };
    const answers = [];
    for (const asynchronous of [false, true]) {
      const clock = fakeClock();
      const memory = memoryStore(clock.now);
      const store = asynchronous
        ? wrapStore(memory, (_method, call) => Promise.resolve().then(call))
        : memory;
      const deps = decisionDependencies(settingsFrom(DAY_RULES), { clock, store });
      const session = policySessions({ current: () => deps })(peer, silentLog);
      const answer = session.handle(request, context);
      expect(isPromiseLike(answer)).toBe(asynchronous);
      answers.push(await answer);
    }
    expect(answers[0]).toEqual({ action: "DUNNO" });
    expect(answers[1]).toEqual(answers[0]);
  });
});
