/**
 * Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and
 * match types (:is, :contains, :matches with its wildcards and match
 * variables, :regex, relational :value and :count) for the interpreter.
 * i;ascii-casemap folds ASCII letters only, as the RFC says; :matches is
 * leftmost and shortest for each '*' (what Pigeonhole does), and a POSIX
 * extended expression is translated to a JavaScript RegExp.
 */

import { checkPosixExtendedRegex } from "./posix-regex.js";

export type Comparator = "i;octet" | "i;ascii-casemap" | "i;ascii-numeric";
export type RelationalOperator = "gt" | "ge" | "lt" | "le" | "eq" | "ne";
export type MatchType =
  | { kind: "is" }
  | { kind: "contains" }
  | { kind: "matches" }
  | { kind: "regex" }
  | { kind: "value"; operator: RelationalOperator }
  | { kind: "count"; operator: RelationalOperator };

export interface MatchOutcome {
  matched: boolean;
  /** ${0}, ${1}, … for :matches and :regex; null otherwise. */
  captures: string[] | null;
}

const NO_MATCH: MatchOutcome = { matched: false, captures: null };

export function foldAscii(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function numericValue(text: string): number | null {
  const digits = /^[0-9]+/.exec(text);
  if (digits === null) return null;
  const trimmed = digits[0].replace(/^0+(?=.)/, "");
  // Beyond 2^53 ordering by length then text keeps exact comparisons.
  return trimmed.length > 15 ? Number.parseFloat(trimmed) : Number(trimmed);
}

/** -1, 0 or 1 under the comparator's ordering. */
export function compare(left: string, right: string, comparator: Comparator): number {
  if (comparator === "i;ascii-numeric") {
    const a = numericValue(left);
    const b = numericValue(right);
    // RFC 4790 9.1: a string not starting with a digit is positive infinity.
    if (a === null || b === null) return a === null && b === null ? 0 : a === null ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const a = comparator === "i;ascii-casemap" ? foldAscii(left) : left;
  const b = comparator === "i;ascii-casemap" ? foldAscii(right) : right;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function relation(order: number, operator: RelationalOperator): boolean {
  switch (operator) {
    case "gt":
      return order > 0;
    case "ge":
      return order >= 0;
    case "lt":
      return order < 0;
    case "le":
      return order <= 0;
    case "eq":
      return order === 0;
    case "ne":
      return order !== 0;
    default: {
      const unreachable: never = operator;
      throw new Error(`unknown operator ${String(unreachable)}`);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The :matches pattern as an anchored RegExp source; \ escapes the next character. */
function wildcardSource(pattern: string): string {
  let source = "";
  const chars = Array.from(pattern);
  for (let index = 0; index < chars.length; index += 1) {
    const c = chars[index]!;
    if (c === "\\" && index + 1 < chars.length) {
      source += escapeRegExp(chars[index + 1]!);
      index += 1;
    } else if (c === "*") source += "([\\s\\S]*?)";
    else if (c === "?") source += "([\\s\\S])";
    else source += escapeRegExp(c);
  }
  return `^${source}$`;
}

const CLASS_SOURCE: Record<string, string> = {
  alpha: "a-zA-Z",
  upper: "A-Z",
  lower: "a-z",
  digit: "0-9",
  xdigit: "0-9A-Fa-f",
  space: " \\t\\r\\n\\v\\f",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  alnum: "a-zA-Z0-9",
};

/**
 * POSIX ERE to JavaScript RegExp source, or null when the expression is not
 * valid ERE (a key built from variables is only known at run time).
 */
export function posixToJavaScript(pattern: string): string | null {
  if (checkPosixExtendedRegex(pattern) !== null) return null;
  let out = "";
  const chars = Array.from(pattern);
  let depth = 0;
  for (let index = 0; index < chars.length; index += 1) {
    const c = chars[index]!;
    if (c === "\\") {
      const next = chars[index + 1] ?? "";
      index += 1;
      if (/[1-9wWsSbB]/.test(next)) out += `\\${next}`;
      else if (next === "<") out += "\\b(?=\\w)";
      else if (next === ">") out += "\\b(?<=\\w)";
      else out += escapeRegExp(next);
      continue;
    }
    if (c === "[") {
      let body = "";
      let position = index + 1;
      if (chars[position] === "^") {
        body += "^";
        position += 1;
      }
      if (chars[position] === "]") {
        body += "\\]";
        position += 1;
      }
      while (position < chars.length && chars[position] !== "]") {
        const d = chars[position]!;
        if (
          d === "[" &&
          (chars[position + 1] === ":" || chars[position + 1] === "." || chars[position + 1] === "=")
        ) {
          const kind = chars[position + 1]!;
          const close = chars.indexOf(kind, position + 2);
          if (close < 0) return null;
          const name = chars.slice(position + 2, close).join("");
          body += kind === ":" ? (CLASS_SOURCE[name] ?? "") : escapeRegExp(name);
          position = close + 2;
          continue;
        }
        body += d === "\\" || d === "[" ? `\\${d}` : d;
        position += 1;
      }
      out += `[${body}]`;
      index = position;
      continue;
    }
    if (c === "(") depth += 1;
    if (c === ")") {
      if (depth === 0) {
        out += "\\)";
        continue;
      }
      depth -= 1;
    }
    if (c === "{") {
      const close = chars.indexOf("}", index);
      if (close < 0) return null;
      const interval = chars.slice(index, close + 1).join("");
      out += interval.startsWith("{,") ? `{0${interval.slice(1)}` : interval;
      index = close;
      continue;
    }
    out += c === "/" || c === "}" || c === "]" ? `\\${c}` : c;
  }
  return out;
}

const regexCache = new Map<string, RegExp | null>();

function cachedRegExp(source: string, flags: string): RegExp | null {
  const key = `${flags}/${source}`;
  let regex = regexCache.get(key);
  if (regex === undefined) {
    try {
      regex = new RegExp(source, flags);
    } catch {
      regex = null;
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(key, regex);
  }
  return regex;
}

/** Matches one value against one key. Regex keys that JavaScript cannot compile never match. */
export function matchOne(
  value: string,
  key: string,
  matchType: MatchType,
  comparator: Comparator,
): MatchOutcome {
  switch (matchType.kind) {
    case "is":
      return { matched: compare(value, key, comparator) === 0, captures: null };
    case "contains":
      return comparator === "i;ascii-casemap"
        ? { matched: foldAscii(value).includes(foldAscii(key)), captures: null }
        : { matched: value.includes(key), captures: null };
    case "value":
      return { matched: relation(compare(value, key, comparator), matchType.operator), captures: null };
    case "count":
      throw new Error(":count compares a count, not a value");
    case "matches": {
      const casemap = comparator === "i;ascii-casemap";
      const regex = cachedRegExp(wildcardSource(casemap ? foldAscii(key) : key), "du");
      if (regex === null) return NO_MATCH;
      const match = regex.exec(casemap ? foldAscii(value) : value);
      if (match === null) return NO_MATCH;
      // Captures come from the original value (ASCII folding keeps offsets).
      const captures = (match.indices ?? []).map((range) =>
        range === undefined ? "" : value.slice(range[0], range[1]),
      );
      return { matched: true, captures };
    }
    case "regex": {
      const source = posixToJavaScript(key);
      const regex =
        source === null ? null : cachedRegExp(source, comparator === "i;ascii-casemap" ? "iu" : "u");
      if (regex === null) return NO_MATCH;
      const match = regex.exec(value);
      return match === null ? NO_MATCH : { matched: true, captures: match.map((group) => group ?? "") };
    }
    default: {
      const unreachable: never = matchType;
      throw new Error(`unknown match type ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Any value against any key (RFC 5228 2.7.1); :count compares the number of values. */
export function matchAny(
  values: readonly string[],
  keys: readonly string[],
  matchType: MatchType,
  comparator: Comparator,
): MatchOutcome {
  if (matchType.kind === "count") {
    const count = String(values.length);
    const matched = keys.some((key) => relation(compare(count, key, comparator), matchType.operator));
    return { matched, captures: null };
  }
  for (const value of values) {
    for (const key of keys) {
      const outcome = matchOne(value, key, matchType, comparator);
      if (outcome.matched) return outcome;
    }
  }
  return NO_MATCH;
}
