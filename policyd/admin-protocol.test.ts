import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { settingsFrom } from "../test/wire/policyd-fixtures.js";
import { adminProtocol, parseAdminRequest } from "./admin-protocol.js";
import { interpretKey, targetsOf } from "./explain.js";

describe("admin requests", () => {
  it.each([
    {
      line: '{"command":"explain","key":"gpapadop"}',
      want: { ok: true, command: "explain", key: "gpapadop" },
    },
    {
      line: '{"command":"drop","key":"x"}',
      want: { ok: false, error: "command must be one of explain, reset, release" },
    },
    {
      line: '{"command":"reset"}',
      want: { ok: false, error: "key must be a non-empty string of at most 300 characters" },
    },
    { line: "[1,2]", want: { ok: false, error: "command must be one of explain, reset, release" } },
    { line: "not json", want: { ok: false, error: "request is not JSON" } },
    { line: "null", want: { ok: false, error: "request is not an object" } },
  ])("$line", ({ line, want }) => {
    expect(parseAdminRequest(line)).toEqual(want);
  });

  it("refuses a line over 4 KiB as a framing error", () => {
    const events = adminProtocol.createDecoder().push(new TextEncoder().encode("x".repeat(5000)));
    expect(events.map((event) => event.kind)).toEqual(["error"]);
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6000 }), (bytes) => {
        const decoder = adminProtocol.createDecoder();
        decoder.push(bytes);
        return decoder.buffered <= 4096;
      }),
    );
  });
});

describe("explain keys", () => {
  const settings = settingsFrom(`
[[policyd.rules]]
name = "login"
key = "sasl_login"
[[policyd.rules.windows]]
period = "1m"
limit = 5
[[policyd.rules]]
name = "client"
key = "client_address"
ipv4_prefix = 24
[[policyd.rules.windows]]
period = "1h"
limit = 100
[[policyd.rules]]
name = "domain"
key = "sender_domain"
[[policyd.rules.windows]]
period = "1d"
limit = 1000
`);

  it.each([
    { key: "GPapadop", want: ["rl:login:60000:gpapadop"] },
    { key: "192.0.2.77", want: ["rl:client:3600000:192.0.2.0/24"] },
    { key: "client:192.0.2.0/24", want: ["rl:client:3600000:192.0.2.0/24"] },
    { key: "@Example.org", want: ["rl:domain:86400000:example.org"] },
    { key: "user+x@example.org", want: [] },
    { key: "george.p", want: ["rl:login:60000:george.p", "rl:domain:86400000:george.p"] },
    { key: "example.org", want: ["rl:login:60000:example.org", "rl:domain:86400000:example.org"] },
  ])("$key", ({ key, want }) => {
    const values = interpretKey(key, "+");
    expect(values).not.toBeNull();
    expect(targetsOf(values!, settings, null).counters.map((counter) => counter.id)).toEqual(want);
  });

  it.each(["", "two words", "client:not-an-ip", "domain:bad_domain!", "x".repeat(400)])(
    "refuses %j",
    (key) => {
      expect(interpretKey(key, "+")).toBeNull();
    },
  );
});
