import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeDictCommand, parseDictCommand, parseDictCommandFields } from "./dict-commands.js";

/** Text rich in what the dict protocol cares about: TAB, the escape byte, its letters, LF, CR, non-ASCII. */
const dictText = fc
  .array(
    fc.oneof(fc.constantFrom("\t", "\x01", "1", "t", "r", "n", "\r", "/", "é", "😀", "\uD800"), fc.string()),
    {
      maxLength: 8,
    },
  )
  .map((parts) => parts.join(""));

describe("dict lookup lines", () => {
  it.each([
    { name: "key and user", line: "Lshared/userdb/anna\tanna" },
    { name: "key only", line: "Lshared/passdb/bob" },
    { name: "empty", line: "L" },
    { name: "escaped fields", line: "Lshared/userdb/a\x01tb\tu\x01n" },
    { name: "too many fields", line: "Lkey\tuser\textra" },
    { name: "empty user", line: "Lkey\t" },
  ])("$name: the shortcut gives the general parser's result", ({ line }) => {
    expect(parseDictCommand(line)).toEqual(parseDictCommandFields(line));
  });

  it("agree with the general parser for any line starting with L", () => {
    fc.assert(
      fc.property(dictText, (rest) => {
        const line = `L${rest}`;
        expect(parseDictCommand(line)).toEqual(parseDictCommandFields(line));
      }),
      { numRuns: 2000 },
    );
  });

  it("read back any key and user a Dovecot client encodes", () => {
    fc.assert(
      fc.property(dictText, dictText, (key, user) => {
        const line = encodeDictCommand({ kind: "lookup", key, user }).slice(0, -1);
        expect(parseDictCommand(line)).toEqual({ ok: true, command: { kind: "lookup", key, user } });
      }),
      { numRuns: 1000 },
    );
  });
});
