/**
 * Unit tests of question.ts (what a policy request asks) and replies.ts
 * (what each decision answers): the quota-status reading of
 * protocol_state, recipient and size, and END-OF-MESSAGE with the
 * recipient Postfix leaves empty when there were several.
 */
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../core/config/load.js";
import { PolicyRequest } from "../core/protocols/policy.js";
import { encodePolicyReply } from "../core/protocols/policy-reply.js";
import type { QuotaDecision } from "./decision.js";
import { MAX_REMEMBERED_RECIPIENTS, questionOf, TransactionRecipients } from "./question.js";
import { repliesFromConfig, replyFor } from "./replies.js";

const request = (attributes: Record<string, string | undefined>) =>
  new PolicyRequest(
    Object.entries(attributes).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );

describe("questionOf", () => {
  it.each([
    {
      name: "RCPT with size",
      attributes: { protocol_state: "RCPT", recipient: "a@x.example", size: "1000" },
      want: { kind: "question", question: { state: "RCPT", recipients: ["a@x.example"], size: 1000 } },
    },
    {
      name: "lower-case state, no size",
      attributes: { protocol_state: "rcpt", recipient: "a@x.example" },
      want: { kind: "question", question: { state: "RCPT", recipients: ["a@x.example"], size: 0 } },
    },
    {
      name: "no protocol_state at all (hand-written client)",
      attributes: { recipient: "a@x.example", size: "5" },
      want: { kind: "question", question: { state: "RCPT", recipients: ["a@x.example"], size: 5 } },
    },
    {
      name: "a size that is not a number counts as 0",
      attributes: { protocol_state: "RCPT", recipient: "a@x.example", size: "12x" },
      want: { kind: "question", question: { state: "RCPT", recipients: ["a@x.example"], size: 0 } },
    },
    {
      name: "no recipient",
      attributes: { protocol_state: "RCPT", size: "1000" },
      want: { kind: "not-checked", decision: { kind: "not-checked", reason: "no-recipient" } },
    },
    {
      name: "another protocol state",
      attributes: { protocol_state: "DATA", recipient: "a@x.example" },
      want: {
        kind: "not-checked",
        decision: { kind: "not-checked", reason: "protocol-state" },
        unexpectedState: "DATA",
      },
    },
    {
      name: "END-OF-MESSAGE with its one recipient",
      attributes: { protocol_state: "END-OF-MESSAGE", recipient: "a@x.example", size: "4242" },
      want: {
        kind: "question",
        question: { state: "END-OF-MESSAGE", recipients: ["a@x.example"], size: 4242 },
      },
    },
    {
      name: "END-OF-MESSAGE with an empty recipient and nothing remembered",
      attributes: { protocol_state: "END-OF-MESSAGE", recipient: "", instance: "1.2.3", size: "9" },
      want: { kind: "not-checked", decision: { kind: "not-checked", reason: "no-recipient" } },
    },
  ])("$name", ({ attributes, want }) => {
    expect(questionOf(request(attributes), new TransactionRecipients())).toEqual(want);
  });

  it("END-OF-MESSAGE with several recipients asks about those of the same transaction", () => {
    const memory = new TransactionRecipients();
    memory.remember("old.1", "stale@x.example");
    memory.remember("t.1", "a@x.example");
    memory.remember("t.1", "b@x.example");
    memory.remember("t.1", "a@x.example");
    const question = questionOf(
      request({ protocol_state: "END-OF-MESSAGE", recipient: "", instance: "t.1", size: "77" }),
      memory,
    );
    expect(question).toEqual({
      kind: "question",
      question: { state: "END-OF-MESSAGE", recipients: ["a@x.example", "b@x.example"], size: 77 },
    });
    // Another transaction's END-OF-MESSAGE knows none of them.
    expect(memory.of("t.2")).toEqual([]);
    expect(memory.of(undefined)).toEqual([]);
  });

  it("remembers at most Postfix's default recipient limit", () => {
    const memory = new TransactionRecipients();
    for (let i = 0; i < MAX_REMEMBERED_RECIPIENTS + 50; i++) memory.remember("t", `r${i}@x.example`);
    expect(memory.of("t")).toHaveLength(MAX_REMEMBERED_RECIPIENTS);
  });
});

describe("replies", () => {
  const configured = parseConfigText(`
[quotad.replies]
success = "DUNNO"
over_quota = "452 4.2.2 Mailbox is full, try later"
too_large = "552 5.3.4 Message is too big for this mailbox"
not_ours = "DUNNO"
unavailable = "DUNNO"
`);
  if (!configured.ok) throw new Error(JSON.stringify(configured.errors));
  const replies = repliesFromConfig(configured.config.quotad.replies);
  const wire = (decision: QuotaDecision) =>
    Buffer.from(encodePolicyReply(replyFor(decision, replies))).toString();

  it.each<{ decision: QuotaDecision; want: string }>([
    { decision: { kind: "not-checked", reason: "protocol-state" }, want: "action=DUNNO\n\n" },
    {
      decision: { kind: "not-ours", address: "x@y", resolution: "unknown" } as const,
      want: "action=DUNNO\n\n",
    },
    { decision: { kind: "fits", state: "RCPT", recipients: [] } as const, want: "action=DUNNO\n\n" },
    {
      decision: { kind: "unavailable", reason: "usage-store", detail: "down" } as const,
      want: "action=DUNNO\n\n",
    },
  ])("$decision.kind → $want", ({ decision, want }) => {
    expect(wire(decision)).toBe(want);
  });

  it("uses the configured over-quota and too-large texts", () => {
    const mailbox = {
      address: "a@x",
      login: "a",
      username: "a",
      limitBytes: 1,
      graceBytes: 0,
      usage: null,
      ageMs: null,
      state: "over-quota" as const,
    };
    const refused = { kind: "over-quota" as const, address: "a@x", mailbox, checked: [mailbox] };
    expect(wire({ kind: "over-quota", refused, recipients: [refused] })).toBe(
      "action=452 4.2.2 Mailbox is full, try later\n\n",
    );
    const large = { ...refused, kind: "too-large" as const };
    expect(wire({ kind: "too-large", refused: large, recipients: [large] })).toBe(
      "action=552 5.3.4 Message is too big for this mailbox\n\n",
    );
  });

  it("answers a fitting message DUNNO at END-OF-MESSAGE even when success is OK", () => {
    const ok = parseConfigText('[quotad.replies]\nsuccess = "OK"\n');
    if (!ok.ok) throw new Error(JSON.stringify(ok.errors));
    const withOk = repliesFromConfig(ok.config.quotad.replies);
    expect(replyFor({ kind: "fits", state: "RCPT", recipients: [] }, withOk)).toEqual({ action: "OK" });
    expect(replyFor({ kind: "fits", state: "END-OF-MESSAGE", recipients: [] }, withOk)).toEqual({
      action: "DUNNO",
    });
  });

  it("defaults to quota-status's typical settings", () => {
    const defaults = parseConfigText("");
    if (!defaults.ok) throw new Error("defaults must load");
    const byDefault = repliesFromConfig(defaults.config.quotad.replies);
    expect(Buffer.from(encodePolicyReply(byDefault.overQuota)).toString()).toBe(
      "action=552 5.2.2 Mailbox is full\n\n",
    );
    expect(Buffer.from(encodePolicyReply(byDefault.tooLarge)).toString()).toBe(
      "action=552 5.3.4 Message is too big for this mailbox\n\n",
    );
    expect(byDefault.success).toEqual({ action: "DUNNO" });
    expect(byDefault.unavailable).toEqual({
      action: "DEFER_IF_PERMIT",
      text: "Mailbox quota cannot be checked now",
    });
  });

  it.each([
    { key: "unavailable", value: "REJECT quota down", message: "REJECT is not allowed here" },
    { key: "unavailable", value: "550 5.0.0 down", message: "550 is permanent" },
    { key: "success", value: "REJECT", message: "REJECT is not allowed as the success reply" },
    { key: "over_quota", value: "FULL mailbox", message: "unknown action FULL" },
    { key: "over_quota", value: "552 4.2.2 Mailbox full", message: "does not match reply code" },
  ])("refuses $key = $value at start", ({ key, value, message }) => {
    const result = parseConfigText(`[quotad.replies]\n${key} = "${value}"\n`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors[0]?.path).toBe(`quotad.replies.${key}`);
    expect(result.errors[0]?.message).toContain(message);
  });
});
