// Renders the snippets in deploy/ for a test: production paths, host names
// and ports are replaced, nothing else. Every replacement must find its
// text, so when a snippet changes the test fails instead of silently running
// an older form of it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The text of a file under deploy/, e.g. "postfix/relay-main.cf". */
export function deployFile(relativePath: string): string {
  return readFileSync(fileURLToPath(new URL(`../../deploy/${relativePath}`, import.meta.url)), "utf8");
}

/** Replaces every occurrence of each `from`; throws naming any `from` that does not occur. */
export function substitute(text: string, replacements: readonly (readonly [string, string])[]): string {
  let result = text;
  for (const [from, to] of replacements) {
    if (!result.includes(from)) throw new Error(`deploy snippet no longer contains ${JSON.stringify(from)}`);
    result = result.split(from).join(to);
  }
  return result;
}

/**
 * main.cf text as name → value, the way Postfix reads it: "#" lines and
 * blank lines skipped, a line starting with whitespace continues the value
 * before it. Values are joined with one space.
 */
export function parseMainCf(text: string): Record<string, string> {
  const settings: Record<string, string> = {};
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line) || line.trim() === "") {
      current = undefined;
      continue;
    }
    if (/^\s/.test(line)) {
      if (current === undefined) throw new Error(`main.cf continuation line without a parameter: ${line}`);
      settings[current] = `${settings[current]} ${line.trim()}`.trim();
      continue;
    }
    const match = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (match === null) throw new Error(`not a main.cf line: ${line}`);
    const [, name = "", value = ""] = match;
    current = name;
    settings[name] = value.trim();
  }
  return settings;
}

/** master.cf text as service entries: each first line with its "-o" continuation lines; comments skipped. */
export function masterEntries(text: string): { key: string; lines: string[] }[] {
  const entries: { key: string; lines: string[] }[] = [];
  for (const line of text.split("\n")) {
    if (/^\s*(#|$)/.test(line)) continue;
    const last = entries.at(-1);
    if (/^\s/.test(line) && last !== undefined) last.lines.push(line);
    else {
      const [service, type] = line.split(/\s+/);
      entries.push({ key: `${service}/${type}`, lines: [line] });
    }
  }
  return entries;
}

/** One master.cf service entry, e.g. ("submission", "inet"), as text. */
export function masterEntry(text: string, service: string, type: string): string {
  const entry = masterEntries(text).find((candidate) => candidate.key === `${service}/${type}`);
  if (entry === undefined) throw new Error(`master.cf snippet has no "${service} ${type}" entry`);
  return entry.lines.join("\n");
}
