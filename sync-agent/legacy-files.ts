/**
 * Readers for the legacy files the department still keeps beside LDAP, so
 * migration can happen one file at a time: aliases(5) files (`name: a, b,
 * :include:/path`), Postfix virtual(5) maps (`address target…`) and
 * per-virtual-domain user lists. Every malformed line is reported with
 * file:line and skipped; the rest is imported. Nothing here touches the
 * network; :include: files are read through an injected function.
 */
import { normaliseAddress, normaliseDomain } from "../core/directory/address.js";

export interface LegacyProblem {
  file: string;
  line: number;
  message: string;
}

export interface LegacyAlias {
  /** Local part (aliases files) or full address (virtual maps), lower case. */
  name: string;
  /** Targets: addresses, or bare local names meaning the primary domain. */
  targets: string[];
  file: string;
  line: number;
}

export interface LegacyParse<T> {
  entries: T[];
  problems: LegacyProblem[];
}

interface LogicalLine {
  text: string;
  line: number;
}

/** Joins continuation lines (starting with white space) and drops comments and blank lines, as Postfix does. */
function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!.replace(/\r$/, "");
    if (/^\s*#/.test(raw) || raw.trim() === "") continue;
    const last = out[out.length - 1];
    if (/^\s/.test(raw) && last !== undefined) last.text += ` ${raw.trim()}`;
    else out.push({ text: raw.trim(), line: index + 1 });
  }
  return out;
}

const localNamePattern = /^[a-z0-9][a-z0-9._+-]*$/;

/** A target is an address or a bare local name; anything else is reported. */
function parseTarget(raw: string): string | { problem: string } {
  const value = raw.trim();
  if (value.startsWith("|")) return { problem: `command target "${value.slice(0, 40)}" is not supported` };
  if (value.startsWith("/")) return { problem: `file target "${value.slice(0, 40)}" is not supported` };
  if (value.includes("@")) {
    const address = normaliseAddress(value);
    return address ?? { problem: `"${value.slice(0, 60)}" is not a valid address` };
  }
  const name = value.toLowerCase();
  return localNamePattern.test(name)
    ? name
    : { problem: `"${value.slice(0, 60)}" is not a valid local name` };
}

export type IncludeReader = (path: string) => string;

/** Parses an aliases(5) file. `:include:` lists are read with `readInclude` (one or more targets a line). */
export function parseAliasFile(
  text: string,
  file: string,
  readInclude: IncludeReader,
): LegacyParse<LegacyAlias> {
  const entries: LegacyAlias[] = [];
  const problems: LegacyProblem[] = [];
  for (const { text: entry, line } of logicalLines(text)) {
    const colon = entry.indexOf(":");
    if (colon <= 0) {
      problems.push({ file, line, message: "expected 'name: target, …'" });
      continue;
    }
    const name = entry.slice(0, colon).trim().toLowerCase().replace(/^"|"$/g, "");
    if (!localNamePattern.test(name)) {
      problems.push({ file, line, message: `"${name.slice(0, 60)}" is not a valid alias name` });
      continue;
    }
    const targets: string[] = [];
    for (const part of splitTargets(entry.slice(colon + 1))) {
      if (part.startsWith(":include:")) {
        const path = part.slice(":include:".length).trim();
        let included: string;
        try {
          included = readInclude(path);
        } catch (error) {
          problems.push({
            file,
            line,
            message: `cannot read include file ${path}: ${(error as Error).message}`,
          });
          continue;
        }
        for (const { text: includedLine, line: includedNumber } of logicalLines(included)) {
          for (const target of splitTargets(includedLine)) {
            const parsed = parseTarget(target);
            if (typeof parsed === "string") targets.push(parsed);
            else problems.push({ file: path, line: includedNumber, message: parsed.problem });
          }
        }
        continue;
      }
      const parsed = parseTarget(part);
      if (typeof parsed === "string") targets.push(parsed);
      else problems.push({ file, line, message: parsed.problem });
    }
    if (targets.length === 0) {
      problems.push({ file, line, message: `alias "${name}" has no usable target` });
      continue;
    }
    entries.push({ name, targets: [...new Set(targets)], file, line });
  }
  return { entries, problems };
}

function splitTargets(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

export interface VirtualMap {
  aliases: LegacyAlias[];
  /** Domains declared by `domain anything` lines (virtual alias domains). */
  domains: string[];
}

/** Parses a Postfix virtual(5) map: `address target…`; `domain anything` declares a domain. */
export function parseVirtualMap(text: string, file: string): { map: VirtualMap; problems: LegacyProblem[] } {
  const map: VirtualMap = { aliases: [], domains: [] };
  const problems: LegacyProblem[] = [];
  for (const { text: entry, line } of logicalLines(text)) {
    const [pattern = "", ...rest] = splitTargets(entry);
    if (rest.length === 0) {
      problems.push({ file, line, message: `"${pattern.slice(0, 60)}" has no target` });
      continue;
    }
    if (!pattern.includes("@")) {
      map.domains.push(normaliseDomain(pattern));
      continue;
    }
    if (pattern.startsWith("@")) {
      problems.push({
        file,
        line,
        message: `catch-all "${pattern.slice(0, 60)}" is not supported: it would make every address valid`,
      });
      continue;
    }
    const name = normaliseAddress(pattern);
    if (name === null) {
      problems.push({ file, line, message: `"${pattern.slice(0, 60)}" is not a valid address` });
      continue;
    }
    const targets: string[] = [];
    for (const part of rest) {
      const parsed = parseTarget(part);
      if (typeof parsed === "string") targets.push(parsed);
      else problems.push({ file, line, message: parsed.problem });
    }
    if (targets.length > 0) map.aliases.push({ name, targets: [...new Set(targets)], file, line });
  }
  return { map, problems };
}

export interface DomainMember {
  /** The member's address in the hosted domain. */
  address: string;
  /** The login it belongs to. */
  login: string;
  file: string;
  line: number;
}

/**
 * Parses a per-virtual-domain user list: one member a line, `local-part
 * login` or `address login`; a line with only a name means the local part
 * is the login.
 */
export function parseDomainUserList(text: string, file: string, domain: string): LegacyParse<DomainMember> {
  const entries: DomainMember[] = [];
  const problems: LegacyProblem[] = [];
  const hosted = normaliseDomain(domain);
  for (const { text: entry, line } of logicalLines(text)) {
    const [first = "", login, ...extra] = splitTargets(entry);
    if (extra.length > 0) {
      problems.push({ file, line, message: "expected 'address [login]'" });
      continue;
    }
    const address = normaliseAddress(first.includes("@") ? first : `${first}@${hosted}`);
    if (address === null || !address.endsWith(`@${hosted}`)) {
      problems.push({ file, line, message: `"${first.slice(0, 60)}" is not an address in ${hosted}` });
      continue;
    }
    const owner = (login ?? address.slice(0, address.lastIndexOf("@"))).toLowerCase();
    if (!localNamePattern.test(owner)) {
      problems.push({ file, line, message: `"${owner.slice(0, 60)}" is not a valid login` });
      continue;
    }
    entries.push({ address, login: owner, file, line });
  }
  return { entries, problems };
}
