import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { describe, expect, it } from "vitest";
import {
  AddressList,
  clientNetwork,
  normaliseLogin,
  normaliseRecipient,
  normaliseSender,
  parseClientAddress,
} from "./keys.js";

describe("client networks", () => {
  it.each([
    { name: "IPv4 host", input: "192.0.2.77", v4: 32, v6: 64, want: "192.0.2.77/32" },
    { name: "IPv4 /24", input: "192.0.2.77", v4: 24, v6: 64, want: "192.0.2.0/24" },
    { name: "IPv4 /20", input: "192.0.31.77", v4: 20, v6: 64, want: "192.0.16.0/20" },
    { name: "IPv6 /64 by default", input: "2001:db8:1:2:3:4:5:6", v4: 32, v6: 64, want: "2001:db8:1:2::/64" },
    { name: "IPv6 /48", input: "2001:db8:1:2::9", v4: 32, v6: 48, want: "2001:db8:1::/48" },
    {
      name: "IPv4-mapped IPv6 counts as IPv4",
      input: "::ffff:192.0.2.9",
      v4: 24,
      v6: 64,
      want: "192.0.2.0/24",
    },
  ])("$name", ({ input, v4, v6, want }) => {
    const address = parseClientAddress(input);
    expect(address).not.toBeNull();
    expect(clientNetwork(address!, v4, v6)).toBe(want);
  });

  it.each([
    "",
    "unknown",
    "192.0.2",
    "0x7f.1",
    "10",
    "2001:db8::g",
    "1".repeat(100),
    "01.2.3.4",
    "1.2.3.256",
    "1.2.3.4.5",
    "1..2.3",
    "1.2.3.4.",
    ".1.2.3",
    " 1.2.3.4",
    "1.2.3.-4",
  ])("%j is not a client address", (input) => {
    expect(parseClientAddress(input)).toBeNull();
  });

  it("reads IPv4 exactly as ipaddr.js's strict four-part decimal parser does, at every prefix", () => {
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.constantFrom("", "00", "01", "x", "-1"),
    );
    const text = fc.oneof(
      fc.array(octet, { minLength: 1, maxLength: 6 }).map((parts) => parts.join(".")),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 32 }), (input, prefix) => {
        const strict = ipaddr.IPv4.isValidFourPartDecimal(input) ? ipaddr.IPv4.parse(input) : null;
        const parsed = parseClientAddress(input);
        if (strict === null) {
          if (parsed !== null) expect(parsed.kind()).toBe("ipv6");
          return;
        }
        expect(parsed?.toString()).toBe(strict.toString());
        const network = ipaddr.IPv4.networkAddressFromCIDR(`${input}/${prefix}`).toString();
        expect(clientNetwork(parsed!, prefix, 64)).toBe(`${network}/${prefix}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("normalisation", () => {
  it.each([
    { name: "case", input: "John.Smith@CS.Example.org", want: "john.smith@cs.example.org" },
    { name: "extension", input: "jsmith+lists@cs.example.org", want: "jsmith@cs.example.org" },
    { name: "BATV tag", input: "prvs=4a3b2c1d0e=bounces@lists.example", want: "bounces@lists.example" },
    { name: "null sender", input: "", want: null },
    { name: "not an address", input: "no-at-sign", want: null },
  ])("sender: $name", ({ input, want }) => {
    expect(normaliseSender(input, "+")).toBe(want);
  });

  it("recipients keep BATV-looking local parts but lose extensions", () => {
    expect(normaliseRecipient("Prvs=x=y@cs.example.org", "+")).toBe("prvs=x=y@cs.example.org");
    expect(normaliseRecipient("gpapadop+work@cs.example.org", "+")).toBe("gpapadop@cs.example.org");
  });

  it.each([
    { input: "GPapadop", want: "gpapadop" },
    { input: "", want: null },
    { input: "two words", want: null },
    { input: "bad\u0000login", want: null },
  ])("login $input", ({ input, want }) => {
    expect(normaliseLogin(input)).toBe(want);
  });
});

describe("address lists", () => {
  const list = new AddressList(["postmaster@cs.example.org", "@lists.example", "Partner.Example"]);
  it.each([
    { address: "postmaster@cs.example.org", want: true },
    { address: "abuse@cs.example.org", want: false },
    { address: "anyone@lists.example", want: true },
    { address: "x@partner.example", want: true },
    { address: "x@sub.partner.example", want: false },
    { address: null, want: false },
  ])("$address", ({ address, want }) => {
    expect(list.matches(address)).toBe(want);
  });
});
