/**
 * Dovecot dict proxy protocol, server → client lines. Only the reply letters
 * Dovecot's client knows are ever produced — O, M, N, F, W, the empty
 * iteration end, and the optional `*<n>` / `+<n>` async framing — because an
 * unknown letter crashes the client (doveadm SIGSEGV, auth-worker signal 11,
 * vectors dict-04 and dict-08). Features are gated on the version the peer
 * announced in its hello: M (several values) needs minor ≥ 2, timing fields
 * and async framing minor ≥ 1 (Dovecot src/dict/dict-commands.c,
 * src/lib-dict/dict-client.h); a major-4 peer (Dovecot 2.4) gets all of them.
 * DictReplyDecoder reads replies as a client would, for tests and benchmarks.
 */
import type { ProtocolError } from "../errors.js";
import type { DictProtocolVersion } from "./dict-commands.js";
import { dictEscape, joinDictFields, splitDictFields } from "./dict-escape.js";
import { LineSplitter } from "./line-splitter.js";
import type { DecodeEvent, StreamDecoder } from "./stream.js";
import { sanitizeLineText, utf8DecodeLenient, utf8Encode } from "./text.js";

/** Error texts are logged by Dovecot; keep them single-line and short. */
export const MAX_DICT_ERROR_BYTES = 1000;

export type DictLookupResult =
  | { kind: "found"; values: readonly [string, ...string[]] }
  | { kind: "not-found" }
  | { kind: "failed"; error: string };

export type DictCommitResult =
  | { kind: "ok" }
  /** An atomic increment hit a missing key; nothing was written. */
  | { kind: "not-found" }
  | { kind: "failed"; error: string }
  | { kind: "write-uncertain"; error: string };

export interface DictIterateRow {
  key: string;
  /** Empty with the NO_VALUE flag; more than one value is allowed by the protocol. */
  values: readonly string[];
}

/** Server-side timing fields Dovecot only uses in its log messages. */
export interface DictTimings {
  startSeconds: number;
  startMicroseconds: number;
  endSeconds: number;
  endMicroseconds: number;
}

export interface DictReplyOptions {
  version: DictProtocolVersion;
  timings?: DictTimings;
  /** Wraps the line as `+<id>\t…`; only for servers that sent `*<id>` first (we never need to). */
  asyncId?: number;
}

export function dictSupportsMultiValues(version: DictProtocolVersion): boolean {
  return version.major >= 4 || version.minor >= 2;
}

export function dictSupportsTimingsAndAsync(version: DictProtocolVersion): boolean {
  return version.major >= 4 || version.minor >= 1;
}

function cleanError(error: string): string {
  return sanitizeLineText(error, MAX_DICT_ERROR_BYTES);
}

function finish(body: string, options: DictReplyOptions, final: boolean): Uint8Array {
  const extended = dictSupportsTimingsAndAsync(options.version);
  let line = body;
  if (final && extended && options.timings) {
    const t = options.timings;
    line += `\t${t.startSeconds}\t${t.startMicroseconds}\t${t.endSeconds}\t${t.endMicroseconds}`;
  }
  if (extended && options.asyncId !== undefined) line = `+${options.asyncId}\t${line}`;
  return utf8Encode(`${line}\n`);
}

export function encodeDictLookupReply(result: DictLookupResult, options: DictReplyOptions): Uint8Array {
  switch (result.kind) {
    case "found": {
      const values = result.values;
      if (values.length === 1 || !dictSupportsMultiValues(options.version)) {
        // Older peers only understand one value: they get the first, as Dovecot's own server does.
        return finish(`O${dictEscape(values[0])}`, options, true);
      }
      // The joined list is escaped once more so that it travels as one field.
      return finish(`M${dictEscape(joinDictFields(result.values))}`, options, true);
    }
    case "not-found":
      return finish("N", options, true);
    case "failed":
      return finish(`F${dictEscape(cleanError(result.error))}`, options, true);
    default: {
      const unreachable: never = result;
      return unreachable;
    }
  }
}

/** One iteration row; a row always carries the TAB, or the client calls it broken. */
export function encodeDictIterateRow(row: DictIterateRow, options: DictReplyOptions): Uint8Array {
  const values = row.values.length === 0 ? [""] : row.values;
  return finish(`O${joinDictFields([row.key, ...values])}`, options, false);
}

/** End of an iteration: success is a line with an empty first field. */
export function encodeDictIterateEnd(
  result: { ok: true } | { ok: false; error: string },
  options: DictReplyOptions,
): Uint8Array {
  return finish(result.ok ? "" : `F${dictEscape(cleanError(result.error))}`, options, true);
}

export function encodeDictCommitReply(
  id: number,
  result: DictCommitResult,
  options: DictReplyOptions,
): Uint8Array {
  switch (result.kind) {
    case "ok":
      return finish(`O${id}`, options, true);
    case "not-found":
      return finish(`N${id}`, options, true);
    case "failed":
      return finish(`F${id}\t${dictEscape(cleanError(result.error))}`, options, true);
    case "write-uncertain":
      return finish(`W${id}\t${dictEscape(cleanError(result.error))}`, options, true);
    default: {
      const unreachable: never = result;
      return unreachable;
    }
  }
}

/** `*<n>`: assigns async id n to the oldest command without one (minor ≥ 1 peers only). */
export function encodeDictAsyncId(id: number): Uint8Array {
  return utf8Encode(`*${id}\n`);
}

export type DictReplyCode = "O" | "M" | "N" | "F" | "W" | "end";

export type DictReplyLine =
  | { kind: "async-id"; id: number }
  /** value: the first field without its letter; extra: the following fields (unescaped). */
  | { kind: "reply"; asyncId?: number; code: DictReplyCode; value: string; extra: string[] }
  /** A letter Dovecot's client does not know (it would crash); kept for tests. */
  | { kind: "unknown"; line: string };

export function parseDictReplyLine(line: string): DictReplyLine {
  if (/^\*[0-9]+$/.test(line)) return { kind: "async-id", id: Number(line.slice(1)) };
  let fields = splitDictFields(line);
  let asyncId: number | undefined;
  const first = fields[0] ?? "";
  if (/^\+[0-9]+$/.test(first)) {
    asyncId = Number(first.slice(1));
    fields = fields.slice(1);
  } else if (first.startsWith("+") || first.startsWith("*")) {
    return { kind: "unknown", line };
  }
  const head = fields[0] ?? "";
  const letter = head.slice(0, 1);
  const code: DictReplyCode | undefined =
    head === ""
      ? "end"
      : letter === "O" || letter === "M" || letter === "N" || letter === "F" || letter === "W"
        ? letter
        : undefined;
  if (code === undefined) return { kind: "unknown", line };
  const base = { kind: "reply" as const, code, value: head.slice(1), extra: fields.slice(1) };
  return asyncId === undefined ? base : { ...base, asyncId };
}

/** Splits an M value back into its list (it is escaped twice on the wire). */
export function splitDictMultiValue(value: string): string[] {
  return splitDictFields(value);
}

/** Client-side reader of reply lines (LF framing, bounded line length). */
export class DictReplyDecoder implements StreamDecoder<DictReplyLine> {
  private readonly lines: LineSplitter;
  private failure: ProtocolError | undefined;

  constructor(maxLineBytes = 1024 * 1024) {
    this.lines = new LineSplitter(maxLineBytes);
  }

  get buffered(): number {
    return this.lines.buffered;
  }

  push(chunk: Uint8Array): DecodeEvent<DictReplyLine>[] {
    if (this.failure) return [{ kind: "error", error: this.failure }];
    const events: DecodeEvent<DictReplyLine>[] = [];
    this.failure = this.lines.feed(chunk, (line) => {
      events.push({ kind: "frame", frame: parseDictReplyLine(utf8DecodeLenient(line)) });
      return true;
    });
    if (this.failure) events.push({ kind: "error", error: this.failure });
    return events;
  }
}
