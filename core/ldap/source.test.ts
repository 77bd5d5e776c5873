import { FilterParser } from "ldapts";
import { describe, expect, it } from "vitest";
import { LdapRefusedError } from "./client.js";
import { changedSinceFilter, greatestTimestamp, laterTimestamp, parseGeneralizedTime } from "./source.js";

describe("parseGeneralizedTime", () => {
  it.each([
    { name: "slapd form", input: "20261121103000Z", want: Date.UTC(2026, 10, 21, 10, 30, 0) },
    { name: "AD form with a fraction", input: "20261121103000.0Z", want: Date.UTC(2026, 10, 21, 10, 30, 0) },
    {
      name: "fraction of a second",
      input: "20261121103000.25Z",
      want: Date.UTC(2026, 10, 21, 10, 30, 0, 250),
    },
    { name: "hour only", input: "2026112110Z", want: Date.UTC(2026, 10, 21, 10) },
    { name: "fraction of an hour", input: "2026112110.5Z", want: Date.UTC(2026, 10, 21, 10, 30) },
    { name: "east of UTC", input: "20261121123000+0200", want: Date.UTC(2026, 10, 21, 10, 30, 0) },
    { name: "west of UTC, hours only", input: "20261121053000-05", want: Date.UTC(2026, 10, 21, 10, 30, 0) },
    { name: "no zone is UTC", input: "20261121103000", want: Date.UTC(2026, 10, 21, 10, 30, 0) },
    { name: "not a time", input: "yesterday", want: undefined },
    { name: "month 13", input: "20261321103000Z", want: undefined },
    { name: "empty", input: "", want: undefined },
  ])("$name", ({ input, want }) => {
    expect(parseGeneralizedTime(input)).toBe(want);
  });
});

describe("watermarks", () => {
  it.each([
    { name: "first value", current: null, candidate: "20260101000000Z", want: "20260101000000Z" },
    { name: "later wins", current: "20260101000000Z", candidate: "20260101000001Z", want: "20260101000001Z" },
    {
      name: "earlier loses",
      current: "20260101000001Z",
      candidate: "20260101000000Z",
      want: "20260101000001Z",
    },
    // Compared as times, not as text: 11:00+0200 is 09:00Z, before 10:00Z.
    {
      name: "zones compared as times",
      current: "20260101100000Z",
      candidate: "20260101110000+0200",
      want: "20260101100000Z",
    },
    {
      name: "kept as the server wrote it",
      current: "20260101100000Z",
      candidate: "20260101100000.5Z",
      want: "20260101100000.5Z",
    },
    { name: "garbage ignored", current: "20260101000000Z", candidate: "later", want: "20260101000000Z" },
    { name: "garbage never starts one", current: null, candidate: "later", want: null },
  ])("$name", ({ current, candidate, want }) => {
    expect(laterTimestamp(current, candidate)).toBe(want);
  });

  it("finds the greatest value of the attribute in any case, single or multi-valued", () => {
    const entries = [
      { dn: "uid=a", modifyTimestamp: ["20260101000000Z"] },
      { dn: "uid=b", MODIFYTIMESTAMP: "20260301000000Z" },
      { dn: "uid=c", modifytimestamp: ["20260201000000Z"] },
      { dn: "uid=d" },
    ];
    expect(greatestTimestamp(entries, "modifyTimestamp")).toBe("20260301000000Z");
    expect(greatestTimestamp([{ dn: "uid=d" }], "modifyTimestamp")).toBeNull();
  });
});

describe("changedSinceFilter", () => {
  it("ands the admin's filter with an ordering match on the timestamp", () => {
    const filter = changedSinceFilter("(objectClass=inetMailUser)", "modifyTimestamp", "20261121103000Z");
    expect(filter).toBe("(&(objectClass=inetMailUser)(modifyTimestamp>=20261121103000Z))");
  });

  it("keeps a compound admin filter whole", () => {
    const filter = changedSinceFilter(
      "(|(objectClass=a)(objectClass=b))",
      "whenChanged",
      "20260101000000.0Z",
    );
    expect(filter).toBe("(&(|(objectClass=a)(objectClass=b))(whenChanged>=20260101000000.0Z))");
  });

  it("escapes the value (RFC 4515), so a stored watermark cannot change the filter", () => {
    const filter = changedSinceFilter("(objectClass=x)", "modifyTimestamp", "1)(uid=*");
    expect(filter).toBe("(&(objectClass=x)(modifyTimestamp>=1\\29\\28uid=\\2a))");
    // It parses back to exactly two conditions.
    const parsed = FilterParser.parseString(filter) as unknown as { filters: unknown[] };
    expect(parsed.filters).toHaveLength(2);
  });

  it.each([
    { name: "bad base filter", base: "(objectClass=x", attribute: "modifyTimestamp" },
    { name: "bad attribute name", base: "(objectClass=x)", attribute: "modify)(x" },
  ])("refuses a $name as configuration", ({ base, attribute }) => {
    expect(() => changedSinceFilter(base, attribute, "20260101000000Z")).toThrow(LdapRefusedError);
  });
});
