/**
 * Unit tests of the quota decision: pure, fake clock, a table of usage
 * readings. The directory has users with and without limits, alternates,
 * a forward-only user, forward chains, a forward keeping a copy, groups of
 * full and empty mailboxes, a nested group and a forward cycle.
 */
import { describe, expect, it } from "vitest";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { Directory } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import {
  decideQuestion,
  graceBytesFor,
  type QuotaDecision,
  type QuotaQuestion,
  type QuotaSettings,
} from "./decision.js";
import type { UsageRecord } from "./usage-store.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const MINUTE = 60_000;
const DAY = 86_400_000;

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] },
  users: [
    testUser("alice", { quotaBytes: 1000, alternateAddresses: ["alice.smith@cs.example.org"] }),
    testUser("bob", { quotaBytes: 10_000 }),
    testUser("carol"), // no quota of her own: the default limit applies
    testUser("dave", { quotaBytes: 1000, forwardingAddresses: ["dave@gmail.example"] }),
    testUser("erin", { quotaBytes: 10_000, forwardingAddresses: ["alice@cs.example.org"] }),
    testUser("frank", { forwardingAddresses: ["erin@cs.example.org"] }),
    testUser("gina", {
      quotaBytes: 1000,
      forwardingAddresses: ["gina@cs.example.org", "gina@gmail.example"],
    }),
    testUser("harry", { quotaBytes: 500 }),
    testUser("ivan", { quotaBytes: 1000, status: "inactive" }),
    testUser("loop1", { forwardingAddresses: ["loop2@cs.example.org"] }),
    testUser("loop2", { forwardingAddresses: ["loop1@cs.example.org"] }),
    testUser("nolimit", { quotaBytes: 0 }),
    testUser("stale", { quotaBytes: 1000 }),
    testUser("ageless", { quotaBytes: 1000 }),
    testUser("unrecorded", { quotaBytes: 1000 }),
  ],
  groups: [
    testGroup("fullteam", { memberLogins: ["alice", "harry"] }),
    testGroup("mixed", { memberLogins: ["alice", "bob"] }),
    testGroup("outer", { memberGroups: ["fullteam"] }),
    testGroup("withoutside", { memberLogins: ["alice"], memberAddresses: ["friend@gmail.example"] }),
  ],
};

const usage = new Map<string, UsageRecord>([
  ["alice", { storageBytes: 1000, messages: 4, updatedAt: NOW - MINUTE }], // exactly at the limit
  ["bob", { storageBytes: 2000, messages: 2, updatedAt: NOW - MINUTE }],
  ["carol", { storageBytes: 4000, messages: 9, updatedAt: NOW - MINUTE }],
  ["dave", { storageBytes: 5000, messages: 9, updatedAt: NOW - MINUTE }],
  ["erin", { storageBytes: 10, messages: 1, updatedAt: NOW - MINUTE }],
  ["frank", { storageBytes: 10, messages: 1, updatedAt: NOW - MINUTE }],
  ["gina", { storageBytes: 999, messages: 3, updatedAt: NOW - MINUTE }],
  ["harry", { storageBytes: 600, messages: 3, updatedAt: NOW - MINUTE }],
  ["ivan", { storageBytes: 5000, messages: 9, updatedAt: NOW - MINUTE }],
  ["nolimit", { storageBytes: 9_999_999, messages: 9, updatedAt: NOW - MINUTE }],
  ["stale", { storageBytes: 5000, messages: 9, updatedAt: NOW - 8 * DAY }],
  ["ageless", { storageBytes: 5000, messages: 9, updatedAt: null }],
]);

const settings: QuotaSettings = {
  defaultLimitBytes: 4096,
  dovecotUsername: "login",
  groupPolicy: "any",
  maxDepth: 16,
  grace: { kind: "bytes", bytes: 0 },
  usageMaxAgeMs: 7 * DAY,
  severalRecipients: "refuse",
};

const snapshot: CurrentSnapshot = {
  resolver: new Resolver(directory),
  meta: {
    format: 1,
    version: 7,
    contentHash: "sha256:test",
    createdAt: new Date(NOW - MINUTE).toISOString(),
    view: "relay",
    sources: [],
  },
  fresh: true,
};

function decide(
  question: Partial<QuotaQuestion> & { recipients: string[] },
  overrides: Partial<QuotaSettings> = {},
  current: CurrentSnapshot | null = snapshot,
): QuotaDecision {
  return decideQuestion(
    { state: "RCPT", size: 0, ...question },
    {
      snapshot: current,
      usage: (username) => usage.get(username),
      now: NOW,
      settings: { ...settings, ...overrides },
    },
  );
}

/** The decision kind and, for a refusal, the login of the mailbox that refused. */
function summary(decision: QuotaDecision): string {
  switch (decision.kind) {
    case "over-quota":
    case "too-large":
      return `${decision.kind} ${decision.refused.mailbox.login}`;
    default:
      return decision.kind;
  }
}

describe("one recipient at RCPT", () => {
  it.each([
    { name: "user under the limit", recipient: "bob@cs.example.org", size: 0, want: "fits" },
    {
      name: "user exactly at the limit is full",
      recipient: "alice@cs.example.org",
      size: 0,
      want: "over-quota alice",
    },
    {
      name: "alternate address → the mailbox",
      recipient: "alice.smith@cs.example.org",
      size: 0,
      want: "over-quota alice",
    },
    {
      name: "alias domain, +extension, case and brackets",
      recipient: "<Alice.Smith+x@Example.ORG>",
      size: 0,
      want: "over-quota alice",
    },
    {
      name: "message fits in the remaining space",
      recipient: "bob@cs.example.org",
      size: 8000,
      want: "fits",
    },
    {
      name: "message too large for the remaining space",
      recipient: "bob@cs.example.org",
      size: 8001,
      want: "over-quota bob",
    },
    {
      name: "message larger than the whole limit",
      recipient: "bob@cs.example.org",
      size: 10_001,
      want: "too-large bob",
    },
    {
      name: "no quota of her own: default limit",
      recipient: "carol@cs.example.org",
      size: 97,
      want: "over-quota carol",
    },
    { name: "default limit, room left", recipient: "carol@cs.example.org", size: 96, want: "fits" },
    { name: "forward-only address is not checked", recipient: "dave@cs.example.org", size: 0, want: "fits" },
    {
      name: "forward to a full mailbox",
      recipient: "erin@cs.example.org",
      size: 0,
      want: "over-quota alice",
    },
    {
      name: "forward chain to a full mailbox",
      recipient: "frank@cs.example.org",
      size: 0,
      want: "over-quota alice",
    },
    {
      name: "forward keeping a copy: own mailbox checked",
      recipient: "gina@cs.example.org",
      size: 2,
      want: "over-quota gina",
    },
    { name: "forward cycle is cut, never refused", recipient: "loop1@cs.example.org", size: 0, want: "fits" },
    { name: "limit 0 means unlimited", recipient: "nolimit@cs.example.org", size: 0, want: "fits" },
    { name: "stale usage never refuses", recipient: "stale@cs.example.org", size: 0, want: "fits" },
    {
      name: "usage of unknown age never refuses",
      recipient: "ageless@cs.example.org",
      size: 0,
      want: "fits",
    },
    { name: "no usage record", recipient: "unrecorded@cs.example.org", size: 0, want: "fits" },
    { name: "unknown address is not ours", recipient: "nobody@cs.example.org", size: 0, want: "not-ours" },
    { name: "inactive user is not ours", recipient: "ivan@cs.example.org", size: 0, want: "not-ours" },
    { name: "other domain is not ours", recipient: "alice@gmail.example", size: 0, want: "not-ours" },
    { name: "bare local part is not ours", recipient: "alice", size: 0, want: "not-ours" },
    { name: "unparsable address is not ours", recipient: "bad address@@example", size: 0, want: "not-ours" },
  ])("$name", ({ recipient, size, want }) => {
    expect(summary(decide({ recipients: [recipient], size }))).toBe(want);
  });

  it("reports every mailbox it looked at, with limit, usage and state", () => {
    const decision = decide({ recipients: ["frank@cs.example.org"], size: 0 });
    expect(decision.kind).toBe("over-quota");
    if (decision.kind !== "over-quota") return;
    expect(decision.refused.mailbox).toMatchObject({
      login: "alice",
      username: "alice",
      limitBytes: 1000,
      usage: { storageBytes: 1000 },
      ageMs: MINUTE,
      state: "over-quota",
    });
    expect(decision.recipients[0]?.kind === "over-quota" && decision.recipients[0].address).toBe(
      "frank@cs.example.org",
    );
  });

  it("uses the primary address as the Dovecot username when told to", () => {
    const decision = decide({ recipients: ["alice@cs.example.org"] }, { dovecotUsername: "primary_address" });
    // No usage is stored under "alice@cs.example.org", so nothing is known and nothing refused.
    expect(decision.kind).toBe("fits");
    if (decision.kind === "fits")
      expect(decision.recipients[0]).toMatchObject({ checked: [{ state: "no-usage" }] });
  });
});

describe("grace", () => {
  it.each([
    {
      name: "bytes: last message may go over",
      grace: { kind: "bytes", bytes: 100 } as const,
      size: 8100,
      want: "fits",
    },
    {
      name: "bytes: beyond the grace",
      grace: { kind: "bytes", bytes: 100 } as const,
      size: 8101,
      want: "over-quota bob",
    },
    {
      name: "percent: 10% of 10000",
      grace: { kind: "percent", percent: 10 } as const,
      size: 9000,
      want: "fits",
    },
    {
      name: "percent: one byte more",
      grace: { kind: "percent", percent: 10 } as const,
      size: 9001,
      want: "over-quota bob",
    },
    {
      name: "bigger than limit + grace alone",
      grace: { kind: "percent", percent: 10 } as const,
      size: 11_001,
      want: "too-large bob",
    },
  ])("$name", ({ grace, size, want }) => {
    expect(summary(decide({ recipients: ["bob@cs.example.org"], size }, { grace }))).toBe(want);
  });

  it("does not let a mailbox already at its limit take more", () => {
    const decision = decide(
      { recipients: ["alice@cs.example.org"], size: 1 },
      { grace: { kind: "percent", percent: 50 } },
    );
    expect(summary(decision)).toBe("over-quota alice");
  });

  it("marks a message admitted by the grace", () => {
    const decision = decide(
      { recipients: ["bob@cs.example.org"], size: 8050 },
      { grace: { kind: "bytes", bytes: 100 } },
    );
    expect(decision.kind === "fits" && decision.recipients[0]).toMatchObject({
      checked: [{ state: "within-grace", graceBytes: 100 }],
    });
  });

  it("computes percent grace from each user's limit", () => {
    expect(graceBytesFor(1000, { kind: "percent", percent: 10 })).toBe(100);
    expect(graceBytesFor(1005, { kind: "percent", percent: 10 })).toBe(100);
    expect(graceBytesFor(1000, { kind: "bytes", bytes: 7 })).toBe(7);
  });
});

describe("group policy", () => {
  it.each([
    { group: "mixed", policy: "accept", want: "fits" },
    { group: "mixed", policy: "any", want: "over-quota alice" },
    { group: "mixed", policy: "all", want: "fits" },
    { group: "fullteam", policy: "accept", want: "fits" },
    { group: "fullteam", policy: "any", want: "over-quota alice" },
    { group: "fullteam", policy: "all", want: "over-quota alice" },
    { group: "outer", policy: "all", want: "over-quota alice" },
    { group: "withoutside", policy: "all", want: "fits" },
    { group: "withoutside", policy: "any", want: "over-quota alice" },
  ] as const)("$group with $policy → $want", ({ group, policy, want }) => {
    expect(summary(decide({ recipients: [`${group}@cs.example.org`] }, { groupPolicy: policy }))).toBe(want);
  });

  it("'all' never refuses a group whose expansion a limit cut short", () => {
    const limited: CurrentSnapshot = { ...snapshot, resolver: new Resolver(directory, { maxExpansion: 1 }) };
    expect(
      summary(decide({ recipients: ["fullteam@cs.example.org"] }, { groupPolicy: "all" }, limited)),
    ).toBe("fits");
    expect(
      summary(decide({ recipients: ["fullteam@cs.example.org"] }, { groupPolicy: "any" }, limited)),
    ).toBe("over-quota alice");
  });

  it("'accept' does not even look at the members", () => {
    const decision = decide({ recipients: ["fullteam@cs.example.org"] }, { groupPolicy: "accept" });
    expect(decision.kind === "fits" && decision.recipients[0]).toMatchObject({ checked: [] });
  });
});

describe("END-OF-MESSAGE", () => {
  it("checks the one recipient with the real size", () => {
    expect(summary(decide({ state: "END-OF-MESSAGE", recipients: ["bob@cs.example.org"], size: 8001 }))).toBe(
      "over-quota bob",
    );
  });

  it("refuses a message with several recipients when one lacks room (several_recipients = refuse)", () => {
    const question = {
      state: "END-OF-MESSAGE" as const,
      recipients: ["bob@cs.example.org", "carol@cs.example.org"],
      size: 500,
    };
    expect(summary(decide(question))).toBe("over-quota carol");
    expect(summary(decide({ ...question, size: 90 }))).toBe("fits");
  });

  it("does not check several recipients when several_recipients = accept", () => {
    const question = {
      state: "END-OF-MESSAGE" as const,
      recipients: ["bob@cs.example.org", "carol@cs.example.org"],
      size: 500,
    };
    expect(decide(question, { severalRecipients: "accept" })).toEqual({
      kind: "not-checked",
      reason: "several-recipients",
    });
  });

  it("is not a question without any recipient", () => {
    expect(decide({ state: "END-OF-MESSAGE", recipients: [], size: 5 })).toEqual({
      kind: "not-checked",
      reason: "no-recipient",
    });
  });
});

describe("failure semantics", () => {
  it("answers unavailable without a snapshot", () => {
    expect(decide({ recipients: ["alice@cs.example.org"] }, {}, null)).toMatchObject({
      kind: "unavailable",
      reason: "no-snapshot",
    });
  });

  it("answers unavailable from a stale snapshot, even for a full mailbox", () => {
    expect(decide({ recipients: ["alice@cs.example.org"] }, {}, { ...snapshot, fresh: false })).toMatchObject(
      {
        kind: "unavailable",
        reason: "stale-snapshot",
      },
    );
  });
});
