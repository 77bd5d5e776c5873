/**
 * Syntax check for the POSIX extended regular expressions of the Sieve
 * "regex" match type. Pigeonhole hands constant keys to glibc's regcomp()
 * with REG_EXTENDED at compile time and refuses the script when it fails;
 * this reproduces glibc's verdicts (not a matcher: the interpreter turns
 * the expression into a JavaScript RegExp separately). Linear in the
 * length of the expression; no backtracking.
 */

/** glibc's RE_DUP_MAX: larger interval bounds are "regular expression too big". */
const DUP_MAX = 0x7fff;

const CLASS_NAMES = new Set([
  "alpha",
  "upper",
  "lower",
  "digit",
  "xdigit",
  "space",
  "print",
  "punct",
  "graph",
  "cntrl",
  "blank",
  "alnum",
]);

/** null when glibc would accept `pattern`, else the reason in glibc's words. */
export function checkPosixExtendedRegex(pattern: string): string | null {
  const chars = Array.from(pattern);
  let index = 0;
  let closedGroups = 0;
  let depth = 0;
  // Whether the previous item can take a repetition operator.
  let canRepeat = false;

  while (index < chars.length) {
    const c = chars[index]!;
    switch (c) {
      case "\\": {
        const next = chars[index + 1];
        if (next === undefined) return "trailing backslash";
        if (next >= "1" && next <= "9") {
          if (Number(next) > closedGroups) return "invalid back reference";
        }
        index += 2;
        canRepeat = true;
        continue;
      }
      case "(":
        depth += 1;
        index += 1;
        canRepeat = false;
        continue;
      case ")":
        if (depth > 0) {
          depth -= 1;
          closedGroups += 1;
        }
        // An unmatched ')' is an ordinary character in glibc's ERE.
        index += 1;
        canRepeat = true;
        continue;
      case "|":
        index += 1;
        canRepeat = false;
        continue;
      case "^":
        index += 1;
        canRepeat = false;
        continue;
      case "*":
      case "+":
      case "?":
        if (!canRepeat) return "invalid preceding regular expression";
        index += 1;
        continue;
      case "{": {
        if (!canRepeat) return "invalid preceding regular expression";
        const result = interval(chars, index + 1);
        if (typeof result === "string") return result;
        index = result;
        continue;
      }
      case "[": {
        const result = bracket(chars, index + 1);
        if (typeof result === "string") return result;
        index = result;
        canRepeat = true;
        continue;
      }
      default:
        index += 1;
        canRepeat = true;
    }
  }
  if (depth > 0) return "unmatched ( or \\(";
  return null;
}

/** Parses "m}", "m,}", "m,n}" or ",n}" after '{'; returns the index after '}' or an error. */
function interval(chars: string[], start: number): number | string {
  let index = start;
  const readNumber = (): number | null => {
    let text = "";
    while (index < chars.length && chars[index]! >= "0" && chars[index]! <= "9") {
      text += chars[index];
      index += 1;
    }
    return text === "" ? null : Number(text.slice(0, 12));
  };
  const low = readNumber();
  let high: number | null = low;
  if (chars[index] === ",") {
    index += 1;
    high = readNumber();
  }
  if (index >= chars.length) return "unmatched \\{";
  if (chars[index] !== "}") return "invalid content of \\{\\}";
  index += 1;
  if ((low ?? 0) > DUP_MAX || (high ?? 0) > DUP_MAX) return "regular expression too big";
  if (high !== null && (low ?? 0) > high) return "invalid content of \\{\\}";
  return index;
}

/** Parses a bracket expression after '['; returns the index after ']' or an error. */
function bracket(chars: string[], start: number): number | string {
  const unmatched = "unmatched [, [^, [:, [., or [=";
  let index = start;
  if (chars[index] === "^") index += 1;
  let first = true;
  // The start of a possible range, or null when the last item cannot start one.
  let previous: string | null = null;
  while (index < chars.length) {
    const c = chars[index]!;
    if (c === "]" && !first) return index + 1;
    first = false;
    if (c === "[" && (chars[index + 1] === ":" || chars[index + 1] === "." || chars[index + 1] === "=")) {
      const kind = chars[index + 1]!;
      const close = findClose(chars, index + 2, kind);
      if (close < 0) return unmatched;
      const name = chars.slice(index + 2, close).join("");
      if (kind === ":" && !CLASS_NAMES.has(name)) return "invalid character class name";
      if (kind !== ":" && Array.from(name).length !== 1) return "invalid collation character";
      previous = kind === "." ? name : null;
      index = close + 2;
      continue;
    }
    if (c === "-" && previous !== null && chars[index + 1] !== undefined && chars[index + 1] !== "]") {
      let end = chars[index + 1]!;
      let next = index + 2;
      if (end === "[" && chars[index + 2] === ".") {
        const close = findClose(chars, index + 3, ".");
        if (close < 0) return unmatched;
        end = chars.slice(index + 3, close).join("");
        next = close + 2;
      } else if (end === "[" && (chars[index + 2] === ":" || chars[index + 2] === "=")) {
        return "invalid range end";
      }
      if ((end.codePointAt(0) ?? 0) < (previous.codePointAt(0) ?? 0)) return "invalid range end";
      previous = null;
      index = next;
      continue;
    }
    previous = c;
    index += 1;
  }
  return unmatched;
}

function findClose(chars: string[], from: number, kind: string): number {
  for (let index = from; index + 1 < chars.length; index += 1) {
    if (chars[index] === kind && chars[index + 1] === "]") return index;
  }
  return -1;
}
