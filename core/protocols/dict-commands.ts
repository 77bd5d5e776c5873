/**
 * Dovecot dict proxy protocol, client → server lines: the hello and every
 * command as a discriminated union, parsed from one complete line, and the
 * reverse (encodeDictHello / encodeDictCommand) so tests and benchmarks can
 * act as Dovecot. Field layouts follow the 2.3.19 captures and Dovecot's
 * src/dict/dict-commands.c and src/lib-dict/dict-client.h (see
 * dovecot-dict.ts for the 2.3/2.4 differences). A line we cannot parse is a
 * value, not an exception: the server decides (answer F, or close).
 */
import { dictEscape, dictUnescape, joinDictFields, splitDictFields } from "./dict-escape.js";

/** Major 3 = Dovecot 2.3.17 … 2.3.x, major 4 = Dovecot 2.4. */
export interface DictProtocolVersion {
  major: 3 | 4;
  minor: number;
}

export const DICT_VALUE_TYPE_STRING = 0;
export const DICT_VALUE_TYPE_UINT32 = 1;

export interface DictHello {
  version: DictProtocolVersion;
  /** 0 = string, 1 = uint32 (always 0 in the captures). */
  valueType: number;
  /** Obsolete since 2.3.17: sent empty, the user travels in each command. */
  user: string;
  /** The name after the socket path in the proxy URI (2.3) or dict_proxy_name (2.4). */
  dictName: string;
}

/** Iterate flag bits (dict.h). */
export const DictIterateFlag = {
  recurse: 0x01,
  sortByKey: 0x02,
  sortByValue: 0x04,
  noValue: 0x08,
  exactKey: 0x10,
  async: 0x20,
} as const;

export type DictCommand =
  | { kind: "lookup"; key: string; user: string }
  | { kind: "iterate"; flags: number; maxRows: number; path: string; user: string }
  | { kind: "begin"; id: number; user: string }
  /** C, or D (async commit, which no captured client sends); both are answered the same way by us. */
  | { kind: "commit"; id: number; async: boolean }
  | { kind: "rollback"; id: number }
  | { kind: "set"; id: number; key: string; value: string }
  | { kind: "unset"; id: number; key: string }
  | { kind: "atomic-inc"; id: number; key: string; diff: number }
  | { kind: "timestamp"; id: number; seconds: number; nanoseconds: number };

export type DictCommandKind = DictCommand["kind"];

export type ParsedDictLine =
  | { ok: true; hello: DictHello }
  | { ok: true; command: DictCommand }
  | { ok: false; letter: string; reason: string };

const UNSIGNED = /^[0-9]{1,15}$/;
const SIGNED = /^[-+]?[0-9]{1,15}$/;

function unsigned(text: string | undefined): number | undefined {
  return text !== undefined && UNSIGNED.test(text) ? Number(text) : undefined;
}

/** Parses the hello line (`H<major>\t<minor>\t<value type>\t<user>\t<dict name>`). */
export function parseDictHello(line: string): ParsedDictLine {
  if (!line.startsWith("H"))
    return { ok: false, letter: line.slice(0, 1), reason: "first line is not a hello" };
  const fields = splitDictFields(line.slice(1));
  if (fields.length < 5) return { ok: false, letter: "H", reason: "hello has fewer than 5 fields" };
  const [majorText, minorText, valueTypeText, user, dictName] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  const major = unsigned(majorText);
  const minor = unsigned(minorText);
  const valueType = unsigned(valueTypeText);
  if (major !== 3 && major !== 4) {
    return { ok: false, letter: "H", reason: `unsupported dict protocol major version ${majorText}` };
  }
  if (minor === undefined) return { ok: false, letter: "H", reason: `invalid minor version ${minorText}` };
  if (valueType !== DICT_VALUE_TYPE_STRING && valueType !== DICT_VALUE_TYPE_UINT32) {
    return { ok: false, letter: "H", reason: `invalid value type ${valueTypeText}` };
  }
  return { ok: true, hello: { version: { major, minor }, valueType, user, dictName } };
}

const TAB = "\t";
const LOOKUP = 0x4c; // "L"

/**
 * Parses a command line (after the hello). The user field may be missing on old clients: it is then "".
 * Lookups, nearly every line an auth process sends, are cut at their tabs directly; the result is the
 * general parser's (dict-commands.property.test.ts holds the two together).
 */
export function parseDictCommand(line: string): ParsedDictLine {
  return line.charCodeAt(0) === LOOKUP ? parseDictLookup(line) : parseDictCommandFields(line);
}

/** `L<key>[\t<user>]`: at most one TAB, fields unescaped. */
function parseDictLookup(line: string): ParsedDictLine {
  const tab = line.indexOf(TAB, 1);
  if (tab < 0) return { ok: true, command: { kind: "lookup", key: dictUnescape(line.slice(1)), user: "" } };
  if (line.indexOf(TAB, tab + 1) >= 0)
    return { ok: false, letter: "L", reason: "lookup has too many fields" };
  return {
    ok: true,
    command: {
      kind: "lookup",
      key: dictUnescape(line.slice(1, tab)),
      user: dictUnescape(line.slice(tab + 1)),
    },
  };
}

/** The general command parser: split on TAB, unescape, then check the layout of the letter. */
export function parseDictCommandFields(line: string): ParsedDictLine {
  const letter = line.slice(0, 1);
  const fields = splitDictFields(line.slice(1));
  const bad = (reason: string): ParsedDictLine => ({ ok: false, letter, reason });
  const id = unsigned(fields[0]);
  switch (letter) {
    case "L": {
      if (fields.length > 2) return bad("lookup has too many fields");
      return { ok: true, command: { kind: "lookup", key: fields[0] ?? "", user: fields[1] ?? "" } };
    }
    case "I": {
      const flags = unsigned(fields[0]);
      const maxRows = unsigned(fields[1]);
      if (flags === undefined || maxRows === undefined || fields.length < 3 || fields.length > 4) {
        return bad("iterate needs flags, max_rows, path and user");
      }
      return {
        ok: true,
        command: { kind: "iterate", flags, maxRows, path: fields[2] ?? "", user: fields[3] ?? "" },
      };
    }
    case "B":
      if (id === undefined || fields.length > 2) return bad("begin needs a transaction id and a user");
      return { ok: true, command: { kind: "begin", id, user: fields[1] ?? "" } };
    case "C":
    case "D":
      if (id === undefined || fields.length !== 1) return bad("commit needs exactly a transaction id");
      return { ok: true, command: { kind: "commit", id, async: letter === "D" } };
    case "R":
      if (id === undefined || fields.length !== 1) return bad("rollback needs exactly a transaction id");
      return { ok: true, command: { kind: "rollback", id } };
    case "S":
      if (id === undefined || fields.length !== 3) return bad("set needs id, key and value");
      return { ok: true, command: { kind: "set", id, key: fields[1] as string, value: fields[2] as string } };
    case "U":
      if (id === undefined || fields.length !== 2) return bad("unset needs id and key");
      return { ok: true, command: { kind: "unset", id, key: fields[1] as string } };
    case "A": {
      const diffText = fields[2];
      if (id === undefined || fields.length !== 3 || diffText === undefined || !SIGNED.test(diffText)) {
        return bad("atomic increment needs id, key and a signed decimal");
      }
      return {
        ok: true,
        command: { kind: "atomic-inc", id, key: fields[1] as string, diff: Number(diffText) },
      };
    }
    case "T": {
      const seconds = fields[1] !== undefined && SIGNED.test(fields[1]) ? Number(fields[1]) : undefined;
      const nanoseconds = unsigned(fields[2]);
      if (id === undefined || fields.length !== 3 || seconds === undefined || nanoseconds === undefined) {
        return bad("timestamp needs id, seconds and nanoseconds");
      }
      return { ok: true, command: { kind: "timestamp", id, seconds, nanoseconds } };
    }
    case "H":
      return bad("hello sent twice");
    default:
      return bad(`unknown dict command ${JSON.stringify(letter)}`);
  }
}

/** Lookup, iterate and commit get replies; everything else is silent. */
export function dictCommandExpectsReply(command: DictCommand): boolean {
  switch (command.kind) {
    case "lookup":
    case "iterate":
    case "commit":
      return true;
    case "begin":
    case "rollback":
    case "set":
    case "unset":
    case "atomic-inc":
    case "timestamp":
      return false;
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** The hello a Dovecot client sends, LF included (2.3.19: `H3\t2\t0\t\t<name>\n`). */
export function encodeDictHello(hello: DictHello): string {
  const { major, minor } = hello.version;
  return `H${major}\t${minor}\t${hello.valueType}\t${dictEscape(hello.user)}\t${dictEscape(hello.dictName)}\n`;
}

/** One command line as a Dovecot client writes it, LF included. */
export function encodeDictCommand(command: DictCommand): string {
  switch (command.kind) {
    case "lookup":
      return `L${joinDictFields([command.key, command.user])}\n`;
    case "iterate":
      return `I${command.flags}\t${command.maxRows}\t${joinDictFields([command.path, command.user])}\n`;
    case "begin":
      return `B${command.id}\t${dictEscape(command.user)}\n`;
    case "commit":
      return `${command.async ? "D" : "C"}${command.id}\n`;
    case "rollback":
      return `R${command.id}\n`;
    case "set":
      return `S${command.id}\t${joinDictFields([command.key, command.value])}\n`;
    case "unset":
      return `U${command.id}\t${dictEscape(command.key)}\n`;
    case "atomic-inc":
      return `A${command.id}\t${dictEscape(command.key)}\t${command.diff}\n`;
    case "timestamp":
      return `T${command.id}\t${command.seconds}\t${command.nanoseconds}\n`;
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}
