/**
 * One sync: read the sources, build one directory, check it, publish it.
 *
 *   LDAP (full, or the entries changed since the last watermark applied to
 *   the cached LDAP part) + legacy files → merge (precedence from config) →
 *   conflict report → diff against the published snapshot → safety rail →
 *   atomic snapshot write → optional Postfix map and passwd-file exports.
 *
 * Nothing is published unless every step succeeded: an LDAP error, an
 * unreadable previous state or a refused safety check leaves the current
 * snapshot (and the exports built from it) exactly as they were. The LDAP
 * part of the directory is cached beside the snapshot (`<snapshot>.ldap`,
 * same format) so an incremental sync can apply changes without a full
 * search; the cache carries the watermark the next incremental starts from.
 */
import { existsSync } from "node:fs";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import type {
  Directory,
  DirectoryGroup,
  DirectoryUser,
  DomainSet,
  ResolverOptions,
} from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import {
  contentHash,
  readSnapshot,
  type Snapshot,
  type SnapshotMeta,
  type SourceSummary,
  writeSnapshot,
} from "../core/directory/snapshot-store.js";
import { connectLdap, ldapConnectOptionsFromConfig } from "../core/ldap/client.js";
import { applyChanges } from "../core/ldap/incremental.js";
import { mappingFromConfig } from "../core/ldap/mapping.js";
import { fetchChanges, fetchDirectory } from "../core/ldap/source.js";
import type { Logger } from "../core/log/logger.js";
import { type Conflict, findConflicts } from "./conflicts.js";
import { type DirectoryDiff, diffDirectories, safetyCheck } from "./diff.js";
import { exportPasswdFile, exportPostfixMaps } from "./export.js";
import { type LegacySource, readLegacySources } from "./legacy-source.js";
import { mergeSources } from "./merge.js";

export type SyncMode = "full" | "incremental";

export interface SyncOptions {
  config: DeepReadonly<Config>;
  mode: SyncMode;
  dryRun: boolean;
  /** Publish even when the safety rail would refuse. */
  force: boolean;
  log: Logger;
  now?: Date;
}

/** Something a source or the merge could not take, reported and skipped. */
export interface SyncProblem {
  source: string;
  message: string;
}

interface SyncReport {
  mode: SyncMode;
  /** What was actually done for LDAP: an incremental falls back to full without a usable cache. */
  ldap: "full" | "incremental" | "none";
  sources: SourceSummary[];
  problems: SyncProblem[];
  conflicts: Conflict[];
  diff: DirectoryDiff;
  /** The directory that was (or would have been) published. */
  directory: Directory;
}

export type SyncOutcome =
  | ({ status: "published"; meta: SnapshotMeta } & SyncReport)
  | ({ status: "unchanged"; meta: SnapshotMeta } & SyncReport)
  | ({ status: "dry-run"; refusal: string | null } & SyncReport)
  | ({ status: "refused"; refusal: string } & SyncReport);

export class SyncConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SyncConfigError";
  }
}

export function domainsFromConfig(config: DeepReadonly<Config>): DomainSet {
  const directory = config.directory;
  if (directory.primary_domain === "") {
    throw new SyncConfigError(
      "directory.primary_domain is not set: sync needs the department domain (e.g. cs.example.org)",
    );
  }
  return {
    primary: directory.primary_domain,
    aliasDomains: [...directory.alias_domains],
    virtualDomains: [...directory.virtual_domains],
  };
}

export function resolverOptionsFromConfig(config: DeepReadonly<Config>): ResolverOptions {
  return {
    recipientDelimiters: config.directory.recipient_delimiter,
    maxExpansion: config.directory.max_expansion,
    maxDepth: config.directory.max_depth,
  };
}

export function ldapCachePath(config: DeepReadonly<Config>): string {
  return `${config.snapshot.path}.ldap`;
}

function readIfUsable(path: string, what: string, log: Logger): Snapshot | null {
  if (!existsSync(path)) return null;
  try {
    return readSnapshot(path);
  } catch (error) {
    log.warn({ path, err: error }, `${what} is unreadable; building without it`);
    return null;
  }
}

/** The greater of two LDAP GeneralizedTime values (fractions and zone suffix compared as written). */
function laterWatermark(a: string | null | undefined, b: string | null | undefined): string | null {
  if (a == null) return b ?? null;
  if (b == null) return a;
  return a >= b ? a : b;
}

interface LdapPart {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  watermark: string | null;
  kind: "full" | "incremental";
  summary: SourceSummary;
  problems: SyncProblem[];
}

async function readLdap(
  config: DeepReadonly<Config>,
  domains: DomainSet,
  mode: SyncMode,
  log: Logger,
): Promise<LdapPart> {
  const mapping = mappingFromConfig(config.ldap);
  const attribute = config.sync.modify_timestamp;
  const cached = mode === "incremental" ? readIfUsable(ldapCachePath(config), "the LDAP cache", log) : null;
  const connection = await connectLdap(await ldapConnectOptionsFromConfig(config));
  try {
    if (cached !== null && cached.meta.watermark !== undefined) {
      const changes = await fetchChanges(connection, mapping, domains, attribute, cached.meta.watermark);
      const applied = applyChanges(
        cached.directory,
        changes.userEntries,
        changes.groupEntries,
        mapping,
        domains,
      );
      log.debug(
        {
          users: changes.userEntries.length,
          groups: changes.groupEntries.length,
          since: cached.meta.watermark,
        },
        "LDAP entries changed since the last sync",
      );
      return {
        users: applied.users,
        groups: applied.groups,
        watermark: laterWatermark(cached.meta.watermark, changes.watermark),
        kind: "incremental",
        summary: {
          name: "ldap",
          users: applied.users.length,
          groups: applied.groups.length,
          skipped: applied.problems.filter((problem) => problem.skipped).length,
        },
        problems: applied.problems.map((problem) => ({ source: problem.dn, message: problem.message })),
      };
    }
    const fetched = await fetchDirectory(connection, mapping, domains, attribute);
    return {
      users: fetched.users,
      groups: fetched.groups,
      watermark: fetched.watermark,
      kind: "full",
      summary: {
        name: "ldap",
        users: fetched.users.length,
        groups: fetched.groups.length,
        skipped: fetched.problems.filter((problem) => problem.skipped).length,
      },
      problems: fetched.problems.map((problem) => ({ source: problem.dn, message: problem.message })),
    };
  } finally {
    await connection.close();
  }
}

function readLegacy(config: DeepReadonly<Config>, domains: DomainSet): LegacySource | null {
  const legacy = config.sync.legacy;
  if (legacy.alias_files.length + legacy.virtual_maps.length + legacy.domain_lists.length === 0) return null;
  return readLegacySources({
    aliasFiles: [...legacy.alias_files],
    virtualMaps: [...legacy.virtual_maps],
    domainLists: legacy.domain_lists.map((list) => ({ domain: list.domain, path: list.path })),
    primaryDomain: domains.primary,
  });
}

/** Runs one sync. Throws (publishing nothing) when a source fails; returns what happened otherwise. */
export async function runSync(options: SyncOptions): Promise<SyncOutcome> {
  const { config, log } = options;
  const domains = domainsFromConfig(config);
  const resolverOptions = resolverOptionsFromConfig(config);

  const ldap = config.ldap.urls.length > 0 ? await readLdap(config, domains, options.mode, log) : null;
  const legacy = readLegacy(config, domains);
  if (ldap === null && legacy === null) {
    throw new SyncConfigError("no source configured: set ldap.urls and/or files in [sync.legacy]");
  }
  const merged = mergeSources({
    ldap: ldap === null ? null : { users: ldap.users, groups: ldap.groups },
    legacy,
    precedence: [...config.sync.precedence],
    domains,
  });
  const directory = merged.directory;

  const sources: SourceSummary[] = [];
  const problems: SyncProblem[] = [];
  if (ldap !== null) {
    sources.push(ldap.summary);
    problems.push(...ldap.problems);
  }
  if (legacy !== null) {
    sources.push({ name: "legacy", users: 0, groups: legacy.groups.length, skipped: legacy.problems.length });
    for (const problem of legacy.problems) {
      problems.push({ source: `${problem.file}:${problem.line}`, message: problem.message });
    }
  }
  for (const problem of merged.problems) problems.push({ source: problem.source, message: problem.message });

  const previous = readIfUsable(config.snapshot.path, "the published snapshot", log);
  const report: SyncReport = {
    mode: options.mode,
    ldap: ldap === null ? "none" : ldap.kind,
    sources,
    problems,
    conflicts: findConflicts(directory, resolverOptions),
    diff: diffDirectories(previous?.directory ?? null, directory),
    directory,
  };
  const safety = safetyCheck(previous?.directory ?? null, directory, config.sync.max_drop_percent);
  const refusal = safety.ok ? null : safety.message;

  if (options.dryRun) return { status: "dry-run", refusal, ...report };
  if (refusal !== null && !options.force) return { status: "refused", refusal, ...report };
  if (refusal !== null) log.warn({ refusal }, "safety rail overridden with --force");

  const watermark = ldap?.watermark ?? undefined;
  const now = options.now ?? new Date();
  const writeCache = () => {
    if (ldap === null) return;
    writeSnapshot(
      ldapCachePath(config),
      { users: ldap.users, groups: ldap.groups, domains },
      {
        version: (previous?.meta.version ?? 0) + 1,
        view: "internal",
        sources: [ldap.summary],
        now,
        ...(watermark === undefined ? {} : { watermark }),
      },
    );
  };

  if (previous !== null && contentHash(directory) === previous.meta.contentHash) {
    writeCache();
    return { status: "unchanged", meta: previous.meta, ...report };
  }

  const meta = writeSnapshot(config.snapshot.path, directory, {
    version: (previous?.meta.version ?? 0) + 1,
    view: "internal",
    sources,
    now,
    ...(watermark === undefined ? {} : { watermark }),
  });
  writeCache();
  await exportAfterPublish(config, directory, meta.version, resolverOptions, log);
  return { status: "published", meta, ...report };
}

async function exportAfterPublish(
  config: DeepReadonly<Config>,
  directory: Directory,
  version: number,
  resolverOptions: ResolverOptions,
  log: Logger,
): Promise<void> {
  const exports = config.sync.export;
  if (exports.directory !== "") {
    const result = await exportPostfixMaps(directory, new Resolver(directory, resolverOptions), {
      directory: exports.directory,
      mapType: exports.map_type,
      postmapCommand: exports.postmap_command,
      ...(exports.postfix_config_directory === ""
        ? {}
        : { postfixConfigDirectory: exports.postfix_config_directory }),
      snapshotVersion: version,
    });
    for (const problem of result.problems) log.warn({ problem }, "address left out of the Postfix maps");
    log.info(
      { maps: result.maps.map((map) => ({ name: map.name, entries: map.entries })) },
      "Postfix map files exported",
    );
  }
  if (exports.passwd_file !== "") {
    const result = exportPasswdFile(directory, exports.passwd_file, { snapshotVersion: version });
    for (const problem of result.problems) log.warn({ problem }, "user left out of the passwd-file");
    log.info({ path: result.path, users: result.users }, "Dovecot passwd-file exported");
  }
}
