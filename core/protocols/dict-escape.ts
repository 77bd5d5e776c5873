/**
 * Dovecot's tab-escaping, used on every field of the dict protocol (keys,
 * values, users, errors): 0x01 → \x01 "1", TAB → \x01 "t", CR → \x01 "r",
 * LF → \x01 "n" (docs/protocols/dovecot-dict-proxy.md, captured in dict-01
 * and dict-02). Escaped fields never contain TAB or LF, so a line can be
 * split on TAB only after it is complete. An escape byte followed by any
 * other character yields that character, and a trailing lone escape byte is
 * dropped — lenient like Dovecot's unescaper, so odd input never throws.
 */

const ESCAPE = "\x01";

export function dictEscape(field: string): string {
  if (!/[\x01\t\r\n]/.test(field)) return field;
  let out = "";
  for (const char of field) {
    switch (char) {
      case "\x01":
        out += "\x011";
        break;
      case "\t":
        out += "\x01t";
        break;
      case "\r":
        out += "\x01r";
        break;
      case "\n":
        out += "\x01n";
        break;
      default:
        out += char;
    }
  }
  return out;
}

export function dictUnescape(field: string): string {
  if (!field.includes(ESCAPE)) return field;
  let out = "";
  for (let i = 0; i < field.length; i++) {
    const char = field[i] as string;
    if (char !== ESCAPE) {
      out += char;
      continue;
    }
    const next = field[++i];
    if (next === undefined) break;
    out += next === "1" ? "\x01" : next === "t" ? "\t" : next === "r" ? "\r" : next === "n" ? "\n" : next;
  }
  return out;
}

/** Splits a complete line (LF removed) on TAB and unescapes each field. */
export function splitDictFields(line: string): string[] {
  return line.split("\t").map(dictUnescape);
}

/** Escapes each field and joins them with TAB (no LF added). */
export function joinDictFields(fields: readonly string[]): string {
  return fields.map(dictEscape).join("\t");
}
