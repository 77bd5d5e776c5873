/**
 * Decisions end to end over the in-memory store with a fake clock: the
 * facts of a request in, the Postfix action and outcome out.
 */
import { describe, expect, it } from "vitest";
import {
  decisionDependencies,
  FailingStore,
  fakeClock,
  policyRequest,
  settingsFrom,
  silentLog,
} from "../test/wire/policyd-fixtures.js";
import { type DecisionDependencies, decide } from "./decide.js";
import { interpretKey, targetsOf } from "./explain.js";
import { readFacts } from "./facts.js";
import { MemoryStore } from "./memory-store.js";

const MINUTE = 60_000;

const RATE_RULES = `
[[policyd.classes]]
name = "staff"
groups = ["csstaff", "csfaculty"]

[[policyd.classes]]
name = "students"
attribute = "category"
values = ["student"]

[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
metric = "messages"
except_logins = ["mailman"]
[[policyd.rules.windows]]
period = "1m"
limit = 3
class_limits = { staff = 5 }

[[policyd.rules]]
name = "login-recipients"
key = "sasl_login"
metric = "recipients"
action = "reject"
[[policyd.rules.windows]]
period = "1h"
limit = 100
[[policyd.rules.windows]]
period = "1d"
limit = 1000

[[policyd.rules]]
name = "recipient-domain"
key = "recipient_domain"
metric = "messages"
mode = "shadow"
[[policyd.rules.windows]]
period = "1h"
limit = 2
`;

let transactionNumber = 0;

interface Message {
  login?: string;
  sender?: string;
  recipients: string[];
  size?: number;
  client?: string;
}

/** RCPT for every recipient, then END-OF-MESSAGE if at least one was accepted; returns the RCPT actions. */
async function send(deps: DecisionDependencies, message: Message): Promise<string[]> {
  const instance = `${(++transactionNumber).toString(16)}.65f0c0de.1.0`;
  const common = {
    instance,
    sasl_username: message.login ?? "",
    sasl_method: message.login === undefined ? "" : "PLAIN",
    sender: message.sender ?? (message.login ? `${message.login}@cs.example.org` : "someone@remote.example"),
    client_address: message.client ?? "198.51.100.7",
  };
  const actions: string[] = [];
  let accepted = 0;
  for (const recipient of message.recipients) {
    const facts = readFacts(policyRequest({ ...common, protocol_state: "RCPT", recipient }), "+");
    const decision = await decide(facts, deps);
    actions.push(label(decision.action));
    if (!/^(REPLY [45]|DEFER|REJECT)/.test(actions.at(-1) ?? "")) accepted++;
  }
  if (accepted > 0) {
    const eom = {
      ...common,
      protocol_state: "END-OF-MESSAGE",
      recipient: accepted === 1 ? (message.recipients[0] ?? "") : "",
      recipient_count: String(accepted),
      size: String(message.size ?? 1000),
    };
    await decide(readFacts(policyRequest(eom), "+"), deps);
  }
  return actions;
}

function label(action: { action: string; code?: number; text?: string }): string {
  return action.action === "REPLY" ? `REPLY ${action.code}` : action.action;
}

async function used(deps: DecisionDependencies, key: string): Promise<Record<string, number>> {
  const values = interpretKey(key, "+");
  if (values === null) throw new Error(key);
  const target = targetsOf(values, deps.settings, deps.resolver);
  const report = await deps.store.report(target.counters, target.login, null, deps.now());
  return Object.fromEntries(
    target.counters.map((counter, index) => [
      `${counter.rule}/${counter.spec.periodMs / MINUTE}m`,
      Math.round(report.counters[index]!.reading.used * 1000) / 1000,
    ]),
  );
}

describe("rate limits", () => {
  it("defers the (N+1)th message of a login in the window while another login is unaffected", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    for (let i = 0; i < 3; i++)
      expect(await send(deps, { login: "csd4713", recipients: ["a@remote.example"] })).toEqual(["DUNNO"]);
    expect(await send(deps, { login: "csd4713", recipients: ["a@remote.example"] })).toEqual(["REPLY 450"]);
    expect(await send(deps, { login: "mnikolai", recipients: ["a@remote.example"] })).toEqual(["DUNNO"]);
    // The sliding window recovers gradually, not at a fixed boundary: after a full minute
    // more the old minute no longer counts.
    deps.clock.advance(2 * MINUTE);
    expect(await send(deps, { login: "csd4713", recipients: ["a@remote.example"] })).toEqual(["DUNNO"]);
  });

  it("gives a class its own limit", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    const results: string[] = [];
    for (let i = 0; i < 6; i++)
      results.push(...(await send(deps, { login: "jsmith", recipients: ["x@remote.example"] })));
    expect(results).toEqual(["DUNNO", "DUNNO", "DUNNO", "DUNNO", "DUNNO", "REPLY 450"]);
  });

  it("charges a 50-recipient message 50 for a recipient rule and 1 for a message rule", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    const recipients = Array.from({ length: 50 }, (_, i) => `user${i}@remote.example`);
    expect(new Set(await send(deps, { login: "gpapadop", recipients }))).toEqual(new Set(["DUNNO"]));
    expect(await used(deps, "gpapadop")).toEqual({
      "login-messages/1m": 1,
      "login-recipients/60m": 50,
      "login-recipients/1440m": 50,
    });
  });

  it("refuses the recipient that would pass a recipient limit, and charges only those accepted", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    const recipients = Array.from({ length: 102 }, (_, i) => `user${i}@remote.example`);
    const actions = await send(deps, { login: "gpapadop", recipients });
    expect(actions.slice(0, 100).every((action) => action === "DUNNO")).toBe(true);
    expect(actions.slice(100)).toEqual(["REPLY 550", "REPLY 550"]);
    expect((await used(deps, "gpapadop"))["login-recipients/60m"]).toBe(100);
  });

  it("does not charge mail refused at RCPT", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    for (let i = 0; i < 3; i++) await send(deps, { login: "csd4714", recipients: ["a@remote.example"] });
    for (let i = 0; i < 5; i++) await send(deps, { login: "csd4714", recipients: ["a@remote.example"] });
    expect((await used(deps, "csd4714"))["login-messages/1m"]).toBe(3);
  });

  it("charges once per instance even when Postfix resends END-OF-MESSAGE", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    const base = { instance: "dup.1", sasl_username: "csd4713", sender: "csd4713@cs.example.org" };
    await decide(readFacts(policyRequest({ ...base, recipient: "a@remote.example" }), "+"), deps);
    const eom = policyRequest({
      ...base,
      protocol_state: "END-OF-MESSAGE",
      recipient: "a@remote.example",
      recipient_count: "1",
      size: "500",
    });
    const first = await decide(readFacts(eom, "+"), deps);
    const second = await decide(readFacts(eom, "+"), deps);
    expect(first.outcome).toMatchObject({ kind: "charged", duplicate: false });
    expect(second.outcome).toMatchObject({ kind: "charged", duplicate: true });
    expect((await used(deps, "csd4713"))["login-messages/1m"]).toBe(1);
  });

  it("in shadow mode decides and reports but answers DUNNO", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    for (let i = 0; i < 2; i++) await send(deps, { recipients: ["x@partner.example"] });
    const facts = readFacts(policyRequest({ instance: "s.1", recipient: "y@partner.example" }), "+");
    const decision = await decide(facts, deps);
    expect(decision.action).toEqual({ action: "DUNNO" });
    expect(decision.events).toContainEqual({
      check: "rate_limit",
      name: "recipient-domain",
      result: "defer",
      mode: "shadow",
    });
  });

  it("does not apply a rule to a request without its key or covered by an exception", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    for (let i = 0; i < 6; i++) {
      expect(await send(deps, { login: "mailman", recipients: ["list@remote.example"] })).toEqual(["DUNNO"]);
    }
    const anonymous = await decide(
      readFacts(policyRequest({ instance: "n.1", recipient: "x@cs.example.org" }), "+"),
      deps,
    );
    expect(anonymous.events.filter((event) => event.name.startsWith("login-"))).toEqual([]);
  });

  it.each([
    { failure: "DEFER_IF_PERMIT", want: "DEFER_IF_PERMIT" },
    { failure: "DUNNO", want: "DUNNO" },
  ])("answers $want when the store is down and the failure action is $failure", async ({ failure, want }) => {
    const clock = fakeClock();
    const store = new FailingStore(
      new MemoryStore({
        path: null,
        flushIntervalMs: 1000,
        maxEntries: 1000,
        log: silentLog,
        now: clock.now,
      }),
    );
    const deps = decisionDependencies(
      settingsFrom(`[policyd]\nfailure_action = "${failure}"\n${RATE_RULES}`),
      {
        store,
        clock,
      },
    );
    store.down = true;
    const decision = await decide(
      readFacts(
        policyRequest({ instance: "f.1", sasl_username: "jsmith", recipient: "a@remote.example" }),
        "+",
      ),
      deps,
    );
    expect(decision.action.action).toBe(want);
    expect(decision.outcome).toMatchObject({ kind: "store_failed" });
  });

  it("answers DUNNO at stages it does not use", async () => {
    const deps = decisionDependencies(settingsFrom(RATE_RULES));
    for (const state of ["CONNECT", "MAIL", "DATA", "VRFY", ""]) {
      const decision = await decide(readFacts(policyRequest({ protocol_state: state }), "+"), deps);
      expect(decision.outcome).toEqual({ kind: "not_applicable", reason: "stage" });
    }
  });

  it("counts IPv6 clients by /64 by default", async () => {
    const deps = decisionDependencies(
      settingsFrom(`
[[policyd.rules]]
name = "client"
key = "client_address"
[[policyd.rules.windows]]
period = "1m"
limit = 2
`),
    );
    expect(await send(deps, { client: "2001:db8:1:2::1", recipients: ["a@cs.example.org"] })).toEqual([
      "DUNNO",
    ]);
    expect(await send(deps, { client: "2001:db8:1:2::ffff", recipients: ["a@cs.example.org"] })).toEqual([
      "DUNNO",
    ]);
    expect(await send(deps, { client: "2001:db8:1:2:aaaa::3", recipients: ["a@cs.example.org"] })).toEqual([
      "REPLY 450",
    ]);
    expect(await send(deps, { client: "2001:db8:1:3::1", recipients: ["a@cs.example.org"] })).toEqual([
      "DUNNO",
    ]);
  });
});

describe("protected lists", () => {
  const LISTS = `
[policyd.protected_lists]
from_directory = true
allowed_networks = ["192.0.2.25"]
[[policyd.protected_lists.lists]]
group = "research"
allowed_groups = ["csfaculty"]
allowed_senders = ["announce@cs.example.org"]
`;

  it.each([
    { name: "staff to csall", login: "jsmith", recipient: "csall@cs.example.org", want: "DUNNO" },
    {
      name: "faculty to csall from home",
      login: "gpapadop",
      client: "203.0.113.9",
      recipient: "everyone@cs.example.org",
      want: "DUNNO",
    },
    { name: "student to csall", login: "csd4713", recipient: "csall@cs.example.org", want: "REPLY 550" },
    { name: "unauthenticated to csall", recipient: "csall+x@cs.example.org", want: "REPLY 550" },
    {
      name: "allowed network to csall",
      client: "192.0.2.25",
      recipient: "csall@cs.example.org",
      want: "DUNNO",
    },
    {
      name: "pg to research (config list)",
      login: "mnikolai",
      recipient: "research@cs.example.org",
      want: "REPLY 550",
    },
    {
      name: "allowed sender to research",
      sender: "announce@cs.example.org",
      recipient: "research@cs.example.org",
      want: "DUNNO",
    },
    {
      name: "student to an unprotected group",
      login: "csd4713",
      recipient: "students@cs.example.org",
      want: "DUNNO",
    },
  ])("$name → $want", async ({ login, client, sender, recipient, want }) => {
    const deps = decisionDependencies(settingsFrom(LISTS));
    const facts = readFacts(
      policyRequest({
        instance: "p.1",
        sasl_username: login ?? "",
        client_address: client ?? "198.51.100.7",
        sender: sender ?? (login ? `${login}@cs.example.org` : "x@remote.example"),
        recipient,
      }),
      "+",
    );
    const decision = await decide(facts, deps);
    expect(label(decision.action)).toBe(want);
  });

  it("names the list in the 5.7.1 text", async () => {
    const deps = decisionDependencies(settingsFrom(LISTS));
    const facts = readFacts(
      policyRequest({ sasl_username: "csd4713", recipient: "csall@cs.example.org" }),
      "+",
    );
    expect((await decide(facts, deps)).action).toEqual({
      action: "REPLY",
      code: 550,
      enhancedCode: "5.7.1",
      text: "csall is a protected list: only members of csstaff, csfaculty may post to it",
    });
  });

  it("answers DEFER_IF_PERMIT without a snapshot, never a refusal", async () => {
    const deps = decisionDependencies(settingsFrom(LISTS), { directory: null });
    const facts = readFacts(
      policyRequest({ sasl_username: "csd4713", recipient: "csall@cs.example.org" }),
      "+",
    );
    const decision = await decide(facts, deps);
    expect(decision.action.action).toBe("DEFER_IF_PERMIT");
  });
});

describe("greylisting", () => {
  const GREYLIST = `
[policyd.greylist]
enabled = true
delay = "5m"
retry_window = "1d"
auto_whitelist_after = 2
exempt_networks = ["192.0.2.0/24"]
exempt_client_names = ["google.com"]
`;
  const attempt = (deps: DecisionDependencies, overrides: Partial<Record<string, string>> = {}) =>
    decide(
      readFacts(
        policyRequest({
          instance: `g.${++transactionNumber}`,
          client_address: "198.51.100.7",
          sender: "news@remote.example",
          recipient: "gpapadop@cs.example.org",
          ...(overrides as Record<string, string>),
        }),
        "+",
      ),
      deps,
    );

  it("defers the first attempt and too-early retries, accepts the retry after the delay with a header", async () => {
    const deps = decisionDependencies(settingsFrom(GREYLIST));
    expect((await attempt(deps)).action).toEqual({
      action: "DEFER_IF_PERMIT",
      text: "Greylisted, please try again later",
    });
    deps.clock.advance(MINUTE);
    expect((await attempt(deps)).outcome).toEqual({ kind: "greylisted", retryInMs: 4 * MINUTE });
    deps.clock.advance(5 * MINUTE);
    const passed = await attempt(deps);
    expect(passed.action.action).toBe("PREPEND");
    expect(passed.action).toMatchObject({
      header: expect.stringMatching(/^X-Greylist: delayed 360 seconds by emailng-policyd at relay\.test; /),
    });
    // Another host of the same /24 with the same sender and recipient is known now.
    expect((await attempt(deps, { client_address: "198.51.100.99" })).action).toEqual({ action: "DUNNO" });
  });

  it("auto-whitelists a client network after N passed retries", async () => {
    const deps = decisionDependencies(settingsFrom(GREYLIST));
    for (const recipient of ["a@cs.example.org", "b@cs.example.org"]) {
      await attempt(deps, { recipient });
      deps.clock.advance(6 * MINUTE);
      expect((await attempt(deps, { recipient })).outcome.kind).toBe("greylist_passed");
    }
    expect((await attempt(deps, { recipient: "c@cs.example.org" })).events).toContainEqual(
      expect.objectContaining({ check: "greylist", result: "whitelisted" }),
    );
  });

  it.each([
    { name: "authenticated", overrides: { sasl_username: "jsmith" } },
    { name: "exempt network", overrides: { client_address: "192.0.2.44" } },
    { name: "exempt client pool", overrides: { client_name: "mail-ot1.google.com" } },
  ])("never greylists: $name", async ({ overrides }) => {
    const deps = decisionDependencies(settingsFrom(GREYLIST));
    expect((await attempt(deps, overrides)).action).toEqual({ action: "DUNNO" });
  });

  it("starts over when the retry comes after the retry window", async () => {
    const deps = decisionDependencies(settingsFrom(GREYLIST));
    await attempt(deps);
    deps.clock.advance(25 * 60 * MINUTE);
    expect((await attempt(deps)).outcome).toEqual({ kind: "greylisted", retryInMs: 5 * MINUTE });
  });
});

describe("bursts", () => {
  const BURST = `
[policyd.burst]
enabled = true
interval = "10m"
baseline_intervals = 6
factor = 5
min_recipients = 20
min_distinct_recipients = 15
`;

  it("holds a login far above its baseline and the floor, once, until released", async () => {
    const deps = decisionDependencies(settingsFrom(BURST));
    // A normal day: 5 recipients per interval.
    for (let interval = 0; interval < 12; interval++) {
      const recipients = Array.from({ length: 5 }, (_, i) => `friend${i}@remote.example`);
      expect(await send(deps, { login: "gpapadop", recipients })).toEqual(Array(5).fill("DUNNO"));
      deps.clock.advance(10 * MINUTE);
    }
    const eomOf = async (count: number) => {
      const instance = `b.${++transactionNumber}`;
      for (let i = 0; i < count; i++) {
        await decide(
          readFacts(
            policyRequest({
              instance,
              sasl_username: "gpapadop",
              recipient: `victim${transactionNumber}-${i}@remote.example`,
            }),
            "+",
          ),
          deps,
        );
      }
      return decide(
        readFacts(
          policyRequest({
            instance,
            sasl_username: "gpapadop",
            protocol_state: "END-OF-MESSAGE",
            recipient_count: String(count),
            size: "900",
          }),
          "+",
        ),
        deps,
      );
    };
    const burst = await eomOf(30);
    expect(burst.action.action).toBe("HOLD");
    expect(burst.alert?.hold.login).toBe("gpapadop");
    // Later mail is held at RCPT, with no second alert.
    const later = await eomOf(1);
    expect(later.action.action).toBe("HOLD");
    expect(later.alert).toBeNull();
    expect(await send(deps, { login: "gpapadop", recipients: ["x@remote.example"] })).toEqual(["HOLD"]);
    // Another login is unaffected.
    expect(await send(deps, { login: "jsmith", recipients: ["x@remote.example"] })).toEqual(["DUNNO"]);
    expect(await deps.store.release("gpapadop")).toBe(true);
    expect(await send(deps, { login: "gpapadop", recipients: ["x@remote.example"] })).toEqual(["DUNNO"]);
  });

  it("does not hold a new login below the floor", async () => {
    const deps = decisionDependencies(settingsFrom(BURST));
    const recipients = Array.from({ length: 12 }, (_, i) => `r${i}@remote.example`);
    expect(await send(deps, { login: "mnikolai", recipients })).toEqual(Array(12).fill("DUNNO"));
    expect(await deps.store.hold("mnikolai")).toBeNull();
  });
});
