/**
 * A reader for LDIF content files (RFC 2849), so the embedded default can
 * build a directory from an LDIF export (the sample directory, a slapcat dump)
 * with no LDAP server. Entries come out in the same shape ldapts returns, and
 * are split into users and groups by search base, the way a live search
 * would find them; the mapping's LDAP filters apply only to live searches.
 */
import type { Directory, DomainSet } from "../directory/model.js";
import { convertEntries, type LdapMapping, normaliseDn, type RawEntry } from "./mapping.js";

export interface LdifProblem {
  line: number;
  message: string;
}

export interface LdifParse {
  entries: RawEntry[];
  problems: LdifProblem[];
}

/** Parses LDIF content records; change records and URL values are reported and skipped. */
export function parseLdif(text: string): LdifParse {
  const entries: RawEntry[] = [];
  const problems: LdifProblem[] = [];
  // Unfold continuation lines (a line starting with one space continues the previous one).
  const logical: Array<{ text: string; line: number }> = [];
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!.replace(/\r$/, "");
    const last = logical[logical.length - 1];
    if (raw.startsWith(" ") && last !== undefined && last.text !== "") last.text += raw.slice(1);
    else logical.push({ text: raw, line: index + 1 });
  }

  let current: RawEntry | null = null;
  let broken = false;
  const finish = (): void => {
    if (current !== null && !broken) entries.push(current);
    current = null;
    broken = false;
  };
  for (const { text: entryLine, line } of logical) {
    if (entryLine === "") {
      finish();
      continue;
    }
    if (entryLine.startsWith("#")) continue;
    const colon = entryLine.indexOf(":");
    if (colon <= 0) {
      problems.push({ line, message: "expected 'attribute: value'" });
      broken = true;
      continue;
    }
    const name = entryLine.slice(0, colon);
    let value: string;
    if (entryLine[colon + 1] === ":") {
      value = Buffer.from(entryLine.slice(colon + 2).trim(), "base64").toString("utf8");
    } else if (entryLine[colon + 1] === "<") {
      problems.push({ line, message: `URL value for ${name} is not supported` });
      broken = true;
      continue;
    } else {
      value = entryLine.slice(colon + 1).replace(/^ /, "");
    }
    if (current === null) {
      if (name.toLowerCase() === "version") continue;
      if (name.toLowerCase() !== "dn") {
        problems.push({ line, message: `entry must start with dn:, found ${name}:` });
        broken = true;
        current = { dn: "" };
        continue;
      }
      current = { dn: value };
      continue;
    }
    if (name.toLowerCase() === "changetype") {
      problems.push({ line, message: "change records are not supported in a content file" });
      broken = true;
      continue;
    }
    const existing = current[name];
    if (Array.isArray(existing)) existing.push(value);
    else current[name] = [value];
  }
  finish();
  return { entries, problems };
}

function isUnder(dn: string, base: string): boolean {
  const entry = normaliseDn(dn);
  const suffix = normaliseDn(base);
  return entry !== suffix && entry.endsWith(`,${suffix}`);
}

/** Splits entries into users and groups by the mapping's search bases. */
export function classifyEntries(
  entries: RawEntry[],
  mapping: LdapMapping,
): { users: RawEntry[]; groups: RawEntry[] } {
  const users: RawEntry[] = [];
  const groups: RawEntry[] = [];
  for (const entry of entries) {
    if (isUnder(entry.dn, mapping.users.base)) users.push(entry);
    else if (isUnder(entry.dn, mapping.groups.base)) groups.push(entry);
  }
  return { users, groups };
}

/** Builds a directory from LDIF text with a mapping: the embedded default's source. */
export function directoryFromLdif(
  text: string,
  mapping: LdapMapping,
  domains: DomainSet,
): { directory: Directory; problems: string[] } {
  const parsed = parseLdif(text);
  const { users, groups } = classifyEntries(parsed.entries, mapping);
  const converted = convertEntries(users, groups, mapping, domains);
  const problems = [
    ...parsed.problems.map((problem) => `line ${problem.line}: ${problem.message}`),
    ...converted.problems.map((problem) => `${problem.dn}: ${problem.message}`),
  ];
  return { directory: { users: converted.users, groups: converted.groups, domains }, problems };
}
