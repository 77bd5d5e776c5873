/**
 * Property and fuzz tests for every codec (CONVENTIONS 17): encode → decode
 * round trips, arbitrary bytes in arbitrary chunks never throw and never
 * push `buffered` past the limit, the same stream split anywhere gives the
 * same frames, and no encoder output can contain what breaks the peers
 * (CR or bytes after the blank line for policy, unknown letters for dict,
 * non-canonical status words for socketmap).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DictCommand, encodeDictCommand, encodeDictHello } from "./dict-commands.js";
import { dictEscape, dictUnescape } from "./dict-escape.js";
import {
  encodeDictCommitReply,
  encodeDictIterateEnd,
  encodeDictIterateRow,
  encodeDictLookupReply,
} from "./dict-replies.js";
import { DictCommandDecoder } from "./dovecot-dict.js";
import { encodeNetstring, NetstringDecoder } from "./netstring.js";
import { encodePolicyRequest, PolicyRequestDecoder } from "./policy.js";
import {
  encodePolicyReply,
  type PolicyAction,
  PolicyReplyDecoder,
  parsePolicyAction,
} from "./policy-reply.js";
import { encodeSocketmapReply, parseSocketmapReply, type SocketmapReply } from "./socketmap.js";
import type { StreamDecoder } from "./stream.js";

const RUNS = { numRuns: 300 };

/** Feeds bytes in the given chunk sizes; returns frames, the error code if any, and the peak of buffered. */
function feed<T>(decoder: StreamDecoder<T>, data: Uint8Array, cuts: number[]) {
  const frames: T[] = [];
  let error: string | undefined;
  let peak = 0;
  let offset = 0;
  const sizes = [...cuts, data.length];
  for (const size of sizes) {
    if (offset >= data.length || error) break;
    const chunk = data.subarray(offset, Math.min(data.length, offset + Math.max(1, size)));
    offset += chunk.length;
    for (const event of decoder.push(chunk)) {
      if (event.kind === "frame") frames.push(event.frame);
      else error = event.error.code;
    }
    peak = Math.max(peak, decoder.buffered);
  }
  return { frames, error, peak };
}

const cutsArb = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 40 });
const bytesArb = fc.uint8Array({ maxLength: 3000 });
/** Bytes biased towards the framing characters of our protocols. */
const framingBytes = fc
  .array(
    fc.oneof(
      fc.constantFrom(0x0a, 0x0d, 0x3d, 0x3a, 0x2c, 0x09, 0x01, 0x30, 0x39),
      fc.integer({ min: 0, max: 255 }),
    ),
    {
      maxLength: 3000,
    },
  )
  .map((values) => Uint8Array.from(values));
const anyBytes = fc.oneof(bytesArb, framingBytes);

const attrName = fc.stringMatching(/^[a-z_]{1,20}$/);
const attrValue = fc.string({ maxLength: 60 }).filter((v) => !/[\r\n]/.test(v) && !/[\ud800-\udfff]/.test(v));

describe("policy request codec", () => {
  it("round-trips requests", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(attrName, attrValue), { minLength: 1, maxLength: 30 }),
        cutsArb,
        (attrs, cuts) => {
          const { frames, error } = feed(new PolicyRequestDecoder(), encodePolicyRequest(attrs), cuts);
          expect(error).toBeUndefined();
          expect(frames).toHaveLength(1);
          expect([...(frames[0]?.attributes ?? [])]).toEqual([...new Map(attrs)]);
        },
      ),
      RUNS,
    );
  });

  it("never throws and never holds more than the request limit", () => {
    fc.assert(
      fc.property(anyBytes, cutsArb, (data, cuts) => {
        const decoder = new PolicyRequestDecoder({
          maxRequestBytes: 1024,
          maxLineBytes: 200,
          maxAttributes: 20,
        });
        const { peak } = feed(decoder, data, cuts);
        expect(peak).toBeLessThanOrEqual(1024);
      }),
      RUNS,
    );
  });

  it("decodes whole chunks (one UTF-8 decode) exactly as line by line, for any bytes and limits", () => {
    const lineArb = fc.oneof(
      fc.tuple(attrName, fc.string({ maxLength: 80 })).map(([name, value]) => `${name}=${value}`),
      fc.string({ maxLength: 120 }),
      fc.constant(""),
    );
    const streamArb = fc.oneof(
      fc.array(lineArb, { maxLength: 40 }).map((lines) => new TextEncoder().encode(`${lines.join("\n")}\n`)),
      anyBytes.map((bytes) => Uint8Array.from([...bytes, 0x0a])),
    );
    fc.assert(
      fc.property(streamArb, (data) => {
        const limits = { maxRequestBytes: 1500, maxLineBytes: 90, maxAttributes: 25 };
        const whole = feed(new PolicyRequestDecoder(limits), data, []);
        const byteByByte = feed(new PolicyRequestDecoder(limits), data, Array(data.length).fill(1));
        expect(whole.error).toBe(byteByByte.error);
        expect(whole.frames.map((f) => [...f.attributes])).toEqual(
          byteByByte.frames.map((f) => [...f.attributes]),
        );
      }),
      RUNS,
    );
  });

  it("gives the same frames for every split point", () => {
    const stream = new Uint8Array([
      ...encodePolicyRequest({ request: "smtpd_access_policy", recipient: "a@b" }),
      ...encodePolicyRequest({ a: "1", b: "2" }),
      ...new TextEncoder().encode("x=1\r\n\r\n"),
    ]);
    const whole = feed(new PolicyRequestDecoder(), stream, []).frames.map((f) => [...f.attributes]);
    for (let cut = 1; cut < stream.length; cut++) {
      const split = feed(new PolicyRequestDecoder(), stream, [cut]).frames.map((f) => [...f.attributes]);
      expect(split).toEqual(whole);
    }
  });
});

const text = fc.string({ maxLength: 80 });
const actionArb: fc.Arbitrary<PolicyAction> = fc.oneof(
  fc.constantFrom<PolicyAction>({ action: "DUNNO" }, { action: "OK" }),
  fc
    .tuple(
      fc.constantFrom(
        "REJECT",
        "DEFER",
        "DEFER_IF_PERMIT",
        "DEFER_IF_REJECT",
        "HOLD",
        "DISCARD",
        "WARN",
        "INFO",
      ),
      fc.option(text, { nil: undefined }),
    )
    .map(([action, t]) => ({ action, text: t }) as PolicyAction),
  fc
    .tuple(
      fc.integer({ min: 0, max: 999 }),
      fc.option(fc.stringMatching(/^[2-5]\.[0-9]{1,3}\.[0-9]{1,3}$/)),
      text,
    )
    .map(
      ([code, enhanced, t]) =>
        ({ action: "REPLY", code, enhancedCode: enhanced ?? undefined, text: t }) as PolicyAction,
    ),
  text.map((header) => ({ action: "PREPEND", header }) as PolicyAction),
  fc
    .tuple(fc.constantFrom("REDIRECT", "BCC"), text)
    .map(([action, address]) => ({ action, address }) as PolicyAction),
  fc
    .tuple(text, text)
    .map(([transport, destination]) => ({ action: "FILTER", transport, destination }) as PolicyAction),
);

describe("policy reply codec", () => {
  it("every encoded reply is one action line, LF only, nothing after the blank line, valid UTF-8", () => {
    fc.assert(
      fc.property(actionArb, (action) => {
        const bytes = encodePolicyReply(action);
        expect(bytes.includes(0x0d)).toBe(false);
        const wire = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        expect(wire).toMatch(/^action=[A-Z0-9_]+( [^\n]*)?\n\n$/);
        expect(wire.indexOf("\n\n")).toBe(wire.length - 2);
        const events = new PolicyReplyDecoder().push(bytes);
        expect(events).toHaveLength(1);
        const frame = events[0];
        const parsed =
          frame?.kind === "frame" && frame.frame.action ? parsePolicyAction(frame.frame.action) : undefined;
        expect(parsed?.ok).toBe(true);
      }),
      RUNS,
    );
  });

  it("valid actions survive encode → parse → encode unchanged", () => {
    fc.assert(
      fc.property(actionArb, (action) => {
        const once = encodePolicyReply(action);
        const decoded = new PolicyReplyDecoder().push(once)[0];
        const value = decoded?.kind === "frame" ? decoded.frame.action : undefined;
        const parsed = value === undefined ? undefined : parsePolicyAction(value);
        expect(parsed?.ok && encodePolicyReply(parsed.action)).toEqual(once);
      }),
      RUNS,
    );
  });
});

describe("netstring codec", () => {
  it("round-trips payloads in any chunking", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 10 }),
        cutsArb,
        (payloads, cuts) => {
          const stream = new Uint8Array(payloads.flatMap((p) => [...encodeNetstring(p)]));
          const { frames, error } = feed(new NetstringDecoder(), stream, cuts);
          expect(error).toBeUndefined();
          expect(frames).toEqual(payloads);
        },
      ),
      RUNS,
    );
  });

  it("never throws and never holds more than the limit", () => {
    fc.assert(
      fc.property(anyBytes, cutsArb, (data, cuts) => {
        expect(feed(new NetstringDecoder(100), data, cuts).peak).toBeLessThanOrEqual(100);
      }),
      RUNS,
    );
  });

  it("gives the same frames for every split point", () => {
    const stream = new TextEncoder().encode("22:mymap user@example.com,0:,3:a,b,");
    const whole = feed(new NetstringDecoder(), stream, []).frames;
    for (let cut = 1; cut < stream.length; cut++) {
      expect(feed(new NetstringDecoder(), stream, [cut]).frames).toEqual(whole);
    }
  });
});

const replyArb: fc.Arbitrary<SocketmapReply> = fc.oneof(
  fc.string({ maxLength: 100 }).map((data) => ({ status: "OK", data }) as SocketmapReply),
  fc.constant<SocketmapReply>({ status: "NOTFOUND" }),
  fc
    .tuple(fc.constantFrom("TEMP", "TIMEOUT", "PERM"), fc.string({ maxLength: 300 }))
    .map(([status, reason]) => ({ status, reason }) as SocketmapReply),
);

describe("socketmap codec", () => {
  it("encodes only canonical payloads that Postfix parses back to the same reply", () => {
    fc.assert(
      fc.property(replyArb, (reply) => {
        const encoded = encodeSocketmapReply(reply);
        expect(encoded.ok).toBe(true);
        if (!encoded.ok) return;
        const events = new NetstringDecoder(100_000).push(encoded.bytes);
        const payload = events[0]?.kind === "frame" ? events[0].frame : new Uint8Array();
        expect(new TextDecoder().decode(payload)).toMatch(
          /^(OK .+|NOTFOUND |(TEMP|TIMEOUT|PERM) [ -~]{0,200})$/s,
        );
        const parsed = parseSocketmapReply(payload);
        expect(parsed.ok).toBe(true);
        if (parsed.ok && reply.status === "OK" && reply.data !== "" && !/[\ud800-\udfff]/.test(reply.data)) {
          expect(parsed.reply).toEqual(reply);
        }
      }),
      RUNS,
    );
  });
});

const anyString = fc.string({ unit: "binary", maxLength: 80 }).filter((s) => !/[\ud800-\udfff]/.test(s));
const fieldString = fc.oneof(anyString, fc.stringMatching(/^[\x01\t\r\na-z]{0,20}$/));

describe("dict codec", () => {
  it("escaping round-trips any string and leaves no TAB, CR or LF", () => {
    fc.assert(
      fc.property(fieldString, (value) => {
        const escaped = dictEscape(value);
        expect(escaped).not.toMatch(/[\t\r\n]/);
        expect(dictUnescape(escaped)).toBe(value);
      }),
      RUNS,
    );
  });

  const id = fc.integer({ min: 0, max: 1_000_000 });
  const commandArb: fc.Arbitrary<DictCommand> = fc.oneof(
    fc.record({ kind: fc.constant("lookup" as const), key: fieldString, user: fieldString }),
    fc.record({
      kind: fc.constant("iterate" as const),
      flags: fc.integer({ min: 0, max: 63 }),
      maxRows: fc.nat(),
      path: fieldString,
      user: fieldString,
    }),
    fc.record({ kind: fc.constant("begin" as const), id, user: fieldString }),
    fc.record({ kind: fc.constant("commit" as const), id, async: fc.boolean() }),
    fc.record({ kind: fc.constant("rollback" as const), id }),
    fc.record({ kind: fc.constant("set" as const), id, key: fieldString, value: fieldString }),
    fc.record({ kind: fc.constant("unset" as const), id, key: fieldString }),
    fc.record({ kind: fc.constant("atomic-inc" as const), id, key: fieldString, diff: fc.integer() }),
    fc.record({
      kind: fc.constant("timestamp" as const),
      id,
      seconds: fc.nat(),
      nanoseconds: fc.nat(999_999_999),
    }),
  );

  it("commands round-trip through encoder and decoder, in any chunking", () => {
    fc.assert(
      fc.property(
        fc.array(commandArb, { maxLength: 15 }),
        fc.constantFrom(3, 4),
        cutsArb,
        (commands, major, cuts) => {
          const hello = encodeDictHello({
            version: { major, minor: 2 },
            valueType: 0,
            user: "",
            dictName: "d",
          });
          const stream = new TextEncoder().encode(hello + commands.map(encodeDictCommand).join(""));
          const { frames, error } = feed(new DictCommandDecoder(), stream, cuts);
          expect(error).toBeUndefined();
          expect(frames.slice(1)).toEqual(
            commands.map((command) => ({ kind: "command", command, version: { major, minor: 2 } })),
          );
        },
      ),
      RUNS,
    );
  });

  it("never throws and never holds more than the line limit", () => {
    fc.assert(
      fc.property(anyBytes, cutsArb, (data, cuts) => {
        expect(feed(new DictCommandDecoder(256), data, cuts).peak).toBeLessThanOrEqual(256);
      }),
      RUNS,
    );
  });

  it("reply encoders only ever start lines with letters Dovecot knows", () => {
    const version = fc.record({ major: fc.constantFrom(3 as const, 4 as const), minor: fc.nat(3) });
    fc.assert(
      fc.property(
        version,
        fieldString,
        fc.array(fieldString, { minLength: 1, maxLength: 4 }),
        (v, s, values) => {
          const options = { version: v };
          const outputs = [
            encodeDictLookupReply({ kind: "found", values: values as [string, ...string[]] }, options),
            encodeDictLookupReply({ kind: "not-found" }, options),
            encodeDictLookupReply({ kind: "failed", error: s }, options),
            encodeDictIterateRow({ key: s, values }, options),
            encodeDictIterateEnd({ ok: false, error: s }, options),
            encodeDictCommitReply(1, { kind: "failed", error: s }, options),
            encodeDictCommitReply(1, { kind: "write-uncertain", error: s }, options),
          ];
          for (const bytes of outputs) {
            const line = new TextDecoder().decode(bytes);
            expect(line).toMatch(/^[OMNFW][^\n]*\n$/);
          }
        },
      ),
      RUNS,
    );
  });
});
