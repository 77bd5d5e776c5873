import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkSocketmapReply,
  MAX_SOCKETMAP_REPLY_PAYLOAD,
  type SocketmapReply,
  socketmapReplyOverLimit,
} from "./socketmap.js";

/** What checkSocketmapReply (which encodes the payload) says about the size. */
function encodedVerdict(reply: SocketmapReply): number | undefined {
  const checked = checkSocketmapReply(reply);
  return checked.ok ? undefined : checked.error.payloadBytes;
}

describe("socketmapReplyOverLimit", () => {
  it.each([
    { name: "a short OK", reply: { status: "OK", data: "DUNNO" }, want: undefined },
    { name: "NOTFOUND", reply: { status: "NOTFOUND" }, want: undefined },
    {
      name: "a long TEMP reason (cut)",
      reply: { status: "TEMP", reason: "x".repeat(200_000) },
      want: undefined,
    },
    // "OK " + data: 3 + n bytes of ASCII, or 3 + 3n for a 3-byte character.
    { name: "ASCII at the limit", reply: { status: "OK", data: "x".repeat(99_997) }, want: undefined },
    { name: "ASCII one over", reply: { status: "OK", data: "x".repeat(99_998) }, want: 100_001 },
    {
      name: "3-byte characters, 99,999 bytes",
      reply: { status: "OK", data: "€".repeat(33_332) },
      want: undefined,
    },
    {
      name: "3-byte characters, 100,002 bytes",
      reply: { status: "OK", data: "€".repeat(33_333) },
      want: 100_002,
    },
    {
      name: "a lone surrogate counts 3 bytes",
      reply: { status: "OK", data: "\uD800".repeat(33_333) },
      want: 100_002,
    },
    { name: "4-byte characters", reply: { status: "OK", data: "😀".repeat(25_000) }, want: 100_003 },
  ] as Array<{ name: string; reply: SocketmapReply; want: number | undefined }>)(
    "$name",
    ({ reply, want }) => {
      expect(socketmapReplyOverLimit(reply)).toBe(want);
      expect(encodedVerdict(reply)).toBe(want);
    },
  );

  it("agrees with encoding the payload for any OK reply near the limit", () => {
    const unit = fc.constantFrom("x", "é", "€", "😀", "\uD800", "\uDC00");
    fc.assert(
      fc.property(
        unit,
        fc.integer({ min: 0, max: MAX_SOCKETMAP_REPLY_PAYLOAD }),
        fc.string(),
        (char, count, tail) => {
          const reply: SocketmapReply = {
            status: "OK",
            data: char.repeat(Math.floor(count / char.length)) + tail,
          };
          expect(socketmapReplyOverLimit(reply)).toBe(encodedVerdict(reply));
        },
      ),
      { numRuns: 300 },
    );
  });
});
