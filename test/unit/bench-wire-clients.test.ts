/**
 * The benchmark's client-side codecs (bench/load/*-client.ts) against the
 * daemons' own encoders and decoders in core/protocols: what the generators
 * send must decode as a valid request, and every reply our servers can
 * write must be read back as one status — also when TCP splits it anywhere.
 */
import { describe, expect, it } from "vitest";
import { DictReplyReader, dictWireClient } from "../../bench/load/dict-client.js";
import {
  encodePolicyRequest,
  POSTFIX_POLICY_ATTRIBUTES,
  PolicyReplyReader,
} from "../../bench/load/policy-client.js";
import { encodeSocketmapQuery, SocketmapReplyReader } from "../../bench/load/socketmap-client.js";
import type { ReplyReader, ReplyStatus } from "../../bench/load/wire-client.js";
import { parseDictCommand } from "../../core/protocols/dict-commands.js";
import { encodeDictLookupReply } from "../../core/protocols/dict-replies.js";
import { NetstringDecoder } from "../../core/protocols/netstring.js";
import { PolicyRequestDecoder } from "../../core/protocols/policy.js";
import { encodePolicyReply } from "../../core/protocols/policy-reply.js";
import { encodeSocketmapReplySafe, parseSocketmapRequest } from "../../core/protocols/socketmap.js";

/** Feeds the bytes whole, then split at every position, and checks the statuses are the same each time. */
function readAllWays(reader: () => ReplyReader, bytes: Buffer): ReplyStatus[] {
  const whole = reader().push(bytes);
  for (let cut = 1; cut < bytes.length; cut++) {
    const split = reader();
    const statuses = [...split.push(bytes.subarray(0, cut)), ...split.push(bytes.subarray(cut))];
    expect(statuses).toEqual(whole);
  }
  return whole;
}

describe("socketmap client", () => {
  it("sends queries the server's decoder accepts", () => {
    const bytes = encodeSocketmapQuery({ map: "recipient", key: "csd100001+lists@cs.example.org" });
    const events = new NetstringDecoder().push(bytes);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    if (event.kind !== "frame") throw new Error("expected a frame");
    expect(parseSocketmapRequest(event.frame)).toEqual({
      ok: true,
      request: { name: "recipient", key: "csd100001+lists@cs.example.org" },
    });
  });

  it.each([
    {
      name: "OK",
      reply: { status: "OK", data: "a@cs.example.org,b@cs.example.org" } as const,
      want: { status: "OK", ok: true },
    },
    { name: "NOTFOUND", reply: { status: "NOTFOUND" } as const, want: { status: "NOTFOUND", ok: true } },
    {
      name: "TEMP",
      reply: { status: "TEMP", reason: "snapshot stale" } as const,
      want: { status: "TEMP", ok: false },
    },
    {
      name: "PERM",
      reply: { status: "PERM", reason: "unknown map" } as const,
      want: { status: "PERM", ok: false },
    },
  ])("reads $name replies, split anywhere", ({ reply, want }) => {
    const one = Buffer.from(encodeSocketmapReplySafe(reply));
    expect(readAllWays(() => new SocketmapReplyReader(), Buffer.concat([one, one]))).toEqual([want, want]);
  });

  it("refuses broken framing instead of guessing", () => {
    expect(() => new SocketmapReplyReader().push(Buffer.from("3:OK x;"))).toThrow(/comma/);
    expect(() => new SocketmapReplyReader().push(Buffer.from("x:OK,"))).toThrow(/length/);
  });
});

describe("policy client", () => {
  it("sends the 29 attributes of Postfix 3.7 in order, decodable by the server", () => {
    const bytes = encodePolicyRequest({
      request: "smtpd_access_policy",
      protocol_state: "RCPT",
      sender: "a@example.org",
      recipient: "csd100001@cs.example.org",
    });
    const lines = bytes.toString().split("\n");
    expect(lines.slice(0, 29).map((line) => line.split("=")[0])).toEqual([...POSTFIX_POLICY_ATTRIBUTES]);
    expect(lines.slice(29)).toEqual(["", ""]);
    const events = new PolicyRequestDecoder().push(bytes);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    if (event.kind !== "frame") throw new Error("expected a request");
    expect(event.frame.get("recipient")).toBe("csd100001@cs.example.org");
    expect(event.frame.get("recipient_count")).toBe("0");
  });

  it("refuses a value with a line break", () => {
    expect(() => encodePolicyRequest({ sender: "a\nb" })).toThrow(/line break/);
  });

  it.each([
    {
      name: "DUNNO",
      bytes: Buffer.from(encodePolicyReply({ action: "DUNNO" })),
      want: { status: "DUNNO", ok: true },
    },
    {
      name: "DEFER_IF_PERMIT with text",
      bytes: Buffer.from(encodePolicyReply({ action: "DEFER_IF_PERMIT", text: "Greylisted, try again" })),
      want: { status: "DEFER_IF_PERMIT", ok: true },
    },
    {
      name: "an SMTP code",
      bytes: Buffer.from("action=450 4.7.1 rate limit\n\n"),
      want: { status: "450", ok: true },
    },
    { name: "no action", bytes: Buffer.from("foo=bar\n\n"), want: { status: "NO_ACTION", ok: false } },
  ])("reads $name, split anywhere", ({ bytes, want }) => {
    expect(readAllWays(() => new PolicyReplyReader(), Buffer.concat([bytes, bytes]))).toEqual([want, want]);
  });
});

describe("dict client", () => {
  const client = dictWireClient("auth");

  it("greets and looks up like Dovecot 2.3 auth (test/vectors/dict-06)", () => {
    expect(client.greeting()?.toString()).toBe("H3\t2\t0\t\tauth\n");
    const line = client.encode({ key: "shared/userdb/csd100001", user: "csd100001" }).toString();
    expect(line).toBe("Lshared/userdb/csd100001\tcsd100001\n");
    expect(parseDictCommand(line.slice(0, -1))).toEqual({
      ok: true,
      command: { kind: "lookup", key: "shared/userdb/csd100001", user: "csd100001" },
    });
  });

  const version = { version: { major: 3, minor: 2 } } as const;
  it.each([
    {
      name: "found",
      result: { kind: "found", values: ['{"uid":"1"}'] } as const,
      want: { status: "O", ok: true },
    },
    { name: "not found", result: { kind: "not-found" } as const, want: { status: "N", ok: true } },
    {
      name: "failed",
      result: { kind: "failed", error: "snapshot stale" } as const,
      want: { status: "F", ok: false },
    },
  ])("reads $name replies, split anywhere", ({ result, want }) => {
    const one = Buffer.from(encodeDictLookupReply(result, version));
    expect(readAllWays(() => new DictReplyReader(), Buffer.concat([one, one]))).toEqual([want, want]);
  });

  it("accepts the async framing of a real dict server", () => {
    expect(new DictReplyReader().push(Buffer.from("*1\n+1\tO2G\n"))).toEqual([{ status: "O", ok: true }]);
  });
});
