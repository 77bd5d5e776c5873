/**
 * Reader for the captured transcripts in test/vectors (format in
 * docs/protocols/README.md): `C:`/`S:` records (`C2:`/`S2:` for connection 2),
 * escaped bytes (\n \r \t \\ \xNN), `-- [+t s] …` events and `#` comments.
 * It returns, per connection, the exact bytes each side put on the wire and
 * the records as captured (a record boundary is where the capture saw a
 * write, which wire tests replay to reproduce split segments), plus the
 * comments before and after the transcript. Unit tests decode these bytes
 * with our codecs; wire tests replay the client bytes at real servers.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const VECTORS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "vectors");

export type VectorDirection = "client" | "server";

export interface VectorRecord {
  direction: VectorDirection;
  connection: number;
  bytes: Uint8Array;
  /** 1-based line in the file, for failure messages. */
  line: number;
}

export interface VectorEvent {
  /** Seconds since the first event. */
  seconds: number;
  /** Text after the time stamp ("connection 1 opened", "" for a bare time gap). */
  text: string;
  /** The connection the event names, if any. */
  connection?: number;
  line: number;
}

export interface VectorConnection {
  id: number;
  clientBytes: Uint8Array;
  serverBytes: Uint8Array;
  clientRecords: Uint8Array[];
  serverRecords: Uint8Array[];
}

export interface VectorFile {
  name: string;
  /** `#` lines before the transcript, without the leading "# ". */
  headerComments: string[];
  /** `#` lines after the transcript (the other side's view, log lines). */
  trailerComments: string[];
  /** Every record in file order. */
  records: VectorRecord[];
  events: VectorEvent[];
  /** Sorted by id; includes connections that only appear in events. */
  connections: VectorConnection[];
}

const RECORD = /^([CS])([0-9]*): ?(.*)$/;
const EVENT = /^-- \[\+([0-9]+(?:\.[0-9]+)?)s\] ?(.*)$/;

/** Turns the escaped text of one record into bytes. */
export function unescapeVectorBytes(text: string, lineNumber = 0): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char !== "\\") {
      const code = char.charCodeAt(0);
      if (code > 0x7f) bytes.push(...new TextEncoder().encode(char));
      else bytes.push(code);
      continue;
    }
    const next = text[++i];
    switch (next) {
      case "n":
        bytes.push(0x0a);
        break;
      case "r":
        bytes.push(0x0d);
        break;
      case "t":
        bytes.push(0x09);
        break;
      case "\\":
        bytes.push(0x5c);
        break;
      case "x": {
        const hex = text.slice(i + 1, i + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error(`line ${lineNumber}: bad \\x escape`);
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
        break;
      }
      default:
        throw new Error(`line ${lineNumber}: unknown escape \\${next ?? "(end)"}`);
    }
  }
  return Uint8Array.from(bytes);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function parseVectorText(text: string, name = "(inline)"): VectorFile {
  const headerComments: string[] = [];
  const trailerComments: string[] = [];
  const records: VectorRecord[] = [];
  const events: VectorEvent[] = [];
  const seen = new Set<number>();
  let transcriptStarted = false;
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    if (raw.startsWith("#")) {
      const comment = raw.replace(/^# ?/, "");
      (transcriptStarted ? trailerComments : headerComments).push(comment);
      return;
    }
    if (raw.trim() === "") return;
    if (trailerComments.length > 0) {
      // Comments between transcript parts are not trailer comments after all.
      trailerComments.length = 0;
    }
    transcriptStarted = true;
    const record = RECORD.exec(raw);
    if (record) {
      const connection = record[2] ? Number(record[2]) : 1;
      seen.add(connection);
      records.push({
        direction: record[1] === "C" ? "client" : "server",
        connection,
        bytes: unescapeVectorBytes(record[3] ?? "", lineNumber),
        line: lineNumber,
      });
      return;
    }
    const event = EVENT.exec(raw);
    if (event) {
      const eventText = event[2] ?? "";
      const named = /^connection ([0-9]+)\b/.exec(eventText);
      const connection = named ? Number(named[1]) : undefined;
      if (connection !== undefined) seen.add(connection);
      events.push({
        seconds: Number(event[1]),
        text: eventText,
        ...(connection === undefined ? {} : { connection }),
        line: lineNumber,
      });
      return;
    }
    throw new Error(`${name}:${lineNumber}: not a record, event or comment: ${raw.slice(0, 60)}`);
  });

  const connections = [...seen]
    .sort((a, b) => a - b)
    .map((id): VectorConnection => {
      const clientRecords = records
        .filter((r) => r.connection === id && r.direction === "client")
        .map((r) => r.bytes);
      const serverRecords = records
        .filter((r) => r.connection === id && r.direction === "server")
        .map((r) => r.bytes);
      return {
        id,
        clientBytes: concat(clientRecords),
        serverBytes: concat(serverRecords),
        clientRecords,
        serverRecords,
      };
    });
  return { name, headerComments, trailerComments, records, events, connections };
}

export function loadVectorFile(fileName: string, directory = VECTORS_DIR): VectorFile {
  return parseVectorText(readFileSync(join(directory, fileName), "utf8"), fileName);
}

/** File names in the vectors directory, sorted; optionally only those starting with prefix. */
export function listVectorFiles(prefix = "", directory = VECTORS_DIR): string[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith(".txt") && file.startsWith(prefix))
    .sort();
}
