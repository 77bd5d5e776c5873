import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PolicyRequest } from "../core/protocols/policy.js";
import { checkPolicyAction } from "../core/protocols/policy-reply.js";
import { decisionDependencies, policyRequest, settingsFrom } from "../test/wire/policyd-fixtures.js";
import { decide } from "./decide.js";
import { readFacts } from "./facts.js";

describe("facts of a request", () => {
  it("reads what Postfix sends at RCPT", () => {
    const facts = readFacts(
      policyRequest({
        sasl_username: "GPapadop",
        sender: "George.P+news@CS.example.org",
        recipient: "csall+x@cs.example.org",
        client_address: "2001:db8::7",
        client_name: "Mail.Example.NET",
      }),
      "+",
    );
    expect(facts).toMatchObject({
      stage: "RCPT",
      login: "gpapadop",
      sender: "george.p@cs.example.org",
      recipient: "csall@cs.example.org",
      clientName: "mail.example.net",
    });
    expect(facts.client?.toString()).toBe("2001:db8::7");
  });

  it("turns missing and malformed attributes into null or 0", () => {
    const facts = readFacts(
      new PolicyRequest([
        ["protocol_state", "end-of-message"],
        ["recipient_count", "many"],
        ["size", "-1"],
        ["client_address", "300.1.1.1"],
        ["client_name", "unknown"],
        ["instance", "x".repeat(500)],
      ]),
      "+",
    );
    expect(facts).toMatchObject({
      stage: "END-OF-MESSAGE",
      instance: null,
      login: null,
      sender: null,
      recipient: null,
      client: null,
      clientName: null,
      recipientCount: 0,
      size: 0,
    });
  });
});

describe("hostile attribute values", () => {
  const settings = settingsFrom(`
[[policyd.rules]]
name = "everything"
key = "client_address"
metric = "bytes"
[[policyd.rules.windows]]
period = "1m"
limit = 1000
[[policyd.rules]]
name = "per-recipient"
key = "recipient_domain"
metric = "recipients"
[[policyd.rules.windows]]
period = "1h"
limit = 3
[policyd.greylist]
enabled = true
[policyd.burst]
enabled = true
min_recipients = 2
`);
  const field = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.constantFrom("", "0", "RCPT", "END-OF-MESSAGE", "a@b", "::ffff:1.2.3.4", "99999999999999999999", "<>"),
  );

  it("never make a decision throw or produce an action the codec would refuse", async () => {
    const deps = decisionDependencies(settings);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          protocol_state: fc.constantFrom("RCPT", "END-OF-MESSAGE", "DATA", "rcpt", ""),
          sasl_username: field,
          sender: field,
          recipient: field,
          client_address: field,
          client_name: field,
          instance: field,
          recipient_count: field,
          size: field,
        }),
        async (attributes) => {
          const decision = await decide(readFacts(policyRequest(attributes), "+"), deps);
          expect(checkPolicyAction(decision.action)).toMatchObject({ ok: true });
          expect(["REJECT", "DISCARD"]).not.toContain(decision.action.action);
        },
      ),
      { numRuns: 300 },
    );
  });
});
