/** Unit tests for netstring framing and the socketmap request/reply codec. */
import { describe, expect, it } from "vitest";
import { encodeNetstring, NetstringDecoder } from "./netstring.js";
import {
  checkSocketmapReply,
  encodeSocketmapReply,
  encodeSocketmapReplySafe,
  encodeSocketmapRequest,
  parseSocketmapReply,
  parseSocketmapRequest,
  type SocketmapReply,
} from "./socketmap.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

function decode(decoder: NetstringDecoder, input: string) {
  const events = decoder.push(bytes(input));
  return {
    frames: events.flatMap((e) => (e.kind === "frame" ? [text(e.frame)] : [])),
    errors: events.flatMap((e) => (e.kind === "error" ? [e.error.code] : [])),
  };
}

describe("NetstringDecoder", () => {
  it.each([
    { name: "one", input: "22:mymap user@example.com,", want: ["mymap user@example.com"] },
    { name: "two", input: "1:a,2:bc,", want: ["a", "bc"] },
    { name: "empty payload", input: "0:,", want: [""] },
    { name: "leading zeros", input: "003:abc,", want: ["abc"] },
    { name: "UTF-8 counted in bytes", input: "4:\u00fc\u00fc,", want: ["\u00fc\u00fc"] },
    { name: "incomplete", input: "5:ab", want: [] },
    { name: "payload may contain ':' and ','", input: "3:a,:,", want: ["a,:"] },
  ])("$name", ({ input, want }) => {
    const { frames, errors } = decode(new NetstringDecoder(), input);
    expect(errors).toEqual([]);
    expect(frames).toEqual(want);
  });

  it.each([
    { name: "not a netstring", input: "hello", want: "protocol.malformed" },
    { name: "leading space", input: " 1:a,", want: "protocol.malformed" },
    { name: "missing length", input: ":a,", want: "protocol.malformed" },
    { name: "wrong length / missing comma", input: "4:OK ab,", want: "protocol.malformed" },
    { name: "LF instead of comma", input: "1:a\n", want: "protocol.malformed" },
    { name: "length over the limit, before the colon", input: "10001", want: "protocol.oversized" },
    { name: "never-ending zeros", input: "00000000000", want: "protocol.malformed" },
  ])("error: $name", ({ input, want }) => {
    expect(decode(new NetstringDecoder(), input).errors).toEqual([want]);
  });

  it("accepts exactly the limit", () => {
    const decoder = new NetstringDecoder(5);
    expect(decode(decoder, "5:abcde,").frames).toEqual(["abcde"]);
    expect(decode(new NetstringDecoder(5), "6:").errors).toEqual(["protocol.oversized"]);
  });

  it("reports the payload held", () => {
    const decoder = new NetstringDecoder();
    decoder.push(bytes("10:abc"));
    expect(decoder.buffered).toBe(3);
  });

  it("encodes byte lengths", () => {
    expect(text(encodeNetstring("Grüße"))).toBe("7:Grüße,");
    expect(text(encodeNetstring(new Uint8Array()))).toBe("0:,");
  });
});

describe("parseSocketmapRequest", () => {
  it.each([
    { name: "simple", input: "mymap user@example.com", want: { name: "mymap", key: "user@example.com" } },
    {
      name: "key with spaces",
      input: "mymap key with spaces",
      want: { name: "mymap", key: "key with spaces" },
    },
    { name: "empty key", input: "mymap ", want: { name: "mymap", key: "" } },
  ])("$name", ({ input, want }) => {
    expect(parseSocketmapRequest(bytes(input))).toEqual({ ok: true, request: want });
  });

  it.each([
    { name: "no space", input: bytes("mymap"), want: "no_space" },
    { name: "empty name", input: bytes(" key"), want: "empty_name" },
    { name: "invalid UTF-8", input: Uint8Array.from([0x6d, 0x20, 0xff]), want: "invalid_utf8" },
  ])("error: $name", ({ input, want }) => {
    const parsed = parseSocketmapRequest(input);
    expect(parsed.ok ? undefined : parsed.error.kind).toBe(want);
  });
});

describe("encodeSocketmapReply", () => {
  it.each<{ name: string; input: SocketmapReply; want: string }>([
    { name: "OK", input: { status: "OK", data: "first value" }, want: "14:OK first value," },
    { name: "OK keeps spaces", input: { status: "OK", data: " a  b " }, want: "9:OK  a  b ," },
    { name: "OK empty becomes NOTFOUND", input: { status: "OK", data: "" }, want: "9:NOTFOUND ," },
    { name: "NOTFOUND", input: { status: "NOTFOUND" }, want: "9:NOTFOUND ," },
    { name: "TEMP", input: { status: "TEMP", reason: "database down" }, want: "18:TEMP database down," },
    {
      name: "TIMEOUT",
      input: { status: "TIMEOUT", reason: "backend slow" },
      want: "20:TIMEOUT backend slow,",
    },
    { name: "PERM", input: { status: "PERM", reason: "no such map" }, want: "16:PERM no such map," },
    { name: "reason sanitised", input: { status: "TEMP", reason: "a\r\nbü" }, want: "10:TEMP a??b?," },
    { name: "UTF-8 data", input: { status: "OK", data: "Grüße" }, want: "10:OK Grüße," },
  ])("$name", ({ input, want }) => {
    const encoded = encodeSocketmapReply(input);
    expect(encoded.ok && text(encoded.bytes)).toBe(want);
  });

  it("bounds reasons to 200 bytes", () => {
    const check = checkSocketmapReply({ status: "PERM", reason: "x".repeat(500) });
    expect(check.ok && check.payload.length).toBe("PERM ".length + 200);
  });

  it("accepts a payload of exactly 100000 bytes and refuses one more", () => {
    expect(checkSocketmapReply({ status: "OK", data: "x".repeat(99_997) }).ok).toBe(true);
    const tooBig = checkSocketmapReply({ status: "OK", data: "x".repeat(99_998) });
    expect(tooBig).toEqual({
      ok: false,
      error: { kind: "reply_too_large", payloadBytes: 100_001, limit: 100_000 },
    });
    expect(text(encodeSocketmapReplySafe({ status: "OK", data: "x".repeat(99_998) }))).toBe(
      "28:TEMP lookup result too large,",
    );
  });
});

describe("socketmap client side", () => {
  it("encodes a request", () => {
    expect(text(encodeSocketmapRequest("mymap", "user@example.com"))).toBe("22:mymap user@example.com,");
    expect(() => encodeSocketmapRequest("my map", "k")).toThrow(RangeError);
  });

  it.each<{ name: string; input: string; want: SocketmapReply | string }>([
    { name: "OK", input: "OK first value", want: { status: "OK", data: "first value" } },
    { name: "OK without space is not found", input: "OK", want: { status: "NOTFOUND" } },
    { name: "OK empty", input: "OK ", want: "empty_ok" },
    { name: "NOTFOUND without space", input: "NOTFOUND", want: { status: "NOTFOUND" } },
    { name: "TEMP without reason", input: "TEMP", want: { status: "TEMP", reason: "" } },
    { name: "lowercase ok", input: "ok lowercase ok", want: "unknown_status" },
    { name: "empty payload", input: "", want: "unknown_status" },
  ])("parse $name", ({ input, want }) => {
    const parsed = parseSocketmapReply(bytes(input));
    expect(parsed.ok ? parsed.reply : parsed.error.kind).toEqual(want);
  });
});
