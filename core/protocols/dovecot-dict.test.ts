/** Unit tests for the Dovecot dict codec: escaping, hello/commands, replies, version handling. */
import { describe, expect, it } from "vitest";
import {
  type DictCommand,
  type DictProtocolVersion,
  encodeDictCommand,
  encodeDictHello,
  parseDictCommand,
} from "./dict-commands.js";
import { dictEscape, dictUnescape } from "./dict-escape.js";
import {
  encodeDictAsyncId,
  encodeDictCommitReply,
  encodeDictIterateEnd,
  encodeDictIterateRow,
  encodeDictLookupReply,
  parseDictReplyLine,
  splitDictMultiValue,
} from "./dict-replies.js";
import {
  type DictClientFrame,
  DictCommandDecoder,
  dictFailSafeReply,
  encodeDictServerReply,
} from "./dovecot-dict.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const V23: DictProtocolVersion = { major: 3, minor: 2 };
const V30: DictProtocolVersion = { major: 3, minor: 0 };
const V4: DictProtocolVersion = { major: 4, minor: 0 };

function frames(input: string): DictClientFrame[] {
  return new DictCommandDecoder().push(bytes(input)).flatMap((e) => (e.kind === "frame" ? [e.frame] : []));
}

describe("dict escaping", () => {
  it.each([
    { name: "plain", input: "abc", want: "abc" },
    { name: "tab and newline", input: "tab\tand\nnewline", want: "tab\x01tand\x01nnewline" },
    { name: "CR", input: "a\rb", want: "a\x01rb" },
    { name: "escape byte", input: "a\x01b", want: "a\x011b" },
  ])("$name", ({ input, want }) => {
    expect(dictEscape(input)).toBe(want);
    expect(dictUnescape(want)).toBe(input);
  });
  it.each([
    { name: "unknown escape keeps the char", input: "a\x01zb", want: "azb" },
    { name: "trailing escape dropped", input: "ab\x01", want: "ab" },
  ])("lenient unescape: $name", ({ input, want }) => {
    expect(dictUnescape(input)).toBe(want);
  });
});

describe("DictCommandDecoder", () => {
  it.each([
    {
      name: "2.3 hello",
      input: "H3\t2\t0\t\tquotaclone\n",
      want: { kind: "hello", hello: { version: V23, valueType: 0, user: "", dictName: "quotaclone" } },
    },
    {
      name: "2.4 hello",
      input: "H4\t0\t0\t\tquota\n",
      want: { kind: "hello", hello: { version: V4, valueType: 0, user: "", dictName: "quota" } },
    },
    { name: "old major refused", input: "H2\t0\t0\tuser\tname\n", want: { kind: "invalid", letter: "H" } },
    { name: "short hello refused", input: "H3\t2\t0\n", want: { kind: "invalid", letter: "H" } },
    { name: "command before hello", input: "Lshared/x\t\n", want: { kind: "invalid", letter: "L" } },
  ])("$name", ({ input, want }) => {
    expect(frames(input)[0]).toMatchObject(want);
  });

  it.each<{ name: string; input: string; want: DictCommand }>([
    {
      name: "lookup",
      input: "Lshared/greeting\t",
      want: { kind: "lookup", key: "shared/greeting", user: "" },
    },
    {
      name: "lookup with user",
      input: "Lpriv/quota/storage\tcarol@example.test",
      want: { kind: "lookup", key: "priv/quota/storage", user: "carol@example.test" },
    },
    {
      name: "iterate",
      input: "I0\t0\tshared/userdb/\t*",
      want: { kind: "iterate", flags: 0, maxRows: 0, path: "shared/userdb/", user: "*" },
    },
    {
      name: "iterate flags",
      input: "I24\t10\tp/\tu",
      want: { kind: "iterate", flags: 24, maxRows: 10, path: "p/", user: "u" },
    },
    {
      name: "begin",
      input: "B1\talice@example.test",
      want: { kind: "begin", id: 1, user: "alice@example.test" },
    },
    { name: "begin without user", input: "B1\t", want: { kind: "begin", id: 1, user: "" } },
    { name: "commit", input: "C1", want: { kind: "commit", id: 1, async: false } },
    { name: "async commit", input: "D7", want: { kind: "commit", id: 7, async: true } },
    { name: "rollback", input: "R3", want: { kind: "rollback", id: 3 } },
    {
      name: "set with escapes",
      input: "S1\tpriv/note\ttab\x01tand\x01nnewline",
      want: { kind: "set", id: 1, key: "priv/note", value: "tab\tand\nnewline" },
    },
    {
      name: "unset",
      input: "U1\tpriv/quota/storage",
      want: { kind: "unset", id: 1, key: "priv/quota/storage" },
    },
    {
      name: "atomic inc",
      input: "A1\tpriv/quota/storage\t-1205",
      want: { kind: "atomic-inc", id: 1, key: "priv/quota/storage", diff: -1205 },
    },
    {
      name: "timestamp",
      input: "T1\t1700000000\t500",
      want: { kind: "timestamp", id: 1, seconds: 1700000000, nanoseconds: 500 },
    },
  ])("command $name", ({ input, want }) => {
    const parsed = parseDictCommand(input);
    expect(parsed.ok && "command" in parsed ? parsed.command : parsed).toEqual(want);
    expect(encodeDictCommand(want)).toBe(`${input}\n`);
  });

  it.each([
    { name: "unknown letter", input: "Xfoo", want: "X" },
    { name: "commit without id", input: "C", want: "C" },
    { name: "set with two fields", input: "S1\tkey", want: "S" },
    { name: "atomic inc not a number", input: "A1\tkey\tten", want: "A" },
    { name: "iterate bad flags", input: "Ix\t0\tp\tu", want: "I" },
    { name: "second hello", input: "H3\t2\t0\t\tx", want: "H" },
  ])("invalid $name", ({ input, want }) => {
    const parsed = parseDictCommand(input);
    expect(parsed.ok ? undefined : parsed.letter).toBe(want);
  });

  it("remembers the announced version and tags every command with it", () => {
    const decoder = new DictCommandDecoder();
    const events = decoder.push(bytes("H4\t0\t0\t\tauth\nLshared/x\tu\nXbad\n"));
    expect(decoder.version).toEqual(V4);
    expect(events.map((e) => e.kind === "frame" && e.frame)).toMatchObject([
      { kind: "hello" },
      { kind: "command", version: V4 },
      { kind: "invalid", letter: "X", version: V4 },
    ]);
  });

  it("refuses a line over the limit before its LF", () => {
    const decoder = new DictCommandDecoder(100);
    const events = decoder.push(bytes(`H3\t2\t0\t\tx\nL${"k".repeat(200)}`));
    expect(events.map((e) => e.kind)).toEqual(["frame", "error"]);
    expect(decoder.buffered).toBe(0);
  });

  it("encodes a hello as Dovecot does", () => {
    expect(encodeDictHello({ version: V23, valueType: 0, user: "", dictName: "quotaclone" })).toBe(
      "H3\t2\t0\t\tquotaclone\n",
    );
  });
});

describe("dict reply encoders", () => {
  it.each([
    {
      name: "found",
      input: encodeDictLookupReply({ kind: "found", values: ["hello world"] }, { version: V23 }),
      want: "Ohello world\n",
    },
    {
      name: "found escaped",
      input: encodeDictLookupReply({ kind: "found", values: ["a\tb"] }, { version: V23 }),
      want: "Oa\x01tb\n",
    },
    {
      name: "multi on 3.2",
      input: encodeDictLookupReply({ kind: "found", values: ["a", "b\tc"] }, { version: V23 }),
      want: "Ma\x01tb\x011tc\n",
    },
    {
      name: "multi on 3.0 sends the first value",
      input: encodeDictLookupReply({ kind: "found", values: ["a", "b"] }, { version: V30 }),
      want: "Oa\n",
    },
    {
      name: "multi on v4",
      input: encodeDictLookupReply({ kind: "found", values: ["a", "b"] }, { version: V4 }),
      want: "Ma\x01tb\n",
    },
    { name: "not found", input: encodeDictLookupReply({ kind: "not-found" }, { version: V23 }), want: "N\n" },
    {
      name: "failure text cleaned",
      input: encodeDictLookupReply({ kind: "failed", error: "db\ndown\t!" }, { version: V23 }),
      want: "Fdb down !\n",
    },
    {
      name: "iterate row",
      input: encodeDictIterateRow({ key: "shared/k", values: ["v"] }, { version: V23 }),
      want: "Oshared/k\tv\n",
    },
    {
      name: "iterate row no value",
      input: encodeDictIterateRow({ key: "k", values: [] }, { version: V23 }),
      want: "Ok\t\n",
    },
    { name: "iterate end", input: encodeDictIterateEnd({ ok: true }, { version: V23 }), want: "\n" },
    {
      name: "iterate failure",
      input: encodeDictIterateEnd({ ok: false, error: "x" }, { version: V23 }),
      want: "Fx\n",
    },
    { name: "commit ok", input: encodeDictCommitReply(1, { kind: "ok" }, { version: V23 }), want: "O1\n" },
    {
      name: "commit not found",
      input: encodeDictCommitReply(1, { kind: "not-found" }, { version: V23 }),
      want: "N1\n",
    },
    {
      name: "commit failed",
      input: encodeDictCommitReply(
        1,
        { kind: "failed", error: "simulated commit failure" },
        { version: V23 },
      ),
      want: "F1\tsimulated commit failure\n",
    },
    {
      name: "commit uncertain",
      input: encodeDictCommitReply(2, { kind: "write-uncertain", error: "timeout" }, { version: V4 }),
      want: "W2\ttimeout\n",
    },
    {
      name: "timings and async framing",
      input: encodeDictCommitReply(
        1,
        { kind: "ok" },
        {
          version: V23,
          asyncId: 1,
          timings: { startSeconds: 1, startMicroseconds: 2, endSeconds: 3, endMicroseconds: 4 },
        },
      ),
      want: "+1\tO1\t1\t2\t3\t4\n",
    },
    {
      name: "no timings or framing for minor 0",
      input: encodeDictCommitReply(
        1,
        { kind: "ok" },
        {
          version: V30,
          asyncId: 1,
          timings: { startSeconds: 1, startMicroseconds: 2, endSeconds: 3, endMicroseconds: 4 },
        },
      ),
      want: "O1\n",
    },
    { name: "async id", input: encodeDictAsyncId(3), want: "*3\n" },
  ])("$name", ({ input, want }) => {
    expect(text(input)).toBe(want);
  });

  it("round-trips a multi value through the reply parser", () => {
    const line = text(
      encodeDictLookupReply({ kind: "found", values: ["a", "b\tc", "\x01"] }, { version: V4 }),
    ).slice(0, -1);
    const parsed = parseDictReplyLine(line);
    expect(parsed.kind === "reply" && splitDictMultiValue(parsed.value)).toEqual(["a", "b\tc", "\x01"]);
  });

  it.each([
    {
      name: "async reply with timings",
      input: "+1\tO1\t1\t2\t3\t4",
      want: { kind: "reply", asyncId: 1, code: "O", value: "1" },
    },
    { name: "async id", input: "*2", want: { kind: "async-id", id: 2 } },
    { name: "end", input: "", want: { kind: "reply", code: "end", value: "" } },
    { name: "garbage", input: "XYZZY", want: { kind: "unknown" } },
  ])("parses reply line $name", ({ input, want }) => {
    expect(parseDictReplyLine(input)).toMatchObject(want);
  });

  it("server reply for an iteration is rows then the end line", () => {
    const encoded = encodeDictServerReply({
      kind: "iterate",
      version: V23,
      rows: [
        { key: "shared/userdb/a", values: ["1"] },
        { key: "shared/userdb/b", values: ["2"] },
      ],
      end: { ok: true },
    });
    expect(text(encoded)).toBe("Oshared/userdb/a\t1\nOshared/userdb/b\t2\n\n");
  });

  it.each([
    { name: "lookup", input: "Lk\tu", want: "Finternal error\n" },
    { name: "iterate", input: "I0\t0\tp\tu", want: "Finternal error\n" },
    { name: "commit", input: "C4", want: "F4\tinternal error\n" },
    { name: "broken lookup still answered", input: "L\t\t\t", want: "Finternal error\n" },
    { name: "set gets nothing", input: "S1\tk\tv", want: undefined },
  ])("fail-safe reply for $name", ({ input, want }) => {
    const frame = frames(`H3\t2\t0\t\tx\n${input}\n`)[1] as DictClientFrame;
    const reply = dictFailSafeReply(frame);
    expect(reply && text(encodeDictServerReply(reply))).toBe(want);
  });
});
