/**
 * The legacy files as one directory source: aliases(5) files and Postfix
 * virtual maps become groups, per-virtual-domain user lists become domain
 * members (hosted addresses that merge.ts hands to existing users), and the
 * domains those files declare become virtual domains. A group made from a
 * legacy alias is named by its full address (`helpdesk@cs.example.org`), so
 * it can never share a name with an LDAP group (a cn has no `@`); its source
 * is `file:line`. Logins are not known here: a bare target `jsmith` is kept
 * as the member address `jsmith@<primary domain>` and merge.ts turns it into a
 * login or a nested group. A file that cannot be read is a problem (line 0)
 * and the other files are still imported; the same alias address defined
 * twice keeps the first definition, as postmap does with duplicate keys.
 */
import { readFileSync } from "node:fs";
import { normaliseDomain } from "../core/directory/address.js";
import type { DirectoryGroup } from "../core/directory/model.js";
import {
  type DomainMember,
  type LegacyAlias,
  type LegacyProblem,
  parseAliasFile,
  parseDomainUserList,
  parseVirtualMap,
} from "./legacy-files.js";

export interface LegacySource {
  /** One group per alias, in file order. */
  groups: DirectoryGroup[];
  domainMembers: DomainMember[];
  /** Domains declared by virtual maps (`domain anything`) and by domain lists, normalised, each once. */
  virtualDomains: string[];
  problems: LegacyProblem[];
}

export interface LegacySourceOptions {
  aliasFiles: string[];
  virtualMaps: string[];
  domainLists: { domain: string; path: string }[];
  primaryDomain: string;
  /** Reads a whole file as text (also used for `:include:` files); defaults to the file system. */
  readFile?: (path: string) => string;
}

const readFromDisk = (path: string): string => readFileSync(path, "utf8");

/** Reads every configured legacy file; never throws for a missing or unreadable file. */
export function readLegacySources(options: LegacySourceOptions): LegacySource {
  const readFile = options.readFile ?? readFromDisk;
  const primary = normaliseDomain(options.primaryDomain);
  const problems: LegacyProblem[] = [];
  const groups: DirectoryGroup[] = [];
  const groupSource = new Map<string, string>();
  const virtualDomains = new Set<string>();
  const domainMembers: DomainMember[] = [];

  const read = (path: string): string | null => {
    try {
      return readFile(path);
    } catch (error) {
      problems.push({ file: path, line: 0, message: `cannot read file: ${(error as Error).message}` });
      return null;
    }
  };

  const addGroup = (alias: LegacyAlias, address: string): void => {
    const source = `${alias.file}:${alias.line}`;
    const earlier = groupSource.get(address);
    if (earlier !== undefined) {
      problems.push({
        file: alias.file,
        line: alias.line,
        message: `${address} is already defined at ${earlier}; this definition is ignored`,
      });
      return;
    }
    groupSource.set(address, source);
    groups.push({
      name: address,
      source,
      addresses: [address],
      memberLogins: [],
      memberGroups: [],
      memberAddresses: [
        ...new Set(alias.targets.map((target) => (target.includes("@") ? target : `${target}@${primary}`))),
      ],
      posting: null,
      status: "active",
    });
  };

  for (const file of options.aliasFiles) {
    const text = read(file);
    if (text === null) continue;
    const parsed = parseAliasFile(text, file, readFile);
    problems.push(...parsed.problems);
    for (const alias of parsed.entries) addGroup(alias, `${alias.name}@${primary}`);
  }

  for (const file of options.virtualMaps) {
    const text = read(file);
    if (text === null) continue;
    const { map, problems: mapProblems } = parseVirtualMap(text, file);
    problems.push(...mapProblems);
    for (const domain of map.domains) virtualDomains.add(domain);
    for (const alias of map.aliases) addGroup(alias, alias.name);
  }

  for (const { domain, path } of options.domainLists) {
    // The domain is hosted even when its list cannot be read: its members
    // are then unknown, which the safety rail and the problems list show.
    virtualDomains.add(normaliseDomain(domain));
    const text = read(path);
    if (text === null) continue;
    const parsed = parseDomainUserList(text, path, domain);
    problems.push(...parsed.problems);
    domainMembers.push(...parsed.entries);
  }

  virtualDomains.delete(primary);
  return { groups, domainMembers, virtualDomains: [...virtualDomains], problems };
}
