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
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
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
  readSnapshotMeta,
  type Snapshot,
  type SnapshotMeta,
  type SourceSummary,
  touchSnapshot,
  writeSnapshot,
} from "../core/directory/snapshot-store.js";
import { connectLdap, ldapConnectOptionsFromConfig } from "../core/ldap/client.js";
import { applyChanges } from "../core/ldap/incremental.js";
import { type LdapMapping, mappingFromConfig } from "../core/ldap/mapping.js";
import {
  fetchChanges,
  fetchDirectory,
  greatestTimestamp,
  laterTimestamp,
  parseGeneralizedTime,
} from "../core/ldap/source.js";
import type { Logger } from "../core/log/logger.js";
import { type Conflict, findConflicts } from "./conflicts.js";
import { type DirectoryDiff, diffDirectories, safetyCheck } from "./diff.js";
import { exportPasswdFile, exportPostfixMaps } from "./export.js";
import { type LegacySource, readLegacySources } from "./legacy-source.js";
import { mergeSources } from "./merge.js";

export type SyncMode = "full" | "incremental";

/**
 * How long after a watermark second the LDAP cache must have been written for
 * the entries stamped in that second to count as already seen. Covers a
 * second of clock difference between slapd and this host.
 */
const SETTLE_MS = 2_000;

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
  /** Null when nothing changed and the conflicts were not recomputed (incremental fast path). */
  conflicts: Conflict[] | null;
  diff: DirectoryDiff;
  /** Size of the directory that was (or would have been) published. */
  counts: { users: number; groups: number };
}

export type SyncOutcome =
  | ({ status: "published"; meta: SnapshotMeta } & SyncReport)
  | ({ status: "unchanged"; meta: SnapshotMeta } & SyncReport)
  | ({ status: "dry-run"; refusal: string | null } & SyncReport)
  | ({ status: "refused"; refusal: string } & SyncReport);

/** A source could not be read completely; nothing was published. */
export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SourceError";
  }
}

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

interface LdapPart {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  watermark: string | null;
  kind: "full" | "incremental";
  summary: SourceSummary;
  problems: SyncProblem[];
}

/**
 * Reads LDAP: everything, or (incremental, with a usable cache) the entries
 * changed since the cache's watermark applied to the cached LDAP part.
 * Returns "no-change" only when `shortcut` allows it and LDAP reports no
 * changed entry: the published snapshot is then already up to date.
 */
async function readLdap(
  config: DeepReadonly<Config>,
  mapping: LdapMapping,
  domains: DomainSet,
  mode: SyncMode,
  shortcut: (cacheWatermark: string) => boolean,
  log: Logger,
): Promise<LdapPart | "no-change"> {
  const attribute = config.sync.modify_timestamp;
  const cacheMeta = mode === "incremental" ? safeMeta(ldapCachePath(config), log) : null;
  const connection = await connectLdap(await ldapConnectOptionsFromConfig(config));
  try {
    const since = cacheMeta?.watermark;
    if (since !== undefined) {
      const changes = await fetchChanges(connection, mapping, domains, attribute, since);
      const changed = changes.userEntries.length + changes.groupEntries.length;
      log.debug({ changed, since }, "LDAP entries changed since the last sync");
      // The change filter is inclusive (timestamps have whole seconds), so the
      // entries stamped in the watermark's own second come back every time.
      // They are no change when nothing is newer and the cache was written
      // well after that second ended (it already holds them).
      const latest = greatestTimestamp([...changes.userEntries, ...changes.groupEntries], attribute);
      const sinceMs = parseGeneralizedTime(since) ?? Number.NaN;
      const nothingNewer = changed === 0 || (latest !== null && parseGeneralizedTime(latest) === sinceMs);
      const settled = cacheMeta !== null && Date.parse(cacheMeta.createdAt) - sinceMs >= SETTLE_MS;
      if (nothingNewer && (changed === 0 || settled) && shortcut(since)) return "no-change";
      const cached = readIfUsable(ldapCachePath(config), "the LDAP cache", log);
      if (cached !== null) {
        const applied = applyChanges(
          cached.directory,
          changes.userEntries,
          changes.groupEntries,
          mapping,
          domains,
        );
        return {
          users: applied.users,
          groups: applied.groups,
          watermark: changes.watermark === null ? since : laterTimestamp(since, changes.watermark),
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

function safeMeta(path: string, log: Logger): SnapshotMeta | null {
  try {
    return readSnapshotMeta(path);
  } catch (error) {
    log.warn({ path, err: error }, "snapshot metadata is unreadable");
    return null;
  }
}

/**
 * Reads files while hashing what was read, so the sync knows whether its
 * inputs changed, and noting the paths that could not be read.
 */
function fingerprintingReader(
  hash: ReturnType<typeof createHash>,
  unreadable: string[],
): (path: string) => string {
  return (path) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      unreadable.push(`${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      throw error;
    }
    hash.update(`${path}\0${text.length}\0${text}\0`);
    return text;
  };
}

const emptyChange = () => ({ added: [], removed: [] });

function noDiff(): DirectoryDiff {
  return {
    firstSnapshot: false,
    users: emptyChange(),
    groups: emptyChange(),
    addresses: emptyChange(),
    quotaChanges: [],
    statusChanges: [],
    membershipChanges: [],
  };
}

/**
 * Reads the legacy files. A file that cannot be read (missing, permissions,
 * an NFS hiccup) fails the sync like an LDAP error: publishing without it
 * would turn its addresses into "user unknown" until it is back. Malformed
 * lines are different: they are reported and skipped.
 */
function readLegacy(
  config: DeepReadonly<Config>,
  domains: DomainSet,
  hash: ReturnType<typeof createHash>,
): LegacySource | null {
  const legacy = config.sync.legacy;
  if (legacy.alias_files.length + legacy.virtual_maps.length + legacy.domain_lists.length === 0) return null;
  const unreadable: string[] = [];
  const source = readLegacySources({
    aliasFiles: [...legacy.alias_files],
    virtualMaps: [...legacy.virtual_maps],
    domainLists: legacy.domain_lists.map((list) => ({ domain: list.domain, path: list.path })),
    primaryDomain: domains.primary,
    readFile: fingerprintingReader(hash, unreadable),
  });
  if (unreadable.length > 0) {
    throw new SourceError(`cannot read legacy file ${unreadable.join(", ")}; nothing was published`);
  }
  return source;
}

/** Runs one sync. Throws (publishing nothing) when a source fails; returns what happened otherwise. */
export async function runSync(options: SyncOptions): Promise<SyncOutcome> {
  const { config, log } = options;
  const domains = domainsFromConfig(config);
  const resolverOptions = resolverOptionsFromConfig(config);
  const mapping = mappingFromConfig(config.ldap);

  const inputsHash = createHash("sha256").update(
    JSON.stringify({ domains, mapping, precedence: config.sync.precedence }),
  );
  const legacy = readLegacy(config, domains, inputsHash);
  const inputs = `sha256:${inputsHash.digest("hex")}`;
  const publishedMeta = safeMeta(config.snapshot.path, log);
  // The published snapshot already reflects the cache at this watermark and these inputs.
  const upToDate = (cacheWatermark: string) =>
    publishedMeta !== null && publishedMeta.inputs === inputs && publishedMeta.watermark === cacheWatermark;

  const ldap =
    config.ldap.urls.length > 0
      ? await readLdap(config, mapping, domains, options.mode, upToDate, log)
      : null;
  if (ldap === null && legacy === null) {
    throw new SyncConfigError("no source configured: set ldap.urls and/or files in [sync.legacy]");
  }
  if (ldap === "no-change" && publishedMeta !== null) {
    const report: SyncReport = {
      mode: options.mode,
      ldap: "incremental",
      sources: publishedMeta.sources,
      problems: [],
      conflicts: null,
      diff: noDiff(),
      counts: countsOf(publishedMeta),
    };
    if (options.dryRun) return { status: "dry-run", refusal: null, ...report };
    // Nothing changed since the published snapshot: confirm it (freshness) and stop.
    const meta = touchSnapshot(config.snapshot.path, { createdAt: options.now ?? new Date() });
    return { status: "unchanged", meta, ...report };
  }
  const ldapPart = ldap === "no-change" ? null : ldap;

  const merged = mergeSources({
    ldap: ldapPart === null ? null : { users: ldapPart.users, groups: ldapPart.groups },
    legacy,
    precedence: [...config.sync.precedence],
    domains,
  });
  const directory = merged.directory;

  const sources: SourceSummary[] = [];
  const problems: SyncProblem[] = [];
  if (ldapPart !== null) {
    sources.push(ldapPart.summary);
    problems.push(...ldapPart.problems);
  }
  if (legacy !== null) {
    sources.push({ name: "legacy", users: 0, groups: legacy.groups.length, skipped: legacy.problems.length });
    for (const problem of legacy.problems) {
      problems.push({ source: `${problem.file}:${problem.line}`, message: problem.message });
    }
  }
  for (const problem of merged.problems) problems.push({ source: problem.source, message: problem.message });

  const watermark = ldapPart?.watermark ?? undefined;
  const now = options.now ?? new Date();
  const hash = contentHash(directory);
  const base = {
    mode: options.mode,
    ldap: ldapPart === null ? ("none" as const) : ldapPart.kind,
    sources,
    problems,
    conflicts: findConflicts(directory, resolverOptions),
    counts: { users: directory.users.length, groups: directory.groups.length },
  };
  const writeCache = (version: number) => {
    if (ldapPart === null) return;
    const cachePath = ldapCachePath(config);
    const cache = { users: ldapPart.users, groups: ldapPart.groups, domains };
    const cached = safeMeta(cachePath, log);
    if (cached !== null && cached.contentHash === contentHash(cache)) {
      touchSnapshot(cachePath, { createdAt: now, inputs, ...(watermark === undefined ? {} : { watermark }) });
      return;
    }
    writeSnapshot(cachePath, cache, {
      version,
      view: "internal",
      sources: [ldapPart.summary],
      now,
      inputs,
      ...(watermark === undefined ? {} : { watermark }),
    });
  };

  // Same content as published: no need to diff it. A full sync still checks
  // that the file itself is intact (daemons could not load a damaged one) and
  // rewrites it if not: the content is the one recorded as published, so the
  // safety rail has nothing to compare.
  const sameContent = publishedMeta !== null && hash === publishedMeta.contentHash;
  const intact =
    !sameContent ||
    options.mode === "incremental" ||
    readIfUsable(config.snapshot.path, "the published snapshot", log) !== null;
  if (publishedMeta !== null && sameContent && intact) {
    const report: SyncReport = { ...base, diff: noDiff() };
    if (options.dryRun) return { status: "dry-run", refusal: null, ...report };
    // Confirmed by the sources: refresh createdAt (freshness) and record the watermark and inputs.
    const meta = touchSnapshot(config.snapshot.path, {
      createdAt: now,
      inputs,
      ...(watermark === undefined ? {} : { watermark }),
    });
    writeCache(meta.version);
    return { status: "unchanged", meta, ...report };
  }

  const previous =
    publishedMeta === null || sameContent
      ? null
      : readIfUsable(config.snapshot.path, "the published snapshot", log);
  const report: SyncReport = { ...base, diff: diffDirectories(previous?.directory ?? null, directory) };
  const safety = safetyCheck(previous?.directory ?? null, directory, config.sync.max_drop_percent);
  // A published snapshot that exists but cannot be read must not switch the rail off.
  const refusal =
    publishedMeta !== null && previous === null && !sameContent
      ? `the published snapshot ${config.snapshot.path} cannot be read, so the safety rail cannot compare; ` +
        "check it, then replace it with: emailng sync run --force"
      : safety.ok
        ? null
        : safety.message;

  if (options.dryRun) return { status: "dry-run", refusal, ...report };
  if (refusal !== null && !options.force) return { status: "refused", refusal, ...report };
  if (refusal !== null) log.warn({ refusal }, "safety rail overridden with --force");

  const meta = writeSnapshot(config.snapshot.path, directory, {
    version: (publishedMeta?.version ?? 0) + 1,
    view: "internal",
    sources,
    now,
    inputs,
    ...(watermark === undefined ? {} : { watermark }),
  });
  writeCache(meta.version);
  try {
    await exportAfterPublish(config, directory, meta.version, resolverOptions, log);
  } catch (error) {
    throw new Error(
      `snapshot version ${meta.version} was published, but exporting the map files failed ` +
        `(the previous exports stay in place): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { status: "published", meta, ...report };
}

function countsOf(meta: SnapshotMeta): { users: number; groups: number } {
  return {
    users: meta.sources.reduce((sum, source) => sum + source.users, 0),
    groups: meta.sources.reduce((sum, source) => sum + source.groups, 0),
  };
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
