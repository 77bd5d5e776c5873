/**
 * Writing Sieve source safely from data: quoted strings with \\ and \"
 * escaped, multi-line `text:` literals with dot-stuffing for texts that span
 * lines, string lists, and :matches patterns with * ? and \ escaped, so no
 * user-supplied value can change the structure of a generated script.
 */

/** A quoted string (one line) or a text: literal (several lines). */
export function sieveString(value: string): string {
  if (!/[\r\n]/.test(value)) return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const lines = value.replace(/\r\n?/g, "\n").split("\n");
  if (lines.at(-1) === "") lines.pop();
  // RFC 5228 2.4.2: a line starting with "." gets a second one.
  return `text:\n${lines.map((line) => (line.startsWith(".") ? `.${line}` : line)).join("\n")}\n.\n`;
}

/** A string list; a single item is written as a plain string. */
export function sieveStringList(values: readonly string[]): string {
  if (values.length === 1) return sieveString(values[0]!);
  return `[${values.map(sieveString).join(", ")}]`;
}

/** Text matched literally by :matches (RFC 5228 2.7.1: \ escapes * and ?). */
export function matchesLiteral(text: string): string {
  return text.replace(/[\\*?]/g, (c) => `\\${c}`);
}

/** `require [...]` for the extensions in first-use order, or "" when none. */
export function requireLine(extensions: Iterable<string>): string {
  const unique = [...new Set(extensions)];
  return unique.length === 0 ? "" : `require ${sieveStringList(unique)};\n`;
}

/** A one-line comment; line breaks in `text` cannot end it early. */
export function comment(text: string): string {
  return `# ${text.replace(/[\r\n]+/g, " ")}\n`;
}
