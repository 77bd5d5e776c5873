/**
 * Every socketmap-* transcript through netstring + socketmap codecs: all
 * client bytes are valid queries, and each server reply either re-encodes
 * byte-exact with encodeSocketmapReply or is one of the deliberately
 * malformed replies (socketmap-01, -03, -05) our encoder cannot produce.
 */
import { describe, expect, it } from "vitest";
import { NetstringDecoder } from "../../core/protocols/netstring.js";
import {
  encodeSocketmapReply,
  MAX_SOCKETMAP_REPLY_PAYLOAD,
  parseSocketmapReply,
  parseSocketmapRequest,
} from "../../core/protocols/socketmap.js";
import { listVectorFiles, loadVectorFile } from "../harness/vectors.js";

const files = listVectorFiles("socketmap-");
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Reply payloads in the captures that our encoder never writes, with the reason. */
const NOT_PRODUCIBLE: Record<string, string> = {
  "OK ": "empty OK (we send NOTFOUND )",
  OK: "OK without space",
  NOTFOUND: "NOTFOUND without space",
  TEMP: "status without the space",
  "FOO bar": "unknown status",
  "ok lowercase ok": "lower-case status",
  "": "empty payload",
};

describe.each(files)("%s", (file) => {
  const vector = loadVectorFile(file);

  it("parses, with its header comments", () => {
    expect(vector.headerComments.length).toBeGreaterThan(0);
    expect(vector.records.every((r) => r.bytes.length > 0)).toBe(true);
  });

  it.each(vector.connections.map((c) => ({ name: `connection ${c.id}`, input: c })))(
    "client bytes are valid queries: $name",
    ({ input }) => {
      const events = new NetstringDecoder().push(input.clientBytes);
      expect(events.filter((e) => e.kind === "error")).toEqual([]);
      expect(events.length).toBeGreaterThan(0);
      for (const event of events) {
        if (event.kind === "frame") expect(parseSocketmapRequest(event.frame).ok).toBe(true);
      }
    },
  );

  it.each(vector.connections.map((c) => ({ name: `connection ${c.id}`, input: c })))(
    "server replies re-encode or are known-bad: $name",
    ({ input }) => {
      if (input.serverBytes.length === 0) return;
      const events = new NetstringDecoder(MAX_SOCKETMAP_REPLY_PAYLOAD).push(input.serverBytes);
      for (const event of events) {
        if (event.kind === "error") {
          // socketmap-03 "hello" / "4:OK ab," and socketmap-05's 100003-byte reply.
          expect(["protocol.malformed", "protocol.oversized"]).toContain(event.error.code);
          continue;
        }
        const payload = text(event.frame);
        const parsed = parseSocketmapReply(event.frame);
        const reencoded = parsed.ok ? encodeSocketmapReply(parsed.reply) : undefined;
        const same = reencoded?.ok && text(reencoded.bytes) === `${event.frame.length}:${payload},`;
        if (!same) expect(NOT_PRODUCIBLE[payload], `unexpected reply ${payload.slice(0, 40)}`).toBeDefined();
      }
    },
  );
});

describe("socketmap captures", () => {
  it("socketmap-05: exactly 100000 bytes decodes, 100003 is refused before it is buffered", () => {
    const vector = loadVectorFile("socketmap-05-oversized-reply.txt");
    const [big, small] = vector.connections;
    const refused = new NetstringDecoder(MAX_SOCKETMAP_REPLY_PAYLOAD);
    expect(refused.push(big?.serverBytes.subarray(0, 7) ?? new Uint8Array())).toMatchObject([
      { kind: "error", error: { code: "protocol.oversized" } },
    ]);
    const accepted = new NetstringDecoder(MAX_SOCKETMAP_REPLY_PAYLOAD).push(
      small?.serverBytes ?? new Uint8Array(),
    );
    expect(accepted).toHaveLength(1);
    const frame = accepted[0];
    expect(frame?.kind === "frame" && frame.frame.length).toBe(100_000);
  });

  it("socketmap-03 case 4: a reply split over two writes is one frame", () => {
    const connection = loadVectorFile("socketmap-03-malformed-replies.txt").connections[3];
    expect(connection?.serverRecords).toHaveLength(2);
    const decoder = new NetstringDecoder();
    const events = (connection?.serverRecords ?? []).flatMap((record) => decoder.push(record));
    expect(events).toMatchObject([{ kind: "frame" }]);
  });
});
