/**
 * What happens inside Sieve strings before a command sees them:
 * encoded-character substitutions (RFC 5228 2.4.2.4, "${hex:…}" and
 * "${unicode:…}") and variable references (RFC 5229, "${name}",
 * "${1}", "${ns.name}"). The validator uses these to tell constant strings
 * (checked at compile time, as Pigeonhole does) from strings whose value is
 * only known when the script runs; the interpreter uses them to expand.
 */

export interface EncodedCharacterProblem {
  message: string;
}

const ENCODED = /\$\{(hex|unicode):([ \t\r\n]*)([0-9a-f]+(?:[ \t\r\n]+[0-9a-f]+)*)[ \t\r\n]*\}/gi;

/**
 * Replaces encoded characters. A sequence that does not match the grammar
 * stays as written (RFC 5228); a Unicode value outside the character range
 * is reported, like Pigeonhole does, and left as written.
 */
export function decodeEncodedCharacters(
  value: string,
  report: (problem: EncodedCharacterProblem) => void,
): string {
  if (!value.includes("${")) return value;
  return value.replace(ENCODED, (whole: string, kind: string, _blank: string, digits: string) => {
    const groups = digits.split(/[ \t\r\n]+/);
    if (kind.toLowerCase() === "hex") {
      if (groups.some((group) => group.length > 2)) return whole;
      const bytes = Uint8Array.from(groups.map((group) => Number.parseInt(group, 16)));
      return new TextDecoder("utf-8").decode(bytes);
    }
    let text = "";
    for (const group of groups) {
      const code = group.length > 8 ? Number.POSITIVE_INFINITY : Number.parseInt(group, 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        const shown = Number.isFinite(code) ? `0x${code.toString(16).padStart(8, "0")}` : group;
        report({ message: `invalid Unicode character ${shown} in an encoded-character substitution` });
        return whole;
      }
      text += String.fromCodePoint(code);
    }
    return text;
  });
}

export interface VariableReference {
  /** Offset of "${" in the string and length up to and including "}". */
  start: number;
  length: number;
  /** Namespace parts before the name ("env" in ${env.name}); empty for plain variables. */
  namespace: string[];
  /** Lower-cased name, or the digits of a match variable. */
  name: string;
  matchIndex: number | null;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Pigeonhole's EXT_VARIABLES_MAX_VARIABLE_NAME_LEN. */
export const MAX_VARIABLE_NAME_LENGTH = 64;
/** Pigeonhole's EXT_VARIABLES_MAX_MATCH_INDEX. */
export const MAX_MATCH_INDEX = 32;

/** The variable references in a string; text that is not a valid reference is not one (RFC 5229 3). */
export function findVariableReferences(value: string): VariableReference[] {
  const references: VariableReference[] = [];
  let from = 0;
  for (;;) {
    const start = value.indexOf("${", from);
    if (start < 0) break;
    const end = value.indexOf("}", start + 2);
    if (end < 0) break;
    const body = value.slice(start + 2, end);
    const parsed = parseVariableName(body);
    if (parsed === null) {
      from = start + 2;
      continue;
    }
    references.push({ start, length: end + 1 - start, ...parsed });
    from = end + 1;
  }
  return references;
}

/** Splits "ns.name", "name" or "12"; null when it is not a variable name. */
export function parseVariableName(
  text: string,
): { namespace: string[]; name: string; matchIndex: number | null } | null {
  if (/^[0-9]+$/.test(text)) {
    return { namespace: [], name: text, matchIndex: Number(text.slice(0, 10)) };
  }
  const parts = text.split(".");
  if (parts.some((part) => !IDENTIFIER.test(part))) return null;
  const name = parts.pop()!;
  return { namespace: parts.map((part) => part.toLowerCase()), name: name.toLowerCase(), matchIndex: null };
}

/** A name `set` (and the other assigning commands) may assign to. */
export function isAssignableName(text: string): boolean {
  return IDENTIFIER.test(text) && text.length <= MAX_VARIABLE_NAME_LENGTH;
}

/** Escapes the characters :matches gives meaning to (set :quotewildcard). */
export function quoteWildcards(text: string): string {
  return text.replace(/[*?\\]/g, (c) => `\\${c}`);
}
