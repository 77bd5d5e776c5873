/** Unit tests for the policy request decoder/encoder and the reply encoder/parser. */
import { describe, expect, it } from "vitest";
import { decodeXtext, encodePolicyRequest, PolicyRequest, PolicyRequestDecoder } from "./policy.js";
import {
  checkPolicyAction,
  encodePolicyReply,
  type PolicyAction,
  PolicyReplyDecoder,
  parsePolicyAction,
} from "./policy-reply.js";
import type { DecodeEvent } from "./stream.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

function decode<T>(decoder: { push(chunk: Uint8Array): DecodeEvent<T>[] }, input: string) {
  const events = decoder.push(bytes(input));
  return {
    frames: events.flatMap((e) => (e.kind === "frame" ? [e.frame] : [])),
    errors: events.flatMap((e) => (e.kind === "error" ? [e.error.code] : [])),
  };
}

describe("PolicyRequestDecoder", () => {
  it.each([
    {
      name: "one request",
      input: "request=smtpd_access_policy\nrecipient=a@b\n\n",
      want: [{ recipient: "a@b" }],
    },
    { name: "two requests back to back", input: "a=1\n\nb=2\n\n", want: [{ a: "1" }, { b: "2" }] },
    { name: "trailing CR tolerated", input: "a=1\r\nb=2\r\n\r\n", want: [{ a: "1", b: "2" }] },
    { name: "blank lines before first attribute ignored", input: "\n\n\na=1\n\n", want: [{ a: "1" }] },
    { name: "last duplicate wins", input: "a=1\na=2\n\n", want: [{ a: "2" }] },
    { name: "empty value", input: "sender=\n\n", want: [{ sender: "" }] },
    { name: "value with '='", input: "a=b=c\n\n", want: [{ a: "b=c" }] },
    { name: "incomplete request gives nothing", input: "a=1\n", want: [] },
    {
      name: "UTF-8 value",
      input: "recipient=jürgen@example.test\n\n",
      want: [{ recipient: "jürgen@example.test" }],
    },
  ])("$name", ({ input, want }) => {
    const { frames, errors } = decode(new PolicyRequestDecoder(), input);
    expect(errors).toEqual([]);
    expect(frames.map((f) => Object.fromEntries(f.attributes))).toMatchObject(want);
  });

  it.each([
    { name: "line without '='", input: "garbage\n\n", want: "protocol.malformed" },
    { name: "empty name", input: "=x\n\n", want: "protocol.malformed" },
    { name: "oversized line, before LF arrives", input: `a=${"x".repeat(3000)}`, want: "protocol.oversized" },
    { name: "too many attributes", input: "a=1\n".repeat(129), want: "protocol.oversized" },
  ])("error: $name", ({ input, want }) => {
    expect(decode(new PolicyRequestDecoder(), input).errors).toEqual([want]);
  });

  it("refuses an oversized request as soon as the size is known", () => {
    const decoder = new PolicyRequestDecoder({ maxRequestBytes: 100, maxAttributes: 1000 });
    const { errors } = decode(decoder, `${"a=12345678\n".repeat(9)}b=${"x".repeat(50)}`);
    expect(errors).toEqual(["protocol.oversized"]);
    expect(decoder.buffered).toBeLessThanOrEqual(100);
  });

  it("accepts a line exactly at the limit, with or without CR", () => {
    const line = `a=${"x".repeat(2046)}`;
    expect(decode(new PolicyRequestDecoder(), `${line}\n\n`).frames).toHaveLength(1);
    expect(decode(new PolicyRequestDecoder(), `${line}\r\n\n`).frames).toHaveLength(1);
    expect(decode(new PolicyRequestDecoder(), `${line}x\n\n`).errors).toEqual(["protocol.oversized"]);
  });

  it("is dead after an error", () => {
    const decoder = new PolicyRequestDecoder();
    decoder.push(bytes("junk\n"));
    expect(decode(decoder, "a=1\n\n").errors).toEqual(["protocol.malformed"]);
  });
});

describe("PolicyRequest accessors", () => {
  const request = new PolicyRequest(
    Object.entries({
      request: "smtpd_access_policy",
      protocol_state: "RCPT",
      recipient_count: "3",
      size: "12345",
      client_port: "x1",
      stress: "yes",
      ccert_subject: "client.example.org",
      ccert_issuer: "Example+20Test+20CA",
      encryption_keysize: "256",
      future_attribute: "kept",
    }),
  );
  it.each([
    { name: "protocolState", input: request.protocolState, want: "RCPT" },
    { name: "recipientCount", input: request.recipientCount, want: 3 },
    { name: "size", input: request.size, want: 12345 },
    { name: "non-numeric port", input: request.clientPort, want: undefined },
    { name: "absent sender", input: request.sender, want: undefined },
    { name: "stress", input: request.stress, want: true },
    { name: "ccertSubject", input: request.ccertSubject, want: "client.example.org" },
    { name: "ccertIssuer xtext", input: request.ccertIssuer, want: "Example Test CA" },
    { name: "encryptionKeysize", input: request.encryptionKeysize, want: 256 },
    { name: "unknown attribute kept", input: request.get("future_attribute"), want: "kept" },
  ])("$name", ({ input, want }) => {
    expect(input).toEqual(want);
  });

  it.each([
    { name: "plain", input: "abc", want: "abc" },
    { name: "space", input: "a+20b", want: "a b" },
    { name: "plus", input: "a+2Bb", want: "a+b" },
    { name: "UTF-8 bytes", input: "Gr+C3+BC+C3+9Fe", want: "Grüße" },
    { name: "malformed kept", input: "a+zz+2", want: "a+zz+2" },
  ])("xtext $name", ({ input, want }) => {
    expect(decodeXtext(input)).toBe(want);
  });
});

describe("encodePolicyRequest", () => {
  it("writes name=value lines and the blank line", () => {
    expect(text(encodePolicyRequest({ request: "smtpd_access_policy", size: "0" }))).toBe(
      "request=smtpd_access_policy\nsize=0\n\n",
    );
  });
  it.each<{ name: string; input: Record<string, string> }>([
    { name: "LF in value", input: { a: "x\ny" } },
    { name: "CR in value", input: { a: "x\r" } },
    { name: "= in name", input: { "a=b": "x" } },
    { name: "no attributes", input: {} },
  ])("refuses $name", ({ input }) => {
    expect(() => encodePolicyRequest(input)).toThrow(RangeError);
  });
});

describe("encodePolicyReply", () => {
  it.each<{ name: string; input: PolicyAction; want: string }>([
    { name: "DUNNO", input: { action: "DUNNO" }, want: "action=DUNNO\n\n" },
    { name: "OK", input: { action: "OK" }, want: "action=OK\n\n" },
    { name: "REJECT", input: { action: "REJECT" }, want: "action=REJECT\n\n" },
    {
      name: "REJECT text",
      input: { action: "REJECT", text: "No thanks" },
      want: "action=REJECT No thanks\n\n",
    },
    { name: "DEFER", input: { action: "DEFER", text: "later" }, want: "action=DEFER later\n\n" },
    {
      name: "DEFER_IF_PERMIT",
      input: { action: "DEFER_IF_PERMIT", text: "w" },
      want: "action=DEFER_IF_PERMIT w\n\n",
    },
    {
      name: "DEFER_IF_REJECT",
      input: { action: "DEFER_IF_REJECT", text: "m" },
      want: "action=DEFER_IF_REJECT m\n\n",
    },
    {
      name: "numeric with enhanced code",
      input: { action: "REPLY", code: 550, enhancedCode: "5.1.1", text: "No such user here" },
      want: "action=550 5.1.1 No such user here\n\n",
    },
    {
      name: "numeric 4xx",
      input: { action: "REPLY", code: 450, enhancedCode: "4.2.0", text: "Greylisted" },
      want: "action=450 4.2.0 Greylisted\n\n",
    },
    { name: "numeric without enhanced", input: { action: "REPLY", code: 421 }, want: "action=421\n\n" },
    { name: "HOLD", input: { action: "HOLD", text: "held" }, want: "action=HOLD held\n\n" },
    { name: "DISCARD", input: { action: "DISCARD" }, want: "action=DISCARD\n\n" },
    {
      name: "PREPEND",
      input: { action: "PREPEND", header: "X-Policy: yes" },
      want: "action=PREPEND X-Policy: yes\n\n",
    },
    { name: "REDIRECT", input: { action: "REDIRECT", address: "a@b" }, want: "action=REDIRECT a@b\n\n" },
    { name: "BCC", input: { action: "BCC", address: "c@d" }, want: "action=BCC c@d\n\n" },
    {
      name: "FILTER",
      input: { action: "FILTER", transport: "smtp", destination: "[10.0.0.1]:10025" },
      want: "action=FILTER smtp:[10.0.0.1]:10025\n\n",
    },
    {
      name: "FILTER empty dest",
      input: { action: "FILTER", transport: "discard", destination: "" },
      want: "action=FILTER discard:\n\n",
    },
    { name: "WARN", input: { action: "WARN", text: "careful" }, want: "action=WARN careful\n\n" },
    { name: "INFO", input: { action: "INFO", text: "fyi" }, want: "action=INFO fyi\n\n" },
    {
      name: "CR LF and controls become spaces",
      input: { action: "REJECT", text: "a\r\nb\tc\u0000d" },
      want: "action=REJECT a  b c d\n\n",
    },
    {
      name: "lone surrogate replaced",
      input: { action: "REJECT", text: "x\ud800y" },
      want: "action=REJECT x\ufffdy\n\n",
    },
    { name: "blank text omitted", input: { action: "REJECT", text: " \r\n " }, want: "action=REJECT\n\n" },
  ])("$name", ({ input, want }) => {
    expect(text(encodePolicyReply(input))).toBe(want);
  });

  it.each<{ name: string; input: PolicyAction }>([
    { name: "2xx code", input: { action: "REPLY", code: 250 } },
    { name: "code 600", input: { action: "REPLY", code: 600 } },
    { name: "code 470", input: { action: "REPLY", code: 470 } },
    { name: "class mismatch", input: { action: "REPLY", code: 550, enhancedCode: "4.1.1" } },
    { name: "bad enhanced", input: { action: "REPLY", code: 550, enhancedCode: "5.1" } },
    { name: "REDIRECT with space", input: { action: "REDIRECT", address: "a b@c" } },
    { name: "BCC empty", input: { action: "BCC", address: "" } },
    { name: "PREPEND without colon", input: { action: "PREPEND", header: "nonsense" } },
    { name: "FILTER bad transport", input: { action: "FILTER", transport: "a b", destination: "x" } },
  ])("invalid $name falls back to the temporary fail-safe", ({ input }) => {
    expect(checkPolicyAction(input).ok).toBe(false);
    expect(text(encodePolicyReply(input))).toBe("action=DEFER_IF_PERMIT Service temporarily unavailable\n\n");
  });

  it("bounds text length", () => {
    const encoded = text(encodePolicyReply({ action: "REJECT", text: "é".repeat(1000) }));
    expect(new TextEncoder().encode(encoded).length).toBeLessThanOrEqual("action=REJECT \n\n".length + 400);
  });
});

describe("parsePolicyAction", () => {
  it.each<{ name: string; input: string; want: PolicyAction | undefined }>([
    { name: "lowercase dunno", input: "dunno", want: { action: "DUNNO" } },
    { name: "OK ignores text", input: "OK extra text", want: { action: "OK" } },
    { name: "reject text", input: "reject lowercase", want: { action: "REJECT", text: "lowercase" } },
    {
      name: "numeric",
      input: "550 5.1.1 No such user",
      want: { action: "REPLY", code: 550, enhancedCode: "5.1.1", text: "No such user" },
    },
    {
      name: "numeric no enhanced",
      input: "421 go away",
      want: { action: "REPLY", code: 421, text: "go away" },
    },
    {
      name: "FILTER",
      input: "FILTER discard:filtered",
      want: { action: "FILTER", transport: "discard", destination: "filtered" },
    },
    { name: "unknown word", input: "FOOBAR something", want: undefined },
    { name: "bare enhanced code", input: "4.7.1 text", want: undefined },
  ])("$name", ({ input, want }) => {
    const parsed = parsePolicyAction(input);
    expect(parsed.ok ? parsed.action : undefined).toEqual(want);
  });
});

describe("PolicyReplyDecoder", () => {
  it.each([
    { name: "plain", input: "action=DUNNO\n\n", want: ["DUNNO"] },
    { name: "extra attributes", input: "foo=bar\naction=REJECT x\nbaz=qux\n\n", want: ["REJECT x"] },
    { name: "missing action", input: "result=whatever\n\n", want: [undefined] },
    { name: "stray blank line is an empty reply", input: "action=DUNNO\n\n\n", want: ["DUNNO", undefined] },
  ])("$name", ({ input, want }) => {
    const { frames, errors } = decode(new PolicyReplyDecoder(), input);
    expect(errors).toEqual([]);
    expect(frames.map((f) => f.action)).toEqual(want);
  });

  it("never ends a CRLF reply", () => {
    const { frames, errors } = decode(new PolicyReplyDecoder(), "action=REJECT crlf\r\n\r\n");
    expect(frames).toEqual([]);
    expect(errors).toEqual(["protocol.malformed"]);
  });

  it("flags an action that is not UTF-8", () => {
    const decoder = new PolicyReplyDecoder();
    const events = decoder.push(Uint8Array.from([...bytes("action=REJECT Gr"), 0xfc, 0x0a, 0x0a]));
    expect(events).toMatchObject([{ kind: "frame", frame: { validUtf8: false } }]);
  });
});
