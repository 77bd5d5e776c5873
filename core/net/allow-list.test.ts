/**
 * Table tests for the TCP allow-list and the log sanitiser: which peer
 * addresses match which entries (IPv4, IPv6, IPv4-mapped IPv6), which
 * entries are refused at start, and how peer text is cleaned for logs.
 */
import { describe, expect, it } from "vitest";
import { createAllowList } from "./allow-list.js";
import { describeForLog } from "./sanitize.js";

describe("createAllowList", () => {
  it.each([
    { name: "IPv4 in network", allow: ["127.0.0.0/8"], peer: "127.0.0.1", want: true },
    { name: "IPv4 outside network", allow: ["10.0.0.0/8"], peer: "127.0.0.1", want: false },
    { name: "mapped peer in IPv4 network", allow: ["127.0.0.0/8"], peer: "::ffff:127.0.0.1", want: true },
    { name: "mapped peer outside", allow: ["10.0.0.0/8"], peer: "::ffff:127.0.0.1", want: false },
    { name: "IPv4 peer, mapped network", allow: ["::ffff:10.1.0.0/112"], peer: "10.1.2.3", want: true },
    { name: "bare IPv4 address", allow: ["192.0.2.7"], peer: "192.0.2.7", want: true },
    { name: "bare IPv4 address, other peer", allow: ["192.0.2.7"], peer: "192.0.2.8", want: false },
    { name: "IPv6 in network", allow: ["2001:db8::/32"], peer: "2001:db8:1::5", want: true },
    { name: "IPv6 loopback", allow: ["::1"], peer: "::1", want: true },
    { name: "IPv6 peer, IPv4 list", allow: ["0.0.0.0/0"], peer: "2001:db8::1", want: false },
    { name: "empty list", allow: [], peer: "127.0.0.1", want: false },
    { name: "unparsable peer", allow: ["0.0.0.0/0"], peer: "not-an-ip", want: false },
    { name: "no peer address", allow: ["0.0.0.0/0"], peer: undefined, want: false },
  ])("$name", ({ allow, peer, want }) => {
    expect(createAllowList(allow).allows(peer)).toBe(want);
  });

  it.each(["127.1", "10.0.0.0/33", "10.0.0.0/8/1", "::1/129", "example.org", "10.0.0.0/-1", "10.0.0.0/"])(
    "refuses the entry %s",
    (entry) => {
      expect(() => createAllowList([entry])).toThrow(entry);
    },
  );
});

describe("describeForLog", () => {
  it("escapes control characters through core/log and cuts long frames", () => {
    expect(describeForLog("a\r\nb\u001b[31m")).toBe("a\\x0d\\x0ab\\x1b[31m");
    expect(describeForLog("x".repeat(10), 4)).toBe("xxxx…[6 more]");
  });

  it("describes frames with bytes as text", () => {
    // JSON's own \n escape is shown with its backslash doubled, so it cannot pass for a real line break.
    expect(describeForLog({ key: Buffer.from("a\nb") })).toBe('{"key":"a\\\\nb"}');
    expect(describeForLog({ key: new Uint8Array([0x41]) })).toBe('{"key":"A"}');
    expect(describeForLog({ attributes: new Map([["sender", "a@b"]]) })).toBe(
      '{"attributes":{"sender":"a@b"}}',
    );
  });
});
