/**
 * Every dict-* transcript through the dict codec: each client line decodes
 * (a hello, then commands — nothing invalid), and each server reply line is
 * matched to its pending command the way Dovecot's client does (in order, or
 * by `*<n>` / `+<n>` async ids) and re-encoded byte-exact with our encoders,
 * timing fields and async framing included. The only line we cannot produce
 * is the deliberate garbage of dict-04/dict-08, which crashes Dovecot.
 */
import { describe, expect, it } from "vitest";
import type { DictCommand, DictProtocolVersion } from "../../core/protocols/dict-commands.js";
import {
  DictReplyDecoder,
  type DictReplyLine,
  type DictReplyOptions,
  type DictTimings,
  encodeDictAsyncId,
  encodeDictCommitReply,
  encodeDictIterateEnd,
  encodeDictIterateRow,
  encodeDictLookupReply,
  splitDictMultiValue,
} from "../../core/protocols/dict-replies.js";
import { type DictClientFrame, DictCommandDecoder } from "../../core/protocols/dovecot-dict.js";
import { listVectorFiles, loadVectorFile } from "../harness/vectors.js";

const files = listVectorFiles("dict-");
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const KNOWN_GARBAGE = new Set(["XYZZY"]);

function clientFrames(bytes: Uint8Array): DictClientFrame[] {
  const events = new DictCommandDecoder().push(bytes);
  expect(events.filter((e) => e.kind === "error")).toEqual([]);
  return events.flatMap((e) => (e.kind === "frame" ? [e.frame] : []));
}

function timingsFrom(extra: string[]): DictTimings | undefined {
  if (extra.length !== 4 || !extra.every((f) => /^[0-9]+$/.test(f))) return undefined;
  const [a, b, c, d] = extra.map(Number) as [number, number, number, number];
  return { startSeconds: a, startMicroseconds: b, endSeconds: c, endMicroseconds: d };
}

interface Pending {
  command: DictCommand;
  asyncId?: number;
}

/** Re-encodes one reply line for its command; returns the bytes we would have written. */
function reencode(
  pending: Pending,
  reply: Extract<DictReplyLine, { kind: "reply" }>,
  version: DictProtocolVersion,
) {
  const options = (extra: string[]): DictReplyOptions => {
    const timings = timingsFrom(extra);
    return {
      version,
      ...(timings ? { timings } : {}),
      ...(reply.asyncId === undefined ? {} : { asyncId: reply.asyncId }),
    };
  };
  switch (pending.command.kind) {
    case "lookup": {
      const opts = options(reply.extra);
      if (reply.code === "O")
        return { done: true, bytes: encodeDictLookupReply({ kind: "found", values: [reply.value] }, opts) };
      if (reply.code === "N")
        return { done: true, bytes: encodeDictLookupReply({ kind: "not-found" }, opts) };
      if (reply.code === "F")
        return { done: true, bytes: encodeDictLookupReply({ kind: "failed", error: reply.value }, opts) };
      if (reply.code === "M") {
        const [first = "", ...rest] = splitDictMultiValue(reply.value);
        return {
          done: true,
          bytes: encodeDictLookupReply({ kind: "found", values: [first, ...rest] }, opts),
        };
      }
      break;
    }
    case "iterate": {
      if (reply.code === "O") {
        const row = { key: reply.value, values: reply.extra };
        return {
          done: false,
          bytes: encodeDictIterateRow(row, { version, ...(reply.asyncId ? { asyncId: reply.asyncId } : {}) }),
        };
      }
      if (reply.code === "end")
        return { done: true, bytes: encodeDictIterateEnd({ ok: true }, options(reply.extra)) };
      if (reply.code === "F")
        return {
          done: true,
          bytes: encodeDictIterateEnd({ ok: false, error: reply.value }, options(reply.extra)),
        };
      break;
    }
    case "commit": {
      const id = Number(reply.value);
      if (reply.code === "O")
        return { done: true, bytes: encodeDictCommitReply(id, { kind: "ok" }, options(reply.extra)) };
      if (reply.code === "N")
        return { done: true, bytes: encodeDictCommitReply(id, { kind: "not-found" }, options(reply.extra)) };
      const [error = "", ...rest] = reply.extra;
      if (reply.code === "F")
        return { done: true, bytes: encodeDictCommitReply(id, { kind: "failed", error }, options(rest)) };
      if (reply.code === "W") {
        return {
          done: true,
          bytes: encodeDictCommitReply(id, { kind: "write-uncertain", error }, options(rest)),
        };
      }
      break;
    }
    default:
      break;
  }
  throw new Error(`reply ${reply.code} does not fit a ${pending.command.kind} command`);
}

describe.each(files)("%s", (file) => {
  const vector = loadVectorFile(file);

  it("parses, with its header comments", () => {
    expect(vector.headerComments.length).toBeGreaterThan(0);
    expect(vector.records.every((r) => r.bytes.length > 0)).toBe(true);
  });

  it.each(vector.connections.map((c) => ({ name: `connection ${c.id}`, input: c })))(
    "client lines decode: $name",
    ({ input }) => {
      const frames = clientFrames(input.clientBytes);
      const lines = text(input.clientBytes).split("\n").length - 1;
      expect(frames).toHaveLength(lines);
      expect(frames[0]).toMatchObject({ kind: "hello", hello: { version: { major: 3, minor: 2 } } });
      expect(frames.slice(1).every((f) => f.kind === "command")).toBe(true);
    },
  );

  it.each(vector.connections.map((c) => ({ name: `connection ${c.id}`, input: c })))(
    "server lines re-encode byte-exact: $name",
    ({ input }) => {
      const frames = clientFrames(input.clientBytes);
      const hello = frames[0];
      if (hello?.kind !== "hello") return;
      const pending: Pending[] = frames.flatMap((f) =>
        f.kind === "command" && ["lookup", "iterate", "commit"].includes(f.command.kind)
          ? [{ command: f.command }]
          : [],
      );
      const serverLines = text(input.serverBytes).split("\n").slice(0, -1);
      const events = new DictReplyDecoder().push(input.serverBytes);
      events.forEach((event, index) => {
        if (event.kind !== "frame") throw event.error;
        const original = `${serverLines[index]}\n`;
        const reply = event.frame;
        if (reply.kind === "unknown") {
          expect(KNOWN_GARBAGE.has(reply.line)).toBe(true);
          pending.shift();
          return;
        }
        if (reply.kind === "async-id") {
          const target = pending.find((p) => p.asyncId === undefined);
          if (target) target.asyncId = reply.id;
          expect(text(encodeDictAsyncId(reply.id))).toBe(original);
          return;
        }
        const position =
          reply.asyncId === undefined ? 0 : pending.findIndex((p) => p.asyncId === reply.asyncId);
        const target = pending[position];
        expect(target, `no pending command for ${original}`).toBeDefined();
        const { done, bytes } = reencode(target as Pending, reply, hello.hello.version);
        expect(text(bytes)).toBe(original);
        if (done) pending.splice(position, 1);
      });
    },
  );
});
